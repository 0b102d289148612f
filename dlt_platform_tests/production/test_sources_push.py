"""Sources as code against the Worker in wrangler dev: `sources push` creates, versions and (with --prune)
retires; a second push changes nothing; a concurrent edit is refused; `sources pull` and `sources diff`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlt_platform.cli.app import UsageError
from dlt_platform.cli.sources import apply_plan, plan_push
from dlt_platform.local.loopback import free_port
from dlt_platform.operator_client import OperatorClient
from dlt_platform.settings import PROJECT_ROOT
from dlt_platform_tests.production.release import WranglerDev, make_release, wrangler, write_dev_vars

OPERATOR_TOKEN = "sources-push-operator-token"


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    release = make_release(tmp_path_factory.mktemp("sources_push") / "release")
    # No Dagster behind it: the Worker's reload calls after a change fail quietly in the background.
    # The sample rest_api source reads the sample API on loopback, which the Worker refuses unless allowed.
    write_dev_vars(release, {"DLT_OPERATOR_TOKEN": OPERATOR_TOKEN, "DLT_INTERNAL_TOKEN": "internal",
                             "DAGSTER_URL": f"http://127.0.0.1:{free_port()}",
                             "DLT_PLATFORM_ALLOW_PRIVATE_HOSTS": "127.0.0.1:8790"})
    migrated = wrangler(release, "d1", "migrations", "apply", "DB", "--local")
    assert migrated.returncode == 0, migrated.stderr
    dev = WranglerDev(release, free_port(), release / "wrangler-dev.log").start()
    try:
        yield dev
    finally:
        dev.stop()


def cli(worker: WranglerDev, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DLT_ORCHESTRATOR_URL": worker.url, "DLT_OPERATOR_TOKEN": OPERATOR_TOKEN, "COLUMNS": "200"}
    return subprocess.run([str(Path(sys.executable).parent / "dlt-platform"), *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=worker.release)


def sources_file(folder: Path, definitions: list[dict]) -> Path:
    path = folder / "sources.json"
    path.write_text(json.dumps({"sources": definitions}, indent=2))
    return path


def sample_definitions() -> list[dict]:
    return json.loads((PROJECT_ROOT / "config" / "sources.json").read_text())["sources"]


def copy_as(definition: dict, source_id: str) -> dict:
    """A copy under a new id, loading a table of its own (a table belongs to one source)."""
    return {**definition, "source_id": source_id, "destination": {**definition["destination"], "table": source_id}}


def stored(worker: WranglerDev, include_retired: bool = True) -> dict[str, dict]:
    with OperatorClient(worker.url, OPERATOR_TOKEN) as client:
        return {record["source_id"]: record for record in client.sources(include_retired=include_retired)}


def test_push_creates_then_changes_nothing_then_versions_what_changed(worker, tmp_path):
    definitions = sample_definitions()
    path = sources_file(tmp_path, definitions)

    dry = cli(worker, "sources", "push", "--file", str(path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would create {definitions[0]['source_id']}" in dry.stdout and stored(worker) == {}

    first = cli(worker, "sources", "push", "--file", str(path))
    assert first.returncode == 0, first.stderr
    assert f"{len(definitions)} created, 0 updated" in first.stdout
    versions = {source_id: record["version"] for source_id, record in stored(worker).items()}
    assert set(versions) == {definition["source_id"] for definition in definitions}

    second = cli(worker, "sources", "push", "--file", str(path))
    assert second.returncode == 0, second.stderr
    assert f"0 created, 0 updated, 0 retired, {len(definitions)} unchanged" in second.stdout
    assert {source_id: record["version"] for source_id, record in stored(worker).items()} == versions
    assert cli(worker, "sources", "diff", "--file", str(path)).returncode == 0

    definitions[0]["description"] = "Orders, described anew."
    sources_file(tmp_path, definitions)
    changed_id = definitions[0]["source_id"]
    drift = cli(worker, "sources", "diff", "--file", str(path))
    assert drift.returncode == 1 and f"would update {changed_id}" in drift.stdout
    third = cli(worker, "sources", "push", "--file", str(path))
    assert third.returncode == 0, third.stderr
    assert f"update {changed_id} (version {versions[changed_id]} -> {versions[changed_id] + 1})" in third.stdout
    assert '+  "description": "Orders, described anew."' in third.stdout
    after = stored(worker)
    assert after[changed_id]["version"] == versions[changed_id] + 1
    assert after[changed_id]["definition"]["description"] == "Orders, described anew."
    assert all(after[source_id]["version"] == version
               for source_id, version in versions.items() if source_id != changed_id)


def test_a_concurrent_edit_is_refused(worker):
    definition = copy_as(sample_definitions()[1], "concurrent_leads")
    with OperatorClient(worker.url, OPERATOR_TOKEN) as client:
        client.create_source(definition)
        changed = {**definition, "description": "edited by the push"}
        plan = plan_push([changed], client.sources(include_retired=True))
        assert [d["source_id"] for d, _record in plan.update] == ["concurrent_leads"]
        # Someone else edits the source between the push's read and its write.
        current = client.source("concurrent_leads")
        client.update_source("concurrent_leads", current["version"], {**definition, "description": "edited elsewhere"})
        with pytest.raises(UsageError, match="concurrent_leads: changed at the Worker while pushing"):
            apply_plan(client, plan, prune=False)
        assert client.source("concurrent_leads")["definition"]["description"] == "edited elsewhere"


def test_prune_retires_what_the_file_no_longer_holds_and_pull_writes_d1_back(worker, tmp_path):
    definition = copy_as(sample_definitions()[2], "prune_me")
    with OperatorClient(worker.url, OPERATOR_TOKEN) as client:
        client.create_source(definition)
    everything_else = [record["definition"] for record in stored(worker, include_retired=False).values()
                       if record["source_id"] != "prune_me"]
    path = sources_file(tmp_path, everything_else)

    kept = cli(worker, "sources", "push", "--file", str(path))
    assert kept.returncode == 0 and "keep prune_me: in D1, not in the file (--prune retires it)" in kept.stdout
    assert stored(worker)["prune_me"]["retired_at"] is None

    pruned = cli(worker, "sources", "push", "--file", str(path), "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert "retire prune_me (not in the file)" in pruned.stdout and ", 1 retired," in pruned.stdout
    assert stored(worker)["prune_me"]["retired_at"] is not None
    assert cli(worker, "sources", "diff", "--file", str(path)).returncode == 0

    comeback = sources_file(tmp_path, [*everything_else, definition])
    refused = cli(worker, "sources", "push", "--file", str(comeback))
    assert refused.returncode == 1 and "holds retired sources: prune_me" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    pulled = tmp_path / "pulled.json"
    result = cli(worker, "sources", "pull", "--file", str(pulled))
    assert result.returncode == 0, result.stderr
    pulled_ids = [d["source_id"] for d in json.loads(pulled.read_text())["sources"]]
    assert sorted(pulled_ids) == sorted(stored(worker, include_retired=False)) and "prune_me" not in pulled_ids
    # The pulled file is what D1 holds: pushing it back changes nothing.
    again = cli(worker, "sources", "push", "--file", str(pulled))
    assert again.returncode == 0 and "\n0 created, 0 updated, 0 retired," in f"\n{again.stdout}"


def test_plain_sources_still_lists_the_file(worker, tmp_path):
    path = sources_file(tmp_path, sample_definitions())
    for args in (("sources",), ("sources", "list")):
        listed = cli(worker, "--config", str(path), *args)
        assert listed.returncode == 0, listed.stderr
        assert all(d["source_id"] in listed.stdout for d in sample_definitions())
