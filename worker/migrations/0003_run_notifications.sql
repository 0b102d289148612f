-- Alerts owed to operators for runs that ended failed or dead_lettered (stuck runs end failed too). A row is
-- written in the same batch as the status change; notify.ts delivers it to ALERT_WEBHOOK_URL afterwards and the
-- cron retries it, so a slow or broken webhook never holds up the ledger. One row per run: one alert per run.
CREATE TABLE run_notifications (
  run_id          TEXT PRIMARY KEY REFERENCES runs (run_id),
  status          TEXT NOT NULL,        -- the ending that raised it
  reason          TEXT,                 -- the status change's message
  created_at      TEXT NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at TEXT,                 -- lease while a sender holds it, then the backoff after a failure
  sent_at         TEXT,
  last_error      TEXT                  -- HTTP status or error name; never the URL
);

CREATE INDEX run_notifications_unsent ON run_notifications (created_at) WHERE sent_at IS NULL;
