"""The d1 sample source through the local stack: a run requested through the Worker loads the sample app's
tables `up` seeded into the local D1 (read through the Worker's D1 binding); after the app changes a row and adds
one, the next run moves only those."""

from __future__ import annotations

from dlt_platform.source_types.d1.local_api import SAMPLE_APP_ORDERS, SAMPLE_APP_USERS
from dlt_platform_tests.e2e.stack_helpers import d1_execute, warehouse


def test_a_d1_run_requested_through_the_worker_loads_the_sample_app_then_only_its_changes(stack, operator):
    first = operator.request_run("d1_sample_app")
    assert operator.wait_for_runs([first], timeout=300)[first]["status"] == "succeeded", operator.run(first).get("message")
    assert warehouse(stack, "select count(*), count(distinct id) from sample_app.app_users") == [
        (SAMPLE_APP_USERS, SAMPLE_APP_USERS)]
    assert warehouse(stack, "select count(*), max(updated_at) from sample_app.app_orders")[0][0] == SAMPLE_APP_ORDERS

    d1_execute(stack, "UPDATE app_orders SET status = 'refunded', updated_at = '2027-01-01T00:00:00Z' WHERE id = 7;"
                       "INSERT INTO app_users VALUES (999999, 'late@example.com', 'pro', '2027-01-01T00:00:00Z', "
                       "'2027-01-01T00:00:00Z');")
    try:
        again = operator.request_run("d1_sample_app")
        run = operator.wait_for_runs([again], timeout=300)[again]
        assert run["status"] == "succeeded", operator.run(again).get("message")
        assert run["rows_loaded"] == 2, run
        assert warehouse(stack, "select status from sample_app.app_orders where id = 7") == [("refunded",)]
        assert warehouse(stack, "select count(*) from sample_app.app_orders") == [(SAMPLE_APP_ORDERS,)]
    finally:  # the session's stack is shared: the app goes back to its seeded rows
        d1_execute(stack, "DELETE FROM app_users WHERE id = 999999; "
                           "UPDATE app_orders SET status = 'paid' WHERE id = 7;")
