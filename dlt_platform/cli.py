"""`dlt-platform` (alias `dlt-kv`): explore KV namespaces and load sources from a terminal.

Every failure is one line on stderr and exit code 1; tracebacks are for bugs, not for a missing token.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from dlt_platform.bigquery import BigQueryCredentialsError
from dlt_platform.config import DefinitionError, SourceDefinition, parse_definition, render_json_schema
from dlt_platform.contract import render_contract
from dlt_platform.loads import LoadResult, key_batches, run_load
from dlt_platform.local.stack import LocalStack, StackError, StackPaths
from dlt_platform.operator_client import OperatorAPIError, OperatorClient
from dlt_platform.profiling import profile_records
from dlt_platform.run_request import RunRequest, checked_request, write_disposition_for
from dlt_platform.settings import PROJECT_ROOT, Settings
from dlt_platform.sources.cloudflare_kv import open_transport, read_pages, row_of
from dlt_platform.sources.cloudflare_kv.rest_client import CloudflareAPIError, CloudflareKVClient

app = typer.Typer(help="dlt-platform: Cloudflare KV and APIs into BigQuery (or local DuckDB).", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
console = Console()
errors = Console(stderr=True)
SCHEMA_PATH = PROJECT_ROOT / "config" / "source.schema.json"
CONTRACT_PATH = PROJECT_ROOT / "worker" / "src" / "contract.ts"

ConfigOption = Annotated[Optional[Path], typer.Option("--config", help="Sources file (default: DLT_PLATFORM_CONFIG "
                                                                       "or config/sources.json).")]
SourceOption = Annotated[str, typer.Option("--source-id", help="A source_id from the sources file.")]


class _State:
    config: Path | None = None


state = _State()


@app.callback()
def main(config: ConfigOption = None) -> None:
    state.config = config


# The platform's own errors carry a complete one-line message; anything else is reported at its root cause.
PLATFORM_ERRORS = (DefinitionError, CloudflareAPIError, OperatorAPIError, StackError, BigQueryCredentialsError)


def _root_cause(error: BaseException) -> BaseException:
    while not isinstance(error, PLATFORM_ERRORS) and (error.__cause__ or error.__context__) is not None:
        error = error.__cause__ or error.__context__
    return error


@contextmanager
def one_line_errors():
    """Known failures become one line and exit code 1 (dlt wraps them, so look through its exceptions)."""
    try:
        yield
    except typer.Exit:
        raise
    except Exception as error:  # noqa: BLE001 - reduced to its root cause below
        cause = _root_cause(error)
        if isinstance(cause, (*PLATFORM_ERRORS, ValueError, httpx.HTTPError, OSError)):
            errors.print(f"error: {cause}", markup=False, highlight=False)
            raise typer.Exit(1) from None
        raise


def _settings() -> Settings:
    return Settings.from_env(state.config)


def _records(definition: SourceDefinition, settings: Settings, limit: int) -> list[dict]:
    records: list[dict] = []
    for page in read_pages(definition, settings, RunRequest(limit=limit)):
        records.extend(page[: limit - len(records)])
        if len(records) >= limit:
            break
    return records


@app.command()
def namespaces() -> None:
    """List the account's KV namespaces (Cloudflare REST API)."""
    with one_line_errors():
        settings = _settings()
        with CloudflareKVClient(settings.cloudflare_api_base_url, settings.cloudflare_account_id,
                                settings.cloudflare_api_token) as client:
            table = Table("id", "title")
            for namespace in client.list_namespaces():
                table.add_row(namespace["id"], namespace["title"])
        console.print(table)


@app.command()
def sources() -> None:
    """List the configured sources."""
    with one_line_errors():
        settings = _settings()
        table = Table("source_id", "enabled", "schedule", "destination", "disposition", "namespace", "transport")
        for definition in settings.load_sources():
            destination = definition.destination
            table.add_row(definition.source_id, "yes" if definition.enabled else "no", definition.schedule or "-",
                          f"{settings.destination_type(definition)}:{destination.dataset}.{destination.table}",
                          destination.write_disposition,
                          *((definition.extract.namespace_title, settings.kv_transport(definition))
                            if definition.source_type == "cloudflare_kv" else (f"/hooks/{definition.source_id}", "-")))
        console.print(table)


