"""Webhook sources in the code location: asset keys, lineage, hourly partitions, the deliveries sensor's
decisions against a loopback Worker, and runs through Dagster that load waiting deliveries or replay an hour."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import dagster as dg
import pytest

from dlt_platform import failed_packages
from dlt_platform.config import parse_definition
from dlt_platform.orchestration.code_location import build_code_location
from dlt_platform.source_types.webhook.assets import load_job_wait
from dlt_platform.source_types.webhook.source import DELIVERY_IDS_STATE
from dlt_platform_tests.orchestration.conftest import INTERNAL_TOKEN, read_table
from dlt_platform_tests.test_rest_client import FAST
from dlt_platform_tests.webhook_fixtures import iso, webhook_api  # noqa: F401  (fixture)

HOOKS = dg.AssetKey(["source_hooks", "github_events"])
SCHEDULED = dg.AssetKey(["source_hooks", "stripe_events"])
HOUR = dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)


def webhook(source_id: str, table: str, preset: str = "github", **fields) -> dict:
    return {"source_id": source_id, "source_type": "webhook", "owners": ["team:data"],
            "destination": {"type": "bigquery", "dataset": "source_hooks", "table": table},
            "extract": {"signature": {"preset": preset, "secret_names": ["HOOK_KEY"]},
                        "batch": {"max_deliveries": 50, "max_wait_seconds": 60}}, **fields}


@pytest.fixture
def hook_settings(settings, webhook_api):  # noqa: F811
    webhook_api.store.enabled.update({"github_events", "stripe_events"})
    return dataclasses.replace(settings, orchestrator_url=webhook_api.url, internal_token=INTERNAL_TOKEN,
                               retry_policy=FAST)


@pytest.fixture
def location(hook_settings, sample_definitions):
    kv = [d for d in sample_definitions if d.source_type == "cloudflare_kv"]
    definitions = [*kv, parse_definition(webhook("github_events", "github_events")),
                   parse_definition(webhook("stripe_events", "stripe_events", "stripe", schedule="*/5 * * * *",
                                            staging={"r2_prefix": "hooks/stripe"}))]
    location, problems = build_code_location(definitions, hook_settings)
    assert problems == []
    return location


def test_webhook_sources_have_their_lineage_partitions_and_trigger(location):
    graph = location.resolve_asset_graph()
    raw = dg.AssetKey(["raw_staging", "webhooks", "github_events"])
    assert {HOOKS, SCHEDULED} <= set(graph.materializable_asset_keys)
    assert graph.get(HOOKS).parent_keys == {raw}
    assert graph.get(raw).parent_keys == {dg.AssetKey(["webhook", "github_events"])}
    assert graph.get(SCHEDULED).parent_keys == {dg.AssetKey(["raw_staging", "hooks", "stripe", "stripe_events"])}
    # KV sources keep theirs.
    assert graph.get(dg.AssetKey(["source_cloudflare", "orders_kv"])).parent_keys == {
        dg.AssetKey(["raw_staging", "cloudflare_kv", "orders"])}

    partitions = graph.get(HOOKS).partitions_def
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition) and partitions.cron_schedule == "0 * * * *"
    assert partitions.get_partition_key_for_timestamp(HOUR.timestamp()) == "2026-11-20-10:00"

    specs = {spec.key: spec for spec in location.resolve_all_asset_specs()}
    hooks = specs[HOOKS]
    assert hooks.kinds == {"dlt", "duckdb", "webhook"}
    assert hooks.metadata["write_disposition"] == "merge" and hooks.metadata["merge_key"] == "webhook_delivery_id"
    assert hooks.metadata["hook_path"] == "/hooks/github_events"
    assert hooks.metadata["schedule"] == "sensor github_events_deliveries"
    assert "namespace_id" not in hooks.metadata

    repository = location.get_repository_def()
    sensor = repository.get_sensor_def("github_events_deliveries")
    assert sensor.job_name == "load_github_events"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    # A source with a schedule runs on it instead of a sensor.
    assert not repository.has_sensor_def("stripe_events_deliveries")
    assert repository.get_schedule_def("stripe_events_schedule").cron_schedule == "*/5 * * * *"
    checks = {key.name for key in location.resolve_asset_graph().asset_check_keys if key.asset_key == HOOKS}
    assert checks == {"row_count", "column_schema_change"}


def evaluate(location, instance: dg.DagsterInstance):
    sensor = location.get_repository_def().get_sensor_def("github_events_deliveries")
    with dg.build_sensor_context(instance=instance, repository_def=location.get_repository_def()) as context:
        return sensor.evaluate_tick(context)


def test_the_sensor_requests_a_run_once_a_batch_is_full_or_the_oldest_waited_long_enough(location, webhook_api):  # noqa: F811
    store = webhook_api.store
    instance = dg.DagsterInstance.ephemeral()
    now = dt.datetime.now(dt.UTC)
    assert evaluate(location, instance).run_requests == []  # nothing waits

    for n in range(49):
        store.accept("github_events", {"n": n}, received_at=now - dt.timedelta(seconds=5))
    result = evaluate(location, instance)
    assert result.run_requests == [] and "49 deliveries waiting: not due yet" in result.skip_message

    store.accept("github_events", {"n": 49})
    (request,) = evaluate(location, instance).run_requests  # batch size reached
    assert {"dlt_platform/source_id": "github_events", "dlt_platform/trigger": "sensor"}.items() <= request.tags.items()
    assert request.partition_key is None

    for delivery in store.deliveries["github_events"].values():
        delivery.state = "loaded"
    store.accept("github_events", {"n": 50}, received_at=now - dt.timedelta(seconds=61))
    assert len(evaluate(location, instance).run_requests) == 1  # one delivery, but it waited past max wait

    webhook_api.stop()  # the Worker is down: skip, never fail the tick
    result = evaluate(location, instance)
    assert result.run_requests == [] and "cannot ask the Worker" in result.skip_message
    assert INTERNAL_TOKEN not in result.skip_message


def test_the_sensor_starts_no_run_for_deliveries_that_failed_on_their_own(location, hook_settings,
                                                                         webhook_api):  # noqa: F811
    store, instance = webhook_api.store, dg.DagsterInstance.ephemeral()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    poisoned = store.accept("github_events", {"n": 1}, received_at=old)
    # Set aside twice, the second time alone (as sources/webhook does): quarantined.
    for load_id, ids in (("1796600000.1", [poisoned, "d-other"]), ("1796600100.1", [poisoned])):
        folder = failed_packages.source_dir(hook_settings.data_dir, "github_events") / load_id
        folder.mkdir(parents=True)
        (folder / failed_packages.MANIFEST).write_text(json.dumps(
            {"load_id": load_id, "reason": "job x: Conversion Error", "package_state": {DELIVERY_IDS_STATE: ids}}))
    result = evaluate(location, instance)
    assert result.run_requests == [] and "1 deliveries waiting, none to load" in result.skip_message
    store.accept("github_events", {"n": 2}, received_at=old)  # a new one waited past max wait: a run
    assert len(evaluate(location, instance).run_requests) == 1


def test_the_sensor_waits_while_a_run_of_the_source_is_going(location, webhook_api):  # noqa: F811
    instance = dg.DagsterInstance.ephemeral()
    for n in range(60):
        webhook_api.store.accept("github_events", {"n": n})
    job = location.get_repository_def().get_job("load_github_events")
    instance.create_run_for_job(job, tags={"dlt_platform/source_id": "github_events"},
                                status=dg.DagsterRunStatus.STARTED)
    result = evaluate(location, instance)
    assert result.run_requests == [] and "is still going" in result.skip_message


def test_runs_load_the_waiting_deliveries_and_an_hour_partition_replays_that_hour(location, hook_settings,
                                                                                  webhook_api):  # noqa: F811
    store = webhook_api.store
    in_hour = [store.accept("github_events", {"n": n}, received_at=HOUR + dt.timedelta(minutes=n)) for n in range(30)]
    store.accept("github_events", {"n": 99})  # received now
    instance = dg.DagsterInstance.ephemeral()
    job = location.get_repository_def().get_job("load_github_events")

    first = job.execute_in_process(instance=instance)
    assert first.success
    assert read_table(hook_settings, "source_hooks", "github_events") == [(31,)]
    assert store.waiting_ids("github_events") == set()
    assert {d.run_id for d in store.deliveries["github_events"].values()} == {first.run_id}
    event = instance.get_latest_materialization_event(HOOKS).asset_materialization
    assert event.metadata["deliveries_marked_loaded"].value == 31
    assert event.metadata["write_disposition"].value == "merge"

    replay = job.execute_in_process(instance=instance, partition_key="2026-11-20-10:00")
    assert replay.success
    assert read_table(hook_settings, "source_hooks", "github_events") == [(31,)]
    replayed = instance.get_latest_materialization_event(HOOKS).asset_materialization
    # The github preset's shape: one row per delivery in the table, the bodies in a table per event type.
    assert replayed.metadata["rows_by_table"].value == {"github_events": 30, "github_events__push": 30}
    assert replayed.partition == "2026-11-20-10:00"
    loaded = {row[0] for row in read_table(hook_settings, "source_hooks", "github_events", "webhook_delivery_id")}
    assert loaded == set(store.deliveries["github_events"]) and set(in_hour) < loaded
    checks = {result.check_name: result.passed for result in replay.get_asset_check_evaluations()}
    assert checks == {"row_count": True, "column_schema_change": True}


def test_a_run_asking_for_keys_is_refused_with_the_field_named(location, webhook_api):  # noqa: F811
    job = location.get_repository_def().get_job("load_github_events")
    result = job.execute_in_process(run_config={"ops": {"github_events": {"config": {"keys": ["a"]}}}},
                                    raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("github_events")
    assert failure.user_failure_data.description.startswith("keys: not for webhook sources")
    assert webhook_api.store.requests == []  # refused before anything was read


NOON = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)  # 43,200 s left in the UTC day


def figures(jobs: int, last_run_at: dt.datetime, *, source_jobs: int | None = None, runs: int | None = None,
            destination: str = "bigquery") -> list[dict]:
    """The Worker's count of github_events today (GET /internal/sources/:id/load-jobs)."""
    return [{"destination": destination, "dataset": "source_hooks", "table": "github_events", "jobs": jobs,
             "source_jobs": jobs if source_jobs is None else source_jobs, "runs": jobs if runs is None else runs,
             "last_run_at": iso(last_run_at)}]


