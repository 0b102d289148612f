"""Webhook deliveries loaded with dlt, into DuckDB and the emulated BigQuery, read through a loopback stand-in
of the Worker's internal API (webhook_fixtures.py): rows and audit columns, one row per delivery however often
it is loaded, replays that change nothing, deliveries marked loaded only after their load succeeded, the table
shapes (one table, or one per event type, nesting bounded) with GitHub's published example deliveries and
Stripe's documented events, and load packages that cannot load set aside without blocking the source."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import re

import dlt
import pytest

from dlt_platform import failed_packages
from dlt_platform.config import parse_definition
from dlt_platform.load_request import LoadRequest
from dlt_platform.loads import run_load
from dlt_platform.source_types.webhook.rows import AUDIT_COLUMNS

from .bigquery_fixtures import DuckDBWarehouse
from .conftest import INTERNAL_TOKEN
from .test_rest_client import FAST
from .webhook_fixtures import github_examples, stripe_events, webhook_api  # noqa: F401  (fixture)

SOURCE_ID, DATASET, TABLE = "github_events", "source_hooks", "github_events"
PUSH = {"ref": "refs/heads/main", "repository": {"id": 7, "full_name": "acme/shop"},
        "commits": [{"id": "c1", "message": "fix"}, {"id": "c2", "message": "docs"}],
        "webhook_delivery_id": "spoofed"}
HOUR = dt.datetime(2026, 11, 20, 10, tzinfo=dt.timezone.utc)
ONE_TABLE = {"table_per_event_type": False}


def webhook_definition(source_id: str = SOURCE_ID, table: str = TABLE, preset: str = "github", **extract) -> object:
    return parse_definition({
        "source_id": source_id, "source_type": "webhook",
        "destination": {"type": "duckdb", "dataset": DATASET, "table": table},
        "extract": {"signature": {"preset": preset, "secret_names": ["GITHUB_WEBHOOK_SECRET"]}, **extract},
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
    # Milliseconds that show in the column, and a second in the past: a run reads only what was received before
    # it started (now with its microseconds set to .123 is in the future for the first 123 ms of a second).
    received = dt.datetime.now(dt.timezone.utc).replace(microsecond=123000) - dt.timedelta(seconds=1)
    push = store.accept(SOURCE_ID, PUSH, delivery_id="d-push", received_at=received)
    store.accept(SOURCE_ID, "[1, 2]", delivery_id="d-array", event_type=None)
    store.accept(SOURCE_ID, "payload=not%20json", delivery_id="d-form", event_type="ping")

    result = run_load(webhook_definition(**ONE_TABLE), settings, run_id="run-1")

    assert result.rows_by_table == {TABLE: 3, f"{TABLE}__commits": 2}
    assert result.write_disposition == "merge"
    assert set(AUDIT_COLUMNS) | {"ref", "repository__full_name", "body_webhook_delivery_id"} <= warehouse.columns(
        DATASET, TABLE)
    rows = table_rows(warehouse, "webhook_delivery_id, webhook_event_type, webhook_signature_preset, "
                                 "webhook_source_id, webhook_body_raw, ref, repository__full_name, "
                                 "body_webhook_delivery_id, webhook_received_at")
    # The raw body is kept for every delivery, the expanded JSON object's too.
    assert [row[:8] for row in rows] == [
        ("d-array", None, "github", SOURCE_ID, "[1, 2]", None, None, None),
        ("d-form", "ping", "github", SOURCE_ID, "payload=not%20json", None, None, None),
        ("d-push", "push", "github", SOURCE_ID, store.deliveries[SOURCE_ID]["d-push"].document["body"],
         "refs/heads/main", "acme/shop", "spoofed"),
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
    run_load(webhook_definition(**ONE_TABLE), settings)
    # The Worker lost the `loaded` mark (or the run died after its load): the same deliveries wait again.
    for delivery in store.deliveries[SOURCE_ID].values():
        delivery.state = "waiting"
    second = run_load(webhook_definition(**ONE_TABLE), settings)
    assert second.rows_by_table[TABLE] == 5
    assert table_rows(warehouse) == [(i,) for i in sorted(ids)]
    assert warehouse.query(f"select count(*) from {DATASET}.{TABLE}__commits") == [(10,)]
    assert store.waiting_ids(SOURCE_ID) == set()


def test_a_replayed_hour_changes_nothing_and_reads_only_that_hour(lane, store):
    settings, warehouse = lane
    in_hour = [store.accept(SOURCE_ID, {**PUSH, "n": n}, received_at=HOUR + dt.timedelta(minutes=7 * n))
               for n in range(6)]
    store.accept(SOURCE_ID, PUSH, received_at=HOUR + dt.timedelta(hours=1, minutes=1))
    run_load(webhook_definition(**ONE_TABLE), settings)
    columns = "webhook_delivery_id, webhook_received_at, n, ref, webhook_event_type"
    before = table_rows(warehouse, columns)
    assert len(before) == 7

    replay = run_load(webhook_definition(**ONE_TABLE), settings,
                      LoadRequest(window=(HOUR, HOUR + dt.timedelta(hours=1))))

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
    limited = run_load(webhook_definition(**ONE_TABLE), settings, LoadRequest(limit=700, now=now))
    assert limited.rows_by_table[TABLE] == 700 and len(store.waiting_ids(SOURCE_ID)) == 501
    rest = run_load(webhook_definition(**ONE_TABLE), settings, LoadRequest(now=now))
    assert rest.rows_by_table[TABLE] == 500
    assert store.waiting_ids(SOURCE_ID) == {late}
    assert warehouse.query(f"select count(*), min(n), max(n) from {DATASET}.{TABLE}") == [(1200, 0, 1199)]


def test_a_worker_outage_mid_run_marks_nothing_and_the_next_run_loads_everything(lane, store):
    settings, warehouse = lane
    ids = {store.accept(SOURCE_ID, {"n": n}) for n in range(900)}
    store.fail_reads_after = 1  # the first page is read, the second never comes
    with pytest.raises(Exception, match="503"):
        run_load(webhook_definition(**ONE_TABLE), settings)
    assert store.waiting_ids(SOURCE_ID) == ids
    store.fail_reads_after = None
    run_load(webhook_definition(**ONE_TABLE), settings)
    assert store.waiting_ids(SOURCE_ID) == set()
    assert warehouse.query(f"select count(distinct webhook_delivery_id), count(*) from {DATASET}.{TABLE}") == [
        (900, 900)]


@pytest.fixture
def duckdb_settings(settings, webhook_api):  # noqa: F811
    return dataclasses.replace(settings, orchestrator_url=webhook_api.url, internal_token=INTERNAL_TOKEN,
                               retry_policy=FAST)


def test_a_failed_load_leaves_every_delivery_waiting_until_a_load_succeeds(duckdb_settings, store):
    settings = duckdb_settings
    ids = {store.accept(SOURCE_ID, {"n": n}) for n in range(20)}
    definition = webhook_definition(**ONE_TABLE)
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
    # The package left pending is tried first, and loads now that the table takes its rows: nothing set aside.
    run_load(definition, settings)
    assert store.waiting_ids(SOURCE_ID) == set()
    assert DuckDBWarehouse(settings).query(f"select count(*) from {DATASET}.{TABLE}") == [(20,)]
    assert failed_packages.set_aside_packages(settings.data_dir, SOURCE_ID) == []



def test_a_poisoned_delivery_is_set_aside_and_never_blocks_its_source(duckdb_settings, store, capsys, caplog):
    settings, warehouse = duckdb_settings, DuckDBWarehouse(duckdb_settings)
    definition = webhook_definition()  # the github preset's shape: a table per event type
    # Poisoned for real: the warehouse refuses the `poison` event's table (its value column takes numbers only),
    # whatever dlt sends it.
    blocker = dlt.pipeline(pipeline_name="blocker", pipelines_dir=str(settings.data_dir / "blocker"),
                           destination=dlt.destinations.duckdb(credentials=str(settings.duckdb_path)),
                           dataset_name=DATASET)
    with blocker.sql_client() as client:
        client.execute_sql(f"create schema if not exists {DATASET}")
        client.execute_sql(f"create table {DATASET}.{TABLE}__poison (value bigint)")
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    at = (start + dt.timedelta(seconds=n) for n in range(100))
    before = [store.accept(SOURCE_ID, {"n": n}, received_at=next(at)) for n in range(6)]
    poison = store.accept(SOURCE_ID, {"value": "not a number"}, event_type="poison", received_at=next(at))
    after = [store.accept(SOURCE_ID, {"n": n}, received_at=next(at)) for n in range(6, 11)]

    with pytest.raises(Exception, match="(?i)conver|cast"):
        run_load(definition, settings)
    assert store.waiting_ids(SOURCE_ID) == {*before, poison, *after}

    # New deliveries arrive. The next run sets the package aside (kept, named) and loads them.
    fresh = [store.accept(SOURCE_ID, {"n": n}) for n in range(100, 105)]
    run_load(definition, settings)
    [aside] = failed_packages.set_aside_packages(settings.data_dir, SOURCE_ID)
    assert aside.path == settings.data_dir / "failed_packages" / SOURCE_ID / aside.load_id
    assert re.search("(?i)conver|cast", aside.reason) and any(aside.path.rglob("*.parquet"))
    assert f"load package {aside.load_id} set aside in {aside.path}" in capsys.readouterr().err
    assert store.loaded_ids(SOURCE_ID) == set(fresh)

    # Runs that find nothing new retry the set-aside deliveries, halving the failing group until the poisoned
    # delivery failed alone: then it is not read again, and runs go quiet.
    failures = runs = 0
    while True:
        runs += 1
        assert runs <= 12, f"still retrying after {runs} runs: {len(store.waiting_ids(SOURCE_ID))} waiting"
        try:
            result = run_load(definition, settings)
        except Exception as error:  # noqa: BLE001 (a trial holding the poisoned delivery)
            assert re.search("(?i)conver|cast", str(error))
            failures += 1
            continue
        if not result.rows_by_table and store.waiting_ids(SOURCE_ID) == {poison}:
            break
    assert failures <= 4 + 1, failures  # log2(12) rounded up, and the whole remainder once
    assert store.loaded_ids(SOURCE_ID) == {*before, *after, *fresh}
    assert f"{SOURCE_ID}: 1 waiting deliveries not read" in caplog.text
    assert warehouse.query(f"select count(*), count(distinct webhook_delivery_id) from {DATASET}.{TABLE}__push"
                           ) == [(16, 16)]
    assert warehouse.query(f"select count(*) from {DATASET}.{TABLE}__poison") == [(0,)]
    # The first package, and each failed trial, kept where the operator looks.
    assert len(failed_packages.set_aside_packages(settings.data_dir, SOURCE_ID)) == 1 + failures


def column_widths(warehouse, dataset: str) -> dict[str, int]:
    """Columns per data table of a dataset (dlt's own tables left out)."""
    if warehouse.name == "bigquery":
        tables = [table.table_id for table in warehouse.client.list_tables(dataset)]
        widths = {table: len(warehouse.columns(dataset, table)) for table in tables}
    else:
        widths = dict(warehouse.query(f"select table_name, count(*) from information_schema.columns "
                                      f"where table_schema = '{dataset}' group by 1"))
    return {table: width for table, width in widths.items() if not table.startswith("_dlt")}


def json_field(warehouse, dataset: str, table: str, column: str, field: str) -> str | None:
    """A field of a JSON column read with the warehouse's JSON function (it fails on a column that is not JSON).
    The emulator reports JSON columns as STRING (test_bigquery.py), so this is how its JSON is told apart."""
    if warehouse.name == "duckdb":
        [(kind,)] = warehouse.query(f"select data_type from information_schema.columns where table_schema = "
                                    f"'{dataset}' and table_name = '{table}' and column_name = '{column}'")
        assert kind == "JSON", f"{table}.{column} is {kind}"
    [(value,)] = warehouse.query(f"select json_value({column}, '$.{field}') from {dataset}.{table} "
                                 f"where {column} is not null limit 1")
    return None if value is None else value.strip('"')


def test_githubs_published_examples_land_once_per_event_type_in_tables_a_few_hundred_columns_wide(lane, store):
    settings, warehouse = lane
    examples = github_examples()
    ids_by_event: dict[str, list[str]] = collections.defaultdict(list)
    bodies = {}
    for event, body in examples:
        delivery_id = store.accept(SOURCE_ID, body.decode(), event_type=event)
        ids_by_event[event].append(delivery_id)
        bodies[delivery_id] = body.decode()
    assert len(examples) == 329 and len(ids_by_event) == 58

    result = run_load(webhook_definition(), settings)  # the github preset's shape

    assert result.rows_by_table[TABLE] == 329
    # One row per delivery in the source's table, with its raw body as sent.
    assert dict(table_rows(warehouse, "webhook_delivery_id, webhook_body_raw")) == bodies
    for event, ids in ids_by_event.items():
        assert warehouse.query(f"select count(*), count(distinct webhook_delivery_id) from {DATASET}.{TABLE}__{event}"
                               ) == [(len(ids), len(ids))], event
    widths = column_widths(warehouse, DATASET)
    print(f"\nGitHub examples, a table per event type, max_table_nesting 1: {len(widths)} tables, "
          f"{sum(widths.values())} columns, widest {sorted(widths.items(), key=lambda item: -item[1])[:3]}")
    assert max(widths.values()) < 300
    # Objects below the first level stay whole, as JSON.
    assert {"repository__owner", "sender__id"} <= warehouse.columns(DATASET, f"{TABLE}__push")
    assert json_field(warehouse, DATASET, f"{TABLE}__push", "repository__owner", "login") == "Codertocat"
    assert store.waiting_ids(SOURCE_ID) == set()


def test_stripe_events_land_once_per_type_in_tables_named_after_the_type(lane, store):
    settings, warehouse = lane
    events = stripe_events(per_type=5)
    for event_id, kind, body in events:
        store.accept("stripe_events", body.decode(), delivery_id=event_id, event_type=kind, preset="stripe")
    definition = webhook_definition("stripe_events", "stripe_events", "stripe", table_per_event_type=True,
                                    max_table_nesting=2)

    result = run_load(definition, settings)

    assert result.rows_by_table["stripe_events"] == len(events) == 35
    kinds = collections.Counter(kind for _, kind, _ in events)
    for kind, count in kinds.items():
        table = "stripe_events__" + kind.replace(".", "_")
        assert warehouse.query(f"select count(*), count(distinct id) from {DATASET}.{table}") == [(count, count)]
    # data.object's fields are columns, objects below that JSON (max_table_nesting 2).
    invoice = "stripe_events__invoice_paid"
    assert {"data__object__amount_paid", "data__object__customer_address", "request__id"} <= warehouse.columns(
        DATASET, invoice)
    assert json_field(warehouse, DATASET, invoice, "data__object__customer_address", "city") == "Berlin"
    assert warehouse.query(f"select sum(data__object__amount_paid) from {DATASET}.{invoice}") == [(5 * 1500,)]
