"""rest_api sources in the code location: one multi-asset per source, an asset per resource table, lineage from
the API's host, checks and a job over every table; materialized through Dagster into DuckDB, whole or a subset."""

import dagster as dg
import pytest

from dlt_platform.orchestration.code_location import build_code_location
from dlt_platform_tests.orchestration.conftest import read_table
from dlt_platform_tests.rest_api_fixtures import (
    TOKEN_ENV,
    issues_extract,
    payments_extract,
    rest_definition,
    sample_api,  # noqa: F401 (fixture)
)

ISSUES = dg.AssetKey(["sample_api", "issues"])
COMMENTS = dg.AssetKey(["sample_api", "issue_comments"])
CHARGES = dg.AssetKey(["sample_api", "charges"])
CUSTOMERS = dg.AssetKey(["sample_api", "customers"])
EVENTS = dg.AssetKey(["sample_api", "events"])


@pytest.fixture
def definitions(sample_api):
    return [
        rest_definition(issues_extract(sample_api.url), staging={"raw_snapshot": True, "r2_prefix": "rest_api/issues"},
                        schedule="0 * * * *"),
        rest_definition(payments_extract(sample_api.url), source_id="sample_payments", freshness_hours=24),
    ]


@pytest.fixture
def location(definitions, settings):
    location, problems = build_code_location(definitions, settings)
    assert problems == []
    return location


def test_each_resource_is_an_asset_with_lineage_from_the_api_host(location, sample_api):
    graph = location.get_repository_def().asset_graph
    host = sample_api.url.removeprefix("http://").replace(":", "_").replace(".", "_")
    system = dg.AssetKey(["rest_api", host])
    snapshot = dg.AssetKey(["raw_staging", "rest_api", "issues"])
    assert {ISSUES, COMMENTS, CHARGES, CUSTOMERS, EVENTS, system, snapshot} <= set(graph.get_all_asset_keys())
    # One multi-asset per source: its tables are materialized by one op and can be selected apart.
    issues_node = graph.get(ISSUES)
    assert issues_node.assets_def.keys == {ISSUES, COMMENTS} and issues_node.assets_def.can_subset
    assert graph.get(CHARGES).assets_def.keys == {CHARGES, CUSTOMERS, EVENTS}
    assert graph.get(ISSUES).parent_keys == {snapshot} and graph.get(snapshot).parent_keys == {system}
    assert graph.get(CHARGES).parent_keys == {system}  # no snapshot kept: straight from the API
    metadata = graph.get(COMMENTS).metadata
    assert metadata["endpoint_path"] == "issues/{resources.issues.number}/comments"
    assert metadata["paginator"] == "header_link" and metadata["auth"] == "bearer"
    checks = {(key.asset_key, key.name) for key in graph.asset_check_keys}
    for table in (ISSUES, COMMENTS, CHARGES, CUSTOMERS, EVENTS):
        assert {(table, "row_count"), (table, "column_schema_change")} <= checks
    assert (CHARGES, "freshness_check") in checks  # freshness_hours
    repository = location.get_repository_def()
    assert repository.get_schedule_def("sample_issues_schedule").cron_schedule == "0 * * * *"
    assert repository.get_schedule_def("sample_issues_schedule").job_name == "load_sample_issues"


def test_a_subset_loads_only_the_selected_tables(location, settings, sample_api):
    instance = dg.DagsterInstance.ephemeral()
    job = location.get_repository_def().get_job("__ASSET_JOB")

    result = job.get_subset(asset_selection={CHARGES}).execute_in_process(instance=instance)

    assert result.success
    assert read_table(settings, "sample_api", "charges") == [(35,)]
    assert {r.path for r in sample_api.log} == {"/charges"}  # customers and events were not read
    materialization = instance.get_latest_materialization_event(CHARGES).asset_materialization
    assert materialization.metadata["rows_by_table"].value == {"charges": 35}
    assert instance.get_latest_materialization_event(CUSTOMERS) is None


def test_a_child_table_alone_reads_its_parent_without_loading_it(location, settings, sample_api):
    instance = dg.DagsterInstance.ephemeral()
    job = location.get_repository_def().get_job("__ASSET_JOB")

    result = job.get_subset(asset_selection={COMMENTS}).execute_in_process(instance=instance)

    assert result.success
    assert read_table(settings, "sample_api", "issue_comments") == [(90,)]
    assert instance.get_latest_materialization_event(ISSUES) is None


def test_the_whole_source_in_one_run_with_checks_and_its_snapshot(location, settings, sample_api):
    instance = dg.DagsterInstance.ephemeral()
    job = location.get_repository_def().get_job("load_sample_issues")

    result = job.execute_in_process(instance=instance)

    assert result.success
    assert read_table(settings, "sample_api", "issues") == [(45,)]
    assert read_table(settings, "sample_api", "issue_comments") == [(90,)]
    rows = {key: instance.get_latest_materialization_event(key).asset_materialization.metadata["rows_by_table"].value
            for key in (ISSUES, COMMENTS)}
    assert rows == {ISSUES: {"issues": 45, "issues__labels": 9}, COMMENTS: {"issue_comments": 90}}
    checks = {(e.asset_key, e.check_name): e for e in result.get_asset_check_evaluations()}
    assert checks[(COMMENTS, "row_count")].passed
    assert checks[(COMMENTS, "row_count")].metadata["table_row_count"].value == 90
    snapshot = instance.get_latest_materialization_event(dg.AssetKey(["raw_staging", "rest_api", "issues"]))
    assert snapshot.asset_materialization.metadata["snapshot_url"].value.endswith(".ndjson.gz")


def test_a_missing_secret_fails_the_run_naming_the_variable(location, settings, sample_api, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV)
    job = location.get_repository_def().get_job("load_sample_issues")

    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)

    assert not result.success
    failure = next(event for event in result.all_events if event.event_type_value == "STEP_FAILURE")
    assert f"environment variable {TOKEN_ENV} is not set" in failure.step_failure_data.error.message
    assert sample_api.log == []


def test_partitions_cut_the_incremental_resources_by_time_window(settings, sample_api):
    extract = payments_extract(sample_api.url)
    extract["partitions"] = {"step": "day", "start": "2026-01-01", "lookback": 2}
    definition = rest_definition(extract, source_id="sample_payments", schedule="5 * * * *")
    location, problems = build_code_location([definition], settings)
    assert problems == []
    repository = location.get_repository_def()
    partitions = repository.asset_graph.get(CHARGES).partitions_def
    assert isinstance(partitions, dg.DailyPartitionsDefinition) and partitions.get_first_partition_key() == "2026-01-01"

    instance = dg.DagsterInstance.ephemeral()
    result = repository.get_job("load_sample_payments").execute_in_process(instance=instance, partition_key="2026-01-01")

    assert result.success
    assert {r.query.get("updated_since") for r in sample_api.requests_to("/charges")} == {"2026-01-01T00:00:00Z"}
    metadata = instance.get_latest_materialization_event(CHARGES).asset_materialization.metadata
    assert metadata["window_start"].value.startswith("2026-01-01T00:00:00")
    assert metadata["write_disposition"].value == "merge"
    assert read_table(settings, "sample_api", "charges") == [(35,)]
