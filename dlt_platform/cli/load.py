"""Load a source from a terminal: the whole source, a limited sample, explicit keys in batches, or a raw snapshot
replayed. Prints rows per table; KV is read as the explore commands read it (app.kv_settings)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from dlt_platform.cli.app import (
    LOAD,
    UsageError,
    app,
    kv_settings,
    kv_source,
    one_line_errors,
    settings,
)
from dlt_platform.cli.output import console, print_listing, say
from dlt_platform.config import SourceDefinition
from dlt_platform.load_request import LoadRequest, checked_request
from dlt_platform.settings import Settings
from dlt_platform.source_types.cloudflare_kv.definition import KVSourceDefinition

if TYPE_CHECKING:
    from dlt_platform.loads import LoadResult


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def print_result(result: LoadResult) -> None:
    rows = [{"table": name, "rows": count} for name, count in sorted(result.rows_by_table.items())]
    print_listing(
        ["table", "rows"],
        rows or [{"table": "(no rows)", "rows": 0}],
        title=f"{result.source_id}: load {result.load_id or '-'} into {result.destination}:"
        f"{result.dataset} ({result.write_disposition})",
    )
    if result.snapshot_url:
        say(f"raw snapshot: {result.snapshot_url}")


def load_with_progress(
    definition: SourceDefinition, config: Settings, request: LoadRequest, total: int | None = None, label: str = ""
) -> LoadResult:
    from dlt_platform.loads import run_load

    with _progress() as progress:
        task = progress.add_task(label or definition.source_id, total=total)
        request = dataclasses.replace(request, on_page=lambda count: progress.advance(task, count))
        return run_load(definition, config, request)


@app.command(rich_help_panel=LOAD)
def load(
    source_id: Annotated[str | None, typer.Option("--source-id", help="Source to load.")] = None,
    all_sources: Annotated[bool, typer.Option("--all", help="Every enabled source.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after this many records.")] = None,
    keys_file: Annotated[Path | None, typer.Option(help="Load these keys (one a line) instead of a listing.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Backfill in batches of this many keys.")] = None,
    skip_batches: Annotated[int, typer.Option(min=0, help="Batches to skip (continue a backfill).")] = 0,
    max_batches: Annotated[int | None, typer.Option(min=1, help="Stop after this many batches.")] = None,
    from_snapshot: Annotated[
        str | None,
        typer.Option(
            help="Replay a raw snapshot of this source instead of KV: "
            "its key in the snapshot store, e.g. <r2_prefix>/"
            "2026-11-26/<load_id>.complete.ndjson.gz (or the URL a load "
            "printed). A complete run's snapshot loads as that run did (replace), a partial run's merges."
        ),
    ] = None,
    full_refresh: Annotated[bool, typer.Option(help="Drop what the table holds and load everything.")] = False,
) -> None:
    """Load one source (or --all enabled sources) into its warehouse; prints rows per table."""
    with one_line_errors():
        config = settings()
        if all_sources == bool(source_id):
            raise UsageError("give exactly one of --source-id or --all")
        if all_sources:
            for definition in config.load_sources():
                if definition.enabled:
                    print_result(
                        load_with_progress(definition, kv_settings(config, definition), LoadRequest(limit=limit))
                    )
            return
        assert source_id is not None  # exactly one of the two was given
        definition = config.get_source(source_id)
        keys_list = _read_keys(keys_file) if keys_file else None
        if batch_size is None:
            request = LoadRequest(
                limit=limit,
                keys=tuple(keys_list) if keys_list else None,
                from_snapshot=from_snapshot,
                full_refresh=full_refresh,
            )
            checked_request(definition, config, request)  # refused before the progress display starts
            read = config if from_snapshot else kv_settings(config, definition)
            print_result(load_with_progress(definition, read, request, total=len(keys_list) if keys_list else None))
            return
        if from_snapshot or full_refresh:
            raise UsageError("--batch-size cannot be combined with --from-snapshot or --full-refresh")
        definition = kv_source(config, source_id, "load --batch-size")
        _load_batches(definition, kv_settings(config, definition), keys_list, batch_size, skip_batches, max_batches)


def _read_keys(path: Path) -> list[str]:
    keys_list = [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not keys_list:
        raise UsageError(f"--keys-file: {path} holds no keys")
    return keys_list


def _load_batches(
    definition: KVSourceDefinition,
    config: Settings,
    keys_list: list[str] | None,
    batch_size: int,
    skip_batches: int,
    max_batches: int | None,
) -> None:
    """Explicit-key backfill: each batch is its own partial load, so it merges on cf_kv_key (overlap and retries
    are safe) unless the source appends."""
    from dlt_platform.loads import key_batches
    from dlt_platform.source_types.cloudflare_kv.source import open_transport

    if keys_list is None:
        transport = open_transport(definition, config)
        try:
            keys_list = [r["key"] for page in transport.pages(definition.extract.prefix) for r in page]
        finally:
            transport.close()
    batches = list(key_batches(keys_list, batch_size, skip_batches, max_batches))
    total = (len(keys_list) + batch_size - 1) // batch_size
    say(f"{len(keys_list)} keys in {total} batches of {batch_size}; loading {len(batches)} (skipping {skip_batches})")
    for number, batch in batches:
        result = load_with_progress(
            definition, config, LoadRequest(keys=tuple(batch)), total=len(batch), label=f"batch {number + 1}/{total}"
        )
        print_result(result)
