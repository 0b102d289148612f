-- Control ledger of the dlt platform: sources, their versions, runs and run events.

CREATE TABLE sources (
  source_id   TEXT PRIMARY KEY,
  version     INTEGER NOT NULL,
  enabled     INTEGER NOT NULL CHECK (enabled IN (0, 1)),
  schedule    TEXT,
  definition  TEXT NOT NULL,          -- the validated definition JSON, as given
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  updated_by  TEXT NOT NULL
);

CREATE TABLE source_versions (
  source_id   TEXT NOT NULL REFERENCES sources (source_id),
  version     INTEGER NOT NULL,
  definition  TEXT NOT NULL,
  change      TEXT NOT NULL CHECK (change IN ('create', 'update', 'enable', 'disable')),
  changed_at  TEXT NOT NULL,
  changed_by  TEXT NOT NULL,
  PRIMARY KEY (source_id, version)
);

-- No foreign key to sources: Dagster may register runs of sources the ledger does not hold yet.
CREATE TABLE runs (
  run_id            TEXT PRIMARY KEY,
  source_id         TEXT NOT NULL,
  status            TEXT NOT NULL CHECK (status IN ('queued', 'launching', 'launched', 'running',
                      'succeeded', 'failed', 'canceled', 'dead_lettered')),
  trigger           TEXT NOT NULL CHECK (trigger IN ('api', 'admin', 'schedule', 'sensor', 'backfill', 'ui', 'retry')),
  dagster_run_id    TEXT,
  retry_of          TEXT,
  request           TEXT NOT NULL DEFAULT '{}',
  partition_key     TEXT,
  rows_loaded       INTEGER,
  tables            TEXT,
  message           TEXT,
  idempotency_key   TEXT,
  launch_attempts   INTEGER NOT NULL DEFAULT 0,
  launch_claimed_at TEXT,               -- lease of the consumer launching it; guards duplicate deliveries
  last_error        TEXT,
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  started_at        TEXT,
  finished_at       TEXT
);

CREATE UNIQUE INDEX runs_dagster_run_id ON runs (dagster_run_id) WHERE dagster_run_id IS NOT NULL;
CREATE UNIQUE INDEX runs_idempotency ON runs (source_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_created ON runs (created_at DESC, run_id DESC);
CREATE INDEX runs_source_created ON runs (source_id, created_at DESC, run_id DESC);
CREATE INDEX runs_status_created ON runs (status, created_at DESC, run_id DESC);
CREATE INDEX runs_status_updated ON runs (status, updated_at);

CREATE TABLE run_events (
  event_id  INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id    TEXT NOT NULL REFERENCES runs (run_id),
  status    TEXT NOT NULL,              -- the run's status when the event happened
  message   TEXT,
  at        TEXT NOT NULL,
  data      TEXT                        -- JSON or NULL
);

CREATE INDEX run_events_run ON run_events (run_id, event_id);
