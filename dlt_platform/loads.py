"""Run a source definition through dlt: one pipeline per source (name = source_id), parquet load files.

Parquet instead of dlt's default jsonl: on KV-shaped records it normalizes about 3x faster in a tenth of the
memory (see dlt_platform_tests/bench/kv_load.py). Each destination states it as its preferred format; BigQuery
reads tables with a JSON column from JSON lines instead (dlt_platform/bigquery.py). The CLI, the Dagster assets
and the benchmark all build their pipelines and sources here, so there is one code path to production.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import dlt
from dlt.common.pipeline import LoadInfo
from dlt.common.schema.exceptions import DataValidationError
from dlt.common.storages.exceptions import LoadPackageNotFound
from dlt.common.utils import chunks
from dlt.destinations.exceptions import DatabaseTerminalException
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials
from dlt.pipeline.exceptions import PipelineStepFailed

from dlt_platform import bigquery, duckdb_warehouse, failed_packages
from dlt_platform.config import SourceDefinition
from dlt_platform.load_request import LoadRequest, checked_request, write_disposition_for
from dlt_platform.settings import Settings
from dlt_platform.source_types import source_type_of

LOADER_FILE_FORMAT = "parquet"


def destination_for(definition: SourceDefinition, settings: Settings):
    if settings.destination_type(definition) == "duckdb":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        credentials = DuckDbCredentials(
            str(settings.duckdb_path), global_config={"memory_limit": settings.duckdb_memory_limit}
        )
        return dlt.destinations.duckdb(credentials=credentials, preferred_loader_file_format=LOADER_FILE_FORMAT)
    return bigquery.destination(definition.destination, settings, LOADER_FILE_FORMAT)


def warehouse_turn(definition: SourceDefinition, settings: Settings, say=print):
    """What a run holds while its dlt pipeline uses the warehouse: its turn on the local DuckDB file (runs take
    turns: duckdb_warehouse.py), nothing for BigQuery."""
    if settings.destination_type(definition) != "duckdb":
        return contextlib.nullcontext()
    return duckdb_warehouse.warehouse_turn(settings.duckdb_path, settings.duckdb_wait_seconds, say=say)


def build_pipeline(definition: SourceDefinition, settings: Settings) -> dlt.Pipeline:
    settings.apply_dlt_defaults()
    return dlt.pipeline(
        pipeline_name=definition.source_id,
        pipelines_dir=str(settings.data_dir / "pipelines"),
        destination=destination_for(definition, settings),
        dataset_name=definition.destination.dataset,
    )


def build_source(definition: SourceDefinition, settings: Settings, request: LoadRequest = LoadRequest()):
    """The dlt source of a definition for one request; its schema is named after the source so sources sharing a
    dataset never share a schema. The request is checked first (load_request.checked_request), and the source's
    write disposition follows from it (load_request.write_disposition_for): a partial run never replaces."""
    request = checked_request(definition, settings, request)
    source = source_type_of(definition).dlt_source(definition, settings, request)
    if settings.destination_type(definition) == "bigquery":
        for name in source.selected_resources:
            bigquery.apply_table_options(source.resources[name], definition.destination)
    if definition.schema_contract is not None:
        source.schema_contract = definition.dlt_schema_contract
    return source


class SchemaContractViolation(RuntimeError):
    """A load the source's schema contract refused (`freeze`); nothing of it was loaded."""

    def __init__(self, message: str, table: str) -> None:
        super().__init__(message)
        self.table = table


_REFUSED = {
    "tables": "new table `{table}`",
    "columns": "new column `{column}` of table `{table}`",
    "data_type": "a new data type for column `{column}` of table `{table}`",
}


def refused_by_contract(error: BaseException, pipeline: dlt.Pipeline) -> SchemaContractViolation | None:
    """The contract violation behind a failed run, if that is why it failed. Its package is aborted (and the
    pipeline's schema and state restored to before it): it would fail every later run the same way, and a frozen
    contract means none of it may load."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, DataValidationError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return None
    pipeline.abort_packages()
    refused = _REFUSED.get(cause.schema_entity, "`{table}`").format(table=cause.table_name, column=cause.column_name)
    return SchemaContractViolation(
        f"schema contract ({cause.schema_entity}: {cause.contract_mode}) refused {refused}; nothing was loaded",
        cause.table_name,
    )


def rows_discarded(pipeline: dlt.Pipeline) -> dict[str, int]:
    """Rows per table the schema contract dropped in the last run (`discard_row`): extracted into a table but not
    normalized into it. Tables made by the normalizer (child tables of rows) have no extracted count."""
    trace = pipeline.last_trace
    extract, normalize = (trace.last_extract_info, trace.last_normalize_info) if trace else (None, None)
    if extract is None or normalize is None:
        return {}
    extracted: dict[str, int] = {}
    for metrics in extract.metrics.values():
        for step in metrics:
            for table, table_metrics in step["table_metrics"].items():
                extracted[table] = extracted.get(table, 0) + table_metrics.items_count
    return {
        table: count - normalize.row_counts.get(table, 0)
        for table, count in extracted.items()
        if not table.startswith("_dlt") and count > normalize.row_counts.get(table, 0)
    }


def after_load(
    definition: SourceDefinition, settings: Settings, pipeline: dlt.Pipeline, load_ids: list[str], run_id: str
) -> dict:
    """What a source does once its load packages are in the warehouse (and only then); returns metadata (e.g.
    webhook deliveries marked loaded in the Worker: a run that failed before this leaves them waiting)."""
    return source_type_of(definition).after_load(definition, settings, pipeline, load_ids, run_id)


def run_kwargs(request: LoadRequest) -> dict:
    """Arguments of pipeline.run() for a request (shared with the Dagster assets). No loader_file_format: it
    would pin every table's format, and BigQuery needs JSON lines for tables with a JSON column."""
    kwargs: dict = {}
    if request.full_refresh:
        kwargs["refresh"] = "drop_resources"
    return kwargs


