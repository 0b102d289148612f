"""Schemathesis fuzzes the Worker under wrangler dev from its own /openapi.json (which it validates on loading):
with the operator, read-only and internal tokens and without one, no answer may be a 5xx or fall outside the
document, invalid data must be refused, and nothing may be stored by requests that are refused.

Bounded for `make test` (1 to 3 examples per operation, fuzzing phase only; about a minute in all). Requests that
would change the shared stack run in negative mode (every request breaks the document, so every one must be
refused) or with a token that may not write.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator

SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance," \
         "negative_data_rejection"
# Not fuzzed: the admin page and the Dagster proxy (browser pages), webhook intake (signed by each provider) and run
# containers (which start processes). Schemathesis keeps only the last --exclude-path-regex: one pattern per case.
NOT_FUZZED = "admin|dagster|hooks|internal/run-containers"
READS = ["--exclude-method", "POST", "--exclude-method", "PUT", "--exclude-method", "DELETE"]
WRITES = ["--exclude-method", "GET"]
# /health answers 503 by design while the deployment lacks a secret (the local stack has no DAGSTER_PG_URL).
OPERATOR_ROUTES = rf"^/({NOT_FUZZED}|internal|health)"
INTERNAL_ROUTES = rf"^/({NOT_FUZZED}|sources|runs|webhooks|mcp|openapi|health)"
# (token, mode, examples per operation, filters) per case. A refused request (401, 403) needs few examples: the
# refusal comes before the body is read.
CASES = {
    "operator reads": ("DLT_OPERATOR_TOKEN", "all", 3, [*READS, "--exclude-path-regex", OPERATOR_ROUTES]),
    "operator writes, all invalid": ("DLT_OPERATOR_TOKEN", "negative", 2,
                                     [*WRITES, "--exclude-path-regex", OPERATOR_ROUTES]),
    "read-only token": ("DLT_READONLY_TOKEN", "all", 1, ["--exclude-path-regex", OPERATOR_ROUTES]),
    "no token": (None, "all", 1, ["--exclude-path-regex", rf"^/({NOT_FUZZED})"]),
    "internal reads": ("DLT_INTERNAL_TOKEN", "all", 2, [*READS, "--exclude-path-regex", INTERNAL_ROUTES]),
    "internal writes, all invalid": ("DLT_INTERNAL_TOKEN", "negative", 2,
                                     [*WRITES, "--exclude-path-regex", INTERNAL_ROUTES]),
}
# Refusals of invalid data: schemathesis's list plus 413, the body limit (MAX_BODY_KB) that answers before any
# route (and before authentication) reads a body.
CONFIG = """[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
"""
# Cases whose token must get past authentication (schemathesis warns when every answer was 401/403).
AUTHENTICATED = {"operator reads", "operator writes, all invalid", "internal reads", "internal writes, all invalid"}


def ledger(stack) -> tuple[list, set]:
    """Sources as the operator API lists them (retired too) and the runs requested through the API."""
    token = stack.tokens()["DLT_OPERATOR_TOKEN"]
    with httpx.Client(base_url=stack.worker_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        sources = client.get("/sources", params={"include_retired": "1"}).json()["sources"]
        runs = client.get("/runs", params={"limit": 200}).json()["runs"]
    # Scheduled runs of the stack's own sources may start meanwhile; the fuzzer can only make api/retry runs.
    made = {run["run_id"] for run in runs if run["trigger"] in ("api", "retry")}
    return sorted((s["source_id"], s["version"], s["enabled"], s["retired_at"]) for s in sources), made


def test_the_openapi_document_is_valid_openapi_3_1_and_public(stack):
    answer = httpx.get(f"{stack.worker_url}/openapi.json", timeout=30)
    assert answer.status_code == 200
    document = answer.json()
    validate(document, cls=OpenAPIV31SpecValidator)
    secrets = {name: value for name, value in stack.tokens().items() if re.search(r"TOKEN|KEY|SECRET", name)}
    assert {"DLT_OPERATOR_TOKEN", "DLT_READONLY_TOKEN", "DLT_INTERNAL_TOKEN"} <= set(secrets)
    for name, value in secrets.items():
        assert value not in answer.text, f"{name} is in the document"
    assert stack.worker_url not in answer.text


@pytest.mark.parametrize("case", list(CASES))
def test_the_api_holds_to_its_openapi_document_under_fuzzing(stack, case, tmp_path):
    token_name, mode, examples, filters = CASES[case]
    command = [SCHEMATHESIS, "run", f"{stack.worker_url}/openapi.json", "--url", stack.worker_url, "--no-color",
               "--phases", "fuzzing", "--max-examples", str(examples), "--seed", "23", "--mode", mode,
               "--checks", CHECKS,
               # Negative definitions are hard to draw from a schema this constrained; fewer is fine.
               "--suppress-health-check", "filter_too_much", "--request-timeout", "30", *filters]
    if token_name:
        command += ["-H", f"Authorization: Bearer {stack.tokens()[token_name]}"]
    before = ledger(stack)
    # Schemathesis reads schemathesis.toml and keeps its example database in the working directory: fresh per case.
    (tmp_path / "schemathesis.toml").write_text(CONFIG)
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    report = result.stdout[-6000:]
    assert result.returncode == 0, f"{case}:\n{report}\n{result.stderr[-2000:]}"
    tested = re.search(r"Tested: (\d+)", result.stdout)
    assert tested and int(tested.group(1)) >= 3, report
    if case in AUTHENTICATED:
        assert "Authentication failed" not in result.stdout, report
    # Every request that could write was refused: nothing was stored, nothing half-written.
    assert ledger(stack) == before, f"{case} changed the ledger"
