"""A throw-away Postgres cluster for the tests: Debian's postgresql binaries (installed by `make`), a fresh data
directory, a free port on 127.0.0.1 and a socket directory of its own, run as the `postgres` user when the tests
run as root (initdb and postgres refuse root), torn down with the session."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from dlt_platform.local.loopback import free_port


def postgres_bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(path.split("/")[4]))
    if not found:
        raise RuntimeError("Postgres is not installed: run `make install-debian` (Debian's postgresql package)")
    return Path(found[-1]).parent



@dataclass
class PostgresCluster:
    root: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def _as_owner(self, *command: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)

    def start(self) -> PostgresCluster:
        bin_dir = postgres_bin_dir()
        for folder in ("data", "socket", "log"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self.root.chmod(0o755)  # the postgres user must reach its folders
            for path in [self.root, *self.root.iterdir()]:
                shutil.chown(path, "postgres", "postgres")
        subprocess.run(self._as_owner(str(bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                                      "-A", "trust", "--no-sync", "-E", "UTF8"),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        options = f"-p {self.port} -k {self.root / 'socket'} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(self._as_owner(str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-o", options,
                                      "-l", str(self.root / "log" / "postgres.log"), "-w", "-t", "60", "start"),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def stop(self) -> None:
        subprocess.run(self._as_owner(str(postgres_bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-m",
                                      "immediate", "-w", "stop"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def url(self, database: str) -> str:
        """The form every Postgres host hands out (no driver suffix): the product normalizes it."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}?sslmode=disable"

    def connect(self, database: str):
        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database)

    def create_database(self, name: str) -> str:
        connection = self.connect("postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'create database "{name}"')
        connection.close()
        return self.url(name)

    def query(self, database: str, sql: str, params: tuple = ()) -> list[tuple]:
        with self.connect(database) as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()


@pytest.fixture(scope="session")
def postgres():
    root = Path(tempfile.mkdtemp(prefix="dlt-platform-pg-"))
    cluster = PostgresCluster(root, free_port()).start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
