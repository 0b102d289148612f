"""Load the code location and assert its graph: keys, lineage, groups, kinds, ops, schedules, partitions, checks."""

import datetime as dt
import json

import dagster as dg
import pytest

from dlt_platform.config import parse_sources_document
from dlt_platform.definitions import defs
from dlt_platform.orchestration.checks import freshness_hours
from dlt_platform.orchestration.code_location import build_platform_definitions
from dlt_platform.orchestration.schedules import lookback_partition_range
from dlt_platform_tests.orchestration.conftest import generated_sources_document

ORDERS = dg.AssetKey(["source_cloudflare", "orders_kv"])
LEADS = dg.AssetKey(["source_cloudflare", "leads_kv"])
VENDORS = dg.AssetKey(["source_cloudflare", "vendor_kv"])
GITHUB = dg.AssetKey(["source_webhooks", "github_events"])


def asset_graph(definitions: dg.Definitions):
    return definitions.resolve_asset_graph()


def test_sample_config_graph(platform_env):
    definitions = defs()
    graph = asset_graph(definitions)
    sample_api_tables = {dg.AssetKey(["source_sample_api", "issues"]), dg.AssetKey(["source_sample_api", "issue_comments"])}
    r2_logs = dg.AssetKey(["source_r2", "http_requests"])
    d1_tables = {dg.AssetKey(["sample_app", "app_users"]), dg.AssetKey(["sample_app", "app_orders"])}
    assert set(graph.materializable_asset_keys) == {ORDERS, LEADS, VENDORS, GITHUB, *sample_api_tables, r2_logs,
                                                    *d1_tables}
    assert set(graph.external_asset_keys) == {
        dg.AssetKey(["cloudflare_kv", "ORDERS_KV"]), dg.AssetKey(["cloudflare_kv", "LEADS_KV"]),
        dg.AssetKey(["cloudflare_kv", "VENDOR_KV"]), dg.AssetKey(["raw_staging", "cloudflare_kv", "orders"]),
        dg.AssetKey(["raw_staging", "cloudflare_kv", "leads"]), dg.AssetKey(["rest_api", "127_0_0_1_8790"]),
        dg.AssetKey(["raw_staging", "rest_api", "sample_api"]), dg.AssetKey(["webhook", "github_events"]),
        dg.AssetKey(["raw_staging", "webhooks", "github_events"]), dg.AssetKey(["r2", "edge_logs"]),
        dg.AssetKey(["r2", "edge_logs", "logpush", "http_requests"]), dg.AssetKey(["d1", "DB"])}
    # Lineage: source system -> raw snapshot (when kept) -> warehouse table.
    assert graph.get(ORDERS).parent_keys == {dg.AssetKey(["raw_staging", "cloudflare_kv", "orders"])}
    assert graph.get(dg.AssetKey(["raw_staging", "cloudflare_kv", "orders"])).parent_keys == {
        dg.AssetKey(["cloudflare_kv", "ORDERS_KV"])}
    assert graph.get(VENDORS).parent_keys == {dg.AssetKey(["cloudflare_kv", "VENDOR_KV"])}

    specs = {spec.key: spec for spec in definitions.resolve_all_asset_specs()}
    orders = specs[ORDERS]
    assert orders.group_name == "source_cloudflare"
    assert orders.kinds == {"dlt", "duckdb", "cloudflare"}
    assert orders.owners == ["team:data"]
    assert orders.metadata["namespace_id"] == "ORDERS_KV_NAMESPACE_ID"
    assert orders.metadata["write_disposition"] == "replace"
    assert orders.metadata["schedule"] == "0 * * * *"
    assert orders.metadata["snapshot_prefix"] == "cloudflare_kv/orders"
    assert "storefront" in orders.description
    assert specs[LEADS].metadata["write_disposition"] == "merge"

    # The op of each asset is named after its source: the Worker's run config addresses ops.<source_id>.
    repository = definitions.get_repository_def()
    asset_job = repository.get_job("__ASSET_JOB")
    assert {node.name for node in asset_job.graph.node_defs} >= {
        "cloudflare_kv_orders", "cloudflare_kv_leads", "cloudflare_kv_vendors", "github_events"}
    config_fields = asset_job.graph.node_named("cloudflare_kv_orders").definition.config_schema.config_type.fields
    assert set(config_fields) == {"limit", "keys", "full_refresh", "from_snapshot"}
    assert not any(field.is_required for field in config_fields.values())

    # Partitions: the incremental source, daily from its start, the window in progress included; the webhook
    # source's replayable hours.
    partitions = graph.get(LEADS).partitions_def
    assert isinstance(partitions, dg.DailyPartitionsDefinition)
    assert partitions.get_first_partition_key() == "2026-01-01"
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    assert partitions.get_last_partition_key() == today
    assert graph.get(ORDERS).partitions_def is None

    schedules = {schedule.name: schedule for schedule in repository.schedule_defs}
    assert {name: (s.cron_schedule, s.execution_timezone, s.default_status) for name, s in schedules.items()} == {
        "cloudflare_kv_orders_schedule": ("0 * * * *", "UTC", dg.DefaultScheduleStatus.RUNNING),
        "cloudflare_kv_leads_schedule": ("15 * * * *", "UTC", dg.DefaultScheduleStatus.RUNNING),
        # Disabled sources stay in the graph, without a running schedule.
        "cloudflare_kv_vendors_schedule": ("30 3 * * *", "UTC", dg.DefaultScheduleStatus.STOPPED),
        "sample_api_issues_schedule": ("45 * * * *", "UTC", dg.DefaultScheduleStatus.RUNNING),
        "r2_edge_logs_schedule": ("50 * * * *", "UTC", dg.DefaultScheduleStatus.RUNNING),
        "d1_sample_app_schedule": ("40 * * * *", "UTC", dg.DefaultScheduleStatus.RUNNING),
    }
    assert schedules["cloudflare_kv_orders_schedule"].job_name == "load_cloudflare_kv_orders"

    checks = {(key.asset_key, key.name) for key in graph.asset_check_keys}
    for table in (ORDERS, LEADS, VENDORS):
        assert {(table, "row_count"), (table, "column_schema_change")} <= checks
    assert (ORDERS, "freshness_check") in checks and (LEADS, "freshness_check") in checks
    assert (VENDORS, "freshness_check") not in checks  # disabled: no freshness expectation

    assert graph.get(GITHUB).partitions_def.cron_schedule == "0 * * * *"

    sensors = {sensor.name for sensor in repository.sensor_defs}
    # The webhook source's deliveries sensor; no run mirroring without an orchestrator URL.
    assert sensors == {"freshness_checks_sensor", "github_events_deliveries"}


