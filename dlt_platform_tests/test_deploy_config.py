"""The committed wrangler.toml deploys: `wrangler deploy --dry-run` validates and bundles it offline.

There is no Docker engine here, so WRANGLER_DOCKER_BIN points at a stand-in that records what wrangler asks of
Docker (and takes the Dockerfile it pipes in). The proxy variables point at a closed port and no Cloudflare
credentials are set, so the check proves it needs neither network nor an account.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dlt_platform.settings import PROJECT_ROOT

WRANGLER = PROJECT_ROOT / "node_modules" / ".bin" / "wrangler"
STAND_IN = """#!{python}
import json, sys
calls = {calls!r}
record = {{"argv": sys.argv[1:]}}
if "build" in sys.argv[1:2] and "-" in sys.argv:
    record["dockerfile"] = sys.stdin.read()
with open(calls, "a") as log:
    log.write(json.dumps(record) + "\\n")
"""


def dry_run(tmp_path: Path, config: Path) -> tuple[subprocess.CompletedProcess, list[dict]]:
    calls = tmp_path / "docker_calls.jsonl"
    docker = tmp_path / "docker"
    docker.write_text(STAND_IN.format(python=sys.executable, calls=str(calls)))
    docker.chmod(0o755)
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("CLOUDFLARE_") and name.lower() not in {"http_proxy", "https_proxy", "no_proxy"}}
    env.update(WRANGLER_DOCKER_BIN=str(docker), WRANGLER_SEND_METRICS="false", HTTP_PROXY="http://127.0.0.1:9",
               HTTPS_PROXY="http://127.0.0.1:9", WRANGLER_LOG_PATH=str(tmp_path / "logs"))
    result = subprocess.run([str(WRANGLER), "deploy", "--dry-run", "--config", str(config), "--outdir",
                             str(tmp_path / "bundle")], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                            timeout=180)
    recorded = [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
    return result, recorded


def test_the_committed_wrangler_config_deploys(tmp_path):
    result, docker_calls = dry_run(tmp_path, PROJECT_ROOT / "wrangler.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--dry-run: exiting now" in result.stdout
    assert (tmp_path / "bundle" / "index.js").stat().st_size > 10_000
    for binding in ("env.DB (dlt_control)", "env.JOBS (dlt-jobs-v2)", "env.RAW_STAGING (dlt-raw-staging)",
                    "env.DAGSTER (DagsterContainer)", "env.RUNNER (RunnerContainer)",
                    "env.RUNNER_LITE (RunnerLiteContainer)", "env.RUNNER_STANDARD_4 (RunnerStandard4Container)"):
        assert binding in result.stdout
    builds = [call for call in docker_calls if call["argv"][:1] == ["build"]]
    # wrangler builds the image once per container class: the control container and six runner classes.
    assert len(builds) == 7
    assert builds and builds[0]["dockerfile"] == (PROJECT_ROOT / "Dockerfile").read_text()
    assert str(PROJECT_ROOT) in builds[0]["argv"]  # the build context is the repository


@pytest.mark.parametrize("change, error", [
    (('class_name = "DagsterContainer"', 'class_name = "MissingContainer"'), "not exported"),
    (('main = "worker/src/index.ts"', 'main = "worker/src/missing.ts"'), "missing.ts"),
])
def test_a_config_that_would_not_deploy_fails_the_check(tmp_path, change, error):
    broken = PROJECT_ROOT / f".wrangler-check-{tmp_path.name}.toml"  # beside the original: relative paths hold
    broken.write_text((PROJECT_ROOT / "wrangler.toml").read_text().replace(*change))
    try:
        result, _calls = dry_run(tmp_path, broken)
    finally:
        broken.unlink()
    assert result.returncode != 0
    assert error in result.stdout + result.stderr


def test_deploy_refuses_the_sample_ids_before_running_anything(tmp_path):
    """The committed ids pass the dry run above; `dlt-platform deploy` refuses them before wrangler runs."""
    from dlt_platform.cli.deployment import SAMPLE_D1_ID, SAMPLE_KV_IDS, sample_ids

    committed = tomllib.loads((PROJECT_ROOT / "wrangler.toml").read_text())
    assert committed["d1_databases"][0]["database_id"] == SAMPLE_D1_ID
    assert {kv["binding"]: kv["id"] for kv in committed["kv_namespaces"]} == SAMPLE_KV_IDS
    (tmp_path / "wrangler.toml").write_text((PROJECT_ROOT / "wrangler.toml").read_text())
    # COLUMNS: the CLI's error console folds lines at 80 columns when stderr is not a terminal.
    env = {**os.environ, "DLT_ORCHESTRATOR_URL": "http://127.0.0.1:9", "DLT_OPERATOR_TOKEN": "token", "COLUMNS": "300"}
    result = subprocess.run([str(Path(sys.executable).parent / "dlt-platform"), "deploy"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == (
        "error: wrangler.toml: [[d1_databases]] DB database_id, [[kv_namespaces]] ORDERS_KV id, [[kv_namespaces]] "
        "LEADS_KV id, [[kv_namespaces]] VENDOR_KV id still the repository's sample ids; put your own "
        "(docs/deploy.md step 1) before deploying")
    own = {**committed, "d1_databases": [{**committed["d1_databases"][0], "database_id": "f" * 32}],
           "kv_namespaces": [{"binding": "ORDERS_KV", "id": "e" * 32}]}
    assert sample_ids(own) == []


# Cloudflare Containers' predefined instance types (vCPU, memory GiB, disk GB) and per-account limits of what runs
# at once (vCPU, memory GiB, disk GB), as published at developers.cloudflare.com/containers/platform/limits/.
INSTANCE_TYPES = {"lite": (1 / 16, 0.25, 2), "basic": (0.25, 1, 4), "standard-1": (0.5, 4, 8),
                  "standard-2": (1, 6, 12), "standard-3": (2, 8, 16), "standard-4": (4, 12, 20)}
ACCOUNT_LIMITS = (1500, 6 * 1024, 30_000)


def max_concurrent_runs(instance_file: str) -> int:
    import yaml

    document = yaml.safe_load((PROJECT_ROOT / instance_file).read_text())
    return document["concurrency"]["runs"]["max_concurrent_runs"]


def test_every_instance_type_has_a_runner_class_above_dagsters_cap_within_the_account_limits():
    import re
    import typing

    from dlt_platform.definition_base import InstanceType

    config = tomllib.loads((PROJECT_ROOT / "wrangler.toml").read_text())
    classes = {container["class_name"]: container for container in config["containers"]}
    bound = {binding["name"]: binding["class_name"] for binding in config["durable_objects"]["bindings"]}
    # The Worker's choice of binding per instance type (worker/src/run_containers.ts RUNNER_BINDINGS).
    source = (PROJECT_ROOT / "worker" / "src" / "run_containers.ts").read_text()
    table = re.search(r"RUNNER_BINDINGS = \{(.*?)\}", source, re.S)
    assert table, "RUNNER_BINDINGS not found in worker/src/run_containers.ts"
    worker_bindings = dict(re.findall(r'"?([\w-]+)"?: "(RUNNER\w*)"', table.group(1)))
    assert set(worker_bindings) == set(typing.get_args(InstanceType)) == set(INSTANCE_TYPES)
    assert worker_bindings["standard-1"] == "RUNNER"  # the default class, as before sizes
    for instance_type, binding in worker_bindings.items():
        assert classes[bound[binding]]["instance_type"] == instance_type, binding

    # One cap in both instance files; every runner class can hold all of it (every source may be of one size).
    cap = max_concurrent_runs("dagster.yaml")
    assert max_concurrent_runs("dagster.postgres.yaml") == cap
    runner_classes = [classes[bound[binding]] for binding in worker_bindings.values()]
    assert all(runner["max_instances"] >= cap for runner in runner_classes), cap
    # Every class at its max_instances at once (control container included) stays within the account's limits.
    totals = [sum(INSTANCE_TYPES[each["instance_type"]][resource] * each["max_instances"] for each in classes.values())
              for resource in range(3)]
    assert all(total <= limit for total, limit in zip(totals, ACCOUNT_LIMITS, strict=True)), totals