@dataclass
class LoadResult:
    source_id: str
    load_id: str | None
    destination: str
    dataset: str
    rows_by_table: dict[str, int] = field(default_factory=dict)
    snapshot_url: str | None = None
    write_disposition: str = ""  # how this run wrote the table (a partial run merges; see load_request.py)


def loaded_row_counts(pipeline: dlt.Pipeline) -> dict[str, int]:
    """Rows per data table of the pipeline's last normalize step (dlt's own tables left out), with the rows of the
    files dlt imported as they are (dlt.mark.with_file_import, e.g. the KV root table into BigQuery): dlt's
    normalize step counts none in those, so the count the source gave with each file is taken from the extract
    step's metrics (only imported files are JSON lines there: dlt itself extracts typed-jsonl and parquet)."""
    trace = pipeline.last_trace
    info = trace.last_normalize_info if trace else None
    counts = dict(info.row_counts) if info else {}
    extract = trace.last_extract_info if trace else None
    for metrics in extract.metrics.values() if extract else []:
        for step in metrics:
            for job in step["job_metrics"].values():
                name = os.path.basename(job.file_path)
                if "jsonl" in name.split("."):
                    table = name.split(".", 1)[0]
                    counts[table] = counts.get(table, 0) + job.items_count
    return {table: count for table, count in counts.items() if not table.startswith("_dlt")}


# Metadata of the observation a run logs with its load jobs per table (orchestration/assets.record_load_jobs).
LOAD_JOBS_METADATA = "load_jobs"
# The job states that reached the warehouse: dlt starts one load job per load file (BigQuery: one per file per
# table, into `<dataset>_staging` first for merge); new jobs were never sent. BigQuery counts failed ones too.
SENT_JOB_STATES = ("started_jobs", "completed_jobs", "failed_jobs")


def load_jobs_by_table(pipeline: dlt.Pipeline, load_ids: list[str], failed_load: str | None = None) -> dict[str, int]:
    """Load jobs per table the given packages sent to the warehouse, dlt's own tables included (sources in a
    dataset share its _dlt_pipeline_state). The package a run failed while loading (`failed_load`) counts every
    job: dlt moves a failed job back to new_jobs for its retry, so there the sent cannot be told from the unsent.
    A package tried before counts its earlier jobs again: at least as many as BigQuery counted, never fewer."""
    counts: dict[str, int] = {}
    for load_id in [*load_ids, *([failed_load] if failed_load else [])]:
        try:
            package = pipeline.get_load_package_info(load_id)
        except LoadPackageNotFound:  # set aside (failed_packages.py) or never extracted
            continue
        for state, jobs in package.jobs.items():
            if load_id != failed_load and state not in SENT_JOB_STATES:
                continue
            for job in jobs:
                table = job.job_file_info.table_name
                counts[table] = counts.get(table, 0) + 1
    return counts


