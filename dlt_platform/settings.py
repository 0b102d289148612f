"""Settings from the environment: where definitions live, where data goes, how to reach Cloudflare.

One place reads os.environ so the CLI, Dagster and tests see the same values. Secrets are kept here only as
values to send; they never appear in reprs, logs or error messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import load_dotenv

from dlt_platform.config import DefinitionError, SourceDefinition, load_sources_file
from dlt_platform.http import RetryPolicy

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "sources.json"
DEFAULT_CLOUDFLARE_API = "https://api.cloudflare.com/client/v4"


class SettingsError(ValueError):
    """An environment variable holds a value the platform cannot use; the message names the variable."""


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
    # BigQuery: the emulator's URL (no Google credentials then) and the project to load into.
    bigquery_emulator_host: str | None = None
    bigquery_project_id: str | None = None
    # How KV rows reach dlt: "arrow" (shaped into Arrow tables here) or "rows" (dlt's row normalizer).
    kv_shaping: str = "arrow"
    # DuckDB's memory while it loads (its default is 80% of RAM, and a load's memory grows with its rows without
    # one); DuckDB spills to disk past it.
    duckdb_memory_limit: str = "128MB"

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
            raise SettingsError(f"BIGQUERY_EMULATOR_HOST: expected a URL such as http://127.0.0.1:9050, got '{emulator}'")
        return cls(
            config_path=Path(path),
            kv_transport_override=transport,
            kv_shaping=shaping,
            duckdb_memory_limit=env.get("DLT_PLATFORM_DUCKDB_MEMORY_LIMIT") or "128MB",
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
            bigquery_project_id=(env.get("DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID")
                                 or env.get("GOOGLE_CLOUD_PROJECT") or None),
        )

    def load_sources(self) -> list[SourceDefinition]:
        return load_sources_file(self.config_path)

    def get_source(self, source_id: str) -> SourceDefinition:
        for definition in self.load_sources():
            if definition.source_id == source_id:
                return definition
        raise DefinitionError(f"source_id: unknown source '{source_id}' in {self.config_path}")

    def destination_type(self, definition: SourceDefinition) -> str:
        return self.destination_override or definition.destination.type

    def kv_transport(self, definition: SourceDefinition) -> str:
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
