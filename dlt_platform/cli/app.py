"""The Typer app every sub-command module registers on, and what they share: settings and one-line errors.

Every failure is one line on stderr and exit code 1; tracebacks are for bugs, not for a missing token.
"""

from __future__ import annotations

import dataclasses
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import httpx
import typer

from dlt_platform.cli.output import errors, note
from dlt_platform.config import DefinitionError, SourceDefinition
from dlt_platform.duckdb_warehouse import WarehouseBusy
from dlt_platform.local.stack import DEFAULT_STATE_DIR, StackError, running_local_worker
from dlt_platform.operator_client import OperatorAPIError
from dlt_platform.settings import Settings, SettingsError
from dlt_platform.source_types.base import SourceError
from dlt_platform.source_types.cloudflare_kv.definition import KVSourceDefinition
from dlt_platform.source_types.cloudflare_kv.rest_client import CloudflareAPIError

app = typer.Typer(
    help="dlt-platform: Cloudflare KV and APIs into BigQuery (or local DuckDB).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Help panels: the audiences the commands are grouped by.
EXPLORE, LOAD, LOCAL_STACK, DEPLOYMENT = "Explore KV", "Load", "Run the stack", "Operate a deployment"

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Sources file (default: DLT_PLATFORM_CONFIG or config/sources.json).")
]
SourceOption = Annotated[str, typer.Option("--source-id", help="A source_id from the sources file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document on stdout, for scripts.")]


class _State:
    config: Path | None = None


state = _State()


@app.callback()
def main(config: ConfigOption = None) -> None:
    state.config = config


def settings() -> Settings:
    return Settings.from_env(state.config)


class UsageError(ValueError):
    """Options that cannot be used together or as given; the message names the option."""


class VerificationFailed(RuntimeError):
    """A deployment that answered but did not do what a verification run expects; the message lists what."""


# The platform's own errors carry a complete one-line message; anything else is reported at its root cause.
PLATFORM_ERRORS = (
    UsageError,
    DefinitionError,
    SettingsError,  # BigQuery's credential errors among them
    CloudflareAPIError,
    OperatorAPIError,
    StackError,
    SourceError,  # every source type's one-line errors (a secret not set, a missing D1 table, ...)
    VerificationFailed,
    WarehouseBusy,
)


def _root_cause(error: BaseException) -> BaseException:
    while not isinstance(error, PLATFORM_ERRORS):
        cause = error.__cause__ or error.__context__
        if cause is None:
            break
        error = cause
    return error


@contextmanager
def one_line_errors():
    """Known failures become one line and exit code 1 (dlt wraps them, so look through its exceptions)."""
    try:
        yield
    except typer.Exit:
        raise
    except Exception as error:  # noqa: BLE001 - reduced to its root cause below
        cause = _root_cause(error)
        if isinstance(cause, (*PLATFORM_ERRORS, ValueError, httpx.HTTPError, OSError)):
            errors.print(f"error: {cause}", markup=False, highlight=False)
            raise typer.Exit(1) from None
        raise


LOCAL_STATE_ENV = "DLT_PLATFORM_STATE_DIR"
StateDirOption = Annotated[
    Path,
    typer.Option(
        envvar=LOCAL_STATE_ENV,
        help="State folder of the local stack: tokens, local D1/KV/queues, Dagster home and logs.",
    ),
]


def kv_settings(settings: Settings, definition: SourceDefinition | None = None) -> Settings:
    """Settings to read KV with. Without Cloudflare credentials (or an orchestrator URL for a source read through
    the Worker) and with the local stack up, KV is read through the local Worker, and a line on stderr says so.
    An explicit DLT_PLATFORM_KV_TRANSPORT is obeyed as it is."""
    if settings.kv_transport_override is not None or (
        definition is not None and not isinstance(definition, KVSourceDefinition)
    ):
        return settings
    if definition is not None and settings.kv_transport(definition) == "worker":
        missing = not (settings.orchestrator_url and settings.internal_token)
    else:
        missing = not (settings.cloudflare_account_id and settings.cloudflare_api_token)
    worker = running_local_worker(local_state_dir()) if missing else None
    if worker is None:
        return settings
    note(f"no Cloudflare credentials: reading KV through the local Worker at {worker.url} ({worker.env_file})")
    return dataclasses.replace(
        settings, kv_transport_override="worker", orchestrator_url=worker.url, internal_token=worker.internal_token
    )


def local_state_dir() -> Path:
    return Path(os.environ.get(LOCAL_STATE_ENV) or DEFAULT_STATE_DIR)


def kv_source(settings: Settings, source_id: str, command: str) -> KVSourceDefinition:
    """The source's definition, refused by name when it is not a KV source (the command reads KV namespaces)."""
    definition = settings.get_source(source_id)
    if not isinstance(definition, KVSourceDefinition):
        raise UsageError(
            f"--source-id: {source_id} is a {definition.source_type} source; `{command}` reads KV "
            "namespaces (`dlt-platform load --limit N` samples any source)"
        )
    return definition
