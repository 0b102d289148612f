-- Webhook feeds: every delivery the Worker accepted (its document is in R2 at r2_key) and the refusals it counted.
-- A row exists only once its R2 object was written; Dagster marks rows loaded after the load succeeded.
CREATE TABLE webhook_deliveries (
  source_id    TEXT NOT NULL,
  delivery_id  TEXT NOT NULL,
  received_at  TEXT NOT NULL,            -- ISO-8601 UTC with milliseconds; also the R2 key's dt=/hr=
  event_type   TEXT,
  r2_key       TEXT NOT NULL,
  body_bytes   INTEGER NOT NULL,
  state        TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'loaded')),
  run_id       TEXT,                     -- the Dagster run that loaded it
  loaded_at    TEXT,
  PRIMARY KEY (source_id, delivery_id)
);

CREATE INDEX webhook_deliveries_state ON webhook_deliveries (source_id, state, received_at, delivery_id);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (source_id, received_at, delivery_id);

-- Refused requests by source and reason; refusals for source ids that do not exist are counted under '*'.
CREATE TABLE webhook_refusals (
  source_id  TEXT NOT NULL,
  reason     TEXT NOT NULL,
  count      INTEGER NOT NULL,
  last_at    TEXT NOT NULL,
  PRIMARY KEY (source_id, reason)
);
