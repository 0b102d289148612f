/** Queued runs for operator requests: one run per Idempotency-Key, and the per-source backlog limit. */
import { ApiError } from "../errors";
import { isUniqueViolation } from "./d1";
import { insertRun, type NewRun, type RunRow } from "./runs";
import { sourceRetired } from "./sources";

/** Seconds a client refused for too many pending runs is asked to wait (about one launch-and-run cycle). */
export const PENDING_RETRY_AFTER_SECONDS = 60;

export async function findRunByIdempotencyKey(db: D1Database, sourceId: string, key: string): Promise<RunRow | null> {
  return db
    .prepare("SELECT * FROM runs WHERE source_id = ? AND idempotency_key = ?")
    .bind(sourceId, key)
    .first<RunRow>();
}

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
 * that request differed). With `max_pending`, a source already holding that many pending runs answers 429. The
 * insert itself requires the source not to be retired (409 `source_retired`): a DELETE that lands between the
 * caller's read of the source and this insert leaves no queued run behind.
 */
export async function createQueuedRun(db: D1Database, run: NewRun): Promise<{ run: RunRow; created: boolean }> {
  if (run.idempotency_key) {
    const existing = await findRunByIdempotencyKey(db, run.source_id, run.idempotency_key);
    if (existing) return { run: sameRequest(existing, run), created: false };
  }
  let created: RunRow | null;
  try {
    created = await insertRun(db, { ...run, status: "queued", live_source_only: true });
  } catch (err) {
    // A concurrent request with the same key won the insert.
    if (run.idempotency_key && isUniqueViolation(err)) {
      const existing = await findRunByIdempotencyKey(db, run.source_id, run.idempotency_key);
      if (existing) return { run: sameRequest(existing, run), created: false };
    }
    throw err;
  }
  if (!created) {
    const source = await db
      .prepare("SELECT retired_at FROM sources WHERE source_id = ?")
      .bind(run.source_id)
      .first<{ retired_at: string | null }>();
    if (!source || source.retired_at) throw sourceRetired(run.source_id);
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
