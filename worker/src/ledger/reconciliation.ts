/** The queries the cron's reconciliation (reconcile.ts) starts from: runs in flight and runs left waiting. */
import type { RunStatus } from "../contract";
import type { RunRow } from "./runs";

/** A launched or running run with the time it entered that status (its event's `at`, else created_at). */
export interface InFlightRun extends RunRow {
  status_since: string;
}

/** Launched and running runs, least recently updated first (cron reconciliation asks Dagster about each). */
export async function inFlightRuns(db: D1Database, limit = 100): Promise<InFlightRun[]> {
  const { results } = await db
    .prepare(
      `SELECT r.*, COALESCE(
         (SELECT MIN(e.at) FROM run_events e WHERE e.run_id = r.run_id AND e.status = r.status), r.created_at
       ) AS status_since
       FROM runs r WHERE r.status IN ('launched', 'running') ORDER BY r.updated_at LIMIT ?`,
    )
    .bind(limit)
    .all<InFlightRun>();
  return results;
}

/** Runs in `statuses` not updated since `olderThan` (for cron reconciliation). */
export async function staleRuns(db: D1Database, statuses: RunStatus[], olderThan: string, limit = 100) {
  const { results } = await db
    .prepare(
      `SELECT * FROM runs WHERE status IN (${statuses.map(() => "?").join(", ")}) AND updated_at < ?
       ORDER BY updated_at LIMIT ?`,
    )
    .bind(...statuses, olderThan, limit)
    .all<RunRow>();
  return results;
}
