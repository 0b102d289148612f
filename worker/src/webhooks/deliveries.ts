/**
 * Accepted webhook deliveries: the document in R2 (RAW_STAGING), the row in D1 (webhook_deliveries), in that order,
 * so every row has its object. Dagster pages them through the internal API and marks them loaded.
 */
import type { Env } from "../env";
import { ApiError, validationFailed } from "../errors";
import { decodeCursor, encodeCursor } from "../cursor";
import { nowIso } from "../ids";
import { DELIVERY_SOURCE_TYPES } from "../source_types";
import type { Preset } from "./presets";

/** What R2 keeps of one delivery, and what the internal API returns. */
export interface DeliveryDocument {
  source_id: string;
  delivery_id: string;
  received_at: string;
  event_type: string | null;
  signature_preset: Preset;
  headers: Record<string, string>;
  body: string;
}

/** R2's longest object key, in UTF-8 bytes. */
export const R2_MAX_KEY_BYTES = 1024;

/** Hex SHA-256 of `data` (text as UTF-8). */
export async function sha256Hex(data: string | Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", typeof data === "string" ? new TextEncoder().encode(data) : data);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * `{prefix}/{source_id}/dt=YYYY-MM-DD/hr=HH/{encodeURIComponent(delivery_id)}.json`, UTC of received_at; when that
 * would pass R2's 1,024 bytes, `.../hr=HH/sha256/{hex SHA-256 of the id}.json` instead (an encoded id never holds
 * a `/`, so the two forms never meet). The D1 row keeps the key and the id.
 */
export async function deliveryKey(
  prefix: string,
  doc: Pick<DeliveryDocument, "source_id" | "delivery_id" | "received_at">,
): Promise<string> {
  const day = doc.received_at.slice(0, 10);
  const hour = doc.received_at.slice(11, 13);
  const folder = `${prefix}/${doc.source_id}/dt=${day}/hr=${hour}/`;
  const readable = `${folder}${encodeURIComponent(doc.delivery_id)}.json`;
  if (new TextEncoder().encode(readable).length <= R2_MAX_KEY_BYTES) return readable;
  return `${folder}sha256/${await sha256Hex(doc.delivery_id)}.json`;
}

export async function isRecorded(db: D1Database, sourceId: string, deliveryId: string): Promise<boolean> {
  const row = await db
    .prepare("SELECT 1 AS found FROM webhook_deliveries WHERE source_id = ? AND delivery_id = ?")
    .bind(sourceId, deliveryId)
    .first();
  return row !== null;
}

/**
 * The body digest check of a source whose delivery id is not signed: a delivery with the same body received at or
 * after `since` (ISO) is the same delivery, whatever id it came with.
 */
export interface ReplayWindow {
  bodySha256: string;
  since: string;
}

/** The id under which the same body was recorded within the window, or null. */
export async function sameBodyRecorded(db: D1Database, sourceId: string, window: ReplayWindow): Promise<string | null> {
  const row = await db
    .prepare(
      `SELECT delivery_id FROM webhook_deliveries WHERE source_id = ? AND body_sha256 = ? AND received_at >= ?
       ORDER BY received_at LIMIT 1`,
    )
    .bind(sourceId, window.bodySha256, window.since)
    .first<{ delivery_id: string }>();
  return row?.delivery_id ?? null;
}

/**
 * Keeps a delivery: R2 first, then the D1 row. Returns false when a concurrent request with the same id (or, with
 * a `replay` window, the same body) recorded it first: its object stays what that request wrote; this one's, when
 * no row points at it, is removed.
 */
export async function storeDelivery(
  env: Env,
  prefix: string,
  doc: DeliveryDocument,
  bodyBytes: number,
  replay: ReplayWindow | null = null,
): Promise<boolean> {
  const key = await deliveryKey(prefix, doc);
  await env.RAW_STAGING.put(key, JSON.stringify(doc), { httpMetadata: { contentType: "application/json" } });
  // The body check is in the insert itself, so concurrent replays under different ids leave one row. (An upsert's
  // SELECT always has a WHERE: without one SQLite would read ON CONFLICT as a join constraint.)
  const result = await env.DB.prepare(
    `INSERT INTO webhook_deliveries (source_id, delivery_id, received_at, event_type, r2_key, body_bytes, state, body_sha256)
     SELECT ?, ?, ?, ?, ?, ?, 'waiting', ?
     WHERE ${replay ? "NOT EXISTS (SELECT 1 FROM webhook_deliveries WHERE source_id = ? AND body_sha256 = ? AND received_at >= ?)" : "true"}
     ON CONFLICT (source_id, delivery_id) DO NOTHING`,
  )
    .bind(
      doc.source_id,
      doc.delivery_id,
      doc.received_at,
      doc.event_type,
      key,
      bodyBytes,
      replay?.bodySha256 ?? null,
      ...(replay ? [doc.source_id, replay.bodySha256, replay.since] : []),
    )
    .run();
  if (result.meta.changes) return true;
  const winner = await env.DB.prepare("SELECT r2_key FROM webhook_deliveries WHERE source_id = ? AND delivery_id = ?")
    .bind(doc.source_id, doc.delivery_id)
    .first<{ r2_key: string }>();
  if (!winner || winner.r2_key !== key) await env.RAW_STAGING.delete(key);
  return false;
}

