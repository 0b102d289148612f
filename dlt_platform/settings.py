"""Settings from the environment: where definitions live, where data goes, how to reach Cloudflare.

One place reads os.environ so the CLI, Dagster and tests see the same values. Secrets are kept here only as
values to send; they never appear in reprs, logs or error messages.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dotenv import load_dotenv

from dlt_platform.config import DefinitionError, SourceDefinition, load_sources_file
from dlt_platform.contract import RUN_SOURCE_ENV
from dlt_platform.definition_base import SECRET_NAME_PATTERN, is_platform_secret
from dlt_platform.duckdb_warehouse import memory_limit_for_machine
from dlt_platform.http import RetryPolicy

if TYPE_CHECKING:
    from dlt_platform.source_types.cloudflare_kv.definition import KVSourceDefinition

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "sources.json"
DEFAULT_CLOUDFLARE_API = "https://api.cloudflare.com/client/v4"
# dlt's extract workers: how many child requests of a rest_api source are in flight at once (dlt's default is 5;
# 20 is as many items as dlt keeps in flight).
EXTRACT_WORKERS = 20


class SettingsError(ValueError):
    """An environment variable holds a value the platform cannot use; the message names the variable."""


@dataclass(frozen=True)
class DeploymentVariable:
    name: str
    required: bool
    description: str


# What the Dagster container receives from the Worker, declared once: worker/src/container.ts forwards exactly
# these (when set), and docs/deploy.md's secrets table and .env.example are checked against them
# (dlt_platform_tests/test_container.py). Secrets of rest_api sources come on top: the names DLT_SOURCE_SECRETS
# lists, and those in the Worker var SOURCE_SECRETS.
CONTAINER_ENV = (
    DeploymentVariable(
        "DLT_ORCHESTRATOR_URL",
        True,
        "the Worker's own URL; Dagster reads definitions and reports "
        "runs there (without it the container would load the sources file baked into the image)",
    ),
    DeploymentVariable("DLT_INTERNAL_TOKEN", True, "bearer token of Dagster's calls to the Worker's /internal API"),
    DeploymentVariable(
        "DAGSTER_PG_URL",
        True,
        "Postgres URL for Dagster's run history, schedules and run queue "
        "(without it they would live on the container's ephemeral disk)",
    ),
    DeploymentVariable(
        "DESTINATION__BIGQUERY__CREDENTIALS",
        False,
        "the BigQuery service account key (JSON), for sources that load into BigQuery",
    ),
    DeploymentVariable("CLOUDFLARE_ACCOUNT_ID", False, "account id, for KV sources read with extract.transport rest"),
    DeploymentVariable("CLOUDFLARE_API_TOKEN", False, "API token with Workers KV Storage: Read, for transport rest"),
    DeploymentVariable(
        "DLT_R2_BUCKET", False, "R2 bucket of raw snapshots (S3 API); without it they stay on the container's disk"
    ),
    DeploymentVariable(
        "DLT_R2_ENDPOINT_URL", False, "the bucket's S3 endpoint, https://<account id>.r2.cloudflarestorage.com"
    ),
    DeploymentVariable("DLT_R2_ACCESS_KEY_ID", False, "R2 API token's access key id"),
    DeploymentVariable("DLT_R2_SECRET_ACCESS_KEY", False, "R2 API token's secret access key"),
    DeploymentVariable(
        "DLT_SOURCE_SECRETS",
        False,
        "the secrets rest_api sources may use, each with the hosts it may "
        'be sent to, as JSON ({"GITHUB_TOKEN": ["api.github.com"]}); the container also receives '
        "each secret it names",
    ),
    DeploymentVariable(
        "DAGSTER_ALLOWED_HOSTS",
        False,
        "extra host names the Dagster UI answers (a custom domain in "
        "front of the Worker); the Worker URL's host is always allowed",
    ),
    DeploymentVariable(
        "DLT_PLATFORM_DESTINATION", False, "duckdb or bigquery: overrides every definition's destination type"
    ),
    DeploymentVariable("DLT_PLATFORM_KV_TRANSPORT", False, "rest or worker: overrides every KV definition's transport"),
    DeploymentVariable(
        "DLT_PLATFORM_ALLOW_EMBEDDED",
        False,
        "1 lets a throw-away deployment run without "
        "DAGSTER_PG_URL or DLT_ORCHESTRATOR_URL (history and definitions on the container's disk)",
    ),
)

# The Worker's own secrets: used by the Worker, never forwarded to the container (DLT_INTERNAL_TOKEN is both).
WORKER_SECRETS = (
    DeploymentVariable("DLT_OPERATOR_TOKEN", True, "operators' bearer token (CLI, operator API) and admin sign-in"),
    DeploymentVariable("DLT_INTERNAL_TOKEN", True, "bearer token of Dagster's calls to the Worker's /internal API"),
    DeploymentVariable(
        "ADMIN_SESSION_KEY",
        True,
        "signs admin session cookies; without it admin sign-in answers 503, and a new value signs every operator out",
    ),
    DeploymentVariable(
        "DLT_READONLY_TOKEN",
        False,
        "bearer token that lists and reads (operator API, /mcp, admin page) but changes nothing (docs/agents.md)",
    ),
    DeploymentVariable(
        "ALERT_WEBHOOK_URL",
        False,
        "Slack-compatible incoming webhook the Worker posts one alert to per failed or dead-lettered run",
    ),
)

# Set by the Dockerfile: this process runs in the deployed container, where serve refuses to start without
# Postgres storage or the orchestrator URL unless ALLOW_EMBEDDED_ENV is 1.
CONTAINER_MARKER_ENV = "DLT_PLATFORM_CONTAINER"
ALLOW_EMBEDDED_ENV = "DLT_PLATFORM_ALLOW_EMBEDDED"


def positive_number(env, name: str, default: float) -> float:
    text = env.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise SettingsError(f"{name}: expected a positive number of seconds, got '{text}'")
    return value


@dataclass(frozen=True)
class Settings:
    config_path: Path = DEFAULT_CONFIG
    data_dir: Path = PROJECT_ROOT / ".data"
    destination_override: str | None = None
    kv_transport_override: str | None = None
    cloudflare_api_base_url: str = DEFAULT_CLOUDFLARE_API
    cloudflare_account_id: str | None = None
    cloudflare_api_token: str | None = field(default=None, repr=False)
    orchestrator_url: str | None = None
    internal_token: str | None = field(default=None, repr=False)
    operator_token: str | None = field(default=None, repr=False)
    # Raw snapshots: a local folder by default, R2 (S3 API) when a bucket is configured.
    r2_bucket: str | None = None
    r2_endpoint_url: str | None = None
    r2_access_key_id: str | None = field(default=None, repr=False)
    r2_secret_access_key: str | None = field(default=None, repr=False)
    # Client-side budget under Cloudflare's 1,200 requests per 5 minutes per token.
    cloudflare_requests_per_window: int = 1100
    cloudflare_window_seconds: float = 300.0
    retry_policy: RetryPolicy = RetryPolicy()
    # BigQuery: the emulator's URL (it changes only the endpoint; with no Google credentials given the load is
    # anonymous) and the emulator's project. Credentials are dlt's variables, read by bigquery.py, never kept here.
    bigquery_emulator_host: str | None = None
    bigquery_project_id: str | None = None
    # How KV rows reach dlt: "arrow" (shaped into Arrow tables here) or "rows" (dlt's row normalizer).
    kv_shaping: str = "arrow"
    # DuckDB's memory while it loads (duckdb_warehouse.memory_limit_for_machine by default); it spills to disk past it.
    duckdb_memory_limit: str = field(default_factory=memory_limit_for_machine)
    # How long a run waits for its turn on the local DuckDB file (another run, or a DuckDB shell holding it open).
    duckdb_wait_seconds: float = 600.0
    # Host names the Dagster webserver's guard accepts besides loopback and the Worker's (DAGSTER_ALLOWED_HOSTS).
    dagster_allowed_hosts: tuple[str, ...] = ()
    # This start of the container (`serve` sets DLT_PLATFORM_BOOT_ID; orchestration/run_launcher.py tags runs).
    boot_id: str | None = None
    # In a run container: the one source its run loads (contract.RUN_SOURCE_ENV, set by the Worker).
    run_source_id: str | None = None

    @classmethod
    def from_env(cls, config_path: str | Path | None = None) -> Settings:
        load_dotenv(Path.cwd() / ".env", override=False)  # the environment wins over .env
        env = os.environ
        path = config_path or env.get("DLT_PLATFORM_CONFIG") or DEFAULT_CONFIG
        destination = env.get("DLT_PLATFORM_DESTINATION") or None
        if destination not in (None, "duckdb", "bigquery"):
            raise SettingsError(f"DLT_PLATFORM_DESTINATION: expected duckdb or bigquery, got '{destination}'")
        transport = env.get("DLT_PLATFORM_KV_TRANSPORT") or None
        if transport not in (None, "rest", "worker"):
            raise SettingsError(f"DLT_PLATFORM_KV_TRANSPORT: expected rest or worker, got '{transport}'")
        shaping = env.get("DLT_PLATFORM_KV_SHAPING") or "arrow"
        if shaping not in ("arrow", "rows"):
            raise SettingsError(f"DLT_PLATFORM_KV_SHAPING: expected arrow or rows, got '{shaping}'")
        emulator = (env.get("BIGQUERY_EMULATOR_HOST") or "").rstrip("/") or None
        if emulator and not emulator.startswith(("http://", "https://")):
            raise SettingsError(
                f"BIGQUERY_EMULATOR_HOST: expected a URL such as http://127.0.0.1:9050, got '{emulator}'"
            )
        return cls(
            config_path=Path(path),
            kv_transport_override=transport,
            kv_shaping=shaping,
            duckdb_memory_limit=env.get("DLT_PLATFORM_DUCKDB_MEMORY_LIMIT") or memory_limit_for_machine(),
            duckdb_wait_seconds=positive_number(env, "DLT_PLATFORM_DUCKDB_WAIT_SECONDS", 600.0),
            data_dir=Path(env.get("DLT_PLATFORM_DATA_DIR") or PROJECT_ROOT / ".data"),
            destination_override=destination,
            cloudflare_api_base_url=(env.get("CLOUDFLARE_API_BASE_URL") or DEFAULT_CLOUDFLARE_API).rstrip("/"),
            cloudflare_account_id=env.get("CLOUDFLARE_ACCOUNT_ID") or None,
            cloudflare_api_token=env.get("CLOUDFLARE_API_TOKEN") or None,
            orchestrator_url=(env.get("DLT_ORCHESTRATOR_URL") or "").rstrip("/") or None,
            internal_token=env.get("DLT_INTERNAL_TOKEN") or None,
            operator_token=env.get("DLT_OPERATOR_TOKEN") or None,
            r2_bucket=env.get("DLT_R2_BUCKET") or None,
            r2_endpoint_url=env.get("DLT_R2_ENDPOINT_URL") or None,
            r2_access_key_id=env.get("DLT_R2_ACCESS_KEY_ID") or None,
            r2_secret_access_key=env.get("DLT_R2_SECRET_ACCESS_KEY") or None,
            cloudflare_requests_per_window=int(env.get("CLOUDFLARE_REQUESTS_PER_5_MIN") or 1100),
            bigquery_emulator_host=emulator,
            dagster_allowed_hosts=tuple(
                name.strip() for name in (env.get("DAGSTER_ALLOWED_HOSTS") or "").split(",") if name.strip()
            ),
            boot_id=env.get("DLT_PLATFORM_BOOT_ID") or None,
            run_source_id=env.get(RUN_SOURCE_ENV) or None,
            bigquery_project_id=(
                env.get("DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID") or env.get("GOOGLE_CLOUD_PROJECT") or None
            ),
        )

    @staticmethod
    def apply_dlt_defaults() -> None:
        """dlt's writer settings the platform runs with, unless the environment sets them: dlt gzips its
        intermediate extract files by default; they are local and short-lived, and compressing them costs about a
        third of extraction (1.2 s per 100k records). Load files that leave the machine (BigQuery's JSON lines)
        stay compressed: the normalize step's writers have their own setting."""
        os.environ.setdefault("DATA_WRITER__DISABLE_COMPRESSION", "true")
        os.environ.setdefault("NORMALIZE__DATA_WRITER__DISABLE_COMPRESSION", "false")
        # dlt's parallelized resources (rest_api child resources) run in its extract workers.
        os.environ.setdefault("EXTRACT__WORKERS", str(EXTRACT_WORKERS))

    def load_sources(self) -> list[SourceDefinition]:
        return load_sources_file(self.config_path)

    def get_source(self, source_id: str) -> SourceDefinition:
        for definition in self.load_sources():
            if definition.source_id == source_id:
                return definition
        raise DefinitionError(f"source_id: unknown source '{source_id}' in {self.config_path}")

    def destination_type(self, definition: SourceDefinition) -> str:
        return self.destination_override or definition.destination.type

    def kv_transport(self, definition: KVSourceDefinition) -> str:
        return self.kv_transport_override or definition.extract.transport

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def snapshot_root(self) -> str:
        """fsspec URL under which `{r2_prefix}/{date}/{load_id}.ndjson.gz` snapshots live."""
        if self.r2_bucket:
            return f"s3://{self.r2_bucket}"
        return (self.data_dir / "raw_staging").as_posix()

    def snapshot_storage_options(self) -> dict:
        if not self.r2_bucket:
            return {}
        return {
            "key": self.r2_access_key_id,
            "secret": self.r2_secret_access_key,
            "client_kwargs": {"endpoint_url": self.r2_endpoint_url, "region_name": "auto"},
        }


# rest_api sources: the secrets they may use and where they may connect. Read when a run starts, as the secrets
# themselves are (dlt_platform/source_types/rest_api/credentials.py and hosts.py apply them).
SOURCE_SECRETS_VARIABLE = "DLT_SOURCE_SECRETS"
ALLOW_PRIVATE_HOSTS_VARIABLE = "DLT_PLATFORM_ALLOW_PRIVATE_HOSTS"
_HOST_ENTRY = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9.\-]+)(:[0-9]{1,5})?$")
_SECRET_NAME = re.compile(SECRET_NAME_PATTERN)


