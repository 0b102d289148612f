"""The production shape on this machine: the local stack (wrangler dev + `dlt-platform serve`) with Dagster's
history in a real Postgres, once per module, plus helpers to read Dagster's own tables."""

from __future__ import annotations

import json

import pytest

from dlt_platform.local.loopback import free_port
from dlt_platform.local.stack import LocalStack, StackPaths
from dlt_platform.settings import PROJECT_ROOT
from dlt_platform_tests.postgres_fixtures import postgres  # noqa: F401  (session fixture)

# Vendors every minute, so a schedule tick happens while the tests run; orders merged on cf_kv_key, so a retry
# after a crash shows whether rows were duplicated.
MINUTELY_SOURCE = "cloudflare_kv_vendors"
MERGED_SOURCE = "cloudflare_kv_orders"



def production_config(folder) -> str:
    document = json.loads((PROJECT_ROOT / "config" / "sources.json").read_text())
    for source in document["sources"]:
        if source["source_id"] == MINUTELY_SOURCE:
            source.update(enabled=True, schedule="* * * * *")
            source["destination"]["load_job_budget"] = 1500  # 1,440 runs a day: over the default budget of 1,000
        if source["source_id"] == MERGED_SOURCE:
            source["destination"]["write_disposition"] = "merge"
    path = folder / "sources.json"
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory, postgres):  # noqa: F811
    root = tmp_path_factory.mktemp("pg_stack")
    database = f"dagster_{root.name.replace('-', '_').lower()}"
    stack = LocalStack(paths=StackPaths(state_dir=root / "state", data_dir=root / "data"),
                       worker_port=free_port(), dagster_port=free_port(), config_path=production_config(root),
                       sample_api_port=free_port(),
                       extra_dagster_env={"DAGSTER_PG_URL": postgres.create_database(database)},
                       # These tests are of the control container's own restarts with runs in its processes
                       # (DLT_PLATFORM_RUN_CONTAINERS=0); runs outliving it in run containers are
                       # e2e/test_run_containers.py's, on Postgres in the deploy rehearsal.
                       run_containers=False)
    stack.database = database
    try:
        stack.start(say=lambda _text: None)
        yield stack
    finally:
        stack.stop_all()
