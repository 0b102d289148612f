/** D1 access for sources, versions, runs and run events, and the run status machine. */
import { ApiError, conflict, notFound } from "./errors";
import { TERMINAL_STATUSES } from "./contract";
import { newRunId, nowIso } from "./ids";
import type { RunRequest, RunStatus, SourceDefinition, Trigger } from "./validation";

// --- status machine ------------------------------------------------------------------------

const RANK: Record<RunStatus, number> = {
  queued: 0,
  launching: 1,
  launched: 2,
  running: 3,
  succeeded: 4,
  failed: 4,
  canceled: 4,
  dead_lettered: 4,
};

export const TERMINAL: ReadonlySet<RunStatus> = new Set(TERMINAL_STATUSES);

/** Endings operators are alerted about (see notify.ts); the alert is owed in the same batch as the change. */
export const ALERTING: ReadonlySet<RunStatus> = new Set(["failed", "dead_lettered"]);

/** Forward only; dead_lettered only from queued|launching; canceled from any non-terminal status. */
export function canTransition(from: RunStatus, to: RunStatus): boolean {
  if (TERMINAL.has(from)) return false;
  if (to === "dead_lettered") return from === "queued" || from === "launching";
  return RANK[to] > RANK[from];
}

// --- sources -------------------------------------------------------------------------------

export type SourceChange = "create" | "update" | "enable" | "disable" | "retire";

export interface SourceRecord {
  source_id: string;
  version: number;
  enabled: boolean;
  definition: SourceDefinition;
  updated_at: string;
  updated_by: string;
  /** Set once the source is retired (DELETE /sources/:id): disabled for good, hidden from Dagster. */
  retired_at: string | null;
  last_run: { run_id: string; status: RunStatus; created_at: string } | null;
}

interface SourceRow {
  source_id: string;
  version: number;
  enabled: number;
  schedule: string | null;
  definition: string;
  updated_at: string;
  updated_by: string;
  retired_at: string | null;
  last_run_id: string | null;
  last_run_status: RunStatus | null;
  last_run_created_at: string | null;
}

const SOURCE_SELECT = `
  SELECT s.source_id, s.version, s.enabled, s.schedule, s.definition, s.updated_at, s.updated_by, s.retired_at,
         r.run_id AS last_run_id, r.status AS last_run_status, r.created_at AS last_run_created_at
  FROM sources s
  LEFT JOIN runs r ON r.run_id = (
    SELECT run_id FROM runs WHERE source_id = s.source_id ORDER BY created_at DESC, run_id DESC LIMIT 1)`;

function toSource(row: SourceRow): SourceRecord {
  return {
    source_id: row.source_id,
    version: row.version,
    enabled: row.enabled === 1,
    definition: JSON.parse(row.definition),
    updated_at: row.updated_at,
    updated_by: row.updated_by,
    retired_at: row.retired_at,
    last_run: row.last_run_id
      ? { run_id: row.last_run_id, status: row.last_run_status as RunStatus, created_at: row.last_run_created_at as string }
      : null,
  };
}

/** Sources by id; retired ones only when asked for. */
export async function listSources(db: D1Database, options: { includeRetired?: boolean } = {}): Promise<SourceRecord[]> {
  const where = options.includeRetired ? "" : "WHERE s.retired_at IS NULL";
  const { results } = await db.prepare(`${SOURCE_SELECT} ${where} ORDER BY s.source_id`).all<SourceRow>();
  return results.map(toSource);
}

export async function findSource(db: D1Database, sourceId: string): Promise<SourceRecord | null> {
  const row = await db.prepare(`${SOURCE_SELECT} WHERE s.source_id = ?`).bind(sourceId).first<SourceRow>();
  return row ? toSource(row) : null;
}

export async function getSource(db: D1Database, sourceId: string): Promise<SourceRecord> {
  const source = await findSource(db, sourceId);
  if (!source) throw notFound(`source ${sourceId}`);
  return source;
}

/** The definitions Dagster builds assets from: every source but the retired ones. */
export async function listDefinitions(db: D1Database): Promise<SourceDefinition[]> {
  const { results } = await db
    .prepare("SELECT definition FROM sources WHERE retired_at IS NULL ORDER BY source_id")
    .all<{ definition: string }>();
  return results.map((row) => JSON.parse(row.definition));
}

function isUniqueViolation(err: unknown): boolean {
  return err instanceof Error && /UNIQUE constraint failed|SQLITE_CONSTRAINT/i.test(err.message);
}

