"""The names both languages share are generated from dlt_platform/contract.py and used from there."""

import dagster as dg
import yaml

from dlt_platform import contract
from dlt_platform.settings import PROJECT_ROOT


def test_the_workers_contract_module_is_generated_from_the_python_one():
    committed = (PROJECT_ROOT / "worker" / "src" / "contract.ts").read_text(encoding="utf-8")
    assert committed == contract.render_contract(), "run `dlt-platform schema`"


def test_every_dagster_run_status_maps_to_a_ledger_status():
    """The Worker's reconciliation maps what Dagster says of a run through this table and refuses a status it
    does not know: a status Dagster adds (SUSPENDED came that way) must be mapped here."""
    assert set(contract.DAGSTER_TO_LEDGER_STATUS) == {status.value for status in dg.DagsterRunStatus}
    assert set(contract.DAGSTER_TO_LEDGER_STATUS.values()) <= set(contract.RUN_STATUSES) - {"queued", "launching",
                                                                                           "dead_lettered"}


def test_python_users_of_run_statuses_take_them_from_the_contract():
    from dlt_platform.orchestration.run_mirror import LEDGER_STATUS_BY_EVENT
    from dlt_platform_tests.orchestration.conftest import ALLOWED_TRANSITIONS, LEDGER_ORDER

    assert set(LEDGER_STATUS_BY_EVENT.values()) <= set(contract.RUN_STATUSES)
    # The Worker stand-in of the Dagster tests knows the contract's statuses, in its order, and the shared
    # transition cases leave a final status only for itself.
    assert list(LEDGER_ORDER) == list(contract.RUN_STATUSES) and set(ALLOWED_TRANSITIONS) == set(contract.RUN_STATUSES)
    assert all(ALLOWED_TRANSITIONS[status] <= {status} for status in contract.TERMINAL_STATUSES)
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["location_name"] == contract.REPOSITORY_LOCATION


def test_the_per_source_run_limit_of_the_instance_keys_on_the_contracts_tag():
    instance = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    limits = instance["concurrency"]["runs"]["tag_concurrency_limits"]
    assert contract.SOURCE_ID_TAG in [limit["key"] for limit in limits]