@app.command()
def keys(source_id: SourceOption, limit: Annotated[int, typer.Option(min=1)] = 20,
         prefix: Annotated[Optional[str], typer.Option(help="Override the definition's prefix.")] = None) -> None:
    """List keys of a source's namespace."""
    with one_line_errors():
        settings = _settings()
        definition = settings.get_source(source_id)
        transport = open_transport(definition, settings)
        shown = 0
        try:
            for page in transport.pages(prefix if prefix is not None else definition.extract.prefix):
                for record in page[: limit - shown]:
                    console.print(record["key"], markup=False, highlight=False)
                shown += min(len(page), limit - shown)
                if shown >= limit:
                    break
        finally:
            transport.close()


@app.command()
def sample(source_id: SourceOption, limit: Annotated[int, typer.Option(min=1)] = 20) -> None:
    """Print the warehouse rows the first records would become (nothing is loaded)."""
    with one_line_errors():
        settings = _settings()
        definition = settings.get_source(source_id)
        for record in _records(definition, settings, limit):
            console.print_json(json.dumps(row_of(record, definition), default=str))


@app.command()
def profile(source_id: SourceOption, limit: Annotated[int, typer.Option(min=1)] = 100) -> None:
    """Per field of the sampled values: presence, types seen, an example; and the share of non-JSON values."""
    with one_line_errors():
        settings = _settings()
        result = profile_records(_records(settings.get_source(source_id), settings, limit))
        table = Table("field", "present", "types", "example", title=f"{source_id}: {result.records} records sampled")
        for entry in sorted(result.fields.values(), key=lambda f: (-f.present, f.name)):
            share = f"{entry.present}/{result.records} ({entry.present / result.records:.0%})"
            types = ", ".join(f"{name} {count}" for name, count in entry.types.most_common())
            example = json.dumps(entry.example, default=str)
            table.add_row(entry.name, share, types, example[:60] + ("..." if len(example) > 60 else ""))
        console.print(table)
        console.print(f"non-JSON values: {result.non_json}/{result.records} ({result.non_json_share:.1%}); "
                      f"binary: {result.binary}; JSON but not an object: {result.non_object_json}")


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("records"), TimeElapsedColumn(), console=console, transient=False)


def _print_result(result: LoadResult) -> None:
    table = Table("table", "rows", title=f"{result.source_id}: load {result.load_id or '-'} into "
                                          f"{result.destination}:{result.dataset} ({result.write_disposition})")
    for name, rows in sorted(result.rows_by_table.items()):
        table.add_row(name, str(rows))
    if not result.rows_by_table:
        table.add_row("(no rows)", "0")
    console.print(table)
    if result.snapshot_url:
        console.print(f"raw snapshot: {result.snapshot_url}", markup=False, highlight=False)


def load_with_progress(definition: SourceDefinition, settings: Settings, request: RunRequest,
                       total: int | None = None, label: str = "") -> LoadResult:
    with _progress() as progress:
        task = progress.add_task(label or definition.source_id, total=total)
        request = dataclasses.replace(request, on_page=lambda count: progress.advance(task, count))
        return run_load(definition, settings, request)


