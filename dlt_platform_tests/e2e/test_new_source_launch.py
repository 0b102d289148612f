"""A source created through the Worker runs at once: Dagster loads it before the first launch, which waits for
the reload instead of failing and retrying."""

from __future__ import annotations

import datetime as dt
import time

from dlt_platform_tests.e2e.stack_helpers import new_definition, warehouse


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def dagster_has_asset(stack, path: list[str]) -> bool:
    query = "query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { __typename } }"
    return stack.dagster_graphql(query, {"key": {"path": path}})["data"]["assetNodeOrError"]["__typename"] == "AssetNode"


def test_a_run_requested_right_after_post_sources_starts_without_a_failed_launch(stack, operator):
    source_id = f"fresh_{int(time.time())}"
    created_at = dt.datetime.now(dt.UTC)
    operator.create_source(new_definition(source_id))
    run_id = operator.request_run(source_id)
    requested_after = (dt.datetime.now(dt.UTC) - created_at).total_seconds()
    # The case under test: the run is queued before Dagster has loaded the new source (a reload takes seconds).
    assert not dagster_has_asset(stack, ["source_fresh", f"{source_id}_t"])

    runs = operator.wait_for_runs([run_id], timeout=300)
    run = operator.run(run_id)
    assert runs[run_id]["status"] == "succeeded", run
    launch_failures = [event for event in run["events"] if (event["message"] or "").startswith("launch failed")]
    assert launch_failures == [], launch_failures
    assert [event["status"] for event in run["events"]].count("launching") >= 1
    started = parse_time(run["started_at"])
    [(rows,)] = warehouse(stack, f"select count(*) from source_fresh.{source_id}_t")
    assert rows == run["tables"][f"{source_id}_t"] and rows > 0
    for event in run["events"]:
        print(f"  +{(parse_time(event['at']) - created_at).total_seconds():5.1f} s {event['status']}: {event['message']}")
    print(f"POST /sources -> first run started: {(started - created_at).total_seconds():.1f} s "
          f"(run requested {requested_after:.2f} s after the source was created)")
