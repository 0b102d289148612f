"""Materialize source assets through Dagster into DuckDB over the loopback KV API, and read the tables back."""

import datetime as dt

import dagster as dg
import pytest

from dlt_platform.orchestration.code_location import build_platform_definitions
from dlt_platform_tests.orchestration.conftest import NAMESPACE_IDS, SAMPLE_COUNTS, TODAY, read_table
from dlt_platform_tests.orchestration.dagster_runs import LEADS, ORDERS, VENDORS, asset_job, latest_metadata


@pytest.fixture
def platform(settings, sample_definitions):
    return build_platform_definitions(sample_definitions, settings)


def test_materialize_sources_into_duckdb_records_loads_and_passes_checks(platform, settings, kv_entries):
    instance = dg.DagsterInstance.ephemeral()
    result = asset_job(platform).get_subset(asset_selection={ORDERS, VENDORS}).execute_in_process(
        instance=instance, tags={"dlt_platform/trigger": "ui"})
    assert result.success

    assert read_table(settings, "source_cloudflare", "orders_kv") == [(SAMPLE_COUNTS["ORDERS_KV"],)]
    assert read_table(settings, "source_cloudflare", "vendor_kv") == [(SAMPLE_COUNTS["VENDOR_KV"],)]
    rows = read_table(settings, "source_cloudflare", "orders_kv", "cf_kv_key, cf_kv_namespace_title, order_id")
    assert sorted(rows) == sorted((e.key, "ORDERS_KV", e.key.removeprefix("order:")) for e in kv_entries["ORDERS_KV"])

    orders = latest_metadata(instance, ORDERS)
    assert orders["rows_by_table"]["orders_kv"] == SAMPLE_COUNTS["ORDERS_KV"]
    assert orders["rows_loaded"] == sum(orders["rows_by_table"].values())
    assert orders["destination_table"] == "source_cloudflare.orders_kv"
    assert orders["load_id"] and orders["dagster/column_schema"].columns
    # The raw snapshot node records the object the run wrote.
    snapshot = latest_metadata(instance, dg.AssetKey(["raw_staging", "cloudflare_kv", "orders"]))
    assert snapshot["load_id"] == orders["load_id"]
    assert snapshot["snapshot_url"].startswith(str(settings.data_dir / "raw_staging" / "cloudflare_kv" / "orders"))

    checks = {(evaluation.asset_key, evaluation.check_name): evaluation
              for evaluation in result.get_asset_check_evaluations()}
    row_count = checks[(ORDERS, "row_count")]
    assert row_count.passed and row_count.metadata["table_row_count"].value == SAMPLE_COUNTS["ORDERS_KV"]
    assert checks[(ORDERS, "column_schema_change")].passed


def test_run_config_limit_is_passed_to_the_source(platform, settings):
    instance = dg.DagsterInstance.ephemeral()
    job = asset_job(platform).get_subset(asset_selection={VENDORS})
    limited = job.execute_in_process(instance=instance, run_config={
        "ops": {"cloudflare_kv_vendors": {"config": {"limit": 5}}}})
    assert limited.success
    assert read_table(settings, "source_cloudflare", "vendor_kv") == [(5,)]
    assert latest_metadata(instance, VENDORS)["rows_loaded"] == 5


def test_a_new_column_fails_the_schema_check_with_a_warning(settings, kv_server, sample_definitions):
    namespace = kv_server.state.add_namespace("SCHEMA_KV_NAMESPACE_ID", "SCHEMA_KV")
    namespace.put("item:1", '{"name": "first"}')
    definition = sample_definitions[2].model_copy(deep=True, update={"source_id": "schema_probe", "enabled": True})
    definition.extract.namespace_id, definition.extract.namespace_title = "SCHEMA_KV_NAMESPACE_ID", "SCHEMA_KV"
    definition.destination.table = "schema_probe"
    key = dg.AssetKey(["source_cloudflare", "schema_probe"])
    job = asset_job(build_platform_definitions([definition], settings)).get_subset(asset_selection={key})
    instance = dg.DagsterInstance.ephemeral()

    first = job.execute_in_process(instance=instance)
    assert next(e for e in first.get_asset_check_evaluations() if e.check_name == "column_schema_change").passed
    namespace.put("item:2", '{"name": "second", "color": "red"}')
    second = job.execute_in_process(instance=instance)
    assert second.success
    check = next(e for e in second.get_asset_check_evaluations() if e.check_name == "column_schema_change")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert "Added columns: color" in check.description