@app.command()
def load(
    source_id: Annotated[Optional[str], typer.Option("--source-id", help="Source to load.")] = None,
    all_sources: Annotated[bool, typer.Option("--all", help="Every enabled source.")] = False,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Stop after this many records.")] = None,
    keys_file: Annotated[Optional[Path], typer.Option(help="Load these keys (one a line) instead of a listing.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Backfill in batches of this many keys.")] = None,
    skip_batches: Annotated[int, typer.Option(min=0, help="Batches to skip (continue a backfill).")] = 0,
    max_batches: Annotated[Optional[int], typer.Option(min=1, help="Stop after this many batches.")] = None,
    from_snapshot: Annotated[Optional[str], typer.Option(help="Replay a raw snapshot of this source instead of KV: "
                                                              "its key in the snapshot store, e.g. <r2_prefix>/"
                                                              "2026-11-26/<load_id>.ndjson.gz (or the URL a load "
                                                              "printed).")] = None,
    full_refresh: Annotated[bool, typer.Option(help="Drop what the table holds and load everything.")] = False,
) -> None:
    """Load one source (or --all enabled sources) into its warehouse; prints rows per table."""
    with one_line_errors():
        settings = _settings()
        if all_sources == bool(source_id):
            raise DefinitionError("give exactly one of --source-id or --all")
        if all_sources:
            for definition in settings.load_sources():
                if definition.enabled:
                    _print_result(load_with_progress(definition, settings, RunRequest(limit=limit)))
            return
        definition = settings.get_source(source_id)
        keys_list = _read_keys(keys_file) if keys_file else None
        if batch_size is None:
            request = RunRequest(limit=limit, keys=tuple(keys_list) if keys_list else None,
                                 from_snapshot=from_snapshot, full_refresh=full_refresh)
            checked_request(definition, settings, request)  # refused before the progress display starts
            _print_result(load_with_progress(definition, settings, request, total=len(keys_list) if keys_list else None))
            return
        if from_snapshot or full_refresh:
            raise DefinitionError("--batch-size cannot be combined with --from-snapshot or --full-refresh")
        _load_batches(definition, settings, keys_list, batch_size, skip_batches, max_batches)


