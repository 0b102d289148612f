"""Webhook deliveries as a dlt source: what the Worker accepted and kept, read through its internal API.

The Worker is the one way to reach the deliveries (it verified them, wrote them to R2 and recorded them in D1).
A normal run reads the deliveries waiting to be loaded, oldest first, up to those received when the run
started; a replay reads every delivery received in the hours of its window, loaded or not. Either way the rows
merge on webhook_delivery_id, so a redelivered or replayed delivery never adds a row.

The ids a run read are kept in its dlt load package state. Only once that package has loaded are they marked
loaded in the Worker (`mark_loaded`): a run that fails leaves them waiting for the next one, and a package an
earlier run could not load is marked when a later run finally loads it.

A package that cannot load is set aside by the next run (failed_packages.py); its deliveries stay waiting in the
Worker. So that one poisoned delivery cannot block the source, deliveries of set-aside packages ("suspects")
are kept out of the batches of new deliveries and retried only by runs that find nothing new: half of the most
recently set-aside group at a time, so a failing half is set aside again and halved until the delivery that
fails is alone. A delivery set aside again once alone in its package, or set aside MAX_SET_ASIDE times, is not
read again ("quarantined": it stays waiting in the Worker, which has no failed state yet; its packages are kept).
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import dlt
from dlt.common.destination import TLoaderFileFormat
from dlt.sources import DltResource

from dlt_platform import failed_packages
from dlt_platform.load_request import LoadRequest
from dlt_platform.orchestration.worker_client import WorkerClient
from dlt_platform.settings import Settings
from dlt_platform.source_types.webhook.definition import WebhookSourceDefinition
from dlt_platform.source_types.webhook.rows import AUDIT_COLUMN_HINTS, parse_received_at, warehouse_rows

PAGE_SIZE = 500
MARK_BATCH = 1000  # the Worker's limit of ids per `loaded` call
DELIVERY_IDS_STATE = "webhook_delivery_ids"  # load package state: the ids this package holds
# dlt keeps whatever key a source adds to its load package state; its TypedDict names only dlt's own keys.
PackageState = dict[str, Any]
# Halving a group of suspects isolates one poisoned delivery of the largest batch (10,000) in 14 steps.
MAX_SET_ASIDE = 16
log = logging.getLogger(__name__)


class WebhookConfigError(ValueError):
    pass


def open_worker_client(settings: Settings, timeout_seconds: float = 60.0) -> WorkerClient:
    if not settings.orchestrator_url or not settings.internal_token:
        raise WebhookConfigError(
            "DLT_ORCHESTRATOR_URL and DLT_INTERNAL_TOKEN: both are needed to read webhook "
            "deliveries (the Worker keeps them)"
        )
    return WorkerClient(
        settings.orchestrator_url,
        settings.internal_token,
        timeout_seconds=timeout_seconds,
        policy=settings.retry_policy,
    )


def replay_hours(window: tuple[dt.datetime, dt.datetime]) -> list[str]:
    """The UTC hours (YYYY-MM-DDTHH, the Worker's `hour=`) starting in [start, end)."""
    start, end = (moment.astimezone(dt.UTC) for moment in window)
    hour = start.replace(minute=0, second=0, microsecond=0)
    if hour < start:
        hour += dt.timedelta(hours=1)
    hours = []
    while hour < end:
        hours.append(f"{hour:%Y-%m-%dT%H}")
        hour += dt.timedelta(hours=1)
    return hours


def _pages(client: WorkerClient, source_id: str, hour: str | None) -> Iterator[list[dict]]:
    after = None
    while True:
        page = client.webhook_deliveries(source_id, hour=hour, after=after, limit=PAGE_SIZE)
        if page["deliveries"]:
            yield page["deliveries"]
        after = page.get("next")
        if not after:
            return


def delivery_pages(
    definition: WebhookSourceDefinition, settings: Settings, request: LoadRequest
) -> Iterator[list[dict]]:
    """Pages of delivery documents for one run: the hours of a replay window, or the waiting deliveries
    received before the run started (so a steady stream of new ones cannot keep a run going forever)."""
    remaining = request.limit
    with open_worker_client(settings) as client:
        pages: Iterator[list[dict]]
        if request.window is not None:
            pages = (
                page for hour in replay_hours(request.window) for page in _pages(client, definition.source_id, hour)
            )
        else:
            pages = _pages(client, definition.source_id, None)
        started = request.now or dt.datetime.now(dt.UTC)
        for page in pages:
            if request.window is None:
                before = [d for d in page if parse_received_at(d["received_at"]) <= started]
                done, page = len(before) < len(page), before
            else:
                done = False
            if remaining is not None:
                page, done = page[:remaining], done or len(page) >= remaining
                remaining -= len(page)
            if page:
                yield page
            if done:
                return


@dataclass
class SetAsideHistory:
    """What a source's set-aside packages say about its deliveries."""

    times: collections.Counter = field(default_factory=collections.Counter)  # id -> packages set aside with it
    group: dict[str, str] = field(default_factory=dict)  # id -> the latest set-aside package holding it
    group_size: dict[str, int] = field(default_factory=dict)  # set-aside package -> deliveries it held
    alone: set[str] = field(default_factory=set)  # set aside in a package of its own
    folder: Path | None = None

    @classmethod
    def read(cls, data_dir: Path, source_id: str) -> SetAsideHistory:
        history = cls(folder=failed_packages.source_dir(data_dir, source_id))
        for aside in failed_packages.set_aside_packages(data_dir, source_id):
            ids = aside.package_state.get(DELIVERY_IDS_STATE) or []
            history.group_size[aside.load_id] = len(ids)
            for delivery_id in ids:
                history.times[delivery_id] += 1
                history.group[delivery_id] = aside.load_id
            if len(ids) == 1:
                history.alone.add(ids[0])
        return history

    def quarantined(self, delivery_id: str) -> bool:
        # Alone once is not enough: a lone delivery may have met a failure that was not its own.
        times = self.times[delivery_id]
        return (delivery_id in self.alone and times >= 2) or times >= MAX_SET_ASIDE

    def quarantined_count(self) -> int:
        return sum(1 for delivery_id in self.times if self.quarantined(delivery_id))

    def next_trial(self, suspects: list[dict]) -> list[dict]:
        """The suspects to retry now, from the most recently set-aside group: its first half (rounded up) while
        all of it waits, all that waits once part of it loaded (the part that failed is in the rest, or the
        failure was not the deliveries': a table since fixed)."""
        latest = max(self.group[document["delivery_id"]] for document in suspects)
        members = [document for document in suspects if self.group[document["delivery_id"]] == latest]
        if len(members) < self.group_size[latest]:
            return members
        return members[: (len(members) + 1) // 2]


def run_deliveries(
    definition: WebhookSourceDefinition, settings: Settings, request: LoadRequest
) -> Iterator[list[dict]]:
    """The pages of deliveries this run loads: new ones, else a trial of suspects; never quarantined ones."""
    history = SetAsideHistory.read(settings.data_dir, definition.source_id)
    if not history.times:
        yield from delivery_pages(definition, settings, request)
        return
    suspects: list[dict] = []
    quarantined = 0
    new_seen = False
    for page in delivery_pages(definition, settings, request):
        chosen = []
        for document in page:
            delivery_id = document["delivery_id"]
            if history.quarantined(delivery_id):
                quarantined += 1
            elif delivery_id in history.times and request.window is None:
                suspects.append(document)
            else:
                chosen.append(document)
        if chosen:
            new_seen = True
            yield chosen
    if quarantined:
        log.warning(
            "%s: %d waiting deliveries not read: they failed on their own in load packages set aside in %s",
            definition.source_id,
            quarantined,
            history.folder,
        )
    if suspects and not new_seen:
        trial = history.next_trial(suspects)
        log.warning(
            "%s: nothing new waits; retrying %d of %d deliveries of set-aside load packages",
            definition.source_id,
            len(trial),
            len(suspects),
        )
        yield trial


def webhook_rows(definition: WebhookSourceDefinition, settings: Settings, request: LoadRequest) -> Iterator:
    state = cast(PackageState, dlt.current.load_package_state()["state"])
    ids: list[str] = state.setdefault(DELIVERY_IDS_STATE, [])
    table = definition.destination.table
    per_event_type = definition.extract.event_type_tables()
    for page in run_deliveries(definition, settings, request):
        by_table: dict[str, list[dict]] = {}
        for document in page:
            for name, row in warehouse_rows(document, table, per_event_type):
                by_table.setdefault(name, []).append(row)
        ids.extend(document["delivery_id"] for document in page)
        if request.on_page is not None:
            request.on_page(len(page))
        for name, rows in by_table.items():
            yield dlt.mark.with_table_name(rows, name)


def body_file_format(definition: WebhookSourceDefinition, settings: Settings) -> TLoaderFileFormat | None:
    """JSON lines for BigQuery when nesting is bounded: objects below the bound become JSON columns, which
    BigQuery loads from JSON lines only, and they appear as the rows come, after dlt chose each table's format
    (bigquery.jsonl_for_json_tables sees only columns known before). None: the destination's preferred format."""
    if settings.destination_type(definition) == "bigquery" and definition.extract.nesting_limit() is not None:
        return "jsonl"
    return None


def webhook_resource(definition: WebhookSourceDefinition, settings: Settings, request: LoadRequest) -> DltResource:
    # Always merge on the delivery id whatever the definition's write_disposition says: redeliveries and replays
    # must never add rows, and a batch of deliveries is never the whole feed (replace would drop the rest).
    # root_key (on the source) lets a merge replace a delivery's child rows too. The resource's hints hold for
    # every table it writes (<table> and, per event type, <table>__<event_type>).
    return dlt.resource(
        webhook_rows(definition, settings, request),
        name=definition.destination.table,
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        primary_key="webhook_delivery_id",
        columns=AUDIT_COLUMN_HINTS,
        max_table_nesting=definition.extract.nesting_limit(),
        file_format=body_file_format(definition, settings),
    )


@dlt.source(root_key=True)
def webhook_deliveries(
    definition: WebhookSourceDefinition, settings: Settings, request: LoadRequest = LoadRequest()
) -> DltResource:
    return webhook_resource(definition, settings, request)


def delivery_ids_of(pipeline: dlt.Pipeline, load_ids: list[str]) -> list[str]:
    ids: list[str] = []
    for load_id in load_ids:
        ids.extend(cast(PackageState, pipeline.get_load_package_state(load_id)).get(DELIVERY_IDS_STATE) or [])
    return list(dict.fromkeys(ids))


def mark_loaded(
    definition: WebhookSourceDefinition, settings: Settings, pipeline: dlt.Pipeline, load_ids: list[str], run_id: str
) -> int:
    """Tell the Worker the deliveries of these (loaded) packages are loaded; returns how many ids were sent.
    Call only after the packages loaded. If it fails the deliveries stay waiting and the next run loads them
    again, which the merge makes harmless."""
    ids = delivery_ids_of(pipeline, load_ids)
    if ids:
        with open_worker_client(settings) as client:
            for start in range(0, len(ids), MARK_BATCH):
                client.mark_webhook_deliveries_loaded(definition.source_id, run_id, ids[start : start + MARK_BATCH])
    return len(ids)
