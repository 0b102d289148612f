"""The names both languages share are generated from dlt_platform/contract.py and used from there."""

import yaml

from dlt_platform import contract
from dlt_platform.settings import PROJECT_ROOT


def test_the_workers_contract_module_is_generated_from_the_python_one():
    committed = (PROJECT_ROOT / "worker" / "src" / "contract.ts").read_text(encoding="utf-8")
    assert committed == contract.render_contract(), "run `dlt-platform schema`"


def test_the_contract_names_what_the_platform_uses():
    assert "webhook" in contract.TRIGGERS
    assert contract.TERMINAL_STATUSES < set(contract.RUN_STATUSES)
    assert set(contract.DAGSTER_TO_LEDGER_STATUS.values()) <= set(contract.RUN_STATUSES)
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["python_module"]["location_name"] == contract.REPOSITORY_LOCATION


def test_the_per_source_run_limit_of_the_instance_keys_on_the_contracts_tag():
    instance = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    limits = instance["concurrency"]["runs"]["tag_concurrency_limits"]
    assert contract.SOURCE_ID_TAG in [limit["key"] for limit in limits]