def _read_keys(path: Path) -> list[str]:
    keys_list = [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not keys_list:
        raise DefinitionError(f"--keys-file: {path} holds no keys")
    return keys_list


def _load_batches(definition: SourceDefinition, settings: Settings, keys_list: list[str] | None, batch_size: int,
                  skip_batches: int, max_batches: int | None) -> None:
    """Explicit-key backfill: each batch is its own partial load, so it merges on cf_kv_key (overlap and retries
    are safe) unless the source appends."""
    if keys_list is None:
        transport = open_transport(definition, settings)
        try:
            keys_list = [r["key"] for page in transport.pages(definition.extract.prefix) for r in page]
        finally:
            transport.close()
    batches = list(key_batches(keys_list, batch_size, skip_batches, max_batches))
    total = (len(keys_list) + batch_size - 1) // batch_size
    console.print(f"{len(keys_list)} keys in {total} batches of {batch_size}; loading {len(batches)} "
                  f"(skipping {skip_batches})")
    for number, batch in batches:
        result = load_with_progress(definition, settings, RunRequest(keys=tuple(batch)), total=len(batch),
                                    label=f"batch {number + 1}/{total}")
        _print_result(result)


@app.command()
def up(
    once: Annotated[bool, typer.Option(help="Stop the stack after the summary instead of waiting for Ctrl-C.")] = False,
    worker_port: Annotated[int, typer.Option(help="Port of wrangler dev.")] = 8787,
    dagster_port: Annotated[int, typer.Option(help="Port of the Dagster webserver.")] = 3000,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the runs.")] = 900,
    state_dir: Annotated[Path, typer.Option(help="Tokens, local D1/KV/queues, Dagster home and logs.")] = (
        PROJECT_ROOT / ".local"),
    warehouse: Annotated[str, typer.Option(
        help="duckdb (a local file) or bigquery (the BigQuery emulator, the production destination offline).")] = "duckdb",
    emulator_port: Annotated[int, typer.Option(help="Port of the BigQuery emulator (--warehouse bigquery).")] = 9050,
) -> None:
    """Run the whole platform offline: Worker (wrangler dev), Dagster, a run of every enabled source."""
    with one_line_errors():
        settings = _settings()
        if warehouse not in ("duckdb", "bigquery"):
            raise DefinitionError(f"--warehouse: expected duckdb or bigquery, got '{warehouse}'")
        stack = LocalStack(paths=StackPaths(state_dir=state_dir, data_dir=settings.data_dir), worker_port=worker_port,
                           dagster_port=dagster_port, config_path=settings.config_path, warehouse=warehouse,
                           emulator_port=emulator_port)
        stack.stop_all_on_sigterm()
        try:
            stack.start(say=lambda text: console.print(text, markup=False, highlight=False))
            enabled = [d.source_id for d in settings.load_sources() if d.enabled]
            with stack.operator() as client:
                runs = run_through_worker(client, enabled, timeout)
            _print_runs(runs)
            console.print(f"Dagster UI:  {stack.dagster_url}/dagster", markup=False, highlight=False)
            console.print(f"Admin page:  {stack.worker_url}/admin?token=<DLT_OPERATOR_TOKEN from "
                          f"{stack.paths.worker_env}>", markup=False, highlight=False)
            where = (f"BigQuery emulator {stack.emulator.url} (project {stack.emulator.project_id})"
                     if warehouse == "bigquery" else settings.data_dir / "warehouse.duckdb")
            console.print(f"Warehouse:   {where}", markup=False, highlight=False)
            failed = [run for run in runs.values() if run["status"] != "succeeded"]
            if not once and stack.processes:
                console.print("The stack keeps running; Ctrl-C stops it.")
                _wait_for_interrupt()
            if failed:
                raise typer.Exit(1)
        finally:
            stack.stop_all()


def run_through_worker(client: OperatorClient, source_ids: list[str], timeout: float) -> dict[str, dict]:
    """Request a run of each source through the operator API and follow them to the end with live status."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as progress:
        tasks, run_ids = {}, []
        for source_id in source_ids:
            run_id = client.request_run(source_id)
            run_ids.append(run_id)
            tasks[run_id] = progress.add_task(f"{source_id}: queued", total=None)

        def show(run: dict) -> None:
            rows = f" ({run['rows_loaded']} rows)" if run.get("rows_loaded") is not None else ""
            progress.update(tasks[run["run_id"]], description=f"{run['source_id']}: {run['status']}{rows}")

        return client.wait_for_runs(run_ids, timeout=timeout, on_update=show)


def _print_runs(runs: dict[str, dict]) -> None:
    table = Table("source", "run", "status", "rows per table", "trigger")
    for run in runs.values():
        tables = run.get("tables") or {}
        rows = ", ".join(f"{name} {count}" for name, count in sorted(tables.items())) or "-"
        table.add_row(run["source_id"], run["run_id"], run["status"], rows, run["trigger"])
    console.print(table)


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopping")


UrlOption = Annotated[Optional[str], typer.Option("--url", help="Orchestrator URL (default: DLT_ORCHESTRATOR_URL).")]


def _operator_client(url: str | None) -> OperatorClient:
    settings = _settings()
    url = url or settings.orchestrator_url
    if not url:
        raise DefinitionError("--url: no orchestrator URL given and DLT_ORCHESTRATOR_URL is not set")
    return OperatorClient(url, settings.operator_token)


@app.command("check-deployment")
def check_deployment(url: UrlOption = None, runs: Annotated[int, typer.Option(help="Recent runs to show.")] = 10) -> None:
    """Status only: health, sources, recent runs and the launch backlog. Changes nothing."""
    with one_line_errors():
        with _operator_client(url) as client:
            health = client.health()
            console.print(f"health: {'ok' if health.get('ok') else 'FAILING'} (D1 {health.get('d1')}, "
                          f"version {health.get('version')}) at {client.base_url}", markup=False, highlight=False)
            sources_table = Table("source_id", "version", "enabled", "schedule", "last run")
            for source in client.sources():
                last = source.get("last_run") or {}
                sources_table.add_row(source["source_id"], str(source["version"]), "yes" if source["enabled"] else "no",
                                      source["definition"].get("schedule") or "-",
                                      f"{last.get('status', '-')} {last.get('created_at', '')}".strip())
            console.print(sources_table)
            recent = client.runs(limit=runs)
            _print_runs({run["run_id"]: run for run in recent})
            backlog = [r for status in ("queued", "launching") for r in client.runs(status=status, limit=200)]
            oldest = min((r["created_at"] for r in backlog), default=None)
            console.print(f"launch backlog: {len(backlog)} runs queued or launching"
                          + (f", oldest from {oldest}" if oldest else ""), markup=False, highlight=False)
            if not health.get("ok"):
                raise typer.Exit(1)


@app.command("verify-deployment")
def verify_deployment(
    url: UrlOption = None,
    source_id: Annotated[str, typer.Option("--source-id")] = "cloudflare_kv_orders",
    limit: Annotated[int, typer.Option(min=1, help="Records the verification run loads.")] = 20,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 600,
) -> None:
    """A live limited run of one source through the Worker: waits for it, then checks the ledger and the rows.

    The run is partial, so it merges on cf_kv_key (run_request.write_disposition_for): the keys it reads are
    refreshed with their current values and no row is removed. Sources that append are refused, since a
    verification run would add rows to what users see."""
    with one_line_errors():
        with _operator_client(url) as client:
            health = client.health()
            if not health.get("ok"):
                raise DefinitionError(f"orchestrator unhealthy: {health}")
            console.print(_verification_plan(client, source_id, limit), markup=False, highlight=False, soft_wrap=True)
            run_id = client.request_run(source_id, limit=limit)
            console.print(f"requested {run_id} ({source_id}, limit {limit})", markup=False, highlight=False)
            run = run_through_worker_wait(client, run_id, timeout)
            problems = []
            if run["status"] != "succeeded":
                problems.append(f"status is {run['status']}: {run.get('message') or ''}".strip())
            seen = [event["status"] for event in run.get("events", [])]
            for status in ("queued", "launched", "succeeded"):
                if status not in seen:
                    problems.append(f"ledger has no {status} event")
            rows = run.get("rows_loaded")
            if run["status"] == "succeeded" and not (rows and rows > 0):
                problems.append("no rows loaded")
            main_table = _main_table_rows(run)
            if main_table is not None and main_table > limit:
                problems.append(f"main table got {main_table} rows, more than the limit {limit}")
            _print_runs({run_id: run})
            if problems:
                raise DefinitionError("verification failed: " + "; ".join(problems))
            console.print(f"verified: {run_id} succeeded with {rows} rows merged on cf_kv_key; no row was removed",
                          markup=False, highlight=False, soft_wrap=True)


def _verification_plan(client: OperatorClient, source_id: str, limit: int) -> str:
    """What the verification run will do to the source's table, from the definition the Worker holds."""
    stored = client.source(source_id)
    if stored is None:
        raise DefinitionError(f"--source-id: unknown source '{source_id}' at {client.base_url}")
    definition = parse_definition(stored["definition"], "definition.")
    disposition = write_disposition_for(definition, RunRequest(limit=limit))
    table = f"{definition.destination.dataset}.{definition.destination.table}"
    if disposition != "merge":
        raise DefinitionError(f"--source-id: {source_id} writes with {disposition}; a verification run would add "
                              f"rows to {table}. Verify with a source that merges or replaces.")
    return (f"verification run: the first {limit} records of {source_id} merged into {table} on cf_kv_key "
            f"(definition: {definition.destination.write_disposition}); keys already there are refreshed, "
            f"no row is removed")


def run_through_worker_wait(client: OperatorClient, run_id: str, timeout: float) -> dict:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"{run_id}: queued", total=None)
        client.wait_for_runs([run_id], timeout=timeout, on_update=lambda run: progress.update(
            task, description=f"{run_id}: {run['status']}"))
    return client.run(run_id)


