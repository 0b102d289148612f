/** The source store: current definitions, their enabled flag, retirement; every change also writes a version. */
import { ApiError, conflict, notFound } from "../errors";
import { nowIso } from "../ids";
import type { RunStatus } from "../contract";
import type { SourceDefinition } from "../validation";
import { isUniqueViolation } from "./d1";
import { claimDestination } from "./destinations";
import { IN_FLIGHT, statusList } from "./status_machine";
import { firstVersionStatement, nextVersionStatement, type SourceChange, type SqlCondition } from "./versions";

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
  definition: string;
  updated_at: string;
  updated_by: string;
  retired_at: string | null;
  last_run_id: string | null;
  last_run_status: RunStatus | null;
  last_run_created_at: string | null;
}

const SOURCE_SELECT = `
  SELECT s.source_id, s.version, s.enabled, s.definition, s.updated_at, s.updated_by, s.retired_at,
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

/**
 * Times a create or an edit that changes tables checks them again when another source changed between its check
 * and its write. Each lost attempt means another write landed, so this bounds the wait, never the progress.
 */
const DESTINATION_CHECKS = 10;

const sourcesChanged = (sourceId: string) =>
  conflict(`other sources kept changing while source ${sourceId} was being saved (their tables were checked): retry`);

/**
 * Creates a source and its first version row in one batch, only if no other live source loads one of its tables
 * (409 `destination_taken`, see claimDestination) and no source changed since that was checked.
 */
export async function createSource(db: D1Database, definition: SourceDefinition, actor: string): Promise<SourceRecord> {
  const json = JSON.stringify(definition);
  const enabled = definition.enabled ?? true;
  for (let attempt = 0; attempt < DESTINATION_CHECKS; attempt++) {
    if (await findSource(db, definition.source_id)) throw conflict(`source ${definition.source_id} already exists`);
    const claim = await claimDestination(db, definition);
    const at = nowIso();
    let inserted: D1Result;
    try {
      [inserted] = await db.batch([
        db
          .prepare(
            `INSERT INTO sources (source_id, version, enabled, definition, created_at, updated_at, updated_by)
             SELECT ?, 1, ?, ?, ?, ?, ? ${claim ? `WHERE ${claim.sql}` : ""}`,
          )
          .bind(definition.source_id, enabled ? 1 : 0, json, at, at, actor, ...(claim?.params ?? [])),
        firstVersionStatement(db, definition.source_id, json, at, actor),
      ]);
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`source ${definition.source_id} already exists`);
      throw err;
    }
    if (inserted.meta.changes) return getSource(db, definition.source_id);
  }
  throw sourcesChanged(definition.source_id);
}

/** What an edit is, when the caller does not say: only `enabled` flipped, or anything else. */
function changeKind(current: SourceRecord, definition: SourceDefinition): SourceChange {
  const enabled = definition.enabled ?? true;
  const sameOtherwise =
    JSON.stringify({ ...current.definition, enabled: undefined }) === JSON.stringify({ ...definition, enabled: undefined });
  if (sameOtherwise && current.enabled !== enabled) return enabled ? "enable" : "disable";
  return "update";
}

/**
 * Replaces a definition if it is still at `expectedVersion`. The version row is inserted first and both
 * statements are conditioned on the old version, so a concurrent edit makes both no-ops (one transaction). An
 * edit that loads a table it did not load before is refused when another live source loads it (claimDestination).
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
  const json = JSON.stringify(definition);
  const kind = change ?? changeKind(current, definition);
  for (let attempt = 0; attempt < DESTINATION_CHECKS; attempt++) {
    const claim = await claimDestination(db, definition, current.definition);
    const at = nowIso();
    const [, update] = await db.batch([
      nextVersionStatement(db, sourceId, expectedVersion, json, kind, at, actor, claim ?? undefined),
      db
        .prepare(
          `UPDATE sources SET version = version + 1, enabled = ?, definition = ?, updated_at = ?, updated_by = ?
           WHERE source_id = ? AND version = ? ${claim ? `AND ${claim.sql}` : ""}`,
        )
        .bind(enabled ? 1 : 0, json, at, actor, sourceId, expectedVersion, ...(claim?.params ?? [])),
    ]);
    if (update.meta.changes) return getSource(db, sourceId);
    const now = await getSource(db, sourceId);
    if (now.version !== expectedVersion || now.retired_at) {
      throw conflict(`source ${sourceId} changed while it was being updated`);
    }
  }
  throw sourcesChanged(sourceId);
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

async function inFlightRunIds(db: D1Database, sourceId: string): Promise<string[]> {
  const { results } = await db
    .prepare(`SELECT run_id FROM runs WHERE source_id = ? AND status IN (${statusList(IN_FLIGHT)}) ORDER BY created_at LIMIT 5`)
    .bind(sourceId)
    .all<{ run_id: string }>();
  return results.map((row) => row.run_id);
}

const sourceBusy = (sourceId: string, runIds: string[]) =>
  new ApiError(
    409,
    "source_busy",
    `source ${sourceId} has runs in flight (${runIds.join(", ")}): cancel them or let them finish first`,
  );

/**
 * Retires a source: a last version (change "retire", disabled) and `retired_at`, in one batch conditioned on the
 * version read, like updateSource, and on the source holding no run in flight, so nothing is left launching a
 * source Dagster no longer has. Both conditions are in the statements themselves: a run request either inserts
 * its run before the batch (and the retirement is refused, 409 `source_busy`) or after it (and is refused,
 * 409 `source_retired`, see createQueuedRun). Versions and runs stay. Retiring a retired source changes nothing.
 */
export async function retireSource(
  db: D1Database,
  sourceId: string,
  actor: string,
): Promise<{ source: SourceRecord; changed: boolean }> {
  const current = await getSource(db, sourceId);
  if (current.retired_at) return { source: current, changed: false };
  const inFlight = await inFlightRunIds(db, sourceId);
  if (inFlight.length) throw sourceBusy(sourceId, inFlight);
  const at = nowIso();
  const json = JSON.stringify({ ...current.definition, enabled: false });
  const idle: SqlCondition = {
    sql: `NOT EXISTS (SELECT 1 FROM runs WHERE source_id = ? AND status IN (${statusList(IN_FLIGHT)}))`,
    params: [sourceId],
  };
  const [, update] = await db.batch([
    nextVersionStatement(db, sourceId, current.version, json, "retire", at, actor, idle),
    db
      .prepare(
        `UPDATE sources SET version = version + 1, enabled = 0, definition = ?, retired_at = ?, updated_at = ?, updated_by = ?
         WHERE source_id = ? AND version = ? AND ${idle.sql}`,
      )
      .bind(json, at, at, actor, sourceId, current.version, ...idle.params),
  ]);
  if (!update.meta.changes) {
    const raced = await inFlightRunIds(db, sourceId);
    if (raced.length) throw sourceBusy(sourceId, raced);
    throw conflict(`source ${sourceId} changed while it was being retired`);
  }
  return { source: await getSource(db, sourceId), changed: true };
}
