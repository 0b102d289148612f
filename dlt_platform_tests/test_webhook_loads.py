"""Webhook deliveries loaded with dlt, into DuckDB and the emulated BigQuery, read through a loopback stand-in
of the Worker's internal API (webhook_fixtures.py): rows and audit columns, one row per delivery however often
it is loaded, replays that change nothing, and deliveries marked loaded only after their load succeeded."""

from __future__ import annotations

import dataclasses
import datetime as dt

import dlt
import pytest

from dlt_platform.config import parse_definition
from dlt_platform.loads import run_load
from dlt_platform.load_request import LoadRequest
from dlt_platform.sources.webhook.rows import AUDIT_COLUMNS

from .bigquery_fixtures import DuckDBWarehouse
from .conftest import INTERNAL_TOKEN
from .test_rest_client import FAST
from .webhook_fixtures import webhook_api  # noqa: F401  (fixture)

SOURCE_ID, DATASET, TABLE = "github_events", "source_hooks", "github_events"
PUSH = {"ref": "refs/heads/main", "repository": {"id": 7, "full_name": "acme/shop"},
        "commits": [{"id": "c1", "message": "fix"}, {"id": "c2", "message": "docs"}],
        "webhook_delivery_id": "spoofed"}
HOUR = dt.datetime(2026, 11, 20, 10, tzinfo=dt.timezone.utc)


def webhook_definition(**extract) -> object:
    return parse_definition({
        "source_id": SOURCE_ID, "source_type": "webhook",
        "destination": {"type": "duckdb", "dataset": DATASET, "table": TABLE},
        "extract": {"signature": {"preset": "github", "secret_names": ["GITHUB_WEBHOOK_SECRET"]}, **extract},
    })


@pytest.fixture(params=["duckdb", "bigquery"])
def lane(request, settings, webhook_api):  # noqa: F811
    webhook_settings = {"orchestrator_url": webhook_api.url, "internal_token": INTERNAL_TOKEN, "retry_policy": FAST}
    if request.param == "bigquery":
        warehouse = request.getfixturevalue("bigquery_warehouse")
        return dataclasses.replace(warehouse.settings, **webhook_settings), warehouse
    return dataclasses.replace(settings, **webhook_settings), DuckDBWarehouse(settings)


@pytest.fixture
def store(webhook_api):  # noqa: F811
    webhook_api.store.enabled.add(SOURCE_ID)
    return webhook_api.store


def table_rows(warehouse, columns: str = "webhook_delivery_id") -> list[tuple]:
    return warehouse.query(f"select {columns} from {DATASET}.{TABLE} order by webhook_delivery_id")


def test_bodies_expand_into_columns_next_to_the_audit_columns(lane, store):
    settings, warehouse = lane
    received = dt.datetime.now(dt.timezone.utc).replace(microsecond=123000)
    push = store.accept(SOURCE_ID, PUSH, delivery_id="d-push", received_at=received)
    store.accept(SOURCE_ID, "[1, 2]", delivery_id="d-array", event_type=None)
    store.accept(SOURCE_ID, "payload=not%20json", delivery_id="d-form", event_type="ping")

    result = run_load(webhook_definition(), settings, run_id="run-1")

    assert result.rows_by_table == {TABLE: 3, f"{TABLE}__commits": 2}
    assert result.write_disposition == "merge"
    assert set(AUDIT_COLUMNS) | {"ref", "repository__full_name", "body_webhook_delivery_id"} <= warehouse.columns(
        DATASET, TABLE)
    rows = table_rows(warehouse, "webhook_delivery_id, webhook_event_type, webhook_signature_preset, "
                                 "webhook_source_id, webhook_body_raw, ref, repository__full_name, "
                                 "body_webhook_delivery_id, webhook_received_at")
    assert [row[:8] for row in rows] == [
        ("d-array", None, "github", SOURCE_ID, "[1, 2]", None, None, None),
        ("d-form", "ping", "github", SOURCE_ID, "payload=not%20json", None, None, None),
        ("d-push", "push", "github", SOURCE_ID, None, "refs/heads/main", "acme/shop", "spoofed"),
    ]
    assert rows[2][8] == received
    assert warehouse.query(f"select id, message from {DATASET}.{TABLE}__commits order by id") == [
        ("c1", "fix"), ("c2", "docs")]
    # Marked loaded only now, by this run, and nothing is left waiting.
    assert store.waiting_ids(SOURCE_ID) == set()
    assert {d.run_id for d in store.deliveries[SOURCE_ID].values()} == {"run-1"} and push in store.loaded_ids(SOURCE_ID)


