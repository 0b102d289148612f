"""Runs of different sources into the one local DuckDB file take turns instead of failing on DuckDB's lock; into
BigQuery (its emulator) they run side by side.

Real processes (`dlt-platform load`), a real DuckDB file and the loopback KV API. The collision is made certain,
not left to timing: the test holds the warehouse (its turn, or DuckDB's own lock as a DuckDB shell would) until
every load has said it is waiting, then lets go.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from dlt_platform.duckdb_warehouse import read_connection, warehouse_turn
from dlt_platform.source_types.cloudflare_kv.local_api import KVApiServer, KVApiState
from dlt_platform_tests.bigquery_fixtures import emulator_client
from dlt_platform_tests.conftest import ACCOUNT_ID, API_TOKEN

SOURCES = 8
RECORDS = 150
CLI = [str(Path(sys.executable).parent / "dlt-platform")]
WAIT_TIMEOUT = 240


@pytest.fixture
def eight_sources(tmp_path):
    state = KVApiState(ACCOUNT_ID, API_TOKEN)
    sources = []
    for number in range(SOURCES):
        namespace = state.add_namespace(f"ns_{number}", f"NAMESPACE_{number}")
        for record in range(RECORDS):
            namespace.put(f"item:{record:05d}", json.dumps({"id": record, "source": number, "amount": record * 1.5}),
                          None, None)
        sources.append({"source_id": f"kv_source_{number}", "source_type": "cloudflare_kv",
                        "destination": {"type": "duckdb", "dataset": "turns", "table": f"table_{number}",
                                        "write_disposition": "replace"},
                        "extract": {"namespace_id": f"ns_{number}", "namespace_title": f"NAMESPACE_{number}"}})
    config = tmp_path / "sources.json"
    config.write_text(json.dumps({"sources": sources}))
    with KVApiServer(state) as server:
        env = {**os.environ, "DLT_PLATFORM_CONFIG": str(config), "DLT_PLATFORM_DATA_DIR": str(tmp_path / "data"),
               "DLT_PLATFORM_DESTINATION": "duckdb", "CLOUDFLARE_API_BASE_URL": server.base_url,
               "CLOUDFLARE_ACCOUNT_ID": ACCOUNT_ID, "CLOUDFLARE_API_TOKEN": API_TOKEN}
        for name in ("DLT_PLATFORM_KV_TRANSPORT", "DLT_ORCHESTRATOR_URL", "DLT_PLATFORM_DUCKDB_WAIT_SECONDS"):
            env.pop(name, None)
        yield env, tmp_path / "data" / "warehouse.duckdb"


class Load:
    """One `dlt-platform load` process; its stderr lines arrive on a queue as they are written."""

    def __init__(self, env: dict, source_id: str) -> None:
        self.source_id = source_id
        self.process = subprocess.Popen([*CLI, "load", "--source-id", source_id], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for_line(self, text: str) -> str:
        while True:
            line = self.lines.get(timeout=WAIT_TIMEOUT)
            if line is None:
                raise AssertionError(f"{self.source_id} ended before saying {text!r}: {''.join(self.stderr)}")
            self.stderr.append(line)
            if text in line:
                return line

    def finish(self) -> tuple[int, str]:
        self.process.wait(timeout=WAIT_TIMEOUT)
        while (line := self.lines.get(timeout=WAIT_TIMEOUT)) is not None:
            self.stderr.append(line)
        return self.process.returncode, "".join(self.stderr)


def test_eight_loads_started_at_once_take_turns_and_all_land_every_row(eight_sources):
    env, database = eight_sources
    with warehouse_turn(database, wait_seconds=5, say=lambda _line: None):
        loads = [Load(env, f"kv_source_{number}") for number in range(SOURCES)]
        for load in loads:  # every load has reached the warehouse and found it taken
            assert "another run is using it" in load.wait_for_line("waiting for the DuckDB warehouse")
    outcomes = [load.finish() for load in loads]
    assert [code for code, _ in outcomes] == [0] * SOURCES, "\n".join(text for _, text in outcomes)
    with read_connection(database) as connection:
        counts = [connection.execute(f"select count(*), count(distinct cf_kv_key) from turns.table_{number}").fetchone()
                  for number in range(SOURCES)]
    assert counts == [(RECORDS, RECORDS)] * SOURCES


def test_a_duckdb_shell_holding_the_file_is_named_and_waited_for(eight_sources):
    env, database = eight_sources
    database.parent.mkdir(parents=True)
    shell = duckdb.connect(str(database))  # a DuckDB shell outside the platform, holding the file open
    try:
        impatient = Load({**env, "DLT_PLATFORM_DUCKDB_WAIT_SECONDS": "2"}, "kv_source_0")
        code, stderr = impatient.finish()
        assert code == 1
        assert f"locked by PID {os.getpid()}" in stderr and "DLT_PLATFORM_DUCKDB_WAIT_SECONDS" in stderr
        assert "Traceback" not in stderr

        patient = Load(env, "kv_source_1")
        assert f"held open by PID {os.getpid()}" in patient.wait_for_line("waiting for the DuckDB warehouse")
    finally:
        shell.close()
    code, stderr = patient.finish()
    assert code == 0, stderr
    with read_connection(database) as connection:
        assert connection.execute("select count(*) from turns.table_1").fetchone() == (RECORDS,)
        tables = {row[0] for row in connection.execute(
            "select table_name from information_schema.tables where table_schema = 'turns'").fetchall()}
    assert "table_0" not in tables  # the load that gave up wrote nothing


def test_a_turn_is_reentrant_in_one_process_and_readers_share(tmp_path):
    database = tmp_path / "warehouse.duckdb"
    with warehouse_turn(database, wait_seconds=1, say=lambda _line: None):
        with warehouse_turn(database, wait_seconds=1, say=lambda _line: None, read_only=True):
            pass  # a run's own asset check reads while the run holds the turn
    duckdb.connect(str(database)).close()
    with read_connection(database), read_connection(database):
        probe = subprocess.run([sys.executable, "-c", (
            "from pathlib import Path; from dlt_platform.duckdb_warehouse import read_connection\n"
            f"with read_connection(Path({str(database)!r}), wait_seconds=5) as c: print(c.execute('select 42').fetchone()[0])")],
            capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0 and probe.stdout.strip() == "42", probe.stderr


def test_eight_loads_at_once_into_the_bigquery_emulator_all_land_every_row(eight_sources, bigquery_emulator):
    """BigQuery takes no turns: the same eight loads at once, into the production warehouse's wire protocol."""
    env, _ = eight_sources
    env = {**env, "DLT_PLATFORM_DESTINATION": "bigquery", "BIGQUERY_EMULATOR_HOST": bigquery_emulator.url,
           "GOOGLE_CLOUD_PROJECT": bigquery_emulator.project_id,
           "NORMALIZE__DATA_WRITER__DISABLE_COMPRESSION": "true"}  # the emulator reads no gzip
    client = emulator_client(bigquery_emulator)
    client.delete_dataset("turns", delete_contents=True, not_found_ok=True)
    try:
        loads = [Load(env, f"kv_source_{number}") for number in range(SOURCES)]
        outcomes = [load.finish() for load in loads]
        assert [code for code, _ in outcomes] == [0] * SOURCES, "\n".join(text for _, text in outcomes)
        assert all("waiting for the DuckDB warehouse" not in text for _, text in outcomes)
        counts = [tuple(next(iter(client.query(
            f"select count(*), count(distinct cf_kv_key) from turns.table_{number}").result())))
            for number in range(SOURCES)]
        assert counts == [(RECORDS, RECORDS)] * SOURCES
    finally:
        client.delete_dataset("turns", delete_contents=True, not_found_ok=True)


