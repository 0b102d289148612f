"""config/run_status_cases.json through the Python stand-in of the Worker's ledger (conftest.py WorkerLedger);
worker/test/run_status_cases.test.ts runs the same cases through the Worker's status machine and D1 ledger."""

import itertools
import json

import pytest

from dlt_platform.contract import RUN_STATUSES, TERMINAL_STATUSES
from dlt_platform.settings import PROJECT_ROOT
from dlt_platform_tests.orchestration.conftest import WorkerLedger

ALLOWED = json.loads((PROJECT_ROOT / "config" / "run_status_cases.json").read_text())["allowed"]


def test_the_cases_name_every_status_of_the_contract_and_final_ones_allow_nothing():
    assert list(ALLOWED) == list(RUN_STATUSES)
    assert {to for targets in ALLOWED.values() for to in targets} <= set(RUN_STATUSES)
    assert {status for status, targets in ALLOWED.items() if not targets} == TERMINAL_STATUSES


@pytest.mark.parametrize(("current", "wanted"), list(itertools.product(RUN_STATUSES, RUN_STATUSES)))
def test_the_stand_in_applies_a_status_change_as_the_cases_say(current, wanted):
    ledger = WorkerLedger()
    ledger.add_run("run_1", "orders")
    ledger.runs["run_1"].update(status=current, history=[current])

    code, body = ledger.apply("run_1", {"status": wanted})

    allowed = wanted in ALLOWED[current]
    assert (code, body) == (200, {"run_id": "run_1", "status": wanted if allowed else current, "applied": allowed})
    assert ledger.runs["run_1"]["history"] == ([current, wanted] if allowed else [current])
