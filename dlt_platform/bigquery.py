"""BigQuery as the warehouse: credentials checked before a load, the file format of each table, table options.

- Credentials: against the emulator (BIGQUERY_EMULATOR_HOST + a project id) none at all; otherwise Google's,
  resolved by dlt and checked before anything is extracted, so a missing file, a malformed key or an unreachable token endpoint ends
  the load in seconds with one line naming what is wrong, and leaves no load package behind.
- File formats: BigQuery cannot read a JSON column from parquet, so a table holding one (cf_kv_metadata) is
  written as JSON lines (its child tables with it, in the same pass) and becomes a native JSON column; every
  other table keeps the faster parquet path.
- Table options of the definition (partitioning, clustering) go through dlt's bigquery_adapter; the location
  is the dataset's.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import dlt
import httpx
from dlt.common.configuration.specs import GcpServiceAccountCredentials
from dlt.destinations.adapters import bigquery_adapter
from dlt.destinations.impl.bigquery.bigquery_adapter import PartitionTransformation

from dlt_platform.config import Destination
from dlt_platform.settings import Settings

CREDENTIALS_FILE_VARIABLE = "GOOGLE_APPLICATION_CREDENTIALS"
EMULATOR_HOST_VARIABLE = "BIGQUERY_EMULATOR_HOST"
PROJECT_VARIABLES = "DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID or GOOGLE_CLOUD_PROJECT"
# A token request that has not answered by then will not: the load is refused well within 30 s.
TOKEN_CHECK_SECONDS = 15.0
SERVICE_ACCOUNT_FIELDS = ("client_email", "private_key", "token_uri")


class BigQueryCredentialsError(ValueError):
    """BigQuery credentials that are missing or unusable; the message names the variable or file."""


def destination(options: Destination, settings: Settings, preferred_format: str = "parquet"):
    """dlt's BigQuery destination for a definition. Builds no connection: Dagster builds one per asset when it
    loads its definitions; `check_before_load` proves the credentials right before a load."""
    credentials = None
    if settings.bigquery_emulator_host:
        # google-cloud-bigquery sends every request to this host when the variable is set; the emulator reads no
        # gzip, and dlt gzips JSON-lines load files unless told otherwise (intermediate files: see loads.py).
        os.environ[EMULATOR_HOST_VARIABLE] = settings.bigquery_emulator_host
        os.environ["NORMALIZE__DATA_WRITER__DISABLE_COMPRESSION"] = "true"
        if settings.bigquery_project_id:
            from google.auth.credentials import AnonymousCredentials

            credentials = _credentials_of(AnonymousCredentials(), settings.bigquery_project_id)
    # Otherwise dlt resolves Google's credentials (GOOGLE_APPLICATION_CREDENTIALS, DESTINATION__BIGQUERY__*) itself.
    return dlt.destinations.bigquery(
        credentials=credentials,
        location=options.location or None,
        preferred_loader_file_format=preferred_format,
        loader_file_format_selector=jsonl_for_json_tables,
    )


def jsonl_for_json_tables(preferred, supported, *, table_schema=None, **_):
    """dlt's per-table file format hook: JSON lines for a table with a JSON column, the preferred format otherwise."""
    columns = (table_schema or {}).get("columns", {})
    if any(column.get("data_type") == "json" for column in columns.values()):
        return "jsonl", supported
    return preferred, supported


def check_before_load(settings: Settings) -> None:
    """Refuse a load that cannot reach BigQuery before anything is extracted: no package is left behind, and the
    error is one line naming the variable or file (dlt and google-auth would retry for minutes)."""
    if settings.bigquery_emulator_host:
        if not settings.bigquery_project_id:
            raise BigQueryCredentialsError(f"{EMULATOR_HOST_VARIABLE} is set but no project id: set {PROJECT_VARIABLES}")
        try:
            httpx.get(settings.bigquery_emulator_host, timeout=5)
        except httpx.HTTPError:
            raise BigQueryCredentialsError(f"{EMULATOR_HOST_VARIABLE}: nothing answers at "
                                           f"{settings.bigquery_emulator_host}") from None
        return
    path = os.environ.get(CREDENTIALS_FILE_VARIABLE)
    if path:
        native, project_id = _credentials_from_file(Path(path))
        where = f"{CREDENTIALS_FILE_VARIABLE} ({path})"
    else:
        credentials = _credentials_from_dlt_config()
        native, project_id = credentials.to_native_credentials(), credentials.project_id
        where = "DESTINATION__BIGQUERY__CREDENTIALS__*"
    if not (settings.bigquery_project_id or project_id):
        raise BigQueryCredentialsError(f"BigQuery project id missing: set {PROJECT_VARIABLES}")
    _fetch_token(native, where)