def _main_table_rows(run: dict) -> int | None:
    """Rows of the source's main table in a run (child tables such as `__items` may hold more)."""
    tables = run.get("tables") or {}
    main = [count for name, count in tables.items() if "__" not in name]
    return main[0] if len(main) == 1 else None


@app.command()
def serve(host: Annotated[str, typer.Option(help="Interface the UI binds (the container passes 0.0.0.0).")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port of the Dagster webserver (UI under /dagster).")] = 3000) -> None:
    """Run Dagster (webserver + daemon) as the container does: supervised, stopped cleanly by SIGTERM."""
    from dlt_platform.serve import serve as run_serve

    raise typer.Exit(run_serve(host, port))


@app.command()
def schema(check: Annotated[bool, typer.Option(help="Only check that the committed files are current.")] = False) -> None:
    """Regenerate config/source.schema.json (the definition model) and worker/src/contract.ts (run statuses,
    triggers, Dagster tags): what the Worker reads from the Python side."""
    generated = {SCHEMA_PATH: render_json_schema(), CONTRACT_PATH: render_contract()}
    if check:
        stale = [path.name for path, rendered in generated.items()
                 if not path.exists() or path.read_text(encoding="utf-8") != rendered]
        if stale:
            errors.print(f"error: {', '.join(stale)} stale; run `dlt-platform schema`")
            raise typer.Exit(1)
        console.print("config/source.schema.json and worker/src/contract.ts are current")
        return
    for path, rendered in generated.items():
        path.write_text(rendered, encoding="utf-8")
        console.print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(app())
