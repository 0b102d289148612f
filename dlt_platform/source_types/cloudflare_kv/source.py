"""Cloudflare Workers KV as a dlt source: one resource, the namespace's records shaped into its tables.

What a run reads is decided here, in this order: a raw snapshot to replay; explicit keys; the incremental
key-prefix windows (a partition's range, or the lookback from now); otherwise the whole listing under the
definition's prefix. Every record read is written to the raw snapshot when the source keeps one.

Batches of pages are handed to dlt as Arrow tables, the root table's and its child tables' (arrow_pages.py
shapes a batch column at a time, arrow_tables.py a page value by value when it holds anything new; see
PageItems), without dlt's row-by-row normalizer. Records the Arrow shaping cannot reproduce exactly go to dlt's
row normalizer as rows (rows.py), from that batch to the end of the run; `kv_shaping="rows"` (the environment's
DLT_PLATFORM_KV_SHAPING) sends every row there, and so does a schema contract (see kv_resource). Into BigQuery, the
root table of each batch goes as a JSON lines file dlt imports (json_lines.py: BigQuery reads its JSON column only
from JSON lines); its child tables stay Arrow tables.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

import dlt
from dlt.sources import DltResource

from dlt_platform.http import RateBudget
from dlt_platform.load_request import LoadRequest, reads_part_of_source, write_disposition_for
from dlt_platform.settings import Settings
from dlt_platform.snapshots import SnapshotWriter, replay_key, snapshot_pages
from dlt_platform.source_types.cloudflare_kv.arrow_pages import NotVectorized, PageShaper
from dlt_platform.source_types.cloudflare_kv.arrow_tables import CHILD_ID_COLUMNS, ArrowShaper, CannotShape
from dlt_platform.source_types.cloudflare_kv.definition import KVSourceDefinition
from dlt_platform.source_types.cloudflare_kv.json_lines import JsonLinesFile
from dlt_platform.source_types.cloudflare_kv.nested_tables import child_table_item, declare_child_table
from dlt_platform.source_types.cloudflare_kv.rest_client import LIST_PAGE_SIZE, CloudflareKVClient
from dlt_platform.source_types.cloudflare_kv.rows import AUDIT_COLUMN_HINTS, warehouse_row
from dlt_platform.source_types.cloudflare_kv.transports import (
    KVTransport,
    RestTransport,
    WorkerTransport,
    prefetched,
)
from dlt_platform.source_types.cloudflare_kv.windows import lookback_prefixes, window_prefixes

# Pages are shaped and handed to dlt in batches of about this many records: dlt's cost per item (and the cost of
# each Arrow call, paid again whenever the reading threads hold the interpreter) is then paid once per batch.
# Memory stays bounded by a batch and the pages read ahead.
BATCH_RECORDS = 10_000


def open_transport(definition: KVSourceDefinition, settings: Settings) -> KVTransport:
    extract = definition.extract
    if settings.kv_transport(definition) == "worker":
        return WorkerTransport(
            settings.orchestrator_url, settings.internal_token, extract.namespace_title, policy=settings.retry_policy
        )
    client = CloudflareKVClient(
        settings.cloudflare_api_base_url,
        settings.cloudflare_account_id,
        settings.cloudflare_api_token,
        budget=RateBudget(settings.cloudflare_requests_per_window, settings.cloudflare_window_seconds),
        policy=settings.retry_policy,
    )
    return RestTransport(client, extract.namespace_id)


def planned_prefixes(definition: KVSourceDefinition, request: LoadRequest) -> Sequence[str | None]:
    """The listing prefixes a run reads (when it reads a listing at all)."""
    incremental = definition.extract.incremental
    if incremental is None or not incremental.enabled or request.full_refresh:
        return [definition.extract.prefix]
    if request.window is not None:
        return window_prefixes(incremental, *request.window)
    return lookback_prefixes(incremental, request.now or dt.datetime.now(dt.UTC))


def read_pages(definition: KVSourceDefinition, settings: Settings, request: LoadRequest) -> Iterator[list[dict]]:
    """Pages of records with their `fetched_at`, straight from KV (or from a snapshot being replayed)."""
    if request.from_snapshot:
        key = replay_key(request.from_snapshot, definition.staging.r2_prefix, definition.source_id, settings)
        # Read ahead as a listing is: the snapshot is decompressed while the batch before is shaped.
        yield from prefetched(snapshot_pages(key, settings), depth=BATCH_RECORDS // LIST_PAGE_SIZE)
        return
    transport = open_transport(definition, settings)
    try:
        keys = list(request.keys or definition.extract.keys or [])
        if keys:
            pages = transport.records_for_keys(keys)
        else:
            pages = (page for prefix in planned_prefixes(definition, request) for page in transport.pages(prefix))
        # Reading runs a batch ahead, so the next batch is read while this one is shaped and written.
        for records in prefetched(pages, depth=BATCH_RECORDS // LIST_PAGE_SIZE):
            fetched_at = dt.datetime.now(dt.UTC).isoformat()
            for record in records:  # the transport's own dicts: stamped in place
                record["fetched_at"] = fetched_at
            yield cast("list[dict]", records)  # from here on, plain rows
    finally:
        transport.close()


logger = logging.getLogger(__name__)


class _ExpectedArrowHintsWarning(logging.Filter):
    """dlt warns, for every Arrow table, where a resource's column hints differ from the Arrow types; for KV tables
    they differ on purpose (cf_kv_metadata is a JSON column carried as JSON text), so the warning, repeated on
    every page, says nothing. Other resources keep it."""

    tables: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            message.startswith("In resource: ")
            and "when merging arrow schema" in message
            and message[len("In resource: ") :].split(",", 1)[0] in self.tables
        )


_expected_arrow_hints = _ExpectedArrowHintsWarning()
logging.getLogger("dlt").addFilter(_expected_arrow_hints)


class PageItems:
    """What the resource hands dlt for each batch of pages: Arrow tables (the root table's and its child tables')
    while the shapers can shape them, the rows themselves (for dlt's row normalizer) from the first page they
    cannot to the end of the run. A batch is shaped column at a time (arrow_pages.py) if it can be; otherwise its
    first page on its own (value by value, by arrow_tables.py, if it must: that learns what was new), and the rest
    together again.

    With `root_as_json_lines` (BigQuery), the root table's batches are appended to a JSON lines file (gzipped when
    `compress_json_lines`) in `json_lines_dir`, which `imported_root_file` hands to dlt when the run has read
    everything."""

    def __init__(
        self,
        table: str,
        shaping: str,
        namespace_id: str,
        namespace_title: str,
        root_as_json_lines: bool = False,
        compress_json_lines: bool = False,
    ) -> None:
        self.table, self.namespace_id, self.namespace_title = table, namespace_id, namespace_title
        self.root_as_json_lines, self.compress_json_lines = root_as_json_lines, compress_json_lines
        self.json_lines_dir: Path | None = None  # made by kv_rows for the run
        self._json_lines: JsonLinesFile | None = None
        self._handed_over_first = False  # the first batch of a table not in the schema yet: its own file
        self.arrow = shaping == "arrow"
        self.shaper: ArrowShaper | None = None
        self.pages: PageShaper | None = None
        self.resource: DltResource | None = None  # set once the resource exists (it declares the child tables)
        self.declared_child_tables: set[str] = set()
        if self.arrow:
            _expected_arrow_hints.tables.add(table)

    def of(self, pages: list[list[dict]]) -> list:
        """The items of a batch of pages of records (as read_pages yields them)."""
        if self.arrow:
            try:
                if self.shaper is None:
                    self.shaper = ArrowShaper(dlt.current.source_schema(), self.table, AUDIT_COLUMN_HINTS)
                    self.pages = PageShaper(self.shaper, self.namespace_id, self.namespace_title)
                shaped = self._shape(pages, dlt.current.load_package_state()["load_id"])
            except CannotShape as reason:
                logger.info("%s: dlt's row normalizer shapes the rows from here on (%s)", self.table, reason)
                self.arrow = False
            else:
                items = [self._item(name, table) for tables in shaped for name, table in tables.items()]
                return [item for item in items if item is not None]
        return [self._rows([record for page in pages for record in page])]

    def _shape(self, pages: list[list[dict]], load_id: str) -> list[dict]:
        assert self.shaper is not None and self.pages is not None  # `of` made them before shaping
        try:
            return [self.pages.shape([record for page in pages for record in page], load_id)]
        except NotVectorized as reason:
            if len(pages) > 1:  # the first page alone, then the rest together again
                return [*self._shape(pages[:1], load_id), *self._shape(pages[1:], load_id)]
            logger.debug("%s: a page shaped value by value (%s)", self.table, reason)
            return [self.shaper.shape(self._rows(pages[0]), load_id)]

    def _rows(self, records: list[dict]) -> list[dict]:
        return [warehouse_row(record, self.namespace_id, self.namespace_title) for record in records]

    def _item(self, name: str, table):
        assert self.shaper is not None and self.resource is not None  # the resource exists once it yields
        hints = self.shaper.column_hints(name, table)
        if name == self.table:
            if self.root_as_json_lines:
                return self._append_json_lines(table, hints)
            return dlt.mark.with_hints(table, dlt.mark.make_hints(columns=hints)) if hints else table
        if name not in self.declared_child_tables:
            declare_child_table(self.resource, name, self.shaper.parents[name], self.table, CHILD_ID_COLUMNS)
            self.declared_child_tables.add(name)
        return child_table_item(name, table, hints)

    def _append_json_lines(self, table, hints: dict):
        """Appends the root table's rows to the run's JSON lines file; new column hints go on the resource, as
        dlt.mark.with_hints puts them. While the schema has no root table yet (a source's first run), dlt would
        refuse its child tables, so the first batch's file is handed over at once (one more load job, once)."""
        assert self.shaper is not None and self.json_lines_dir is not None
        first_of_table = self.table not in self.shaper.schema.tables and not self._handed_over_first
        self._handed_over_first = self._handed_over_first or first_of_table
        if self._json_lines is None:
            path = self.json_lines_dir / f"{self.table}.{'first' if first_of_table else 'run'}.jsonl"
            self._json_lines = JsonLinesFile(path, compress=self.compress_json_lines)
        root_column = self.shaper.column
        json_columns = [
            name for name in table.column_names if (root_column(self.table, name) or {}).get("data_type") == "json"
        ]
        self._json_lines.write(table, json_columns)
        if hints:  # on the resource being extracted (the source's own copy of self.resource)
            dlt.current.source().resources[self.table].apply_hints(columns=hints)
        return self.imported_root_file()[0] if first_of_table else None

    def imported_root_file(self) -> list:
        """The item that hands dlt the run's JSON lines file to import as it is (none if nothing was written); the
        Arrow schema of its rows gives dlt the columns and types, as an Arrow table of them would."""
        if self._json_lines is None:
            return []
        json_lines, self._json_lines = self._json_lines, None
        schema = json_lines.close()
        if not json_lines.rows:
            return []
        return [dlt.mark.with_file_import(str(json_lines.path), "jsonl", json_lines.rows, hints=schema.empty_table())]

    def discard_root_file(self) -> None:
        """Closes the run's JSON lines file without handing it to dlt (the run failed)."""
        if self._json_lines is not None:
            self._json_lines.close()
            self._json_lines = None


@contextlib.contextmanager
def long_lived_objects_frozen() -> Iterator[None]:
    """Python's cyclic garbage collector runs every few hundred allocations and, now and then, walks every object
    of the process: the libraries' and Dagster's too. While a run extracts (millions of short-lived objects), the
    objects that existed before it are set aside (gc.freeze), which saves about a tenth of the extract step; they
    return to the collector's care afterwards (gc.unfreeze), so no garbage is kept."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def kv_rows(definition: KVSourceDefinition, settings: Settings, request: LoadRequest, items: PageItems) -> Iterator:
    with long_lived_objects_frozen():
        if not items.root_as_json_lines:
            yield from _kv_rows(definition, settings, request, items)
            return
        # On the pipelines' disk, so dlt can link the file into its load package instead of copying it. dlt has
        # imported it by the time the generator resumes after yielding it, i.e. before the folder is removed.
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        items.json_lines_dir = Path(tempfile.mkdtemp(prefix=".kv-json-lines-", dir=settings.data_dir))
        try:
            yield from _kv_rows(definition, settings, request, items)
        finally:
            items.discard_root_file()
            shutil.rmtree(items.json_lines_dir, ignore_errors=True)


def _kv_rows(definition: KVSourceDefinition, settings: Settings, request: LoadRequest, items: PageItems) -> Iterator:
    keeps_snapshot = definition.staging.raw_snapshot and not request.from_snapshot
    prefix = definition.staging.r2_prefix  # set whenever raw_snapshot is (Staging's rule)
    snapshot = SnapshotWriter(settings, prefix) if keeps_snapshot and prefix is not None else None
    remaining = request.limit
    batch: list[list[dict]] = []
    try:
        for page in read_pages(definition, settings, request):
            if remaining is not None:
                page = page[:remaining]
                remaining -= len(page)
            if snapshot is not None:
                for record in page:
                    snapshot.write(record)
            if request.on_page is not None:
                request.on_page(len(page))
            if page:
                batch.append(page)
            if sum(map(len, batch)) >= BATCH_RECORDS:
                yield from items.of(batch)
                batch = []
            if remaining == 0:
                break
        if batch:
            yield from items.of(batch)
        yield from items.imported_root_file()
    except BaseException:
        if snapshot is not None:
            snapshot.discard()
        raise
    if snapshot is not None:
        load_id = dlt.current.load_package_state()["load_id"]
        url = snapshot.publish(load_id, dt.datetime.now(dt.UTC), complete=not reads_part_of_source(definition, request))
        dlt.current.resource_state()["last_snapshot"] = url
    else:  # a replay writes no snapshot: nothing may report the previous run's as this run's
        dlt.current.resource_state().pop("last_snapshot", None)


def kv_resource(definition: KVSourceDefinition, settings: Settings, request: LoadRequest) -> DltResource:
    # A partial run of a replace source merges (see write_disposition_for). Merge needs the key hint; it also
    # works on a table an earlier replace created: dlt adds the hint to the stored schema, and root_key lets it
    # replace the child rows (e.g. `__items`) of exactly the keys it merges.
    disposition = write_disposition_for(definition, request)
    # dlt checks schema contracts on rows in its normalizer, not on Arrow tables: a contract goes through the rows.
    arrow_allowed = definition.schema_contract in (None, "evolve")
    shaping = settings.kv_shaping if arrow_allowed else "rows"
    extract = definition.extract
    items = PageItems(
        definition.destination.table,
        shaping,
        extract.namespace_id,
        extract.namespace_title,
        root_as_json_lines=settings.destination_type(definition) == "bigquery",
        compress_json_lines=not settings.bigquery_emulator_host,  # the emulator reads no gzip
    )
    items.resource = dlt.resource(
        kv_rows(definition, settings, request, items),
        name=definition.destination.table,
        write_disposition=disposition,
        primary_key="cf_kv_key" if disposition == "merge" else None,
        columns=AUDIT_COLUMN_HINTS,
    )
    return items.resource


@dlt.source(root_key=True)
def cloudflare_kv(
    definition: KVSourceDefinition, settings: Settings, request: LoadRequest = LoadRequest()
) -> DltResource:
    return kv_resource(definition, settings, request)
