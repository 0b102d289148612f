"""The instance file serve picks, every Postgres URL form users paste turned into one psycopg2 URL, and
Dagster's own CLI on the Postgres instance file with those URLs (the real `dagster` against a real Postgres)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from dlt_platform.orchestration.instance import (
    PG_URL_ENV,
    POSTGRES_INSTANCE,
    R2_VARIABLES,
    SQLITE_INSTANCE,
    normalize_postgres_url,
    prepare_dagster_home,
)
from dlt_platform.settings import PROJECT_ROOT, SettingsError
from dlt_platform_tests.postgres_fixtures import postgres  # noqa: F401  (session fixture)

BIN = Path(sys.executable).parent


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
    sqlite, postgres_file = (yaml.safe_load(path.read_text()) for path in (SQLITE_INSTANCE, POSTGRES_INSTANCE))
    assert "storage" not in sqlite  # Dagster's default: SQLite under $DAGSTER_HOME
    assert postgres_file.pop("storage") == {"custom": {
        "module": "dlt_platform.orchestration.postgres_storage", "class": "PlatformPostgresStorage",
        "config": {"postgres_url": {"env": PG_URL_ENV}}}}
    assert postgres_file == sqlite
    assert sqlite["run_monitoring"]["enabled"] is True and sqlite["run_monitoring"]["max_resume_run_attempts"] == 0


def test_serve_writes_the_instance_file_for_the_environment(tmp_path):
    env = prepare_dagster_home({"DAGSTER_HOME": str(tmp_path / "home")})
    assert (tmp_path / "home" / "dagster.yaml").read_bytes() == SQLITE_INSTANCE.read_bytes()
    assert PG_URL_ENV not in env
    env = prepare_dagster_home({"DAGSTER_HOME": str(tmp_path / "home"), PG_URL_ENV: "postgres://u@db/dagster"})
    assert (tmp_path / "home" / "dagster.yaml").read_bytes() == POSTGRES_INSTANCE.read_bytes()
    assert env[PG_URL_ENV] == "postgresql+psycopg2://u@db/dagster"


ONE_ASSET = """
import dagster


@dagster.asset
def rehearsal_asset() -> int:
    print("output of rehearsal_asset")
    return 1
"""


def dagster_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "dagster"), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=180, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("scheme, query", [("postgresql", ""), ("postgres", "?sslmode=prefer")])
def test_dagster_s_own_cli_runs_on_the_postgres_instance_file_with_the_urls_hosts_hand_out(
        scheme, query, tmp_path, postgres):  # noqa: F811
    """As an operator would: the repository's dagster.postgres.yaml as $DAGSTER_HOME/dagster.yaml, DAGSTER_PG_URL
    as the host gave it, then `dagster instance migrate` and `dagster asset materialize`."""
    database = f"dagster_cli_{scheme}"
    url = postgres.create_database(database).split("?", 1)[0].replace("postgresql://", f"{scheme}://", 1) + query
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(POSTGRES_INSTANCE, home / "dagster.yaml")
    (tmp_path / "one_asset.py").write_text(ONE_ASSET)
    env = {**{name: value for name, value in os.environ.items() if not name.startswith("DAGSTER_")},
           "DAGSTER_HOME": str(home), PG_URL_ENV: url, "PYTHONPATH": str(PROJECT_ROOT)}
    migrate = dagster_cli("instance", "migrate", env=env, cwd=tmp_path)
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    assert postgres.query(database, "select count(*) from alembic_version") == [(1,)]
    materialize = dagster_cli("asset", "materialize", "-f", "one_asset.py", "--select", "rehearsal_asset",
                              env=env, cwd=tmp_path)
    assert materialize.returncode == 0, materialize.stderr[-2000:]
    # The run and its materialization are in this Postgres database, not in a SQLite file under DAGSTER_HOME.
    assert postgres.query(database, "select status from runs") == [("SUCCESS",)]
    assert postgres.query(database, "select count(*) from event_logs where dagster_event_type = "
                                    "'ASSET_MATERIALIZATION' and asset_key like %s", ("%rehearsal_asset%",)) == [(1,)]
    assert not list(home.glob("**/*.db"))


def test_serve_refuses_a_bad_postgres_url_in_one_line_naming_the_variable_without_the_password(tmp_path):
    env = {**{name: value for name, value in os.environ.items() if not name.startswith(("DAGSTER_", "DLT_PLATFORM_"))},
           "DAGSTER_HOME": str(tmp_path / "home"), PG_URL_ENV: "mysql://loader:hunter2@db.example.com/dagster",
           "COLUMNS": "500"}
    result = subprocess.run([str(BIN / "dlt-platform"), "serve", "--port", "0"], env=env, cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 1 and lines == [
        f"error: {PG_URL_ENV}: expected a postgresql:// URL, got scheme 'mysql'"], lines
    assert "hunter2" not in result.stdout + result.stderr


@pytest.fixture
def s3_endpoint():
    """R2 cannot be reached from here; moto's S3 server on loopback speaks the same S3 API."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_run_output_goes_to_r2_when_its_variables_are_set(tmp_path, s3_endpoint):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="r2-key-id",
                      aws_secret_access_key="r2-secret-value")
    s3.create_bucket(Bucket="dlt-raw-staging")
    r2 = {"DLT_R2_BUCKET": "dlt-raw-staging", "DLT_R2_ENDPOINT_URL": s3_endpoint,
          "DLT_R2_ACCESS_KEY_ID": "r2-key-id", "DLT_R2_SECRET_ACCESS_KEY": "r2-secret-value"}
    clean = {name: value for name, value in os.environ.items() if not name.startswith(("DAGSTER_", "AWS_", "DLT_"))}
    env = prepare_dagster_home({**clean, "DAGSTER_HOME": str(tmp_path / "home"), **r2})
    instance_file = (tmp_path / "home" / "dagster.yaml").read_text()
    assert yaml.safe_load(instance_file)["compute_logs"]["class"] == "S3ComputeLogManager"
    assert "r2-secret-value" not in instance_file and s3_endpoint not in instance_file  # variables, not values
    (tmp_path / "one_asset.py").write_text(ONE_ASSET)
    materialize = dagster_cli("asset", "materialize", "-f", "one_asset.py", "--select", "rehearsal_asset",
                              env=env, cwd=tmp_path)
    assert materialize.returncode == 0, materialize.stderr[-2000:]
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="dlt-raw-staging").get("Contents", [])]
    stdout = [s3.get_object(Bucket="dlt-raw-staging", Key=key)["Body"].read().decode()
              for key in keys if key.startswith("dagster/compute_logs/") and key.endswith(".out")]
    assert any("output of rehearsal_asset" in text for text in stdout), keys
    # Without all four variables run output stays on the local disk (Dagster's default): no compute_logs section.
    for missing in R2_VARIABLES:
        home = tmp_path / f"home_without_{missing}"
        prepare_dagster_home({"DAGSTER_HOME": str(home), **{k: v for k, v in r2.items() if k != missing}})
        assert (home / "dagster.yaml").read_bytes() == SQLITE_INSTANCE.read_bytes()
