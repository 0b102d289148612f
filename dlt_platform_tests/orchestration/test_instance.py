"""The instance file serve picks, and every Postgres URL form users paste turned into one psycopg2 URL."""

import pytest
import yaml

from dlt_platform.orchestration.instance import (
    PG_URL_ENV,
    POSTGRES_INSTANCE,
    SQLITE_INSTANCE,
    normalize_postgres_url,
    prepare_dagster_home,
)
from dlt_platform.settings import SettingsError


@pytest.mark.parametrize("pasted, expected", [
    ("postgresql://dagster@db:5432/dagster", "postgresql+psycopg2://dagster@db:5432/dagster"),
    ("postgres://u:p%40ss@db.example.com/dagster", "postgresql+psycopg2://u:p%40ss@db.example.com/dagster"),
    ("postgresql+psycopg2://u:pw@db/dagster", "postgresql+psycopg2://u:pw@db/dagster"),
    ("postgresql+psycopg://u:pw@db:6543/dagster?sslmode=require",
     "postgresql+psycopg2://u:pw@db:6543/dagster?sslmode=require"),
    ("postgresql+asyncpg://u@db/dagster?sslmode=require&application_name=dlt",
     "postgresql+psycopg2://u@db/dagster?application_name=dlt&sslmode=require"),
    ("  postgresql://u@db/dagster\n", "postgresql+psycopg2://u@db/dagster"),
])
def test_every_postgres_url_form_becomes_a_psycopg2_url(pasted, expected):
    assert normalize_postgres_url(pasted) == expected


@pytest.mark.parametrize("bad, message", [
    ("mysql://u:secret@db/dagster", "expected a postgresql:// URL, got scheme 'mysql'"),
    ("not a url", "not a URL"),
    ("postgresql://u:secret@db", "names no database"),
    ("postgresql:///dagster", "names no host"),
])
def test_bad_urls_are_refused_naming_the_variable_without_the_password(bad, message):
    with pytest.raises(SettingsError, match=message) as error:
        normalize_postgres_url(bad)
    assert str(error.value).startswith(PG_URL_ENV) and "secret" not in str(error.value)


def test_the_instance_files_differ_only_in_storage():
    sqlite, postgres = (yaml.safe_load(path.read_text()) for path in (SQLITE_INSTANCE, POSTGRES_INSTANCE))
    assert "storage" not in sqlite  # Dagster's default: SQLite under $DAGSTER_HOME
    assert postgres.pop("storage") == {"postgres": {"postgres_url": {"env": PG_URL_ENV}}}
    assert postgres == sqlite
    assert sqlite["run_monitoring"]["enabled"] is True and sqlite["run_monitoring"]["max_resume_run_attempts"] == 0


def test_serve_writes_the_instance_file_for_the_environment(tmp_path):
    env = prepare_dagster_home({"DAGSTER_HOME": str(tmp_path / "home")})
    assert (tmp_path / "home" / "dagster.yaml").read_bytes() == SQLITE_INSTANCE.read_bytes()
    assert PG_URL_ENV not in env
    env = prepare_dagster_home({"DAGSTER_HOME": str(tmp_path / "home"), PG_URL_ENV: "postgres://u@db/dagster"})
    assert (tmp_path / "home" / "dagster.yaml").read_bytes() == POSTGRES_INSTANCE.read_bytes()
    assert env[PG_URL_ENV] == "postgresql+psycopg2://u@db/dagster"