/** Creates a source and its first version row in one batch. */
export async function createSource(db: D1Database, definition: SourceDefinition, actor: string): Promise<SourceRecord> {
  const at = nowIso();
  const json = JSON.stringify(definition);
  const enabled = definition.enabled ?? true;
  try {
    await db.batch([
      db
        .prepare(
          `INSERT INTO sources (source_id, version, enabled, schedule, definition, created_at, updated_at, updated_by)
           VALUES (?, 1, ?, ?, ?, ?, ?, ?)`,
        )
        .bind(definition.source_id, enabled ? 1 : 0, definition.schedule ?? null, json, at, at, actor),
      db
        .prepare(
          `INSERT INTO source_versions (source_id, version, definition, change, changed_at, changed_by)
           VALUES (?, 1, ?, 'create', ?, ?)`,
        )
        .bind(definition.source_id, json, at, actor),
    ]);
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict(`source ${definition.source_id} already exists`);
    throw err;
  }
  return getSource(db, definition.source_id);
}

/**
 * Replaces a definition if it is still at `expectedVersion`. The version row is inserted first and both
 * statements are conditioned on the old version, so a concurrent edit makes both no-ops (one transaction).
 */
export async function updateSource(
  db: D1Database,
  sourceId: string,
  expectedVersion: number,
  definition: SourceDefinition,
  actor: string,
  change?: SourceChange,
): Promise<SourceRecord> {
  const current = await getSource(db, sourceId);
  if (current.retired_at) throw sourceRetired(sourceId);
  if (current.version !== expectedVersion) {
    throw conflict(`source ${sourceId} is at version ${current.version}, not ${expectedVersion}`);
  }
  const enabled = definition.enabled ?? true;
  const kind: SourceChange =
    change ??
    (JSON.stringify({ ...current.definition, enabled: undefined }) === JSON.stringify({ ...definition, enabled: undefined }) &&
    current.enabled !== enabled
      ? enabled
        ? "enable"
        : "disable"
      : "update");
  const at = nowIso();
  const json = JSON.stringify(definition);
  const [, update] = await db.batch([
    db
      .prepare(
        `INSERT INTO source_versions (source_id, version, definition, change, changed_at, changed_by)
         SELECT source_id, version + 1, ?, ?, ?, ? FROM sources WHERE source_id = ? AND version = ?`,
      )
      .bind(json, kind, at, actor, sourceId, expectedVersion),
    db
      .prepare(
        `UPDATE sources SET version = version + 1, enabled = ?, schedule = ?, definition = ?, updated_at = ?, updated_by = ?
         WHERE source_id = ? AND version = ?`,
      )
      .bind(enabled ? 1 : 0, definition.schedule ?? null, json, at, actor, sourceId, expectedVersion),
  ]);
  if (!update.meta.changes) throw conflict(`source ${sourceId} changed while it was being updated`);
  return getSource(db, sourceId);
}

/** Enables or disables a source: a new version whose definition differs only in `enabled`. */
export async function setSourceEnabled(
  db: D1Database,
  sourceId: string,
  enabled: boolean,
  actor: string,
): Promise<{ source: SourceRecord; changed: boolean }> {
  const current = await getSource(db, sourceId);
  if (current.enabled === enabled) return { source: current, changed: false };
  const definition = { ...current.definition, enabled };
  const source = await updateSource(db, sourceId, current.version, definition, actor, enabled ? "enable" : "disable");
  return { source, changed: true };
}

export const sourceRetired = (sourceId: string) =>
  new ApiError(409, "source_retired", `source ${sourceId} is retired; its history is kept but it cannot change or run`);

/**
 * Retires a source: a last version (change "retire", disabled) and `retired_at`, in one batch conditioned on the
 * version read, like updateSource. Versions and runs stay. Refused while runs are in flight, so nothing is left
 * launching a source Dagster no longer has. Retiring a retired source changes nothing.
 */
export async function retireSource(
  db: D1Database,
  sourceId: string,
  actor: string,
): Promise<{ source: SourceRecord; changed: boolean }> {
  const current = await getSource(db, sourceId);
  if (current.retired_at) return { source: current, changed: false };
  const { results: inFlight } = await db
    .prepare(
      `SELECT run_id FROM runs WHERE source_id = ? AND status IN ('queued', 'launching', 'launched', 'running')
       ORDER BY created_at LIMIT 5`,
    )
    .bind(sourceId)
    .all<{ run_id: string }>();
  if (inFlight.length) {
    throw new ApiError(
      409,
      "source_busy",
      `source ${sourceId} has runs in flight (${inFlight.map((r) => r.run_id).join(", ")}): cancel them or let them finish first`,
    );
  }
  const at = nowIso();
  const json = JSON.stringify({ ...current.definition, enabled: false });
  const [, update] = await db.batch([
    db
      .prepare(
        `INSERT INTO source_versions (source_id, version, definition, change, changed_at, changed_by)
         SELECT source_id, version + 1, ?, 'retire', ?, ? FROM sources WHERE source_id = ? AND version = ?`,
      )
      .bind(json, at, actor, sourceId, current.version),
    db
      .prepare(
        `UPDATE sources SET version = version + 1, enabled = 0, definition = ?, retired_at = ?, updated_at = ?, updated_by = ?
         WHERE source_id = ? AND version = ?`,
      )
      .bind(json, at, at, actor, sourceId, current.version),
  ]);
  if (!update.meta.changes) throw conflict(`source ${sourceId} changed while it was being retired`);
  return { source: await getSource(db, sourceId), changed: true };
}

