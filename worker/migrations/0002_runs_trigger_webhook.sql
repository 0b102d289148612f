-- Runs may be triggered by webhooks (the trigger list of dlt_platform/contract.py). SQLite cannot change a
-- CHECK constraint in place, so the table is rebuilt (SQLite's documented procedure: new table, copy, drop,
-- rename); foreign keys from run_events are checked at the end of the migration, when `runs` exists again.
-- Apply it before any migration that adds columns to `runs`: the copy names today's columns.
PRAGMA defer_foreign_keys = true;

CREATE TABLE runs_new (
  run_id            TEXT PRIMARY KEY,
  source_id         TEXT NOT NULL,
  status            TEXT NOT NULL CHECK (status IN ('queued', 'launching', 'launched', 'running',
                      'succeeded', 'failed', 'canceled', 'dead_lettered')),
  trigger           TEXT NOT NULL CHECK (trigger IN ('api', 'admin', 'schedule', 'sensor', 'backfill', 'ui', 'retry',
                      'webhook')),
  dagster_run_id    TEXT,
  retry_of          TEXT,
  request           TEXT NOT NULL DEFAULT '{}',
  partition_key     TEXT,
  rows_loaded       INTEGER,
  tables            TEXT,
  message           TEXT,
  idempotency_key   TEXT,
  launch_attempts   INTEGER NOT NULL DEFAULT 0,
  launch_claimed_at TEXT,
  last_error        TEXT,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  started_at        TEXT,
  finished_at       TEXT
);

INSERT INTO runs_new (run_id, source_id, status, trigger, dagster_run_id, retry_of, request, partition_key, rows_loaded,
                      tables, message, idempotency_key, launch_attempts, launch_claimed_at, last_error, created_at,
                      updated_at, started_at, finished_at)
SELECT run_id, source_id, status, trigger, dagster_run_id, retry_of, request, partition_key, rows_loaded,
       tables, message, idempotency_key, launch_attempts, launch_claimed_at, last_error, created_at,
       updated_at, started_at, finished_at
FROM runs;

DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;

CREATE UNIQUE INDEX runs_dagster_run_id ON runs (dagster_run_id) WHERE dagster_run_id IS NOT NULL;
CREATE UNIQUE INDEX runs_idempotency ON runs (source_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_created ON runs (created_at DESC, run_id DESC);
CREATE INDEX runs_source_created ON runs (source_id, created_at DESC, run_id DESC);
CREATE INDEX runs_status_created ON runs (status, created_at DESC, run_id DESC);
CREATE INDEX runs_status_updated ON runs (status, updated_at);
