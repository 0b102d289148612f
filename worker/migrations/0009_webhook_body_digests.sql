-- A delivery's body digest (hex SHA-256 of the raw bytes), for sources whose delivery id is not signed (github's
-- X-GitHub-Delivery, ids from a header): the same signed body under a new id within the replay window adds no row.
-- Rows stored before this migration have none and match nothing.
ALTER TABLE webhook_deliveries ADD COLUMN body_sha256 TEXT;

CREATE INDEX webhook_deliveries_body ON webhook_deliveries (source_id, body_sha256, received_at)
  WHERE body_sha256 IS NOT NULL;
