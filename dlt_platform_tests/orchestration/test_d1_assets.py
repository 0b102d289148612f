"""d1 sources in the code location: one multi-asset per source with an asset per table or query, lineage from
the database's node, checks, job and schedule; materialized through Dagster from the loopback D1 REST API into
DuckDB, whole or a subset; a source whose table is missing fails its run in one line."""

import dagster as dg
import pytest

from dlt_platform.orchestration.code_location import build_code_location
from dlt_platform_tests.d1_fixtures import DATABASE_ID, USER_INSERT, d1_definition, user_row
from dlt_platform_tests.orchestration.conftest import read_table

USERS = dg.AssetKey(["app", "users"])
EVENTS = dg.AssetKey(["app", "events"])
PRO_USERS = dg.AssetKey(["app", "pro_users"])
DATABASE = dg.AssetKey(["d1", "APP_DB"])


@pytest.fixture
def definition(d1_state):
    d1_state.executemany(DATABASE_ID, USER_INSERT, [user_row(i) for i in range(1, 31)])
    d1_state.executemany(DATABASE_ID, "INSERT INTO events VALUES (?, ?)", [("signup", "{}")] * 4)
    data = d1_definition([{"name": "users", "cursor": "updated_at"},
                          {"name": "events", "cursor": "rowid", "write_disposition": "append"}],
                         [{"name": "pro_users", "primary_key": ["id"],
                           "sql": "SELECT id, email FROM users WHERE json_extract(profile, '$.plan') = 'pro'"}])
    return data.model_copy(update={"schedule": "15 * * * *", "freshness_hours": 2.0})


@pytest.fixture
def location(definition, d1_settings):
    location, problems = build_code_location([definition], d1_settings)
    assert problems == []
    return location


def test_each_table_is_an_asset_downstream_of_its_database(location, d1_state):
    statements_before = len(d1_state.statements)
    graph = location.get_repository_def().asset_graph
    assert {USERS, EVENTS, PRO_USERS, DATABASE} <= set(graph.get_all_asset_keys())
    node = graph.get(USERS)
    assert node.assets_def.keys == {USERS, EVENTS, PRO_USERS} and node.assets_def.can_subset
    assert all(graph.get(key).parent_keys == {DATABASE} for key in (USERS, EVENTS, PRO_USERS))
    assert graph.get(USERS).metadata["incremental_cursor"] == "updated_at"
    assert graph.get(PRO_USERS).metadata["d1_query"].startswith("SELECT id, email")
    checks = {(key.asset_key, key.name) for key in graph.asset_check_keys}
    assert {(USERS, "row_count"), (EVENTS, "row_count"), (PRO_USERS, "freshness_check")} <= checks
    repository = location.get_repository_def()
    assert repository.get_schedule_def("app_d1_schedule").cron_schedule == "15 * * * *"
    assert len(d1_state.statements) == statements_before  # describing the assets read nothing from D1


def test_the_job_loads_every_table_and_a_subset_only_its_own(location, d1_settings, d1_state):
    instance = dg.DagsterInstance.ephemeral()
    job = location.get_repository_def().get_job("__ASSET_JOB")

    assert job.get_subset(asset_selection={EVENTS}).execute_in_process(instance=instance).success
    assert read_table(d1_settings, "app", "events") == [(4,)]
    assert not any('FROM "users"' in sql and "SELECT * FROM (SELECT" in sql for sql in d1_state.statements)

    result = job.execute_in_process(instance=instance)
    assert result.success
    assert read_table(d1_settings, "app", "users") == [(30,)]
    assert read_table(d1_settings, "app", "pro_users") == [(10,)]
    assert read_table(d1_settings, "app", "events") == [(4,)]  # appended once: the rowid cursor moved on
    materialization = instance.get_latest_materialization_event(USERS).asset_materialization
    assert materialization.metadata["rows_by_table"].value == {"users": 30}
    assert materialization.metadata["write_disposition"].value == "merge"


def test_a_missing_table_fails_the_run_in_one_line(d1_settings):
    definition = d1_definition([{"name": "invoices"}])
    location, problems = build_code_location([definition], d1_settings)
    assert problems == []  # the code location never reads D1: the run finds out
    job = location.get_repository_def().get_job("__ASSET_JOB")
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    failure = next(event for event in result.all_events if event.event_type_value == "STEP_FAILURE")
    description = failure.step_failure_data.user_failure_data.description
    assert "no such table: invoices" in description and "\n" not in description