def failed_load_id(error: BaseException) -> str | None:
    """The package a run failed while loading (None: it failed before its load step sent anything)."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, PipelineStepFailed):
        cause = cause.__cause__ or cause.__context__
    return cause.load_id if cause is not None and cause.step == "load" else None


def pending_packages(pipeline: dlt.Pipeline) -> list[str]:
    return [*pipeline.list_extracted_load_packages(), *pipeline.list_normalized_load_packages()]


def finish_pending_loads(pipeline: dlt.Pipeline, say=print, on_set_aside=None) -> list[str]:
    """Load what an earlier, failed run left in the pipeline, and say so (dlt's run() would otherwise load only
    those packages and silently skip the new extraction); returns the packages loaded. A package that fails
    terminally, or the same way as on its previous attempt, is set aside (failed_packages.py: kept in
    <data_dir>/failed_packages/<source_id>/<load_id>, aborted with dlt) and the run goes on with new data; any
    other failure fails the run, and the next run tries the package again. `on_set_aside` gets the one-line
    description of a package set aside (the run reports it: its message in D1 and an alert)."""
    try:
        pending = pending_packages(pipeline)
    except FileNotFoundError as missing:
        # dagster-dlt drops the pipeline's working folder as each run starts (DagsterDltResource.run calls
        # `Pipeline.drop()`); a run killed during that leaves the folder partly deleted (seen: `load/.version` kept,
        # `load/normalized` gone), and every later run failed here. Finish that drop: the pipeline's state and
        # schema come back from the warehouse, and nothing pending was kept by the drop anyway.
        say(
            f"{pipeline.pipeline_name}: its working folder was left partly deleted by an interrupted run "
            f"({missing.filename} is missing); dropping it as that run did"
        )
        pipeline.drop()
        return []
    if not pending:
        return []
    say(
        f"{pipeline.pipeline_name}: loading {len(pending)} load package(s) left by an earlier failed run "
        f"({', '.join(pending)}) before this run"
    )
    try:
        pipeline.run()
    except PipelineStepFailed as error:
        load_id = error.load_id or pending[0]
        reason = failed_packages.failure_text(error)
        if not (failed_packages.is_terminal(error) or failed_packages.failed_before(pipeline, load_id, reason)):
            raise
        left = set(pending_packages(pipeline))
        loaded = [package for package in pending if package not in left]
        aside = failed_packages.set_aside(pipeline, load_id, reason)
        dropped = sorted(left - {load_id})
        say(
            f"{pipeline.pipeline_name}: {aside.describe()}"
            + (f"; later pending packages dropped to be extracted again: {', '.join(dropped)}" if dropped else "")
            + "; this run goes on with new data"
        )
        if on_set_aside is not None:
            on_set_aside(aside.describe())
        return loaded
    failed_packages.forget_failure(pipeline)
    return pending


def pipeline_ready_to_load(definition: SourceDefinition, settings: Settings) -> dlt.Pipeline:
    """The source's pipeline, once its warehouse is known to take the load: BigQuery's credentials proved (a load
    that cannot reach it fails in seconds, before extracting) and the dataset there. dlt creates a missing dataset
    itself, but two runs that find it missing at once both create it and one fails on BigQuery's 409 "Already
    Exists" (seen: eight sources' first loads into one dataset); created here, a run that lost the race goes on."""
    if settings.destination_type(definition) != "bigquery":
        return build_pipeline(definition, settings)
    bigquery.check_before_load(settings)
    pipeline = build_pipeline(definition, settings)
    with pipeline.sql_client() as client:
        if not client.has_dataset():
            try:
                client.create_dataset()
            except DatabaseTerminalException:
                if not client.has_dataset():  # a conflict is another run's creation; anything else is the error
                    raise
    return pipeline


def failed_run(error: BaseException, definition: SourceDefinition, source) -> BaseException:
    """What a run that raised reports: the source type's account of it (e.g. an API's failure in one line)."""
    return source_type_of(definition).failed_run(error, definition, source)


def published_snapshot(pipeline: dlt.Pipeline, definition: SourceDefinition, source, load_id: str | None) -> str | None:
    """The raw snapshot of a run that loaded, if the source keeps them."""
    return source_type_of(definition).published_snapshot(pipeline, definition, source, load_id)


def run_load(
    definition: SourceDefinition, settings: Settings, request: LoadRequest = LoadRequest(), run_id: str | None = None
) -> LoadResult:
    source = build_source(definition, settings, request)
    pipeline = pipeline_ready_to_load(definition, settings)
    say = lambda line: print(line, file=sys.stderr)  # noqa: E731
    with warehouse_turn(definition, settings, say):
        pending = finish_pending_loads(pipeline, say=say)
        try:
            info: LoadInfo = pipeline.run(source, **run_kwargs(request))
        except Exception as error:
            violation = refused_by_contract(error, pipeline)
            if violation is not None:
                raise violation from None
            reported = failed_run(error, definition, source)
            if reported is error:
                raise
            raise reported from error
    rows = loaded_row_counts(pipeline)
    load_id = info.loads_ids[-1] if info.loads_ids else None
    after_load(definition, settings, pipeline, [*pending, *info.loads_ids], run_id or f"cli-{load_id or 'empty'}")
    snapshot_url = (
        published_snapshot(pipeline, definition, source, load_id) if definition.staging.raw_snapshot else None
    )
    return LoadResult(
        source_id=definition.source_id,
        load_id=load_id,
        destination=settings.destination_type(definition),
        dataset=definition.destination.dataset,
        rows_by_table=rows,
        snapshot_url=snapshot_url if rows else None,
        write_disposition=write_disposition_for(definition, request),
    )


def key_batches(
    keys: list[str], batch_size: int, skip_batches: int = 0, max_batches: int | None = None
) -> Iterator[tuple[int, list[str]]]:
    """(batch number, keys) of explicit-key backfill batches, as the original platform's enqueue script cut them."""
    if batch_size < 1:
        raise ValueError("batch_size: must be at least 1")
    last = None if max_batches is None else skip_batches + max_batches
    yield from itertools.islice(enumerate(chunks(keys, batch_size)), skip_batches, last)