def test_run_mirror_sensor_exists_when_the_worker_is_configured(platform_env, worker_api, monkeypatch):
    worker_api.ledger.sources_document = json.loads(platform_env.config_path.read_text())
    monkeypatch.setenv("DLT_ORCHESTRATOR_URL", worker_api.base_url)
    monkeypatch.setenv("DLT_INTERNAL_TOKEN", "internal-test-token")
    repository = defs().get_repository_def()
    sensor = repository.get_sensor_def("mirror_runs_to_worker")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert ("GET", "/internal/sources", None) in worker_api.ledger.requests


def test_hundred_sources_load_and_graph(settings, hundred_definitions):
    # How long this takes is a figure of dlt_platform_tests/bench/stack_run.py (--skip-runs), not a bound checked here.
    definitions = build_platform_definitions(hundred_definitions, settings)
    graph = asset_graph(definitions)
    repository = definitions.get_repository_def()
    repository.load_all_definitions()  # every job resolved, as a code server does
    assert len(graph.materializable_asset_keys) == 100
    # 10 shared namespaces and 50 raw snapshot prefixes upstream.
    assert len(graph.external_asset_keys) == 10 + 50
    assert {graph.get(key).group_name for key in graph.materializable_asset_keys} == {
        "dataset_0", "dataset_1", "dataset_2", "dataset_3"}
    hourly = graph.get(dg.AssetKey(["dataset_0", "table_000"])).partitions_def
    assert isinstance(hourly, dg.HourlyPartitionsDefinition)
    assert isinstance(graph.get(dg.AssetKey(["dataset_3", "table_003"])).partitions_def, dg.DailyPartitionsDefinition)
    assert graph.get(dg.AssetKey(["dataset_1", "table_001"])).partitions_def is None
    schedules = repository.schedule_defs
    scheduled = [d for d in hundred_definitions if d.schedule]
    assert len(schedules) == len(scheduled)
    assert sum(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in schedules) == sum(
        d.enabled for d in scheduled)
    assert len({key for key in graph.asset_check_keys if key.name == "row_count"}) == 100
    assert len({key for key in graph.asset_check_keys if key.name == "freshness_check"}) == sum(
        1 for d in hundred_definitions if freshness_hours(d) is not None)


def test_freshness_defaults_to_twice_the_schedule_interval(hundred_definitions):
    document = generated_sources_document(1)
    hourly = parse_sources_document(document)[0]
    assert freshness_hours(hourly) == 2.0
    daily = hourly.model_copy(update={"schedule": "30 3 * * *"})
    assert freshness_hours(daily) == 48.0
    assert freshness_hours(daily.model_copy(update={"freshness_hours": 5.0})) == 5.0
    assert freshness_hours(daily.model_copy(update={"schedule": None})) is None
    assert freshness_hours(daily.model_copy(update={"enabled": False})) is None


@pytest.mark.parametrize(("now", "expected"), [
    (dt.datetime(2026, 3, 10, 7, 15, tzinfo=dt.timezone.utc), ("2026-03-08", "2026-03-10")),
    (dt.datetime(2026, 1, 1, 0, 15, tzinfo=dt.timezone.utc), ("2026-01-01", "2026-01-01")),  # clamped to start
    (dt.datetime(2025, 12, 31, 23, 0, tzinfo=dt.timezone.utc), None),
])
def test_lookback_partition_range(sample_definitions, now, expected):
    leads = next(d for d in sample_definitions if d.source_id == "cloudflare_kv_leads")
    assert lookback_partition_range(leads, now) == expected
