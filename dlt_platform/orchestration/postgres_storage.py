"""The storage of the Postgres instance file (dagster.postgres.yaml, `storage.custom`)."""

from __future__ import annotations

from dagster_postgres import DagsterPostgresStorage

from dlt_platform.orchestration.instance import normalize_postgres_url


class PlatformPostgresStorage(DagsterPostgresStorage):
    """dagster-postgres's run, event log and schedule storage (same configuration: `postgres_url` or
    `postgres_db`), with a `postgres_url` normalized first: `postgres://`, `postgresql://`, any driver suffix and
    query parameters such as `sslmode=require` all reach psycopg2. Dagster builds it in every process that opens
    the instance (webserver, daemon, run workers, the `dagster` CLI) from dagster.postgres.yaml."""

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        if config_value.get("postgres_url"):
            config_value = {**config_value, "postgres_url": normalize_postgres_url(config_value["postgres_url"])}
        return super().from_config_value(inst_data, config_value)
