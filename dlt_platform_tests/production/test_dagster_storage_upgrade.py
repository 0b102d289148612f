"""A new image on the Postgres of the previous one: serve brings Dagster's storage to this Dagster's schema before
the webserver and the daemon start (`dagster instance migrate` semantics, DagsterInstance.upgrade())."""

from __future__ import annotations

import os

from dlt_platform.orchestration.instance import prepare_dagster_home
from dlt_platform.serve import create_storage

# Dagster's migration 048 (revision 7e2f3204cf8e, revising 6b7fb194ff9c) added concurrency_limits.using_default_limit:
# the database below is put back to how a Dagster from before it left it.
BEFORE_048 = "6b7fb194ff9c"


def test_serve_migrates_the_storage_an_older_dagster_left(tmp_path, postgres):
    database = f"dagster_upgrade_{tmp_path.name.replace('-', '_').lower()}"
    env = prepare_dagster_home({**os.environ, "DAGSTER_HOME": str(tmp_path / "home"),
                                "DAGSTER_PG_URL": postgres.create_database(database)})
    create_storage(env)
    head = postgres.query(database, "select version_num from alembic_version")
    assert head and head != [(BEFORE_048,)]

    with postgres.connect(database) as connection, connection.cursor() as cursor:
        cursor.execute("alter table concurrency_limits drop column using_default_limit")
        cursor.execute("update alembic_version set version_num = %s", (BEFORE_048,))

    create_storage(env)
    assert postgres.query(database, "select version_num from alembic_version") == head
    columns = {row[0] for row in postgres.query(
        database, "select column_name from information_schema.columns where table_name = 'concurrency_limits'")}
    assert "using_default_limit" in columns