/** Counts a refused request under its source (or '*' for ids that name no source). */
export async function countRefusal(db: D1Database, sourceId: string, reason: string): Promise<void> {
  await db
    .prepare(
      `INSERT INTO webhook_refusals (source_id, reason, count, last_at) VALUES (?, ?, 1, ?)
       ON CONFLICT (source_id, reason) DO UPDATE SET count = count + 1, last_at = excluded.last_at`,
    )
    .bind(sourceId, reason, nowIso())
    .run();
}

// --- for Dagster ---------------------------------------------------------------------------

export interface WaitingSummary {
  source_id: string;
  waiting: number;
  oldest_received_at: string | null;
}

/** Every enabled webhook source with its waiting deliveries (0 and null when none wait). */
export async function waitingSummary(db: D1Database): Promise<WaitingSummary[]> {
  const { results } = await db
    .prepare(
      `SELECT s.source_id,
              (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.source_id = s.source_id AND d.state = 'waiting') AS waiting,
              (SELECT MIN(received_at) FROM webhook_deliveries d WHERE d.source_id = s.source_id AND d.state = 'waiting')
                AS oldest_received_at
       FROM sources s
       WHERE s.enabled = 1 AND s.retired_at IS NULL
         AND json_extract(s.definition, '$.source_type') IN (${DELIVERY_SOURCE_TYPES.map(() => "?").join(", ")})
       ORDER BY s.source_id`,
    )
    .bind(...DELIVERY_SOURCE_TYPES)
    .all<WaitingSummary>();
  return results;
}

export interface Cursor {
  received_at: string;
  delivery_id: string;
}

/** The position after which a page continues: [received_at, delivery_id]. */
export function cursorAfter(cursor: Cursor): string {
  return encodeCursor([cursor.received_at, cursor.delivery_id]);
}

function isPosition(value: unknown): value is [string, string] {
  return Array.isArray(value) && value.length === 2 && value.every((part) => typeof part === "string");
}

export function positionOf(text: string): Cursor {
  const [received_at, delivery_id] = decodeCursor(text, isPosition, "after");
  return { received_at, delivery_id };
}

export interface DeliveryFilter {
  state?: "waiting" | "loaded";
  /** YYYY-MM-DDTHH: deliveries received in that UTC hour. */
  hour?: string;
  after?: Cursor;
  limit: number;
}

/** A page stops adding documents once it is this large (always at least one), well under a response's limits. */
export const PAGE_BYTES = 8 * 1024 * 1024;
/** R2 reads in flight at once while a page is assembled. */
const READ_CONCURRENCY = 50;

function nextHour(hour: string): string {
  return new Date(Date.parse(`${hour}:00:00.000Z`) + 3_600_000).toISOString();
}

/**
 * One page of deliveries ordered by (received_at, delivery_id), as JSON text: the documents are passed on as R2 holds
 * them. `next` resumes after the last one returned, null when nothing is left.
 */
export async function deliveryPage(env: Env, sourceId: string, filter: DeliveryFilter): Promise<string> {
  const where = ["source_id = ?"];
  const params: unknown[] = [sourceId];
  if (filter.state) {
    where.push("state = ?");
    params.push(filter.state);
  }
  if (filter.hour) {
    where.push("received_at >= ? AND received_at < ?");
    params.push(`${filter.hour}:00:00.000Z`, nextHour(filter.hour));
  }
  if (filter.after) {
    where.push("(received_at > ? OR (received_at = ? AND delivery_id > ?))");
    params.push(filter.after.received_at, filter.after.received_at, filter.after.delivery_id);
  }
  const { results: rows } = await env.DB.prepare(
    `SELECT delivery_id, received_at, r2_key FROM webhook_deliveries WHERE ${where.join(" AND ")}
     ORDER BY received_at, delivery_id LIMIT ?`,
  )
    .bind(...params, filter.limit + 1)
    .all<{ delivery_id: string; received_at: string; r2_key: string }>();

  const documents: string[] = [];
  let bytes = 0;
  let taken = 0;
  const wanted = Math.min(rows.length, filter.limit);
  while (taken < wanted && (taken === 0 || bytes < PAGE_BYTES)) {
    const chunk = rows.slice(taken, Math.min(wanted, taken + READ_CONCURRENCY));
    const texts = await Promise.all(
      chunk.map(async (row) => {
        const object = await env.RAW_STAGING.get(row.r2_key);
        // A row is written only after its object: a missing one was removed by hand, and loading must not skip it.
        if (!object) throw new ApiError(500, "delivery_missing", `delivery ${row.delivery_id} has no R2 object (${row.r2_key})`);
        return object.text();
      }),
    );
    for (const text of texts) {
      if (taken > 0 && bytes >= PAGE_BYTES) break;
      documents.push(text);
      bytes += text.length;
      taken += 1;
    }
  }
  const last = rows[taken - 1];
  const next = taken < rows.length && last ? cursorAfter(last) : null;
  return `{"deliveries":[${documents.join(",")}],"next":${JSON.stringify(next)}}`;
}

/** Marks waiting deliveries loaded by `runId`; ids already loaded or unknown are left as they are. */
export async function markLoaded(db: D1Database, sourceId: string, runId: string, deliveryIds: string[]): Promise<number> {
  // One bound parameter for the whole list (D1 binds at most 100 per statement).
  const result = await db
    .prepare(
      `UPDATE webhook_deliveries SET state = 'loaded', run_id = ?, loaded_at = ?
       WHERE source_id = ? AND state = 'waiting' AND delivery_id IN (SELECT value FROM json_each(?))`,
    )
    .bind(runId, nowIso(), sourceId, JSON.stringify(deliveryIds))
    .run();
  return result.meta.changes;
}
