"""The load jobs a run sent per table (BigQuery's load-job quota counts them per table per UTC day), read from dlt's
load packages after real loads into DuckDB: one load job per load file per table, a failed load's jobs too."""

from __future__ import annotations

import dlt
import duckdb
import pytest

from dlt_platform.loads import failed_load_id, load_jobs_by_table


@pytest.fixture
def pipeline(tmp_path):
    return dlt.pipeline("load_jobs_test", pipelines_dir=str(tmp_path / "pipelines"),
                        destination=dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb")), dataset_name="ds")


def test_each_load_file_of_a_table_is_a_load_job(pipeline, monkeypatch):
    monkeypatch.setenv("NORMALIZE__DATA_WRITER__FILE_MAX_ITEMS", "10")  # 25 rows: three files
    info = pipeline.run([{"id": n} for n in range(25)], table_name="orders")
    # dlt's state table is loaded like any other: sources in one dataset share it.
    assert load_jobs_by_table(pipeline, info.loads_ids) == {"orders": 3, "_dlt_pipeline_state": 1}
    again = pipeline.run([{"id": 1}], table_name="orders")
    assert load_jobs_by_table(pipeline, [*info.loads_ids, *again.loads_ids]) == {"orders": 4, "_dlt_pipeline_state": 1}
    assert load_jobs_by_table(pipeline, ["1.0"]) == {}  # no such package


def test_a_load_that_failed_counts_its_jobs(pipeline, tmp_path):
    pipeline.run([{"id": 1}], table_name="first")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:  # every row breaks the check
        connection.execute("CREATE TABLE ds.strict (id BIGINT, x BIGINT CHECK (x < 0))")

    @dlt.resource(name="strict")
    def strict():
        yield [{"id": n, "x": n} for n in range(5)]

    @dlt.resource(name="fine")
    def fine():
        yield [{"id": n} for n in range(5)]

    with pytest.raises(Exception) as failure:
        pipeline.run([strict(), fine()])
    load_id = failed_load_id(failure.value)
    assert load_id is not None and load_id in pipeline.list_normalized_load_packages()
    # The failed job is back in new_jobs for its retry, and still counted: BigQuery counts failed jobs.
    assert load_jobs_by_table(pipeline, [], load_id) == {"strict": 1, "fine": 1}
    assert load_jobs_by_table(pipeline, [load_id]) == {"fine": 1}


def test_a_run_that_failed_before_loading_sent_no_load_job(pipeline):
    @dlt.resource(name="broken")
    def broken():
        yield {"id": 1}
        raise RuntimeError("the source broke")

    with pytest.raises(Exception) as failure:
        pipeline.run(broken())
    assert failed_load_id(failure.value) is None
