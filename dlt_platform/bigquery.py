"""BigQuery as the warehouse: credentials checked before a load, the file format of each table, table options.

- Credentials: Google's, in one of the documented forms (the key JSON in DESTINATION__BIGQUERY__CREDENTIALS, its
  fields in DESTINATION__BIGQUERY__CREDENTIALS__*, a key file in GOOGLE_APPLICATION_CREDENTIALS), resolved by dlt
  and checked (a token fetched from the key's token_uri) before anything is extracted, so a missing field, a
  malformed or refused key or an unreachable token endpoint ends the load in seconds with one line naming the
  variable, and leaves no load package behind. BIGQUERY_EMULATOR_HOST changes only the endpoint; with no
  credentials at all and a project id, the emulator is loaded into anonymously.
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
from dlt.common.configuration.specs import GcpCredentials, GcpServiceAccountCredentials
from dlt.common.configuration.specs.gcp_credentials import GcpDefaultCredentials
from dlt.destinations.adapters import bigquery_adapter
from dlt.destinations.impl.bigquery.bigquery_adapter import PartitionTransformation

from dlt_platform.definition_base import WarehouseDestination
from dlt_platform.settings import Settings, SettingsError

CREDENTIALS_FILE_VARIABLE = "GOOGLE_APPLICATION_CREDENTIALS"
# dlt's names: the whole key JSON in one variable, or its fields one per variable.
CREDENTIALS_JSON_VARIABLE = "DESTINATION__BIGQUERY__CREDENTIALS"
CREDENTIALS_FIELD_PREFIX = "DESTINATION__BIGQUERY__CREDENTIALS__"
# Fields that make the per-field form: a project id alone is also how the emulator is given its project.
CREDENTIALS_KEY_FIELDS = ("CLIENT_EMAIL", "PRIVATE_KEY")
EMULATOR_HOST_VARIABLE = "BIGQUERY_EMULATOR_HOST"
PROJECT_VARIABLES = "DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID or GOOGLE_CLOUD_PROJECT"
# A token request that has not answered by then will not: the load is refused well within 30 s.
TOKEN_CHECK_SECONDS = 15.0
SERVICE_ACCOUNT_FIELDS = ("client_email", "private_key", "token_uri")
# dlt's configuration of the destination needs a dataset; the credentials check reads only the credentials.
CHECK_DATASET = "credentials_check"
CREDENTIALS_MISSING = (
    f"BigQuery credentials missing: set {CREDENTIALS_JSON_VARIABLE} to the service account key JSON, "
    f"{CREDENTIALS_FILE_VARIABLE} to a key file, or {CREDENTIALS_FIELD_PREFIX}PROJECT_ID, __CLIENT_EMAIL and "
    f"__PRIVATE_KEY; or, for the emulator, {EMULATOR_HOST_VARIABLE} and {PROJECT_VARIABLES}"
)


class BigQueryCredentialsError(SettingsError):
    """BigQuery credentials that are missing or unusable; the message names the variable or file."""


def credentials_form(env=None) -> str | None:
    """Which documented form of Google credentials the environment gives: the key JSON variable, the per-field
    variables, the key file; None when there are none (then only the emulator can be loaded into)."""
    env = os.environ if env is None else env
    if (env.get(CREDENTIALS_JSON_VARIABLE) or "").strip():
        return CREDENTIALS_JSON_VARIABLE
    if any((env.get(CREDENTIALS_FIELD_PREFIX + name) or "").strip() for name in CREDENTIALS_KEY_FIELDS):
        return CREDENTIALS_FIELD_PREFIX + "*"
    if (env.get(CREDENTIALS_FILE_VARIABLE) or "").strip():
        return CREDENTIALS_FILE_VARIABLE
    return None


def destination(options: WarehouseDestination, settings: Settings, preferred_format: str = "parquet"):
    """dlt's BigQuery destination for a definition. Builds no connection: Dagster builds one per asset when it
    loads its definitions; `check_before_load` proves the credentials right before a load."""
    credentials = None
    if settings.bigquery_emulator_host:
        # google-cloud-bigquery sends every request to this host when the variable is set (credentials given are
        # still used); the emulator reads no gzip, and dlt gzips JSON-lines load files unless told otherwise
        # (intermediate files: see loads.py).
        os.environ[EMULATOR_HOST_VARIABLE] = settings.bigquery_emulator_host
        os.environ["NORMALIZE__DATA_WRITER__DISABLE_COMPRESSION"] = "true"
        if settings.bigquery_project_id and credentials_form() is None:
            credentials = _anonymous_credentials(settings.bigquery_project_id)
    # Otherwise dlt resolves Google's credentials (DESTINATION__BIGQUERY__*, GOOGLE_APPLICATION_CREDENTIALS) itself.
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
    error is one line naming the variable or file (dlt and google-auth would retry for minutes).

    The credentials checked are the ones dlt will load with (resolved by dlt from the same variables), so a
    token fetched here proves the load's credentials."""
    form = credentials_form()
    if settings.bigquery_emulator_host:
        if form is None and not settings.bigquery_project_id:
            raise BigQueryCredentialsError(
                f"{EMULATOR_HOST_VARIABLE} is set but no project id: set {PROJECT_VARIABLES}"
            )
        try:
            httpx.get(settings.bigquery_emulator_host, timeout=5)
        except httpx.HTTPError:
            raise BigQueryCredentialsError(
                f"{EMULATOR_HOST_VARIABLE}: nothing answers at {settings.bigquery_emulator_host}"
            ) from None
        if form is None:
            return
    if form == CREDENTIALS_FILE_VARIABLE:
        path = os.environ[CREDENTIALS_FILE_VARIABLE].strip()
        info = _service_account_info(_read_key_file(Path(path)), f"{CREDENTIALS_FILE_VARIABLE}: {path}")
        native, project_id = _native_credentials(info, f"{CREDENTIALS_FILE_VARIABLE}: {path}"), info.get("project_id")
        token_uri, where = info["token_uri"], f"{CREDENTIALS_FILE_VARIABLE} ({path})"
    else:
        if form == CREDENTIALS_JSON_VARIABLE:
            # Checked here first: dlt's own message for a bad key JSON quotes the value, i.e. the private key.
            _service_account_info(
                os.environ[CREDENTIALS_JSON_VARIABLE],
                CREDENTIALS_JSON_VARIABLE,
                required=("project_id", "client_email", "private_key"),
            )
        credentials = _credentials_from_dlt_config(form)
        where = form or "dlt's configuration (secrets.toml or Google's default credentials)"
        try:
            native = credentials.to_native_credentials()
        except ValueError:
            # The library's message may quote the key; name the field instead.
            field = "private_key" if form == CREDENTIALS_JSON_VARIABLE else CREDENTIALS_FIELD_PREFIX + "PRIVATE_KEY"
            raise BigQueryCredentialsError(f"{where}: unreadable {field} (expected a PEM private key)") from None
        project_id, token_uri = credentials.project_id, credentials.token_uri
    if not (settings.bigquery_project_id or project_id):
        raise BigQueryCredentialsError(f"BigQuery project id missing: set {PROJECT_VARIABLES}")
    _fetch_token(native, where, token_uri)


