"""`dlt-platform r2 files|sample --source-id ...`: look at an r2_files source's bucket before (and between) loads.
Nothing here writes anything: `files` lists what each table matches and what its next run reads, `sample` prints
the first rows the source's readers make of them."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Annotated

import typer

from dlt_platform.cli.app import EXPLORE, JsonOption, SourceOption, app, one_line_errors, settings
from dlt_platform.cli.output import print_json, print_listing
from dlt_platform.load_request import LoadRequest
from dlt_platform.settings import Settings
from dlt_platform.source_types.r2_files.definition import R2FilesSourceDefinition, table_name

r2 = typer.Typer(
    help="Explore r2_files sources: the files each table reads, a sample of their rows.", no_args_is_help=True
)
app.add_typer(r2, name="r2", rich_help_panel=EXPLORE)

TableOption = Annotated[str | None, typer.Option("--table", help="One table of the source (default: all).")]


def files_source(config: Settings, source_id: str) -> R2FilesSourceDefinition:
    definition = config.get_source(source_id)
    if not isinstance(definition, R2FilesSourceDefinition):
        raise ValueError(f"--source-id: {source_id} is a {definition.source_type} source, not r2_files")
    return definition


def cursor_of(definition: R2FilesSourceDefinition, config: Settings, table: str) -> dt.datetime | None:
    """The modification time up to which a table's files were read (dlt's incremental state of its listing)."""
    from dlt_platform.loads import build_pipeline  # dlt: see dlt_platform/cli/__init__.py

    resources = (
        build_pipeline(definition, config).state.get("sources", {}).get(definition.source_id, {}).get("resources", {})
    )
    # The listing resource `<table>_files` keeps the state; piped into its reader dlt names it after both.
    resource = resources.get(f"{table}_files_{table}") or resources.get(f"{table}_files") or {}
    value = resource.get("incremental", {}).get("modification_date", {}).get("last_value")
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


def selected_tables(definition: R2FilesSourceDefinition, table: str | None):
    tables = [t for t in definition.extract.tables if table is None or table_name(t) == table]
    if not tables:
        names = ", ".join(table_name(t) for t in definition.extract.tables)
        raise ValueError(f"--table: {definition.source_id} has no table '{table}' (tables: {names})")
    return tables


@r2.command("files")
def files(source_id: SourceOption, table: TableOption = None, as_json: JsonOption = False) -> None:
    """Each table's files: object key, size, modification time, and whether the table's next run reads it (new
    or changed since its cursor; a replace table reads every file)."""
    from dlt.common.storages.fsspec_filesystem import glob_files

    from dlt_platform.source_types.r2_files.source import bucket_location

    with one_line_errors():
        config = settings()
        definition = files_source(config, source_id)
        bucket_url, fs_client = bucket_location(definition, config)
        rows = []
        for entry in selected_tables(definition, table):
            name = table_name(entry)
            cursor = None if definition.disposition(entry) == "replace" else cursor_of(definition, config, name)
            for item in glob_files(fs_client, bucket_url, entry.file_glob):
                modified = item["modification_date"]
                rows.append(
                    {
                        "table": name,
                        "key": item["relative_path"],
                        "bytes": item.get("size_in_bytes"),
                        "modified": modified.isoformat(),
                        "next_run": "reads" if cursor is None or modified > cursor else "read",
                    }
                )
        print_listing(
            ["table", "key", "bytes", "modified", "next_run"],
            rows,
            as_json,
            title=f"{source_id}: r2://{definition.extract.bucket}",
        )


@r2.command("sample")
def sample(
    source_id: SourceOption,
    table: TableOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Rows per table.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """The first rows each table's readers make of its files, as a load would write them (Logpush timestamps
    typed); nothing is loaded and no cursor moves."""
    from dlt_platform.loads import build_source

    with one_line_errors():
        config = settings()
        definition = files_source(config, source_id)
        source = build_source(definition, config, LoadRequest(limit=limit))
        document = {}
        for entry in selected_tables(definition, table):
            name = table_name(entry)
            # Iterating the resource reads its files lazily: stopping after `limit` rows stops the reading.
            document[name] = list(itertools.islice(source.resources[name], limit))
        print_json(document)
