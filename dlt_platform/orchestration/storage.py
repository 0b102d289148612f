"""Instance storage chosen by environment: Postgres when DAGSTER_PG_URL is set, else SQLite.

dagster.yaml cannot branch on an environment variable, so it names this class as custom storage; the class
returns Dagster's own Postgres or SQLite storage. Every process (webserver, daemon, run worker) rehydrates the
instance through here with the same environment, so they all agree.
"""

import os
from pathlib import Path

from dagster import Field, Noneable, StringSource
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClass, ConfigurableClassData

from dlt_platform.settings import PROJECT_ROOT

PG_URL_ENV = "DAGSTER_PG_URL"


def sqlite_base_dir(configured: str | None = None) -> Path:
    """Configured dir, else $DAGSTER_HOME/storage, else .dagster/storage in the project (git-ignored)."""
    if configured:
        return Path(configured)
    home = os.environ.get("DAGSTER_HOME")
    return Path(home) / "storage" if home else PROJECT_ROOT / ".dagster" / "storage"


def storage_choice(config: dict) -> tuple[str, str]:
    """("postgres", url) or ("sqlite", base_dir) for the current environment."""
    url = os.environ.get(config.get("postgres_url_env") or PG_URL_ENV)
    if url:
        return "postgres", url
    return "sqlite", str(sqlite_base_dir(config.get("sqlite_base_dir")))


class PlatformStorage(DagsterStorage, ConfigurableClass):
    """A factory, never instantiated: Dagster checks the class is a DagsterStorage, then calls from_config_value."""

    @classmethod
    def config_type(cls):
        return {
            "postgres_url_env": Field(str, is_required=False, default_value=PG_URL_ENV),
            "sqlite_base_dir": Field(Noneable(StringSource), is_required=False, default_value=None),
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value):
        kind, where = storage_choice(config_value)
        if kind == "postgres":
            from dagster_postgres import DagsterPostgresStorage

            return DagsterPostgresStorage(postgres_url=where, inst_data=inst_data)
        return DagsterSqliteStorage.from_local(base_dir=where, inst_data=inst_data)