def test_the_same_delivery_loaded_again_stays_one_row(lane, store):
    settings, warehouse = lane
    ids = [store.accept(SOURCE_ID, {**PUSH, "n": n}) for n in range(5)]
    run_load(webhook_definition(), settings)
    # The Worker lost the `loaded` mark (or the run died after its load): the same deliveries wait again.
    for delivery in store.deliveries[SOURCE_ID].values():
        delivery.state = "waiting"
    second = run_load(webhook_definition(), settings)
    assert second.rows_by_table[TABLE] == 5
    assert table_rows(warehouse) == [(i,) for i in sorted(ids)]
    assert warehouse.query(f"select count(*) from {DATASET}.{TABLE}__commits") == [(10,)]
    assert store.waiting_ids(SOURCE_ID) == set()


def test_a_replayed_hour_changes_nothing_and_reads_only_that_hour(lane, store):
    settings, warehouse = lane
    in_hour = [store.accept(SOURCE_ID, {**PUSH, "n": n}, received_at=HOUR + dt.timedelta(minutes=7 * n))
               for n in range(6)]
    store.accept(SOURCE_ID, PUSH, received_at=HOUR + dt.timedelta(hours=1, minutes=1))
    run_load(webhook_definition(), settings)
    columns = "webhook_delivery_id, webhook_received_at, n, ref, webhook_event_type"
    before = table_rows(warehouse, columns)
    assert len(before) == 7

    replay = run_load(webhook_definition(), settings, LoadRequest(window=(HOUR, HOUR + dt.timedelta(hours=1))))

    assert replay.rows_by_table[TABLE] == 6
    assert table_rows(warehouse, columns) == before
    assert warehouse.query(f"select count(*) from {DATASET}.{TABLE}__commits") == [(14,)]
    hours = [path for method, path in store.requests if "hour=" in path]
    assert hours and all("hour=2026-11-20T10" in path for path in hours)
    assert set(in_hour) <= store.loaded_ids(SOURCE_ID)


def test_a_run_reads_what_waited_when_it_started_and_honours_its_limit(lane, store):
    settings, warehouse = lane
    now = dt.datetime.now(dt.timezone.utc)
    for n in range(1200):  # three pages
        store.accept(SOURCE_ID, {"n": n}, received_at=now - dt.timedelta(seconds=1200 - n))
    late = store.accept(SOURCE_ID, {"n": -1}, received_at=now + dt.timedelta(minutes=5))
    limited = run_load(webhook_definition(), settings, LoadRequest(limit=700, now=now))
    assert limited.rows_by_table[TABLE] == 700 and len(store.waiting_ids(SOURCE_ID)) == 501
    rest = run_load(webhook_definition(), settings, LoadRequest(now=now))
    assert rest.rows_by_table[TABLE] == 500
    assert store.waiting_ids(SOURCE_ID) == {late}
    assert warehouse.query(f"select count(*), min(n), max(n) from {DATASET}.{TABLE}") == [(1200, 0, 1199)]


def test_a_worker_outage_mid_run_marks_nothing_and_the_next_run_loads_everything(lane, store):
    settings, warehouse = lane
    ids = {store.accept(SOURCE_ID, {"n": n}) for n in range(900)}
    store.fail_reads_after = 1  # the first page is read, the second never comes
    with pytest.raises(Exception, match="503"):
        run_load(webhook_definition(), settings)
    assert store.waiting_ids(SOURCE_ID) == ids
    store.fail_reads_after = None
    run_load(webhook_definition(), settings)
    assert store.waiting_ids(SOURCE_ID) == set()
    assert warehouse.query(f"select count(distinct webhook_delivery_id), count(*) from {DATASET}.{TABLE}") == [
        (900, 900)]


def test_a_failed_load_leaves_every_delivery_waiting_until_a_load_succeeds(settings, store, webhook_api):  # noqa: F811
    settings = dataclasses.replace(settings, orchestrator_url=webhook_api.url, internal_token=INTERNAL_TOKEN,
                                   retry_policy=FAST)
    ids = {store.accept(SOURCE_ID, {"n": n}) for n in range(20)}
    definition = webhook_definition()
    # The warehouse refuses the rows: the delivery id column exists with a type the ids cannot be cast to.
    pipeline = dlt.pipeline(pipeline_name="blocker", pipelines_dir=str(settings.data_dir / "blocker"),
                            destination=dlt.destinations.duckdb(credentials=str(settings.duckdb_path)),
                            dataset_name=DATASET)
    with pipeline.sql_client() as client:
        client.execute_sql(f"create schema if not exists {DATASET}")
        client.execute_sql(f"create table {DATASET}.{TABLE} (webhook_delivery_id bigint)")
    with pytest.raises(Exception, match="(?i)conver|cast"):
        run_load(definition, settings)
    assert store.waiting_ids(SOURCE_ID) == ids, "deliveries were marked loaded although their load failed"
    assert not any(method == "POST" for method, _ in store.requests)

    with pipeline.sql_client() as client:
        client.execute_sql(f"alter table {DATASET}.{TABLE} alter webhook_delivery_id type varchar")
    run_load(definition, settings)
    assert store.waiting_ids(SOURCE_ID) == set()
    assert DuckDBWarehouse(settings).query(f"select count(*) from {DATASET}.{TABLE}") == [(20,)]