export async function listVersions(db: D1Database, sourceId: string) {
  await getSource(db, sourceId);
  const { results } = await db
    .prepare(
      `SELECT version, definition, changed_at, changed_by, change FROM source_versions
       WHERE source_id = ? ORDER BY version DESC`,
    )
    .bind(sourceId)
    .all<{ version: number; definition: string; changed_at: string; changed_by: string; change: SourceChange }>();
  return results.map((row) => ({ ...row, definition: JSON.parse(row.definition) }));
}

// --- runs ----------------------------------------------------------------------------------

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

/** The API shape of a run (GET /runs/:run_id, list items without events). */
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

export interface RunListFilter {
  source_id?: string;
  status?: RunStatus;
  limit: number;
  cursor?: { created_at: string; run_id: string };
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
}

/** Runs that wait for Dagster to start them: the backlog MAX_PENDING_RUNS_PER_SOURCE bounds. */
export const PENDING: readonly RunStatus[] = ["queued", "launching", "launched"];

/**
 * Inserts a run and its first event in one batch; null when `max_pending` refused it. Unique violations
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
  const [inserted] = await db.batch([
    db
      .prepare(
        `INSERT INTO runs (run_id, source_id, status, trigger, dagster_run_id, retry_of, request, partition_key,
                           idempotency_key, created_at, updated_at, started_at, finished_at)
         SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
         ${bounded ? `WHERE (SELECT COUNT(*) FROM runs WHERE source_id = ? AND status IN (${PENDING.map((p) => `'${p}'`).join(", ")})) < ?` : ""}`,
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
        ...(bounded ? [run.source_id, run.max_pending] : []),
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

export async function findRunByIdempotencyKey(db: D1Database, sourceId: string, key: string): Promise<RunRow | null> {
  return db
    .prepare("SELECT * FROM runs WHERE source_id = ? AND idempotency_key = ?")
    .bind(sourceId, key)
    .first<RunRow>();
}

export async function findRunByDagsterId(db: D1Database, dagsterRunId: string): Promise<RunRow | null> {
  return db.prepare("SELECT * FROM runs WHERE dagster_run_id = ?").bind(dagsterRunId).first<RunRow>();
}

/** Seconds a client refused for too many pending runs is asked to wait (about one launch-and-run cycle). */
export const PENDING_RETRY_AFTER_SECONDS = 60;

/** The run an earlier request with the same Idempotency-Key made, if it asked for the same thing; 422 if not. */
function sameRequest(existing: RunRow, run: NewRun): RunRow {
  if (existing.request !== JSON.stringify(run.request ?? {}) || existing.retry_of !== (run.retry_of ?? null)) {
    throw new ApiError(
      422,
      "idempotency_key_reused",
      `Idempotency-Key was already used for run ${existing.run_id} with a different request`,
    );
  }
  return existing;
}

/**
 * Creates a queued run, or returns the run an earlier request with the same Idempotency-Key created (422 when
 * that request differed). With `max_pending`, a source already holding that many pending runs answers 429.
 */
export async function createQueuedRun(
  db: D1Database,
  run: NewRun & { idempotency_key?: string | null },
): Promise<{ run: RunRow; created: boolean }> {
  if (run.idempotency_key) {
    const existing = await findRunByIdempotencyKey(db, run.source_id, run.idempotency_key);
    if (existing) return { run: sameRequest(existing, run), created: false };
  }
  let created: RunRow | null;
  try {
    created = await insertRun(db, { ...run, status: "queued" });
  } catch (err) {
    // A concurrent request with the same key won the insert.
    if (run.idempotency_key && isUniqueViolation(err)) {
      const existing = await findRunByIdempotencyKey(db, run.source_id, run.idempotency_key);
      if (existing) return { run: sameRequest(existing, run), created: false };
    }
    throw err;
  }
  if (!created) {
    throw new ApiError(
      429,
      "too_many_pending_runs",
      `source ${run.source_id} already has ${run.max_pending} pending runs (queued, launching or launched; ` +
        `MAX_PENDING_RUNS_PER_SOURCE=${run.max_pending}): retry after ${PENDING_RETRY_AFTER_SECONDS} s`,
      undefined,
      { "Retry-After": String(PENDING_RETRY_AFTER_SECONDS) },
    );
  }
  return { run: created, created: true };
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
}

/**
 * The one writer of run statuses: every status change (queue consumers, Dagster's status reports, cron
 * reconciliation, cancel) comes through here. Moves a run to `change.status` if the status machine allows it.
 * The event insert, the alert owed for a bad ending and the run update are one batch, all conditioned on the
 * status read before, so a concurrent change makes them all no-ops.
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
    if (ALERTING.has(change.status)) {
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

/** Records an event that does not change the run's status (launch errors, re-sends). */
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

const LAUNCH_LEASE_MS = 2 * 60 * 1000;

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
