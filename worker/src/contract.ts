// Generated from dlt_platform/contract.py by `dlt-platform schema`; do not edit.

export const RUN_STATUSES = [
  "queued",
  "launching",
  "launched",
  "running",
  "succeeded",
  "failed",
  "canceled",
  "dead_lettered"
] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const TERMINAL_STATUSES: readonly RunStatus[] = [
  "succeeded",
  "failed",
  "canceled",
  "dead_lettered"
];

export const TRIGGERS = [
  "api",
  "admin",
  "schedule",
  "sensor",
  "backfill",
  "ui",
  "retry",
  "webhook"
] as const;
export type Trigger = (typeof TRIGGERS)[number];

export const RUN_ID_TAG = "dlt_platform/run_id";
export const SOURCE_ID_TAG = "dlt_platform/source_id";
export const TRIGGER_TAG = "dlt_platform/trigger";
export const PARTITION_TAG = "dagster/partition";
export const SOURCE_VERSION_METADATA = "dlt_platform/source_version";
export const RUN_SOURCE_ENV = "DLT_PLATFORM_RUN_SOURCE_ID";
export const REPOSITORY_LOCATION = "dlt_platform";

export const DAGSTER_TO_LEDGER_STATUS: Readonly<Record<string, RunStatus>> = {
  "QUEUED": "launched",
  "NOT_STARTED": "launched",
  "STARTING": "launched",
  "MANAGED": "launched",
  "STARTED": "running",
  "SUSPENDED": "running",
  "SUCCESS": "succeeded",
  "FAILURE": "failed",
  "CANCELING": "canceled",
  "CANCELED": "canceled"
};

export const PLATFORM_SECRET_PREFIXES = [
  "DLT_",
  "DAGSTER_",
  "CLOUDFLARE_",
  "GOOGLE_",
  "BIGQUERY_",
  "AWS_",
  "ADMIN_",
  "ALERT_"
] as const;
export const PLATFORM_SECRET_INFIX = "__";

export const WEBHOOK_DEFAULT_R2_PREFIX = "webhooks";

export const BIGQUERY_LOAD_JOBS_PER_TABLE_PER_DAY = 1500;
export const DEFAULT_LOAD_JOB_BUDGET = 1000;
export const LOAD_JOB_WARNING_SHARE = 0.8;
