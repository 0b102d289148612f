-- Retired sources: kept with their versions and runs, hidden from Dagster and from the default listing.
ALTER TABLE sources ADD COLUMN retired_at TEXT;

-- A retirement is a version too: widen the change check (SQLite cannot alter a CHECK, so copy the table).
PRAGMA defer_foreign_keys = true;

CREATE TABLE source_versions_new (
  source_id   TEXT NOT NULL REFERENCES sources (source_id),
  version     INTEGER NOT NULL,
  definition  TEXT NOT NULL,
  change      TEXT NOT NULL CHECK (change IN ('create', 'update', 'enable', 'disable', 'retire')),
  changed_at  TEXT NOT NULL,
  changed_by  TEXT NOT NULL,
  PRIMARY KEY (source_id, version)
);

INSERT INTO source_versions_new (source_id, version, definition, change, changed_at, changed_by)
  SELECT source_id, version, definition, change, changed_at, changed_by FROM source_versions;
DROP TABLE source_versions;
ALTER TABLE source_versions_new RENAME TO source_versions;