def test_the_load_job_budget_left_is_spread_over_the_rest_of_the_utc_day():
    definition = parse_definition(webhook("github_events", "github_events"))
    # 300 runs of one load job each left in 43,200 s: one every 144 s after the last.
    wait = load_job_wait(definition, figures(700, NOON - dt.timedelta(seconds=60)), NOON)
    assert wait == ("source_hooks.github_events has used 700 of its 1000 load jobs today: the next run waits until "
                    "12:01:24 UTC (one run every 144 s keeps it within budget until 00:00 UTC)")
    assert load_job_wait(definition, figures(700, NOON - dt.timedelta(seconds=144)), NOON) is None
    # Three jobs a run (files per table): 100 runs left, one every 432 s.
    assert "one run every 432 s" in load_job_wait(definition, figures(700, NOON, source_jobs=300, runs=100), NOON)
    # A table other sources load too (dlt's _dlt_pipeline_state): its total counts, this source's runs set the rate.
    assert "one run every 864 s" in load_job_wait(definition, figures(950, NOON, source_jobs=10, runs=10), NOON)
    # The source's own budget.
    budgeted = parse_definition(webhook("github_events", "github_events",
                                        destination={"type": "bigquery", "dataset": "source_hooks",
                                                     "table": "github_events", "load_job_budget": 800}))
    assert "700 of its 800 load jobs today" in load_job_wait(budgeted, figures(700, NOON), NOON)
    assert "one run every 432 s" in load_job_wait(budgeted, figures(700, NOON), NOON)
    # Spent: nothing until the next UTC day; DuckDB has no quota.
    assert load_job_wait(definition, figures(1000, NOON - dt.timedelta(hours=3)), NOON).endswith(
        "has used 1000 of its 1000 load jobs today: the next run waits for 00:00 UTC")
    assert load_job_wait(definition, figures(1000, NOON, destination="duckdb"), NOON) is None
    assert load_job_wait(definition, [], NOON) is None


def test_a_due_run_waits_past_max_wait_while_the_budget_needs_it_and_says_so(location, webhook_api):  # noqa: F811
    store, instance = webhook_api.store, dg.DagsterInstance.ephemeral()
    now = dt.datetime.now(dt.UTC)
    store.accept("github_events", {"n": 1}, received_at=now - dt.timedelta(minutes=10))  # past its max wait of 60 s
    store.load_jobs["github_events"] = figures(1000, now - dt.timedelta(minutes=10))
    result = evaluate(location, instance)
    assert result.run_requests == []
    assert "the oldest since" in result.skip_message and "(max wait 60 s), but source_hooks.github_events has " \
        "used 1000 of its 1000 load jobs today: the next run waits for 00:00 UTC" in result.skip_message
    assert ("GET", "/internal/sources/github_events/load-jobs") in store.requests

    store.load_jobs["github_events"] = figures(1000, now - dt.timedelta(minutes=10), destination="duckdb")
    assert len(evaluate(location, instance).run_requests) == 1  # DuckDB tables have no quota
    store.load_jobs["github_events"] = figures(5, now - dt.timedelta(minutes=10))
    assert len(evaluate(location, instance).run_requests) == 1  # budget to spare
