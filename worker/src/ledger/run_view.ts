/** The API shape of a run: what GET /runs/:run_id answers (with its events) and GET /runs lists. */
import type { RunRequest } from "../bodies";
import type { RunRow } from "./runs";

export function runView(row: RunRow) {
  return {
    run_id: row.run_id,
    source_id: row.source_id,
    status: row.status,
    trigger: row.trigger,
    dagster_run_id: row.dagster_run_id,
    retry_of: row.retry_of,
    request: JSON.parse(row.request) as RunRequest,
    partition: row.partition_key,
    rows_loaded: row.rows_loaded,
    tables: row.tables ? (JSON.parse(row.tables) as Record<string, number>) : null,
    message: row.message,
    created_at: row.created_at,
    updated_at: row.updated_at,
    started_at: row.started_at,
    finished_at: row.finished_at,
  };
}