READER_LOOP = """
import sys, time
from pathlib import Path
from dlt_platform.duckdb_warehouse import read_connection
database, stop = Path(sys.argv[1]), Path(sys.argv[2])
print("reading", flush=True)
while not stop.exists():
    with read_connection(database, wait_seconds=60) as connection:
        connection.execute("select 1").fetchone()
        time.sleep(0.3)
"""


def test_a_waiting_run_goes_before_readers_that_poll_back_to_back(tmp_path):
    # Two processes that read in overlapping turns keep a shared turn held without a gap: without the writer's
    # priority a run would wait for as long as they poll (seen: a webhook test's run starved by its own polling).
    database = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(database)).close()
    stop = tmp_path / "stop"
    readers = [subprocess.Popen([sys.executable, "-c", READER_LOOP, str(database), str(stop)], stdout=subprocess.PIPE,
                                text=True) for _ in range(2)]
    try:
        for reader in readers:
            assert reader.stdout.readline().strip() == "reading"
        said: list[str] = []
        with warehouse_turn(database, wait_seconds=20, say=said.append):
            with duckdb.connect(str(database)) as connection:  # the turn is this process's alone: DuckDB agrees
                connection.execute("create table written as select 1 as x")
        assert all(reader.poll() is None for reader in readers), "the readers went on polling meanwhile"
    finally:
        stop.touch()
        for reader in readers:
            reader.wait(timeout=60)
    assert [reader.returncode for reader in readers] == [0, 0]


def test_the_row_count_check_opens_the_file_only_in_its_turn(tmp_path):
    # A run that holds the turn must find the file free: another run's row-count check (dlt opens DuckDB for
    # writing even to count) waits for the turn instead of opening the file under it. Here the holder is a process
    # that holds the turn without opening the file, so only the turn can keep the check out.
    from dlt_platform.config import parse_definition
    from dlt_platform.orchestration.checks import table_row_count
    from dlt_platform.settings import Settings

    database = tmp_path / "data" / "warehouse.duckdb"
    database.parent.mkdir(parents=True)
    with duckdb.connect(str(database)) as connection:
        connection.execute("create schema turns; create table turns.table_0 as select 1 as id")
    settings = Settings(data_dir=tmp_path / "data", destination_override="duckdb", duckdb_wait_seconds=1)
    definition = parse_definition({"source_id": "kv_source_0", "source_type": "cloudflare_kv",
                                   "destination": {"type": "duckdb", "dataset": "turns", "table": "table_0"},
                                   "extract": {"namespace_id": "ns_0", "namespace_title": "NAMESPACE_0"}})
    assert table_row_count(definition, settings, "table_0") == 1  # the turn is free: it counts

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from dlt_platform.duckdb_warehouse import "
         "warehouse_turn\nwith warehouse_turn(Path(sys.argv[1]), 60):\n    print('held', flush=True)\n"
         "    sys.stdin.read()", str(database)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert table_row_count(definition, settings, "table_0") is None  # waited its second, never opened the file
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert table_row_count(definition, settings, "table_0") == 1