def _anonymous_credentials(project_id: str) -> GcpServiceAccountCredentials:
    """dlt credentials carrying google-auth's anonymous credentials (the emulator asks for none)."""
    from google.auth.credentials import AnonymousCredentials

    credentials = GcpServiceAccountCredentials()
    # The default-credentials half of dlt's spec takes ready google-auth credentials as its native value.
    GcpDefaultCredentials.parse_native_representation(credentials, AnonymousCredentials())
    credentials.project_id = project_id
    return credentials


def _read_key_file(path: Path) -> str:
    if not path.is_file():
        raise BigQueryCredentialsError(f"{CREDENTIALS_FILE_VARIABLE}: no file at {path}")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise BigQueryCredentialsError(f"{CREDENTIALS_FILE_VARIABLE}: {path} is not a JSON key file") from None


def _service_account_info(text: str, where: str, required: tuple[str, ...] = SERVICE_ACCOUNT_FIELDS) -> dict:
    """A service account key's fields; one line naming `where` (never quoting the text) if it is not one."""
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        raise BigQueryCredentialsError(
            f"{where} is not a JSON key file"
            if where != CREDENTIALS_JSON_VARIABLE
            else f"{where}: not a service account key JSON"
        ) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise BigQueryCredentialsError(f'{where} is not a service account key ("type": "service_account")')
    missing = [name for name in required if not info.get(name)]
    if missing:
        raise BigQueryCredentialsError(f"{where} lacks {', '.join(missing)}")
    _native_credentials(info, where)
    return info


