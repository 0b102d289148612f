"""Asset checks of every source table: freshness, row count, column schema changes.

Row count and schema checks read what the load recorded plus one count query, so they work the same on DuckDB
and BigQuery; they warn rather than fail a run (a quiet namespace is not an incident by itself). Freshness and
schema changes are Dagster's own check factories; only partitioned tables get a schema check of ours (below).
"""

import datetime as dt
import itertools
import warnings

import dagster as dg
from croniter import croniter

from dlt_platform.config import SourceDefinition
from dlt_platform.loads import build_pipeline, warehouse_turn
from dlt_platform.orchestration.assets import table_keys
from dlt_platform.orchestration.schema_contracts import build_contract_checks
from dlt_platform.settings import Settings
from dlt_platform.source_types import source_type_of

ROW_COUNT_CHECK = "row_count"
SCHEMA_CHECK = "column_schema_change"  # the name build_column_schema_change_checks gives its checks
FRESHNESS_CHECK = "freshness_check"  # the name build_last_update_freshness_checks gives its checks


def freshness_hours(definition: SourceDefinition) -> float | None:
    """The definition's own setting, else twice the longest gap between schedule ticks (one missed run is
    tolerated); manual-only and disabled sources have no freshness expectation."""
    if not definition.enabled:
        return None
    if definition.freshness_hours is not None:
        return definition.freshness_hours
    if definition.schedule is None:
        return None
    ticks = croniter(definition.schedule, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    times = [ticks.get_next(dt.datetime) for _ in range(25)]
    longest = max(later - earlier for earlier, later in itertools.pairwise(times))
    return 2 * longest.total_seconds() / 3600


def freshness_checks(definitions: list[SourceDefinition]) -> list[dg.AssetChecksDefinition]:
    """One freshness check definition per table. Tables with the same bound could share one definition, but a
    source's job then carries that definition's inputs (every other such table): each per-source job resolved
    against most of the code location, O(sources^2) on every load of it."""
    # Checks rather than the newer FreshnessPolicy: they show up as asset checks with pass/fail history in the UI,
    # which is what operators look at next to row counts and schema changes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        return [
            check
            for definition in definitions
            if (hours := freshness_hours(definition)) is not None
            for key in table_keys(definition)
            for check in dg.build_last_update_freshness_checks(
                assets=[key], lower_bound_delta=dt.timedelta(hours=hours)
            )
        ]


def schema_change_checks(definitions: list[SourceDefinition]) -> list[dg.AssetChecksDefinition]:
    """Dagster's check of unpartitioned tables: the latest materialization's columns against the one before."""
    keys = [
        key
        for definition in definitions
        if source_type_of(definition).partitions(definition) is None
        for key in table_keys(definition)
    ]
    if not keys:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        # One definition per table, as for freshness: a shared one makes every per-source job carry every table.
        return [check for key in keys for check in dg.build_column_schema_change_checks(assets=[key])]


def _column_types(materialization: dg.AssetMaterialization | None) -> dict[str, str]:
    schema = (materialization.metadata or {}).get("dagster/column_schema") if materialization else None
    if not isinstance(schema, dg.TableSchemaMetadataValue):
        return {}
    return {column.name: column.type for column in schema.value.columns}


def table_row_count(definition: SourceDefinition, settings: Settings, table_name: str) -> int | None:
    pipeline = build_pipeline(definition, settings)
    try:
        # In the warehouse's turn, as a load: dlt opens a local DuckDB file for writing even to count, and a run
        # that holds the turn must not find the file taken (CI saw a run fail so, beside another run's check).
        with warehouse_turn(definition, settings, say=lambda _line: None), pipeline.sql_client() as client:
            table = client.make_qualified_table_name(table_name)
            with client.execute_query(f"select count(*) from {table}") as cursor:
                row = cursor.fetchone()
                return int(row[0]) if row is not None else None
    except Exception:  # no table yet, or a destination that cannot be queried from here
        return None


def build_table_checks(definition: SourceDefinition, settings: Settings) -> list[dg.AssetChecksDefinition]:
    """Of every table the source loads: the row count check, for a partitioned table its schema check (see
    partitioned_schema_check), and with a schema contract its contract check (schema_contracts.py)."""
    keys = table_keys(definition)
    return [
        *(check for key in keys for check in _checks_of_table(definition, settings, key)),
        *build_contract_checks(definition, keys),
    ]


def _checks_of_table(
    definition: SourceDefinition, settings: Settings, key: dg.AssetKey
) -> list[dg.AssetChecksDefinition]:

    @dg.asset_check(
        asset=key,
        name=ROW_COUNT_CHECK,
        description="The table holds rows; records rows loaded by the last load and the table's total.",
    )
    def row_count(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        latest = context.instance.get_latest_materialization_event(key)
        materialization = latest.asset_materialization if latest else None
        rows_loaded = (materialization.metadata or {}).get("rows_loaded") if materialization else None
        total = table_row_count(definition, settings, key.path[-1])
        return dg.AssetCheckResult(
            passed=bool(total),
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "table_row_count": total if total is not None else -1,
                "rows_loaded_last_run": rows_loaded.value if rows_loaded is not None else -1,
            },
            description=None if total else "The table is missing or empty.",
        )

    if source_type_of(definition).partitions(definition) is None:
        return [row_count]
    return [row_count, partitioned_schema_check(key)]


def partitioned_schema_check(key: dg.AssetKey) -> dg.AssetChecksDefinition:
    """A run over a partition range records one materialization per partition, all with the same columns, so
    Dagster's check (the latest two materializations) would compare a run with itself: this one compares with
    the latest materialization of an earlier run, and names the columns in its metadata as Dagster's check does in
    its description."""

    @dg.asset_check(
        asset=key,
        name=SCHEMA_CHECK,
        description="Columns are the same as after the previous load (added, removed or retyped columns warn).",
    )
    def column_schema_change(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        records = context.instance.fetch_materializations(key, limit=200).records
        if not records:
            return dg.AssetCheckResult(passed=True, metadata={"columns": 0}, description="Never materialized.")
        current = _column_types(records[0].asset_materialization)
        previous_record = next((r for r in records if r.run_id != records[0].run_id), None)
        if previous_record is None:
            return dg.AssetCheckResult(passed=True, metadata={"columns": len(current)}, description="First load.")
        previous = _column_types(previous_record.asset_materialization)
        added = sorted(set(current) - set(previous))
        removed = sorted(set(previous) - set(current))
        retyped = sorted(name for name in set(current) & set(previous) if current[name] != previous[name])
        return dg.AssetCheckResult(
            passed=not (added or removed or retyped),
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "columns": len(current),
                "added": dg.MetadataValue.json(added),
                "removed": dg.MetadataValue.json(removed),
                "retyped": dg.MetadataValue.json(retyped),
                "compared_with_run": previous_record.run_id,
            },
        )

    return column_schema_change
