/** source_versions: one row per change of a source, the definition as it was after the change. */
import { notFound } from "../errors";

export type SourceChange = "create" | "update" | "enable" | "disable" | "retire";

/** A further SQL condition (and its parameters) a version statement and its sources update both carry. */
export interface SqlCondition {
  sql: string;
  params: unknown[];
}

/**
 * The statement recording version `expectedVersion + 1` of a source, only while the source is still at
 * `expectedVersion` and `onlyIf` holds (batched before the sources update, so a concurrent edit makes both no-ops).
 */
export function nextVersionStatement(
  db: D1Database,
  sourceId: string,
  expectedVersion: number,
  definitionJson: string,
  change: SourceChange,
  at: string,
  actor: string,
  onlyIf?: SqlCondition,
): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO source_versions (source_id, version, definition, change, changed_at, changed_by)
       SELECT source_id, version + 1, ?, ?, ?, ? FROM sources WHERE source_id = ? AND version = ?
       ${onlyIf ? `AND ${onlyIf.sql}` : ""}`,
    )
    .bind(definitionJson, change, at, actor, sourceId, expectedVersion, ...(onlyIf?.params ?? []));
}

/** The first version of a new source, batched after its insert: nothing when that insert's condition held it back. */
export function firstVersionStatement(
  db: D1Database,
  sourceId: string,
  definitionJson: string,
  at: string,
  actor: string,
): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO source_versions (source_id, version, definition, change, changed_at, changed_by)
       SELECT source_id, 1, ?, 'create', ?, ? FROM sources WHERE source_id = ? AND version = 1 AND updated_at = ?`,
    )
    .bind(definitionJson, at, actor, sourceId, at);
}

/** Every version of a source, newest first (404 for an unknown source). */
export async function listVersions(db: D1Database, sourceId: string) {
  const known = await db.prepare("SELECT 1 FROM sources WHERE source_id = ?").bind(sourceId).first();
  if (!known) throw notFound(`source ${sourceId}`);
  const { results } = await db
    .prepare(
      `SELECT version, definition, changed_at, changed_by, change FROM source_versions
       WHERE source_id = ? ORDER BY version DESC`,
    )
    .bind(sourceId)
    .all<{ version: number; definition: string; changed_at: string; changed_by: string; change: SourceChange }>();
  return results.map((row) => ({ ...row, definition: JSON.parse(row.definition) }));
}