def _native_credentials(info: dict, where: str):
    from google.oauth2 import service_account

    try:
        return service_account.Credentials.from_service_account_info(info)
    except ValueError:
        # The library's message may quote the key; name the field instead.
        raise BigQueryCredentialsError(f"{where} has an unreadable private_key") from None


def _credentials_from_dlt_config(form: str | None) -> GcpCredentials:
    """The credentials dlt will load with, resolved as dlt resolves them for a load."""
    from dlt.common.configuration.exceptions import ConfigFieldMissingException, ConfigurationException

    factory = dlt.destinations.bigquery()
    initial = factory.spec()
    initial.dataset_name = CHECK_DATASET
    try:
        return factory.configuration(initial).credentials
    except ConfigFieldMissingException as error:
        missing = _missing_service_account_fields(error)
        if form is None:
            raise BigQueryCredentialsError(CREDENTIALS_MISSING) from None
        if form == CREDENTIALS_JSON_VARIABLE and missing:
            raise BigQueryCredentialsError(f"{form} lacks {', '.join(missing)}") from None
        if missing:
            raise BigQueryCredentialsError(
                "BigQuery credentials incomplete: set "
                + ", ".join(CREDENTIALS_FIELD_PREFIX + name.upper() for name in missing)
            ) from None
        raise BigQueryCredentialsError(CREDENTIALS_MISSING) from None
    except ConfigurationException:
        raise BigQueryCredentialsError(CREDENTIALS_MISSING) from None


def _missing_service_account_fields(error) -> list[str]:
    """The service account fields dlt found no value for, out of its lookup traces of `credentials`."""
    for trace in error.traces.get("credentials", []):
        if getattr(trace, "spec_name", None) == GcpServiceAccountCredentials.__name__:
            return list(trace.traces)
    return []


def _fetch_token(native, where: str, token_uri: str) -> None:
    """Refresh the credentials once, bounded in time: google-auth and dlt would otherwise retry for minutes."""
    from google.auth.credentials import with_scopes_if_required
    from google.auth.exceptions import RefreshError
    from google.auth.transport.requests import Request
    from google.cloud import bigquery

    # Scoped as google-cloud-bigquery's client scopes them before its first request.
    native = with_scopes_if_required(native, bigquery.Client.SCOPE)
    if getattr(native, "token", None) and getattr(native, "valid", False):
        return
    outcome: list[BaseException | None] = []

    def refresh() -> None:
        try:
            native.refresh(_BoundedRequest())
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - reported below, by type or OAuth code only
            outcome.append(error)

    class _BoundedRequest(Request):
        def __call__(self, *args, **kwargs):
            kwargs["timeout"] = min(kwargs.get("timeout") or 5.0, 5.0)
            return super().__call__(*args, **kwargs)

    thread = threading.Thread(target=refresh, name="bigquery-token-check", daemon=True)
    thread.start()
    thread.join(TOKEN_CHECK_SECONDS)
    if not outcome:
        raise BigQueryCredentialsError(
            f"BigQuery credentials from {where}: no token from {token_uri} within "
            f"{TOKEN_CHECK_SECONDS:.0f} s (no route to Google?)"
        )
    error = outcome[0]
    if isinstance(error, RefreshError) and len(error.args) > 1 and isinstance(error.args[1], dict):
        # The token endpoint answered with OAuth's error object; its code and description quote no secret.
        answer = error.args[1]
        raise BigQueryCredentialsError(
            f"BigQuery credentials from {where}: {token_uri} refused them "
            f"({answer.get('error')}: {answer.get('error_description')})"
        )
    if error is not None:
        raise BigQueryCredentialsError(
            f"BigQuery credentials from {where}: no token from {token_uri} ({type(error).__name__})"
        )


def apply_table_options(resource, options: WarehouseDestination):
    """Partitioning and clustering of the definition on the table's dlt resource (they apply on CREATE TABLE)."""
    if options.partition_by is None and not options.cluster_by:
        return resource
    partition = None
    if options.partition_by is not None:
        granularity = options.partition_by.granularity.upper()
        partition = PartitionTransformation(
            f"TIMESTAMP_TRUNC({{column_name}}, {granularity})", options.partition_by.column
        )
    return bigquery_adapter(resource, partition=partition, cluster=options.cluster_by or None)
