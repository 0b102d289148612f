"""Which Dagster instance file a process runs with, and the Postgres URL it gets.

Dagster's instance file cannot branch on an environment variable, so the repository keeps one file per storage
choice, both in Dagster's public configuration format and identical except for `storage`:
- `dagster.yaml`: SQLite under $DAGSTER_HOME (the default, and what `dagster dev` reads);
- `dagster.postgres.yaml`: Postgres at $DAGSTER_PG_URL (the container), through `PlatformPostgresStorage`
  (postgres_storage.py), which is dagster-postgres's storage taking the URL in every form Postgres hosts hand out.
`dlt-platform serve` copies the chosen one to $DAGSTER_HOME/dagster.yaml before it starts Dagster (and refuses a
bad DAGSTER_PG_URL in one line). Because the storage class itself normalizes the URL, Dagster's own CLI on that
instance file (`dagster instance migrate`, `dagster asset materialize`) takes the same URLs as `serve`.
When DLT_R2_* are set, serve also appends a `compute_logs` section (R2_COMPUTE_LOGS): run output goes to R2 through
dagster-aws's S3ComputeLogManager instead of only the container's ephemeral disk.
This module imports nothing of Dagster's: every run container runs it (run_entrypoint.py) before Dagster's own
process starts and imports everything again.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from dlt_platform.settings import PROJECT_ROOT, SettingsError

PG_URL_ENV = "DAGSTER_PG_URL"
R2_VARIABLES = ("DLT_R2_BUCKET", "DLT_R2_ENDPOINT_URL", "DLT_R2_ACCESS_KEY_ID", "DLT_R2_SECRET_ACCESS_KEY")
# Appended to the instance file when DLT_R2_* are set: run output (Dagster's compute logs) would otherwise live
# only on the container's ephemeral disk. Variables only, never their values.
R2_COMPUTE_LOGS = """
# Written by dlt-platform serve because DLT_R2_* are set: run output (compute logs) to R2 through its S3 API.
compute_logs:
  module: dagster_aws.s3.compute_log_manager
  class: S3ComputeLogManager
  config:
    bucket:
      env: DLT_R2_BUCKET
    endpoint_url:
      env: DLT_R2_ENDPOINT_URL
    prefix: dagster/compute_logs
    # Output of a run still going is uploaded this often, so a container that dies mid-run leaves most of it.
    upload_interval: 30
    skip_empty_files: true
"""
SQLITE_INSTANCE = PROJECT_ROOT / "dagster.yaml"
POSTGRES_INSTANCE = PROJECT_ROOT / "dagster.postgres.yaml"
# Schemes Postgres hosts and libraries hand out; every one means the same server protocol.
POSTGRES_SCHEMES = {"postgres", "postgresql"}
# SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3 and no longer knows `postgres://`; dagster-postgres
# installs psycopg2.
DRIVER = "postgresql+psycopg2"


def normalize_postgres_url(url: str) -> str:
    """`postgres://`, `postgresql://` or `postgresql+<any driver>://` (query such as `sslmode=require` kept)
    as `postgresql+psycopg2://`. The error never repeats the URL: it may hold a password."""
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        raise SettingsError(f"{PG_URL_ENV}: not a URL; expected postgresql://user:password@host:5432/db") from None
    backend = parsed.drivername.split("+", 1)[0]
    if backend not in POSTGRES_SCHEMES:
        raise SettingsError(f"{PG_URL_ENV}: expected a postgresql:// URL, got scheme '{backend}'")
    if not parsed.host and not parsed.query.get("host"):
        raise SettingsError(f"{PG_URL_ENV}: the URL names no host")
    if not parsed.database:
        raise SettingsError(f"{PG_URL_ENV}: the URL names no database")
    return parsed.set(drivername=DRIVER).render_as_string(hide_password=False)


def r2_compute_logs(env: dict[str, str]) -> bool:
    """Whether run output goes to R2: all four DLT_R2_* variables set (the raw snapshots' bucket and token)."""
    return all((env.get(name) or "").strip() for name in R2_VARIABLES)


def prepare_dagster_home(env: dict[str, str]) -> dict[str, str]:
    """Write $DAGSTER_HOME/dagster.yaml for this environment; return the environment Dagster's processes get
    (DAGSTER_HOME absolute, DAGSTER_PG_URL normalized when set, R2's token as boto3's variables when run output
    goes to R2)."""
    home = Path(env.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = {**env, "DAGSTER_HOME": str(home)}
    source = SQLITE_INSTANCE
    if env.get(PG_URL_ENV, "").strip():
        env[PG_URL_ENV] = normalize_postgres_url(env[PG_URL_ENV])
        source = POSTGRES_INSTANCE
    target = home / "dagster.yaml"
    if source.resolve() == target:  # DAGSTER_HOME is the repository: its file is used as it is
        return env
    content = source.read_bytes()
    if r2_compute_logs(env):
        content += R2_COMPUTE_LOGS.encode()
        # boto3 (under dagster-aws) reads its credentials from these; only Dagster's processes get them.
        env.update(
            AWS_ACCESS_KEY_ID=env["DLT_R2_ACCESS_KEY_ID"].strip(),
            AWS_SECRET_ACCESS_KEY=env["DLT_R2_SECRET_ACCESS_KEY"].strip(),
        )
        env.setdefault("AWS_DEFAULT_REGION", "auto")  # R2's region name for request signing
    if not target.exists() or target.read_bytes() != content:
        target.write_bytes(content)
    return env
