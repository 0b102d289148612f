"""`dlt-platform d1 tables|sample|profile --source-id ...`: look at a d1 source's database before (and between)
loads, over the source's own transport. Nothing here writes anything: `tables` lists the database's tables with
their declared keys and whether the source loads them, `sample` prints the first rows a load would read,
`profile` the columns' declared types, the warehouse types they load as, and the values seen."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from dlt_platform.cli.app import EXPLORE, JsonOption, SourceOption, UsageError, app, one_line_errors, settings
from dlt_platform.cli.output import print_json, print_listing, say
from dlt_platform.settings import Settings
from dlt_platform.source_types.d1.client import D1Error
from dlt_platform.source_types.d1.columns import affinity
from dlt_platform.source_types.d1.definition import D1SourceDefinition, loaded_tables, warehouse_name

if TYPE_CHECKING:
    from dlt_platform.source_types.d1.source import ReadPlan

d1 = typer.Typer(
    help="Explore d1 sources: the database's tables, a sample of rows, a profile of columns.", no_args_is_help=True
)
app.add_typer(d1, name="d1", rich_help_panel=EXPLORE)

TableOption = Annotated[str | None, typer.Option("--table", help="One table of the source (default: all).")]


@contextlib.contextmanager
def d1_errors() -> Iterator[None]:
    """D1's failures (a refused token, a missing table) as the CLI's one-line errors."""
    with one_line_errors():
        try:
            yield
        except D1Error as error:
            # One of the CLI's own errors, so the line reported is this one (D1's words), not a traceback.
            raise UsageError(str(error)) from None


def d1_source_of(config: Settings, source_id: str) -> D1SourceDefinition:
    definition = config.get_source(source_id)
    if not isinstance(definition, D1SourceDefinition):
        raise ValueError(f"--source-id: {source_id} is a {definition.source_type} source, not d1")
    return definition


def chosen_plans(definition: D1SourceDefinition, config: Settings, table: str | None) -> list[ReadPlan]:
    from dlt_platform.source_types.d1.source import open_client, read_plans  # dlt: see dlt_platform/cli/__init__.py

    client = open_client(definition, config)
    try:
        plans = read_plans(definition, client)
    finally:
        client.close()
    if table is None:
        return plans
    chosen = [plan for plan in plans if plan.table == table]
    if not chosen:
        raise ValueError(f"--table: {definition.source_id} loads {', '.join(p.table for p in plans)}, not {table}")
    return chosen


def first_rows(definition: D1SourceDefinition, config: Settings, plan: ReadPlan, limit: int) -> list[dict]:
    from dlt_platform.source_types.d1.source import open_client, pages

    client = open_client(definition, config)
    try:
        return [row for page in pages(client, plan, None, limit) for row in page]
    finally:
        client.close()


@d1.command()
def tables(source_id: SourceOption, as_json: JsonOption = False) -> None:
    """The database's tables: columns, declared primary key, and the warehouse table the source loads it into."""
    from dlt_platform.source_types.d1.source import open_client

    with d1_errors():
        config = settings()
        definition = d1_source_of(config, source_id)
        loaded = {item.name: warehouse_name(item) for item in definition.extract.tables}
        client = open_client(definition, config)
        try:
            rows = []
            for name in client.tables():
                info = client.table_info(name)
                rows.append(
                    {
                        "table": name,
                        "columns": len(info.columns),
                        "primary_key": ", ".join(info.primary_key) or ("rowid" if info.has_rowid else ""),
                        "loaded_as": loaded.get(name, ""),
                    }
                )
        finally:
            client.close()
        print_listing(
            ["table", "columns", "primary_key", "loaded_as"],
            rows,
            as_json,
            title=f"d1/{definition.extract.database_name} ({definition.extract.transport})",
        )


@d1.command()
def sample(
    source_id: SourceOption,
    table: TableOption = None,
    limit: Annotated[int, typer.Option(min=1)] = 10,
    as_json: JsonOption = False,
) -> None:
    """The first rows of each table (or --table) as a load reads them: key order, types shaped (nothing loaded)."""
    with d1_errors():
        config = settings()
        definition = d1_source_of(config, source_id)
        samples = {
            plan.table: first_rows(definition, config, plan, limit) for plan in chosen_plans(definition, config, table)
        }
        if as_json:
            print_json(samples)
            return
        for name, rows in samples.items():
            say(f"{name}: {len(rows)} rows")
            for row in rows:
                say(json.dumps(row, default=str))


@d1.command()
def profile(
    source_id: SourceOption,
    table: TableOption = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
    as_json: JsonOption = False,
) -> None:
    """Per column of the sampled rows: declared type and affinity, the warehouse type, nulls, the value types seen."""
    from dlt_platform.source_types.d1.source import open_client

    with d1_errors():
        config = settings()
        definition = d1_source_of(config, source_id)
        client = open_client(definition, config)
        try:
            declared = {
                item.name: {c.name: c.declared_type for c in client.table_info(item.name).columns}
                for item in loaded_tables(definition)
                if item in definition.extract.tables and (table is None or warehouse_name(item) == table)
            }
        finally:
            client.close()
        by_table = {warehouse_name(item): declared.get(item.name, {}) for item in loaded_tables(definition)}
        document = {}
        for plan in chosen_plans(definition, config, table):
            rows = first_rows(definition, config, plan, limit)
            names = list(dict.fromkeys([*by_table[plan.table], *(name for row in rows for name in row)]))
            columns = []
            for name in names:
                values = [row.get(name) for row in rows]
                seen = Counter(type(value).__name__ for value in values if value is not None)
                declared_type = by_table[plan.table].get(name, "")
                columns.append(
                    {
                        "column": name,
                        "declared": declared_type or "-",
                        "affinity": affinity(declared_type) if name in by_table[plan.table] else "-",
                        "loads_as": plan.columns.get(name, {}).get("data_type", "inferred"),
                        "nulls": f"{values.count(None)}/{len(rows)}",
                        "values": ", ".join(f"{kind} {count}" for kind, count in seen.most_common()),
                    }
                )
            document[plan.table] = {"rows": len(rows), "columns": columns}
            if not as_json:
                print_listing(
                    ["column", "declared", "affinity", "loads_as", "nulls", "values"],
                    columns,
                    title=f"{plan.table}: {len(rows)} rows sampled",
                )
        if as_json:
            print_json(document)