def _host_entry(variable: str, entry: object) -> str:
    text = entry.strip().lower() if isinstance(entry, str) else ""
    if not _HOST_ENTRY.match(text):
        raise SettingsError(
            f"{variable}: expected hosts as host or host:port (api.github.com, 127.0.0.1:8790), got {json.dumps(entry)}"
        )
    return text


def source_secret_hosts(env: Mapping[str, str] | None = None) -> dict[str, tuple[str, ...]]:
    """DLT_SOURCE_SECRETS: each secret rest_api sources may use, with the hosts it may be sent to, as JSON:
    {"GITHUB_TOKEN": ["api.github.com"], "SAMPLE_API_TOKEN": ["127.0.0.1:8790"]}. Unset, sources use none."""
    text = ((os.environ if env is None else env).get(SOURCE_SECRETS_VARIABLE) or "").strip()
    if not text:
        return {}
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise SettingsError(f'{SOURCE_SECRETS_VARIABLE}: expected a JSON object {{"NAME": ["host", ...]}}')
    scopes = {}
    for name, hosts in document.items():
        if not _SECRET_NAME.match(name):
            raise SettingsError(f"{SOURCE_SECRETS_VARIABLE}: '{name}' is not an upper-case variable name")
        if is_platform_secret(name):
            raise SettingsError(f"{SOURCE_SECRETS_VARIABLE}: {name} is a platform secret: sources may never use it")
        if not isinstance(hosts, list) or not hosts:
            raise SettingsError(f"{SOURCE_SECRETS_VARIABLE}: {name}: expected a non-empty list of hosts")
        scopes[name] = tuple(_host_entry(SOURCE_SECRETS_VARIABLE, host) for host in hosts)
    return scopes


def private_host_allowance(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """DLT_PLATFORM_ALLOW_PRIVATE_HOSTS: hosts rest_api sources may reach although they are loopback, private,
    link-local or the Worker's own (comma-separated host or host:port, e.g. 127.0.0.1:8790). Unset: none."""
    text = (os.environ if env is None else env).get(ALLOW_PRIVATE_HOSTS_VARIABLE) or ""
    return tuple(_host_entry(ALLOW_PRIVATE_HOSTS_VARIABLE, entry) for entry in text.split(",") if entry.strip())
