-- Load jobs per destination table per UTC day (BigQuery's quota: 1,500 a table a day, failed jobs included). A run
-- reports its load jobs with its final status (one row per table and source: sources in one dataset share dlt's
-- _dlt_pipeline_state table, whose total is the sum of its rows). Counted for every destination; only BigQuery
-- tables are warned about (load_jobs.ts).
CREATE TABLE load_jobs (
  day          TEXT NOT NULL,          -- UTC date YYYY-MM-DD of the run's end
  destination  TEXT NOT NULL,          -- bigquery | duckdb
  dataset      TEXT NOT NULL,
  table_name   TEXT NOT NULL,
  source_id    TEXT NOT NULL,
  jobs         INTEGER NOT NULL DEFAULT 0,   -- load jobs started (completed and failed)
  runs         INTEGER NOT NULL DEFAULT 0,   -- runs that made at least one
  last_run_at  TEXT NOT NULL,
  PRIMARY KEY (day, destination, dataset, table_name, source_id)
);

CREATE INDEX load_jobs_by_source ON load_jobs (source_id, day);

-- The one warning per table per UTC day: the run whose load jobs took the table past 80% of its budget.
CREATE TABLE load_job_warnings (
  day          TEXT NOT NULL,
  destination  TEXT NOT NULL,
  dataset      TEXT NOT NULL,
  table_name   TEXT NOT NULL,
  run_id       TEXT NOT NULL,           -- no foreign key: runs are pruned (retention.ts), the day's warning stays
  jobs         INTEGER NOT NULL,        -- the table's total that day when it was warned about
  budget       INTEGER NOT NULL,
  at           TEXT NOT NULL,
  PRIMARY KEY (day, destination, dataset, table_name)
);
