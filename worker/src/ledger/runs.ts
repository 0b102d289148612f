/** The runs and run_events tables: reading runs, inserting a run with its first event, Dagster's own runs. */
import { notFound } from "../errors";
import { newRunId, nowIso } from "../ids";
import type { RunRequest } from "../bodies";
import type { RunStatus, Trigger } from "../contract";
import { isUniqueViolation } from "./d1";
import { ALERTING, PENDING, statusList, TERMINAL } from "./status_machine";

export interface RunRow {
  run_id: string;
  source_id: string;
  status: RunStatus;
  trigger: Trigger;
  dagster_run_id: string | null;
  retry_of: string | null;
  request: string;
  partition_key: string | null;
  rows_loaded: number | null;
  tables: string | null;
  message: string | null;
  idempotency_key: string | null;
  launch_attempts: number;
  launch_claimed_at: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface RunEvent {
  event_id: number;
  status: RunStatus;
  message: string | null;
  at: string;
  data: unknown;
}

export async function findRun(db: D1Database, runId: string): Promise<RunRow | null> {
  return db.prepare("SELECT * FROM runs WHERE run_id = ?").bind(runId).first<RunRow>();
}

export async function getRun(db: D1Database, runId: string): Promise<RunRow> {
  const run = await findRun(db, runId);
  if (!run) throw notFound(`run ${runId}`);
  return run;
}

export async function listEvents(db: D1Database, runId: string): Promise<RunEvent[]> {
  const { results } = await db
    .prepare("SELECT event_id, status, message, at, data FROM run_events WHERE run_id = ? ORDER BY event_id")
    .bind(runId)
    .all<{ event_id: number; status: RunStatus; message: string | null; at: string; data: string | null }>();
  return results.map((row) => ({ ...row, data: row.data ? JSON.parse(row.data) : null }));
}

/** A position in the runs list, newest first: the last run of the previous page. */
export interface RunListPosition {
  created_at: string;
  run_id: string;
}

export interface RunListFilter {
  source_id?: string;
  status?: RunStatus;
  limit: number;
  cursor?: RunListPosition;
}

export async function listRuns(db: D1Database, filter: RunListFilter): Promise<{ runs: RunRow[]; next: RunRow | null }> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.source_id) {
    where.push("source_id = ?");
    params.push(filter.source_id);
  }
  if (filter.status) {
    where.push("status = ?");
    params.push(filter.status);
  }
  if (filter.cursor) {
    where.push("(created_at < ? OR (created_at = ? AND run_id < ?))");
    params.push(filter.cursor.created_at, filter.cursor.created_at, filter.cursor.run_id);
  }
  const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
               ORDER BY created_at DESC, run_id DESC LIMIT ?`;
  const { results } = await db
    .prepare(sql)
    .bind(...params, filter.limit + 1)
    .all<RunRow>();
  const runs = results.slice(0, filter.limit);
  return { runs, next: results.length > filter.limit ? runs[runs.length - 1] : null };
}

export interface NewRun {
  source_id: string;
  trigger: Trigger;
  status?: RunStatus;
  request?: RunRequest;
  partition?: string | null;
  idempotency_key?: string | null;
  retry_of?: string | null;
  dagster_run_id?: string | null;
  at?: string;
  message?: string;
  /** Insert only while the source has fewer than this many pending runs (the count and the insert are atomic). */
  max_pending?: number;
  /** Insert only while the source is not retired, in the insert itself (a retirement may land after any read). */
  live_source_only?: boolean;
}

/**
 * Inserts a run and its first event in one batch; null when `max_pending` or `live_source_only` refused it. Unique violations
 * (idempotency, dagster id) propagate.
 */
export async function insertRun(db: D1Database, run: NewRun): Promise<RunRow | null> {
  const runId = newRunId();
  const now = nowIso();
  const at = run.at ?? now;
  const status = run.status ?? "queued";
  const started = status === "running" ? at : null;
  const finished = TERMINAL.has(status) ? at : null;
  const eventData = {
    trigger: run.trigger,
    ...(run.retry_of ? { retry_of: run.retry_of } : {}),
    ...(run.dagster_run_id ? { dagster_run_id: run.dagster_run_id } : {}),
  };
  const bounded = run.max_pending !== undefined;
  const conditions: string[] = [];
  const conditionParams: unknown[] = [];
  if (bounded) {
    conditions.push(`(SELECT COUNT(*) FROM runs WHERE source_id = ? AND status IN (${statusList(PENDING)})) < ?`);
    conditionParams.push(run.source_id, run.max_pending);
  }
  if (run.live_source_only) {
    conditions.push("EXISTS (SELECT 1 FROM sources WHERE source_id = ? AND retired_at IS NULL)");
    conditionParams.push(run.source_id);
  }
  const [inserted] = await db.batch([
    db
      .prepare(
        `INSERT INTO runs (run_id, source_id, status, trigger, dagster_run_id, retry_of, request, partition_key,
                           idempotency_key, created_at, updated_at, started_at, finished_at)
         SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
         ${conditions.length ? `WHERE ${conditions.join(" AND ")}` : ""}`,
      )
      .bind(
        runId,
        run.source_id,
        status,
        run.trigger,
        run.dagster_run_id ?? null,
        run.retry_of ?? null,
        JSON.stringify(run.request ?? {}),
        run.partition ?? null,
        run.idempotency_key ?? null,
        at,
        now,
        started,
        finished,
        ...conditionParams,
      ),
    db
      .prepare("INSERT INTO run_events (run_id, status, message, at, data) SELECT run_id, ?, ?, ?, ? FROM runs WHERE run_id = ?")
      .bind(status, run.message ?? `run created (${run.trigger})`, at, JSON.stringify(eventData), runId),
    // Dagster may register a run it has already seen fail: that ending owes an alert too.
    ...(ALERTING.has(status)
      ? [
          db
            .prepare("INSERT INTO run_notifications (run_id, status, reason, created_at) SELECT run_id, ?, ?, ? FROM runs WHERE run_id = ?")
            .bind(status, run.message ?? null, now, runId),
        ]
      : []),
  ]);
  if (!inserted.meta.changes) return null;
  return getRun(db, runId);
}

export async function findRunByDagsterId(db: D1Database, dagsterRunId: string): Promise<RunRow | null> {
  return db.prepare("SELECT * FROM runs WHERE dagster_run_id = ?").bind(dagsterRunId).first<RunRow>();
}

/** Registers a run Dagster started itself; idempotent on dagster_run_id. */
export async function registerDagsterRun(db: D1Database, run: NewRun & { dagster_run_id: string }) {
  const existing = await findRunByDagsterId(db, run.dagster_run_id);
  if (existing) return { run: existing, created: false };
  try {
    return { run: (await insertRun(db, run)) as RunRow, created: true };
  } catch (err) {
    if (isUniqueViolation(err)) {
      const raced = await findRunByDagsterId(db, run.dagster_run_id);
      if (raced) return { run: raced, created: false };
    }
    throw err;
  }
}