def test_a_partition_loads_exactly_its_window(platform, settings, kv_entries):
    instance = dg.DagsterInstance.ephemeral()
    day = TODAY - dt.timedelta(days=2)
    expected = sorted(e.key for e in kv_entries["LEADS_KV"] if e.key.startswith(f"lead:{day:%Y%m%d}"))
    assert expected
    result = asset_job(platform).get_subset(asset_selection={LEADS}).execute_in_process(
        instance=instance, partition_key=f"{day:%Y-%m-%d}")
    assert result.success
    keys = sorted(row[0] for row in read_table(settings, "source_cloudflare", "leads_kv", "cf_kv_key"))
    assert keys == expected
    metadata = latest_metadata(instance, LEADS)
    assert metadata["rows_loaded"] == len(expected)
    assert metadata["window_start"].startswith(f"{day:%Y-%m-%d}")


def test_a_window_without_keys_loads_zero_rows_and_succeeds(platform, settings):
    instance = dg.DagsterInstance.ephemeral()
    result = asset_job(platform).get_subset(asset_selection={LEADS}).execute_in_process(
        instance=instance, partition_key="2026-01-02")
    assert result.success
    assert latest_metadata(instance, LEADS)["rows_loaded"] == 0
    row_check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "row_count")
    assert not row_check.passed and row_check.severity == dg.AssetCheckSeverity.WARN


def test_schedule_and_backfill_load_their_partition_ranges(platform, settings, kv_entries):
    instance = dg.DagsterInstance.ephemeral()
    repository = platform.get_repository_def()
    schedule = repository.get_schedule_def("cloudflare_kv_leads_schedule")
    tick = dt.datetime.combine(TODAY, dt.time(10, 15), tzinfo=dt.timezone.utc)
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
        run_requests = schedule.evaluate_tick(context).run_requests
    assert len(run_requests) == 1
    tags = run_requests[0].tags
    first = TODAY - dt.timedelta(days=2)  # lookback 3: today and the 2 days before
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        f"{first:%Y-%m-%d}", f"{TODAY:%Y-%m-%d}")

    # The run the schedule asks for: one dlt run over the whole range, every partition marked.
    job = repository.get_job(schedule.job_name)
    result = job.execute_in_process(instance=instance, tags={**tags, "dagster/schedule_name": schedule.name})
    assert result.success
    days = {f"{first + dt.timedelta(days=n):%Y%m%d}" for n in range(3)}
    expected = sorted(e.key for e in kv_entries["LEADS_KV"] if e.key.split(":")[1] in days)
    keys = sorted(row[0] for row in read_table(settings, "source_cloudflare", "leads_kv", "cf_kv_key"))
    assert keys == expected
    materialized = instance.get_materialized_partitions(LEADS)
    assert materialized == {f"{first + dt.timedelta(days=n):%Y-%m-%d}" for n in range(3)}


def test_the_schema_check_of_a_partitioned_table_compares_with_the_previous_run_not_the_previous_partition(
        platform, kv_server):
    """A range run records one materialization per partition; the check must still see a new column."""
    instance = dg.DagsterInstance.ephemeral()
    job = platform.get_repository_def().get_job("load_cloudflare_kv_leads")
    days = (f"{TODAY - dt.timedelta(days=1):%Y-%m-%d}", f"{TODAY:%Y-%m-%d}")
    tags = {"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[1]}

    def schema_check() -> dg.AssetCheckEvaluation:
        result = job.execute_in_process(instance=instance, tags=tags)
        assert result.success
        return next(e for e in result.get_asset_check_evaluations() if e.check_name == "column_schema_change")

    assert schema_check().passed  # first load
    assert schema_check().passed  # same columns again: two materializations per run, compared across runs
    namespace = kv_server.state.namespaces[NAMESPACE_IDS["LEADS_KV"]]
    key = f"lead:{TODAY:%Y%m%d}:999999"
    namespace.put(key, '{"lead_id": "lead_999999", "campaign": "winter"}')
    try:
        changed = schema_check()
    finally:
        namespace.delete(key)
    assert not changed.passed and changed.severity == dg.AssetCheckSeverity.WARN
    assert changed.metadata["added"].value == ["campaign"]
