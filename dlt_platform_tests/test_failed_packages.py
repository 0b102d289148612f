"""A load package left pending is tried once more; failing the same way again, it is set aside (kept, named,
aborted with dlt) and the pipeline loads new data. The failure here is a real transient one: another process
holds the DuckDB file's write lock."""

from __future__ import annotations

import json
import subprocess
import sys

import dlt
import duckdb
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from dlt_platform import failed_packages
from dlt_platform.loads import finish_pending_loads, pending_packages

LOCK_HOLDER = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
"""


@pytest.fixture
def pipeline(tmp_path):
    return dlt.pipeline(pipeline_name="orders_kv", pipelines_dir=str(tmp_path / "pipelines"),
                        destination=dlt.destinations.duckdb(credentials=str(tmp_path / "warehouse.duckdb")),
                        dataset_name="source_test")


def pending_package(pipeline) -> str:
    """A normalized package that was never loaded, as a run that failed at its load step leaves one."""
    pipeline.extract(dlt.resource([{"id": n, "sku": f"s{n}"} for n in range(3)], name="orders"))
    pipeline.normalize()
    [load_id] = pipeline.list_normalized_load_packages()
    return load_id


@pytest.fixture
def locked_warehouse(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(tmp_path / "warehouse.duckdb")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    yield holder
    if holder.poll() is None:
        holder.stdin.close()
        holder.wait(timeout=30)


def release(holder) -> None:
    holder.stdin.close()
    holder.wait(timeout=30)


def test_a_package_failing_the_same_way_twice_is_set_aside_and_new_data_loads(pipeline, tmp_path, locked_warehouse):
    load_id = pending_package(pipeline)
    said: list[str] = []

    # First attempt: a failure a retry may fix (the file is busy). The run fails; the package stays pending.
    with pytest.raises(PipelineStepFailed, match="(?i)lock"):
        finish_pending_loads(pipeline, say=said.append)
    assert pending_packages(pipeline) == [load_id]
    assert failed_packages.set_aside_packages(tmp_path, "orders_kv") == []

    # Second attempt fails the same way: set aside, and the run goes on.
    assert finish_pending_loads(pipeline, say=said.append) == []
    assert pending_packages(pipeline) == []
    [aside] = failed_packages.set_aside_packages(tmp_path, "orders_kv")
    assert aside.load_id == load_id and aside.path == tmp_path / "failed_packages" / "orders_kv" / load_id
    assert "lock" in aside.reason.lower() and "\n" not in aside.reason
    manifest = json.loads((aside.path / failed_packages.MANIFEST).read_text())
    assert manifest["source_id"] == "orders_kv" and manifest["load_id"] == load_id
    assert any(path.name.startswith("orders.") for path in aside.path.rglob("*"))  # the load file, kept
    assert said[-1].startswith(f"orders_kv: load package {load_id} set aside in {aside.path}: ")

    release(locked_warehouse)
    info = pipeline.run(dlt.resource([{"id": 9, "sku": "new"}], name="orders"))
    assert info.loads_ids and not pending_packages(pipeline)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as connection:
        assert connection.execute("select id, sku from source_test.orders").fetchall() == [(9, "new")]


def test_a_package_that_loads_on_its_second_try_is_not_set_aside(pipeline, tmp_path, locked_warehouse):
    load_id = pending_package(pipeline)
    with pytest.raises(PipelineStepFailed):
        finish_pending_loads(pipeline, say=lambda _line: None)
    release(locked_warehouse)
    assert finish_pending_loads(pipeline, say=lambda _line: None) == [load_id]
    assert failed_packages.set_aside_packages(tmp_path, "orders_kv") == []
    assert not (tmp_path / "failed_packages" / "orders_kv" / failed_packages.LAST_FAILURE).exists()


def test_a_working_folder_left_partly_deleted_is_dropped_and_the_next_run_loads(pipeline, tmp_path):
    # What a run SIGKILLed during dagster-dlt's `Pipeline.drop()` left in CI: `load/.version` and `load/loaded`
    # kept, `load/new` and `load/normalized` gone; every later run of the source failed on listing its packages.
    pipeline.run(dlt.resource([{"id": 1, "sku": "first"}], name="orders", primary_key="id",
                              write_disposition="merge"))
    load_dir = tmp_path / "pipelines" / "orders_kv" / "load"
    for folder in ("new", "normalized"):
        (load_dir / folder).rmdir()
    assert (load_dir / ".version").exists()
    with pytest.raises(FileNotFoundError):
        pending_packages(pipeline)

    said: list[str] = []
    assert finish_pending_loads(pipeline, say=said.append) == []
    assert said == [f"orders_kv: its working folder was left partly deleted by an interrupted run "
                    f"({load_dir / 'normalized'}/. is missing); dropping it as that run did"]
    assert pending_packages(pipeline) == []
    info = pipeline.run(dlt.resource([{"id": 2, "sku": "second"}], name="orders", primary_key="id",
                                     write_disposition="merge"))
    assert info.loads_ids and not pending_packages(pipeline)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as connection:
        assert connection.execute("select id, sku from source_test.orders order by id").fetchall() == [
            (1, "first"), (2, "second")]
