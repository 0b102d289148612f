"""Schema contracts through Dagster into DuckDB over the loopback KV API: `freeze` refuses a new column in one line
and loads nothing, without blocking the next run; `discard_row` drops such rows and counts them."""

import json

import dagster as dg
import pytest

from dlt_platform.config import DefinitionError, parse_definition
from dlt_platform.loads import SchemaContractViolation, build_pipeline, run_load
from dlt_platform.orchestration.code_location import build_platform_definitions
from dlt_platform.source_types.cloudflare_kv.local_api import KVApiServer, KVApiState
from dlt_platform_tests.orchestration.conftest import ACCOUNT_ID, API_TOKEN, read_table

KEY = dg.AssetKey(["contracts", "contract_kv"])


def definition(contract):
    return parse_definition({
        "source_id": "contract_kv", "source_type": "cloudflare_kv", "schema_contract": contract,
        "destination": {"type": "duckdb", "dataset": "contracts", "table": "contract_kv", "write_disposition": "merge"},
        "extract": {"namespace_id": "ns_contract", "namespace_title": "CONTRACT_KV"},
    })


@pytest.fixture
def namespace():
    state = KVApiState(ACCOUNT_ID, API_TOKEN)
    space = state.add_namespace("ns_contract", "CONTRACT_KV")
    for number in range(5):
        space.put(f"item:{number}", json.dumps({"id": number, "name": f"item {number}"}), None, None)
    with KVApiServer(state) as server:
        yield space, server


@pytest.fixture
def contract_settings(settings, namespace):
    return settings.__class__(**{**settings.__dict__, "cloudflare_api_base_url": namespace[1].base_url})


def materialize(contract, settings, instance):
    platform = build_platform_definitions([definition(contract)], settings)
    job = platform.get_repository_def().get_job("__ASSET_JOB")
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    result.instance = instance
    return result


def contract_evaluation(result) -> dg.AssetCheckEvaluation:
    """The run's evaluation of the contract check (a refused load logs it from the asset step itself)."""
    records = result.dagster_run and result.instance.get_records_for_run(
        result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    return next(e for e in evaluations if e.check_name == "schema_contract")


def step_failure(result) -> str:
    event = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return event.step_failure_data.user_failure_data.description


def test_freeze_refuses_a_new_column_loads_nothing_and_does_not_block_the_next_run(contract_settings, namespace):
    space, _ = namespace
    instance = dg.DagsterInstance.ephemeral()
    first = materialize({"columns": "freeze"}, contract_settings, instance)
    assert first.success and contract_evaluation(first).passed  # a table's first load adds its columns

    space.put("item:99", json.dumps({"id": 99, "name": "new", "coupon_code": "X1"}), None, None)
    space.put("item:1", json.dumps({"id": 1, "name": "renamed"}), None, None)
    refused = materialize({"columns": "freeze"}, contract_settings, instance)
    assert not refused.success
    message = step_failure(refused)
    assert message == ("schema contract (columns: freeze) refused new column `coupon_code` of table `contract_kv`; "
                       "nothing was loaded")
    evaluation = contract_evaluation(refused)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert read_table(contract_settings, "contracts", "contract_kv", "count(*), count(*) filter (name = 'renamed')") \
        == [(5, 0)]  # nothing of the refused load, not even the changed row
    pipeline = build_pipeline(definition({"columns": "freeze"}), contract_settings)
    assert pipeline.list_extracted_load_packages() == [] and pipeline.list_normalized_load_packages() == []

    space.delete("item:99")
    again = materialize({"columns": "freeze"}, contract_settings, instance)
    assert again.success
    assert read_table(contract_settings, "contracts", "contract_kv", "count(*), count(*) filter (name = 'renamed')") \
        == [(5, 1)]


def test_discard_row_drops_rows_with_a_new_column_and_counts_them(contract_settings, namespace):
    space, _ = namespace
    instance = dg.DagsterInstance.ephemeral()
    assert materialize({"columns": "discard_row"}, contract_settings, instance).success
    space.put("item:98", json.dumps({"id": 98, "name": "new", "coupon_code": "X1"}), None, None)
    space.put("item:99", json.dumps({"id": 99, "name": "plain"}), None, None)
    result = materialize({"columns": "discard_row"}, contract_settings, instance)
    assert result.success
    assert read_table(contract_settings, "contracts", "contract_kv", "count(*)") == [(6,)]
    metadata = instance.get_latest_materialization_event(KEY).asset_materialization.metadata
    assert metadata["rows_discarded_by_contract"].value == 1
    evaluation = contract_evaluation(result)
    assert evaluation.passed and evaluation.metadata["rows_discarded_by_contract"].value == 1


def test_the_cli_load_refuses_in_one_line(contract_settings, namespace):
    space, _ = namespace
    with pytest.raises(SchemaContractViolation, match=r"^schema contract \(tables: freeze\) refused new table "
                                                      r"`contract_kv`; nothing was loaded$"):
        run_load(definition("freeze"), contract_settings)  # "freeze" freezes tables too, the first load's
    frozen = {"columns": "freeze", "data_type": "freeze"}
    assert run_load(definition(frozen), contract_settings).rows_by_table == {"contract_kv": 5}
    space.put("item:97", json.dumps({"id": 97, "extra": {"nested": True}}), None, None)
    with pytest.raises(SchemaContractViolation, match=r"^schema contract \(columns: freeze\) refused new column "
                                                      r"`extra__nested` of table `contract_kv`"):
        run_load(definition(frozen), contract_settings)


def test_a_misspelt_mode_is_refused_naming_the_field():
    with pytest.raises(DefinitionError, match="schema_contract"):
        definition({"columns": "froze"})
