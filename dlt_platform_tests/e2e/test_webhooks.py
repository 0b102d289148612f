"""Webhook feeds through the local stack: signed deliveries POSTed to the real Worker (wrangler dev) over HTTP,
kept in its local R2 and D1, loaded by Dagster's deliveries sensor into DuckDB, marked loaded in D1.

Signatures are computed here with GitHub's and Stripe's documented schemes (HMAC-SHA256 of the raw body, hex,
`sha256=`; HMAC-SHA256 of "<t>.<body>" in `Stripe-Signature: t=,v1=`), through the sender script the README
shows, not with the Worker's own code. Real payloads: GitHub's published example deliveries (npm
@octokit/webhooks-examples) and Stripe events built from its API reference (webhook_fixtures.stripe_events).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import hmac
import time

import duckdb
import pytest

from dlt_platform.duckdb_warehouse import read_connection
from dlt_platform.local.stack import LOCAL_WEBHOOK_SECRET
from dlt_platform.source_types.webhook.send_local import (
    Delivery,
    github_delivery,
    github_example_deliveries,
    send,
    stripe_delivery,
)
from dlt_platform_tests.waiting import poll
from dlt_platform_tests.webhook_fixtures import stripe_events

SOURCE, TABLE = "github_events", "source_webhooks.github_events"
BURST = 2000


def hook_url(stack, source_id: str = SOURCE) -> str:
    return f"{stack.worker_url}/hooks/{source_id}"


def loaded_rows(stack, delivery_ids: list[str]) -> tuple[int, int] | None:
    """(rows, distinct delivery ids) of these deliveries in the warehouse; None while a run holds the file."""
    try:
        with read_connection(stack.paths.data_dir / "warehouse.duckdb") as connection:
            connection.execute("create temp table wanted (id varchar)")
            connection.executemany("insert into wanted values (?)", [(i,) for i in delivery_ids])
            return connection.execute(f"select count(*), count(distinct webhook_delivery_id) from {TABLE} "
                                      "where webhook_delivery_id in (select id from wanted)").fetchone()
    except (duckdb.IOException, duckdb.CatalogException):  # a load in progress, or no table yet
        return None


def wait_until_loaded(stack, operator, delivery_ids: list[str], timeout: float) -> tuple[int, int]:
    def done():
        rows = loaded_rows(stack, delivery_ids)
        return rows if rows and rows[1] == len(delivery_ids) and operator.webhook_stats(SOURCE)["waiting"] == 0 \
            else None
    return poll(done, timeout=timeout, interval=1, what=f"{len(delivery_ids)} deliveries in {TABLE}")


def tampered(delivery: Delivery) -> Delivery:
    return dataclasses.replace(delivery, body=delivery.body.replace(b'"repository"', b'"repositorY"'))


def signed_with(delivery: Delivery, secret: str) -> Delivery:
    signature = "sha256=" + hmac.new(secret.encode(), delivery.body, hashlib.sha256).hexdigest()
    return dataclasses.replace(delivery, headers={**delivery.headers, "X-Hub-Signature-256": signature})


def without(delivery: Delivery, header: str) -> Delivery:
    return dataclasses.replace(delivery, headers={k: v for k, v in delivery.headers.items() if k != header})


def bad_deliveries(secret: str) -> tuple[list[Delivery], collections.Counter]:
    """Deliveries the Worker must refuse, and how many of each (status, reason) it should answer."""
    bad: list[tuple[Delivery, int, str]] = []
    for n in range(20):
        bad.append((tampered(github_delivery(secret, n)), 401, "bad_signature"))
        bad.append((github_delivery(f"{secret}-wrong", n), 401, "bad_signature"))
    for n in range(10):
        bad.append((without(github_delivery(secret, n), "X-Hub-Signature-256"), 400, "missing_header"))
        bad.append((without(github_delivery(secret, n), "X-GitHub-Delivery"), 400, "missing_header"))
        plain = github_delivery(secret, n)
        bad.append((dataclasses.replace(plain, headers={**plain.headers, "Content-Type": "text/plain"}), 415,
                    "unsupported_content_type"))
    for n in range(3):
        body = b'{"padding": "' + b"x" * (1024 * 1024) + b'"}'
        big = github_delivery(secret, n)
        bad.append((signed_with(dataclasses.replace(big, body=body), secret), 413, "body_too_large"))
    return [d for d, _, _ in bad], collections.Counter((status, reason) for _, status, reason in bad)


def dagster_run_started(stack) -> bool:
    query = """query($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results { status } } } }"""
    data = stack.dagster_graphql(query, {"filter": {"tags": [{"key": "dlt_platform/source_id", "value": SOURCE}],
                                                   "statuses": ["STARTED"]}})
    return bool(data["data"]["runsOrError"]["results"])


def test_a_burst_with_dagster_stopped_halfway_loads_every_delivery_exactly_once(stack, operator):
    secret = stack.tokens()[LOCAL_WEBHOOK_SECRET]
    before = operator.webhook_stats(SOURCE)
    valid = [github_delivery(secret, n) for n in range(BURST)]
    bad, expected_refusals = bad_deliveries(secret)
    repeated = valid[7]  # sent four more times: still one row
    unknown = [github_delivery(secret, n) for n in range(5)]

    first = send(hook_url(stack), valid[: BURST // 2] + bad[::2], concurrency=32)
    # Stop Dagster while it loads the first half (the sensor starts a run at 500 waiting).
    poll(lambda: dagster_run_started(stack), timeout=90, interval=0.2, what="a run of the first half")
    stack.stop("dagster")
    try:
        second = send(hook_url(stack), valid[BURST // 2:] + bad[1::2] + [repeated] * 4, concurrency=32)
        strangers = send(hook_url(stack, "no_such_source"), unknown, concurrency=4)
    finally:
        stack.start_dagster()

    answers = first.answers + second.answers
    assert answers[(200, "accepted")] == BURST and answers[(200, "duplicate")] == 4, answers
    assert {key: count for key, count in answers.items() if key[0] != 200} == dict(expected_refusals), answers
    assert strangers.answers == collections.Counter({(404, "unknown_source"): 5}), strangers
    accepted_ids = first.accepted_ids + second.accepted_ids
    assert sorted(accepted_ids) == sorted(d.delivery_id for d in valid)

    started = time.monotonic()
    rows, distinct = wait_until_loaded(stack, operator, accepted_ids, timeout=420)
    assert (rows, distinct) == (BURST, BURST)
    after = operator.webhook_stats(SOURCE)
    assert after["waiting"] == 0
    assert after["accepted"] - before["accepted"] == BURST
    assert after["loaded"] - before["loaded"] == BURST
    refused = {reason: after["refused"].get(reason, 0) - before["refused"].get(reason, 0)
               for reason in after["refused"]}
    assert {reason: count for reason, count in refused.items() if count} == {
        reason: count for (_, reason), count in expected_refusals.items()}
    rate = BURST / (first.seconds + second.seconds)
    retried = first.retried + second.retried
    print(f"\nburst: {BURST} accepted at {rate:.0f} deliveries/s (32 concurrent senders; answers retried: "
          f"{dict(retried) or 'none'}), refused by reason {dict(sorted(refused.items()))}, every row in the "
          f"warehouse {time.monotonic() - started:.0f} s after Dagster was back")


@dataclasses.dataclass
class OneBatch:
    """What the two default-batch tests sent, one right after the other, so one batch window serves both."""
    repeated: Delivery  # one delivery, sent five times
    repeated_answers: collections.Counter
    repeated_sent: float  # time.monotonic() before its first send
    github: list[Delivery]
    github_answers: dict
    github_accepted: list[str]
    github_loaded_before: int
    stripe: list[Delivery]
    stripe_answers: collections.Counter
    last_accepted: float


@pytest.fixture(scope="module")
def one_default_batch(stack, operator) -> OneBatch:
    """Sends the deliveries of the two tests that wait out the default batch window (500 deliveries or 60 s), in
    one window: a lone repeated delivery, then GitHub's published examples and Stripe events. Run after the burst
    test (which counts the deliveries it alone sends), since a module fixture starts with its first user."""
    secret = stack.tokens()[LOCAL_WEBHOOK_SECRET]
    if operator.source(STRIPE_SOURCE) is None:
        operator.create_source(stripe_definition())
    github_loaded_before = operator.webhook_stats(SOURCE)["loaded"]
    repeated = github_delivery(secret, 42, "issues")
    repeated_sent = time.monotonic()
    repeated_summary = send(hook_url(stack), [repeated] * 5, concurrency=1)
    github = github_example_deliveries(secret)
    stripe = [stripe_delivery(secret, event_id, kind, body) for event_id, kind, body in stripe_events(per_type=5)]
    sent_github = send(hook_url(stack), github, concurrency=8)
    sent_stripe = send(hook_url(stack, STRIPE_SOURCE), stripe, concurrency=8)
    return OneBatch(repeated, repeated_summary.answers, repeated_sent, github, sent_github.answers,
                    sent_github.accepted_ids, github_loaded_before, stripe, sent_stripe.answers, time.monotonic())


def test_a_delivery_sent_five_times_is_one_row_at_default_batch_settings_and_a_replayed_hour_changes_nothing(
        stack, operator, one_default_batch):
    delivery, sent = one_default_batch.repeated, one_default_batch.repeated_sent
    assert one_default_batch.repeated_answers == collections.Counter({(200, "accepted"): 1, (200, "duplicate"): 4})
    # Default batch (500 deliveries or 60 s): a lone delivery waits out the 60 s, then a sensor tick starts a run.
    wait_until_loaded(stack, operator, [delivery.delivery_id], timeout=300)
    latency = time.monotonic() - sent
    print(f"\nwebhook delivery -> row at default batch settings (500 / 60 s): {latency:.1f} s")
    assert latency >= 60, "the sensor did not wait for the batch's max wait"
    assert loaded_rows(stack, [delivery.delivery_id]) == (1, 1)
    before = _table(stack)

    # Replay the delivery's hour from Dagster, as an operator does in the UI (a partition of the asset).
    received_at = next(row[1] for row in before if row[0] == delivery.delivery_id)
    hour = f"{received_at:%Y-%m-%d-%H}:00"
    mutation = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
    params = {"selector": {"repositoryLocationName": "dlt_platform", "repositoryName": "__repository__",
                           "jobName": f"load_{SOURCE}"},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": hour}]}}
    launched = stack.dagster_graphql(mutation, {"params": params})["data"]["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    dagster_run_id = launched["run"]["runId"]
    status = poll(lambda: _dagster_status(stack, dagster_run_id) in ("SUCCESS", "FAILURE") and
                  _dagster_status(stack, dagster_run_id), timeout=300, interval=1, what="the replay run")
    assert status == "SUCCESS"
    assert _table(stack) == before


def _dagster_status(stack, run_id: str) -> str:
    query = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""
    return stack.dagster_graphql(query, {"id": run_id})["data"]["runOrError"]["status"]


def _table(stack) -> list[tuple]:
    def read():
        try:
            with read_connection(stack.paths.data_dir / "warehouse.duckdb") as connection:
                # The github preset's shape: the bodies of `issues` deliveries in the issues table.
                return connection.execute(f"select d.webhook_delivery_id, d.webhook_received_at, d.webhook_event_type, "
                                          f"i.action, i.issue__number from {TABLE} d join {TABLE}__issues i "
                                          f"using (webhook_delivery_id) order by 1").fetchall()
        except duckdb.IOException:
            return None
    return poll(read, timeout=60, interval=0.5, what="the warehouse file")



STRIPE_SOURCE = "stripe_events"


def stripe_definition() -> dict:
    return {
        "source_id": STRIPE_SOURCE, "source_type": "webhook",
        "description": "Stripe events posted by the end-to-end test, signed with the stack's LOCAL_WEBHOOK_SECRET.",
        "destination": {"type": "duckdb", "dataset": "source_webhooks", "table": STRIPE_SOURCE,
                        "write_disposition": "merge"},
        "extract": {"signature": {"preset": "stripe", "secret_names": [LOCAL_WEBHOOK_SECRET]},
                    "table_per_event_type": True, "max_table_nesting": 2,
                    "batch": {"max_deliveries": 35, "max_wait_seconds": 5}},
    }


def counts_per_table(stack, tables: list[str], delivery_ids: list[str]) -> dict[str, tuple[int, int]] | None:
    """(rows, distinct delivery ids) per table, of these deliveries only (earlier tests' deliveries share the
    tables); None while the warehouse or a table is missing."""
    try:
        with read_connection(stack.paths.data_dir / "warehouse.duckdb") as connection:
            return {table: connection.execute(f"select count(*), count(distinct webhook_delivery_id) "
                                              f"from source_webhooks.{table} where webhook_delivery_id in "
                                              f"(select unnest(?::varchar[]))", [delivery_ids]).fetchone()
                    for table in tables}
    except (duckdb.CatalogException, duckdb.IOException):  # no table yet; no warehouse file before the first load
        return None


def test_githubs_published_examples_and_stripes_events_land_once_per_event_type_through_the_worker(
        stack, operator, one_default_batch):
    github, stripe = one_default_batch.github, one_default_batch.stripe
    github_before = one_default_batch.github_loaded_before

    # Five published examples repeat another's body byte for byte: GitHub signs only the body, so the Worker takes
    # such a copy under a new id for a replay (docs/webhooks.md, "Replays") and keeps the first.
    unique = list({d.body: d for d in reversed(github)}.values())[::-1]
    assert len(github) == 329 and len(unique) == 324

    assert one_default_batch.github_answers == collections.Counter({(200, "accepted"): 324, (200, "duplicate"): 5})
    assert one_default_batch.stripe_answers == collections.Counter({(200, "accepted"): 35})
    github = [d for d in github if d.delivery_id in set(one_default_batch.github_accepted)]
    assert len(github) == 324 and {d.event for d in github} == {d.event for d in unique}

    expected: dict[str, int] = collections.Counter(f"{SOURCE}__{d.event}" for d in github)
    expected.update(collections.Counter(f"{STRIPE_SOURCE}__{d.event.replace('.', '_')}" for d in stripe))
    started = one_default_batch.last_accepted

    delivery_ids = [d.delivery_id for d in [*github, *stripe]]

    def every_event_table_complete():
        counts = counts_per_table(stack, sorted(expected), delivery_ids)
        return counts if counts and all(counts[t] == (n, n) for t, n in expected.items()) else None
    counts = poll(every_event_table_complete, timeout=600, interval=2, what="every event type's table complete")
    assert len(expected) == 58 + 7 and counts == {table: (n, n) for table, n in expected.items()}
    # One row per delivery in each source's table, every delivery marked loaded in D1.
    rows, distinct = wait_until_loaded(stack, operator, [d.delivery_id for d in github], timeout=120)
    assert (rows, distinct) == (324, 324)
    assert operator.webhook_stats(SOURCE)["loaded"] - github_before >= 324
    poll(lambda: operator.webhook_stats(STRIPE_SOURCE)["loaded"] == 35, timeout=120, interval=1,
         what="the Stripe deliveries marked loaded")
    print(f"\n324 GitHub example deliveries (58 event types; 5 more were replays) and 35 Stripe events "
          f"(7 types) in their tables "
          f"{time.monotonic() - started:.0f} s after the last was accepted")
