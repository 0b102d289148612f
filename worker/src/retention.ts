/**
 * Retention, run by the cron: what is older than RETENTION_DAYS and finished is deleted, in bounded batches.
 *
 * - webhook deliveries Dagster marked `loaded` before the cutoff: their R2 objects first, then their rows (a row
 *   deleted first would leave its object behind for good; an object deleted first leaves at worst a loaded row
 *   whose body is gone, which nothing reads again);
 * - finished runs (succeeded, failed, canceled, dead_lettered) that ended before the cutoff, with their run events
 *   and alert rows (both reference the run) in one batch;
 * - load-job counts and warnings of UTC days before the cutoff's (load_jobs.ts; only today's are ever read).
 *
 * Never a waiting delivery, never a run still queued, launching, launched or running. D1 holds at most 10 GB per
 * database, and each cron may spend only so many queries: at most RETENTION_BATCHES batches of 100 (D1 binds at
 * most 100 parameters a statement) per kind per cron, so a backlog is worked off over several crons.
 */
import { TERMINAL_STATUSES } from "./contract";
import { numberVar, type Env } from "./env";

const BATCH = 100;

export interface RetentionReport {
  cutoff: string;
  deliveries: number;
  r2_objects: number;
  runs: number;
  run_events: number;
  notifications: number;
  load_job_rows: number;
}

function placeholders(count: number): string {
  return Array.from({ length: count }, () => "?").join(", ");
}

async function pruneDeliveries(env: Env, cutoff: string, report: RetentionReport): Promise<boolean> {
  const { results } = await env.DB.prepare(
    `SELECT source_id, delivery_id, r2_key FROM webhook_deliveries
     WHERE state = 'loaded' AND loaded_at < ? ORDER BY loaded_at LIMIT ${BATCH}`,
  )
    .bind(cutoff)
    .all<{ source_id: string; delivery_id: string; r2_key: string }>();
  if (!results.length) return false;
  await env.RAW_STAGING.delete(results.map((row) => row.r2_key));
  report.r2_objects += results.length;
  // One statement per row: a (source_id, delivery_id) pair binds two parameters, and the state is checked again.
  const deleted = await env.DB.batch(
    results.map((row) =>
      env.DB.prepare("DELETE FROM webhook_deliveries WHERE source_id = ? AND delivery_id = ? AND state = 'loaded'").bind(
        row.source_id,
        row.delivery_id,
      ),
    ),
  );
  report.deliveries += deleted.reduce((sum, result) => sum + (result.meta.changes ?? 0), 0);
  return results.length === BATCH;
}

async function pruneRuns(env: Env, cutoff: string, report: RetentionReport): Promise<boolean> {
  const terminal = placeholders(TERMINAL_STATUSES.length);
  const { results } = await env.DB.prepare(
    `SELECT run_id FROM runs WHERE status IN (${terminal}) AND COALESCE(finished_at, updated_at) < ?
     ORDER BY COALESCE(finished_at, updated_at) LIMIT ${BATCH - TERMINAL_STATUSES.length}`,
  )
    .bind(...TERMINAL_STATUSES, cutoff)
    .all<{ run_id: string }>();
  if (!results.length) return false;
  const ids = results.map((row) => row.run_id);
  const list = placeholders(ids.length);
  // Events and alert rows reference the run: deleted first, in the same batch (one transaction).
  const [events, notifications, runs] = await env.DB.batch([
    env.DB.prepare(`DELETE FROM run_events WHERE run_id IN (${list})`).bind(...ids),
    env.DB.prepare(`DELETE FROM run_notifications WHERE run_id IN (${list})`).bind(...ids),
    env.DB.prepare(`DELETE FROM runs WHERE run_id IN (${list}) AND status IN (${terminal})`).bind(
      ...ids,
      ...TERMINAL_STATUSES,
    ),
  ]);
  report.run_events += events.meta.changes ?? 0;
  report.notifications += notifications.meta.changes ?? 0;
  report.runs += runs.meta.changes ?? 0;
  return results.length === BATCH - TERMINAL_STATUSES.length;
}

async function pruneLoadJobs(env: Env, cutoff: string, report: RetentionReport): Promise<boolean> {
  const day = cutoff.slice(0, 10);
  const [counts, warnings] = await env.DB.batch(
    ["load_jobs", "load_job_warnings"].map((table) =>
      env.DB.prepare(
        `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE day < ? LIMIT ${BATCH})`,
      ).bind(day),
    ),
  );
  const deleted = [counts, warnings].map((result) => result.meta.changes ?? 0);
  report.load_job_rows += deleted[0] + deleted[1];
  return deleted.some((changes) => changes === BATCH);
}

/** One cron's pruning; null when RETENTION_DAYS is 0 (keep everything). */
export async function pruneOld(env: Env, now: Date = new Date()): Promise<RetentionReport | null> {
  const days = numberVar(env, "RETENTION_DAYS", { min: 0 });
  if (days === 0) return null;
  const cutoff = new Date(now.getTime() - days * 86_400_000).toISOString();
  const batches = Math.floor(numberVar(env, "RETENTION_BATCHES"));
  const report: RetentionReport = {
    cutoff,
    deliveries: 0,
    r2_objects: 0,
    runs: 0,
    run_events: 0,
    notifications: 0,
    load_job_rows: 0,
  };
  for (let i = 0; i < batches && (await pruneDeliveries(env, cutoff, report)); i++);
  for (let i = 0; i < batches && (await pruneRuns(env, cutoff, report)); i++);
  for (let i = 0; i < batches && (await pruneLoadJobs(env, cutoff, report)); i++);
  return report;
}
