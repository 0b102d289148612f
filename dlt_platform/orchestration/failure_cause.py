"""Why a run failed, in one line: what D1, the admin page, `GET /runs/:id`, the CLI summary and alerts show.

Dagster's RUN_FAILURE message only says which steps failed ("Steps failed: ['cloudflare_kv_leads']"). The cause
is in the failed step's error: a `dg.Failure`'s description (the platform's own one-line failures), else the
innermost exception of the error's cause chain (dlt wraps the warehouse's error in PipelineStepFailed and a load
job exception). Known causes get a plain sentence; every line has secret values masked and is bounded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import dagster as dg
from dagster import DagsterEventType

MAX_CAUSE_CHARS = 500
_MASK = "***"
# Environment variables whose values are secrets wherever they appear (the platform's and any source's).
_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSWORD|PRIVATE_KEY|CREDENTIALS|ACCESS_KEY|API_KEY|_PG_URL|SESSION_KEY", re.IGNORECASE
)
# Credentials inside text: URL userinfo, query parameters named like keys, bearer tokens.
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&](?:[a-z_]*(?:key|token|secret|sig|signature|password|auth)[a-z_]*)=)[^&\s'\"]+", re.IGNORECASE
)
_BEARER = re.compile(r"(?P<name>bearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
# DuckDB: 'IO Error: Could not set lock on file "/x/warehouse.duckdb": Conflicting lock is held in
# /usr/bin/python3.11 (PID 9038)'
_DUCKDB_LOCK = re.compile(
    r"Could not set lock on file \"?(?P<file>[^\"]+?)\"?: Conflicting lock is held in .*?\(PID (?P<pid>\d+)\)"
)
_DUCKDB_OOM = re.compile(r"Out of Memory Error: (?P<detail>.*)")


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-named environment variables long enough to be worth masking, longest first."""
    variables = os.environ if environ is None else environ
    values = {value for name, value in variables.items() if _SECRET_NAME.search(name) and len(value) >= 6}
    return sorted(values, key=len, reverse=True)


def masked(text: str, secrets: list[str] | None = None) -> str:
    for value in secret_values() if secrets is None else secrets:
        text = text.replace(value, _MASK)
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{_MASK}@", text)
    text = _SECRET_QUERY.sub(lambda m: f"{m['name']}{_MASK}", text)
    return _BEARER.sub(lambda m: f"{m['name']}{_MASK}", text)


def one_line(text: str, limit: int = MAX_CAUSE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain_cause(message: str) -> str:
    """A sentence for causes people meet often; the message itself otherwise."""
    lock = _DUCKDB_LOCK.search(message)
    if lock:
        return f"DuckDB warehouse {lock['file']} locked by another process (PID {lock['pid']})"
    oom = _DUCKDB_OOM.search(message)
    if oom:
        return (
            f"DuckDB ran out of memory while loading ({oom['detail'].strip()}); raise DLT_PLATFORM_DUCKDB_MEMORY_LIMIT"
        )
    return message


def innermost(error) -> object:
    """The deepest error of a SerializableErrorInfo's cause chain (its `context` when nothing caused it)."""
    while True:
        nested = error.cause or error.context
        if nested is None:
            return error
        error = nested


def error_message(error) -> str:
    """The message of one SerializableErrorInfo without Dagster's wrapper text and the exception's class path."""
    message = (error.message or "").strip()
    # 'dlt.pipeline.exceptions.PipelineStepFailed: Pipeline execution failed ...' -> the part after the class
    if error.cls_name and ": " in message and message.split(": ", 1)[0].endswith(error.cls_name):
        message = message.split(": ", 1)[1]
    return message


def step_failure_cause(step_failure) -> str | None:
    """The cause carried by one STEP_FAILURE event's data."""
    user_failure = step_failure.user_failure_data
    if user_failure is not None and user_failure.description:
        return user_failure.description
    if step_failure.error is None:
        return None
    deepest = innermost(step_failure.error)
    message = error_message(deepest)
    # A bare re-raise of an empty exception says nothing: fall back to the outer, wrapped message.
    return message or error_message(step_failure.error) or None


def run_failure_cause(instance: dg.DagsterInstance, run_id: str, fallback: str | None) -> str | None:
    """One line on why a run failed: the first failed step's cause (a run loads one source, so its step is the
    source's), else Dagster's own message (a run whose worker died has no step failure). Secrets masked, at most
    MAX_CAUSE_CHARS."""
    cause = None
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_FAILURE).records:
        event = record.event_log_entry.dagster_event
        data = event.step_failure_data if event is not None else None
        cause = step_failure_cause(data) if data is not None else None
        if cause:
            break
    text = plain_cause(cause) if cause else fallback
    return one_line(masked(text)) if text else None
