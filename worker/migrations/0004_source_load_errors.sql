-- Definitions Dagster's code location could not build, as it last reported them (POST /internal/sources/load-errors).
-- `version` is the sources.version the error is about: an error of an older version is not shown.
CREATE TABLE source_load_errors (
  source_id    TEXT PRIMARY KEY,
  version      INTEGER,
  message      TEXT NOT NULL,
  reported_at  TEXT NOT NULL
);
