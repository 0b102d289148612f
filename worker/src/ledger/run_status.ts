/** The one writer of run statuses, and events that leave the status as it is. */
import { nowIso } from "../ids";
import type { RunStatus } from "../contract";
import { getRun, type RunRow } from "./runs";
import { ALERTING, canTransition, TERMINAL } from "./status_machine";

export interface StatusChange {
  status: RunStatus;
  at?: string;
  message?: string | null;
  dagster_run_id?: string | null;
  rows_loaded?: number | null;
  tables?: Record<string, number> | null;
  data?: Record<string, unknown>;
  /** queued -> launching by a queue consumer: takes the launch lease and counts the attempt. */
  claim_launch?: boolean;
  /** Owe an alert for an ending that is not a failure (a run that set a load package aside). */
  alert?: boolean;
}

/**
 * Every status change (queue consumers, Dagster's status reports, cron reconciliation, cancel) comes through
 * here. Moves a run to `change.status` if the status machine allows it. The event insert, the alert owed for a
 * bad ending and the run update are one batch, all conditioned on the status read before, so a concurrent
 * change makes them all no-ops.
 */
export async function applyStatus(
  db: D1Database,
  runId: string,
  change: StatusChange,
): Promise<{ run: RunRow; applied: boolean }> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const run = await getRun(db, runId);
    if (!canTransition(run.status, change.status)) return { run, applied: false };
    const now = nowIso();
    const at = change.at ?? now;
    const data = {
      ...(change.dagster_run_id ? { dagster_run_id: change.dagster_run_id } : {}),
      ...(change.rows_loaded != null ? { rows_loaded: change.rows_loaded } : {}),
      ...(change.tables ? { tables: change.tables } : {}),
      ...(change.data ?? {}),
    };
    const statements = [
      db
        .prepare(
          `INSERT INTO run_events (run_id, status, message, at, data)
           SELECT run_id, ?, ?, ?, ? FROM runs WHERE run_id = ? AND status = ?`,
        )
        .bind(
          change.status,
          change.message ?? null,
          at,
          Object.keys(data).length ? JSON.stringify(data) : null,
          runId,
          run.status,
        ),
    ];
    if (ALERTING.has(change.status) || (change.alert && TERMINAL.has(change.status))) {
      statements.push(
        db
          .prepare(
            `INSERT OR IGNORE INTO run_notifications (run_id, status, reason, created_at)
             SELECT run_id, ?, ?, ? FROM runs WHERE run_id = ? AND status = ?`,
          )
          .bind(change.status, change.message ?? null, now, runId, run.status),
      );
    }
    statements.push(
      db
        .prepare(
          `UPDATE runs SET status = ?, updated_at = ?,
             message = COALESCE(?, message),
             dagster_run_id = COALESCE(dagster_run_id, ?),
             rows_loaded = COALESCE(?, rows_loaded),
             tables = COALESCE(?, tables),
             started_at = CASE WHEN ? THEN COALESCE(started_at, ?) ELSE started_at END,
             finished_at = CASE WHEN ? THEN COALESCE(finished_at, ?) ELSE finished_at END,
             launch_claimed_at = CASE WHEN ? THEN ? ELSE NULL END,
             launch_attempts = launch_attempts + ?
           WHERE run_id = ? AND status = ?`,
        )
        .bind(
          change.status,
          now,
          change.message ?? null,
          change.dagster_run_id ?? null,
          change.rows_loaded ?? null,
          change.tables ? JSON.stringify(change.tables) : null,
          change.status === "running" ? 1 : 0,
          at,
          TERMINAL.has(change.status) ? 1 : 0,
          at,
          change.claim_launch ? 1 : 0,
          now,
          change.claim_launch ? 1 : 0,
          runId,
          run.status,
        ),
    );
    const results = await db.batch(statements);
    if (results[results.length - 1].meta.changes) return { run: await getRun(db, runId), applied: true };
    // The status moved under us: read again and re-decide.
  }
  return { run: await getRun(db, runId), applied: false };
}

/** Records an event that does not change the run's status (launch errors, re-sends, alerts). */
export async function addEvent(db: D1Database, runId: string, message: string, data?: Record<string, unknown>) {
  const at = nowIso();
  await db.batch([
    db
      .prepare(
        `INSERT INTO run_events (run_id, status, message, at, data)
         SELECT run_id, status, ?, ?, ? FROM runs WHERE run_id = ?`,
      )
      .bind(message, at, data ? JSON.stringify(data) : null, runId),
    db.prepare("UPDATE runs SET updated_at = ? WHERE run_id = ?").bind(at, runId),
  ]);
}
