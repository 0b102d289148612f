"""Names the Worker and the Dagster code location must agree on, defined once here.

The Worker's copy, `worker/src/contract.ts`, is generated from this module (`dlt-platform schema` writes it with
the definition schema) as typed constants; a test fails while the committed file is stale.
"""

from __future__ import annotations

import json

# D1 `runs.status`, in the order a run moves through them; the last four are final.
RUN_STATUSES = ("queued", "launching", "launched", "running", "succeeded", "failed", "canceled", "dead_lettered")
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "dead_lettered"})
# D1 `runs.trigger`: who asked for a run.
TRIGGERS = ("api", "admin", "schedule", "sensor", "backfill", "ui", "retry", "webhook")

# Dagster run tags the Worker sets when it launches a run and the code location reads back.
RUN_ID_TAG = "dlt_platform/run_id"
SOURCE_ID_TAG = "dlt_platform/source_id"
TRIGGER_TAG = "dlt_platform/trigger"
PARTITION_TAG = "dagster/partition"
# Asset metadata holding the definition version Dagster loaded: the Worker launches a run only once it is there.
SOURCE_VERSION_METADATA = "dlt_platform/source_version"

# Set by the Worker in a run container's environment to the source its run's SOURCE_ID_TAG names: that run worker
# builds only this source's definitions (definitions.py), not every source's.
RUN_SOURCE_ENV = "DLT_PLATFORM_RUN_SOURCE_ID"

# The code location the Worker addresses (workspace.yaml's location_name).
REPOSITORY_LOCATION = "dlt_platform"

# Secret names that belong to the platform, never to a definition (a rest_api {"env": NAME}, a webhook's
# secret_names): the Worker's tokens and session key, R2, BigQuery and Cloudflare credentials, Dagster's database,
# alert URLs, and dlt's SECTION__KEY configuration (any name holding PLATFORM_SECRET_INFIX).
PLATFORM_SECRET_PREFIXES = ("DLT_", "DAGSTER_", "CLOUDFLARE_", "GOOGLE_", "BIGQUERY_", "AWS_", "ADMIN_", "ALERT_")
PLATFORM_SECRET_INFIX = "__"

# Where the Worker keeps webhook deliveries in R2 when a definition's staging names no r2_prefix.
WEBHOOK_DEFAULT_R2_PREFIX = "webhooks"

# BigQuery's load-job quota: load jobs per table per UTC day, failed ones included. A source's tables may use
# `destination.load_job_budget` of them (default below, kept under the quota for manual runs and retries); a run
# that takes a table past LOAD_JOB_WARNING_SHARE of its budget is warned about once per table per day.
BIGQUERY_LOAD_JOBS_PER_TABLE_PER_DAY = 1500
DEFAULT_LOAD_JOB_BUDGET = 1000
LOAD_JOB_WARNING_SHARE = 0.8

# Dagster run status -> ledger status.
DAGSTER_TO_LEDGER_STATUS = {
    "QUEUED": "launched",
    "NOT_STARTED": "launched",
    "STARTING": "launched",
    "MANAGED": "launched",
    "STARTED": "running",
    "SUSPENDED": "running",  # paused, still in flight (Dagster resumes it)
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
    "CANCELING": "canceled",
    "CANCELED": "canceled",
}


def _ts(value) -> str:
    return json.dumps(value, indent=2)


def render_contract() -> str:
    """worker/src/contract.ts: the same names as TypeScript constants with literal types."""
    terminal = [status for status in RUN_STATUSES if status in TERMINAL_STATUSES]
    return f"""// Generated from dlt_platform/contract.py by `dlt-platform schema`; do not edit.

export const RUN_STATUSES = {_ts(list(RUN_STATUSES))} as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const TERMINAL_STATUSES: readonly RunStatus[] = {_ts(terminal)};

export const TRIGGERS = {_ts(list(TRIGGERS))} as const;
export type Trigger = (typeof TRIGGERS)[number];

export const RUN_ID_TAG = {_ts(RUN_ID_TAG)};
export const SOURCE_ID_TAG = {_ts(SOURCE_ID_TAG)};
export const TRIGGER_TAG = {_ts(TRIGGER_TAG)};
export const PARTITION_TAG = {_ts(PARTITION_TAG)};
export const SOURCE_VERSION_METADATA = {_ts(SOURCE_VERSION_METADATA)};
export const RUN_SOURCE_ENV = {_ts(RUN_SOURCE_ENV)};
export const REPOSITORY_LOCATION = {_ts(REPOSITORY_LOCATION)};

export const DAGSTER_TO_LEDGER_STATUS: Readonly<Record<string, RunStatus>> = {_ts(DAGSTER_TO_LEDGER_STATUS)};

export const PLATFORM_SECRET_PREFIXES = {_ts(list(PLATFORM_SECRET_PREFIXES))} as const;
export const PLATFORM_SECRET_INFIX = {_ts(PLATFORM_SECRET_INFIX)};

export const WEBHOOK_DEFAULT_R2_PREFIX = {_ts(WEBHOOK_DEFAULT_R2_PREFIX)};

export const BIGQUERY_LOAD_JOBS_PER_TABLE_PER_DAY = {_ts(BIGQUERY_LOAD_JOBS_PER_TABLE_PER_DAY)};
export const DEFAULT_LOAD_JOB_BUDGET = {_ts(DEFAULT_LOAD_JOB_BUDGET)};
export const LOAD_JOB_WARNING_SHARE = {_ts(LOAD_JOB_WARNING_SHARE)};
"""