def _credentials_of(native, project_id: str) -> GcpServiceAccountCredentials:
    credentials = GcpServiceAccountCredentials()
    credentials.project_id = project_id
    credentials._set_default_credentials(native)  # dlt's way to carry ready google.auth credentials
    credentials.resolve()
    return credentials


def _credentials_from_file(path: Path):
    from google.oauth2 import service_account

    if not path.is_file():
        raise BigQueryCredentialsError(f"{CREDENTIALS_FILE_VARIABLE}: no file at {path}")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise BigQueryCredentialsError(f"{CREDENTIALS_FILE_VARIABLE}: {path} is not a JSON key file") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise BigQueryCredentialsError(f"{CREDENTIALS_FILE_VARIABLE}: {path} is not a service account key "
                                       "(\"type\": \"service_account\")")
    missing = [name for name in SERVICE_ACCOUNT_FIELDS if not info.get(name)]
    if missing:
        raise BigQueryCredentialsError(f"{CREDENTIALS_FILE_VARIABLE}: {path} lacks {', '.join(missing)}")
    try:
        native = service_account.Credentials.from_service_account_info(
            info, scopes=["https://www.googleapis.com/auth/bigquery"])
    except ValueError:
        # The library's message may quote the key; name the field instead.
        raise BigQueryCredentialsError(f"{CREDENTIALS_FILE_VARIABLE}: {path} has an unreadable private_key") from None
    return native, info.get("project_id")


def _credentials_from_dlt_config() -> GcpServiceAccountCredentials:
    from dlt.common.configuration.exceptions import ConfigurationException

    try:
        config = dlt.destinations.bigquery().configuration(None)
    except ConfigurationException:
        raise BigQueryCredentialsError(
            f"BigQuery credentials missing: set {CREDENTIALS_FILE_VARIABLE} to a service account key file, or "
            "DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID, __CLIENT_EMAIL and __PRIVATE_KEY; or, for the "
            f"emulator, {EMULATOR_HOST_VARIABLE} and {PROJECT_VARIABLES}") from None
    return config.credentials


def _fetch_token(native, where: str) -> None:
    """Refresh the credentials once, bounded in time: google-auth and dlt would otherwise retry for minutes."""
    from google.auth.transport.requests import Request

    if getattr(native, "token", None) and getattr(native, "valid", False):
        return
    outcome: list[BaseException | None] = []

    def refresh() -> None:
        try:
            native.refresh(_BoundedRequest())
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - reported below, by type only (messages may quote secrets)
            outcome.append(error)

    class _BoundedRequest(Request):
        def __call__(self, *args, **kwargs):
            kwargs["timeout"] = min(kwargs.get("timeout") or 5.0, 5.0)
            return super().__call__(*args, **kwargs)

    thread = threading.Thread(target=refresh, name="bigquery-token-check", daemon=True)
    thread.start()
    thread.join(TOKEN_CHECK_SECONDS)
    token_uri = getattr(native, "_token_uri", None) or "Google's token endpoint"
    if not outcome:
        raise BigQueryCredentialsError(f"BigQuery credentials from {where}: no token from {token_uri} within "
                                       f"{TOKEN_CHECK_SECONDS:.0f} s (no route to Google?)")
    if outcome[0] is not None:
        raise BigQueryCredentialsError(f"BigQuery credentials from {where}: no token from {token_uri} "
                                       f"({type(outcome[0]).__name__})")


def apply_table_options(resource, options: Destination):
    """Partitioning and clustering of the definition on the table's dlt resource (they apply on CREATE TABLE)."""
    if options.partition_by is None and not options.cluster_by:
        return resource
    partition = None
    if options.partition_by is not None:
        granularity = options.partition_by.granularity.upper()
        partition = PartitionTransformation(f"TIMESTAMP_TRUNC({{column_name}}, {granularity})",
                                            options.partition_by.column)
    return bigquery_adapter(resource, partition=partition, cluster=options.cluster_by or None)
