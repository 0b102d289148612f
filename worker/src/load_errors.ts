/**
 * Definitions the Dagster code location could not build. Python reports the whole current set on every load
 * of the location (so a fixed definition clears); operators see them in GET /sources[/:id] and on the admin
 * page, and the queue fails a run of such a source instead of retrying its launch.
 */
import type { ReportedLoadError } from "./bodies";
import { nowIso } from "./ids";

export interface LoadError {
  message: string;
  version: number | null;
  reported_at: string;
}

/** Replaces the reported set in one batch. */
export async function replaceLoadErrors(db: D1Database, errors: ReportedLoadError[]): Promise<void> {
  const at = nowIso();
  await db.batch([
    db.prepare("DELETE FROM source_load_errors"),
    ...errors.map((error) =>
      db
        .prepare(
          `INSERT INTO source_load_errors (source_id, version, message, reported_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (source_id) DO UPDATE SET version = excluded.version, message = excluded.message,
             reported_at = excluded.reported_at`,
        )
        .bind(error.source_id, error.version, error.message, at),
    ),
  ]);
}

interface LoadErrorRow extends LoadError {
  source_id: string;
}

/** Current errors by source: an error about an older version than `versions` holds is no longer current. */
export async function loadErrorsBySource(
  db: D1Database,
  versions: ReadonlyMap<string, number>,
): Promise<Map<string, LoadError>> {
  const { results } = await db
    .prepare("SELECT source_id, version, message, reported_at FROM source_load_errors")
    .all<LoadErrorRow>();
  const current = new Map<string, LoadError>();
  for (const row of results) {
    const version = versions.get(row.source_id);
    if (version === undefined || (row.version !== null && row.version < version)) continue;
    current.set(row.source_id, { message: row.message, version: row.version, reported_at: row.reported_at });
  }
  return current;
}

export async function findLoadError(db: D1Database, sourceId: string, version: number): Promise<LoadError | null> {
  const errors = await loadErrorsBySource(db, new Map([[sourceId, version]]));
  return errors.get(sourceId) ?? null;
}

/** Sources (or source records) with their current load error, null when Dagster loaded them. */
export async function withLoadErrors<T extends { source_id: string; version: number }>(
  db: D1Database,
  sources: T[],
): Promise<(T & { load_error: LoadError | null })[]> {
  const errors = await loadErrorsBySource(db, new Map(sources.map((s) => [s.source_id, s.version])));
  return sources.map((source) => ({ ...source, load_error: errors.get(source.source_id) ?? null }));
}

/** GET /internal/sources carries each source's version: Dagster labels its assets with it. */
export async function sourceVersions(db: D1Database): Promise<Record<string, number>> {
  const { results } = await db
    .prepare("SELECT source_id, version FROM sources")
    .all<{ source_id: string; version: number }>();
  return Object.fromEntries(results.map((row) => [row.source_id, row.version]));
}
