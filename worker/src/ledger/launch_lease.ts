/**
 * The launch lease: a queue delivery claims a run before launching it, so at-least-once delivery (re-sends,
 * redeliveries) never launches one run twice.
 */
import { nowIso } from "../ids";
import { applyStatus } from "./run_status";
import { findRun, getRun, type RunRow } from "./runs";

const LAUNCH_LEASE_MS = 2 * 60 * 1000;

/** The message of the event a delivery that launched nothing leaves on its run. */
export const DUPLICATE_DELIVERY_MESSAGE = "queue delivery acked without launching";

/**
 * Claims a run for launching: queued -> launching (with its event), or re-claims a launching run whose
 * previous attempt failed or whose lease ran out. Returns null when another delivery holds it or the
 * run is past launching, so a duplicate message never launches twice.
 */
export async function claimForLaunch(db: D1Database, runId: string): Promise<RunRow | null> {
  const run = await findRun(db, runId);
  if (!run) return null;
  if (run.status === "queued") {
    const claimed = await applyStatus(db, runId, { status: "launching", message: "launching in Dagster", claim_launch: true });
    return claimed.applied ? claimed.run : null;
  }
  if (run.status === "launching") {
    const now = nowIso();
    const leaseCutoff = new Date(Date.now() - LAUNCH_LEASE_MS).toISOString();
    const update = await db
      .prepare(
        `UPDATE runs SET launch_claimed_at = ?, launch_attempts = launch_attempts + 1, updated_at = ?
         WHERE run_id = ? AND status = 'launching' AND (launch_claimed_at IS NULL OR launch_claimed_at < ?)`,
      )
      .bind(now, now, runId, leaseCutoff)
      .run();
    return update.meta.changes ? getRun(db, runId) : null;
  }
  return null;
}

/**
 * A delivery that found its run claimed or past launching, acked without launching: recorded on the run (status
 * unchanged, `updated_at` untouched so reconciliation still sees how long the run has waited). Nothing for a run
 * the ledger does not hold.
 */
export async function recordDuplicateDelivery(db: D1Database, runId: string, attempts: number): Promise<void> {
  await db
    .prepare(
      `INSERT INTO run_events (run_id, status, message, at, data)
       SELECT run_id, status, ?, ?, json_object('duplicate_delivery', json('true'), 'delivery_attempts', ?, 'status', status)
       FROM runs WHERE run_id = ?`,
    )
    .bind(DUPLICATE_DELIVERY_MESSAGE, nowIso(), attempts, runId)
    .run();
}

/** A failed launch attempt: releases the lease and records the error (status stays launching). */
export async function recordLaunchFailure(db: D1Database, runId: string, error: string, retryInSeconds: number) {
  const at = nowIso();
  await db.batch([
    db
      .prepare(
        `INSERT INTO run_events (run_id, status, message, at, data)
         SELECT run_id, status, ?, ?, ? FROM runs WHERE run_id = ?`,
      )
      .bind(`launch failed: ${error}`, at, JSON.stringify({ retry_in_seconds: retryInSeconds }), runId),
    db
      .prepare(
        "UPDATE runs SET launch_claimed_at = NULL, last_error = ?, updated_at = ? WHERE run_id = ? AND status = 'launching'",
      )
      .bind(error, at, runId),
  ]);
}
