/** Reads one page of a KV namespace (list + bulk get) for the Dagster KV source. */
import { encodeBase64 } from "hono/utils/encode";
import { decodeCursor, encodeCursor } from "./cursor";
import { ApiError } from "./errors";
import type { Env } from "./env";

export interface KvRecord {
  key: string;
  value: string;
  value_encoding: "text" | "base64";
  metadata: unknown;
  expiration: number | null;
}

export interface KvPage {
  records: KvRecord[];
  cursor: string | null;
  list_complete: boolean;
}

const BULK_GET_KEYS = 100;
/** Workers allow 1,000 KV operations per invocation. */
export const KV_OPERATION_BUDGET = 1000;
/** Cursors of pages cut short by the budget resume inside a KV listing page. */
const RESUME_PREFIX = "dltp1.";

interface ResumeCursor {
  c: string | null; // KV cursor of the listing page
  s: number; // keys of that page already returned
  l: number; // list limit of that page, so the same page is listed again
}

function isKvNamespace(value: unknown): value is KVNamespace {
  const candidate = value as Partial<KVNamespace> | null;
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.list === "function" &&
    typeof candidate.getWithMetadata === "function"
  );
}

/** The KV binding named `title`; titles are binding names such as ORDERS_KV. */
export function kvNamespace(env: Env, title: string): KVNamespace {
  const value = /^[A-Za-z][A-Za-z0-9_]*$/.test(title) ? (env as unknown as Record<string, unknown>)[title] : undefined;
  if (!isKvNamespace(value)) throw new ApiError(404, "unknown_namespace", `no KV namespace is bound as ${title}`);
  return value;
}

function isResumeCursor(value: unknown): value is ResumeCursor {
  const c = value as ResumeCursor | null;
  return (
    typeof c === "object" &&
    c !== null &&
    (c.c === null || typeof c.c === "string") &&
    Number.isInteger(c.s) &&
    c.s >= 0 &&
    Number.isInteger(c.l) &&
    c.l >= 1 &&
    c.l <= 1000
  );
}

/** A cursor this endpoint returned (a resume point), or one of Cloudflare's own, passed through as is. */
function readCursor(cursor: string | undefined): ResumeCursor {
  if (!cursor) return { c: null, s: 0, l: 0 };
  if (!cursor.startsWith(RESUME_PREFIX)) return { c: cursor, s: 0, l: 0 };
  return decodeCursor(cursor.slice(RESUME_PREFIX.length), isResumeCursor);
}

export interface PageOptions {
  prefix?: string;
  cursor?: string;
  limit: number;
  /** KV operations this page may use (tests lower it). */
  budget?: number;
}

/**
 * One page: list up to `limit` keys, then bulk-get their values as text, 100 keys per operation.
 * Text decoding turns invalid UTF-8 into U+FFFD, so such values are re-read alone as bytes and,
 * when not valid UTF-8, returned as base64. If the operation budget runs out first, the page ends
 * early with a cursor that resumes inside the same listing page.
 */
export async function readKvPage(ns: KVNamespace, options: PageOptions): Promise<KvPage> {
  let budget = options.budget ?? KV_OPERATION_BUDGET;
  const resume = readCursor(options.cursor);
  const listLimit = resume.l || options.limit;
  const listing = await ns.list({
    prefix: options.prefix || undefined,
    cursor: resume.c ?? undefined,
    limit: listLimit,
  });
  budget -= 1;
  const entries = listing.keys.slice(resume.s);
  const records: KvRecord[] = [];
  const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let done = 0; // entries of `entries` fully handled
  outer: for (let start = 0; start < entries.length; start += BULK_GET_KEYS) {
    const chunk = entries.slice(start, start + BULK_GET_KEYS);
    // One bulk get, plus at worst one re-read per key of this chunk, must fit in the budget.
    if (budget < 1 + 1) break;
    const values = await ns.getWithMetadata(
      chunk.map((entry) => entry.name),
      "text",
    );
    budget -= 1;
    for (const entry of chunk) {
      const got = values.get(entry.name);
      const value = got?.value;
      if (value === null || value === undefined) {
        done += 1; // vanished between list and get
        continue;
      }
      let record: KvRecord = {
        key: entry.name,
        value,
        value_encoding: "text",
        metadata: entry.metadata ?? got?.metadata ?? null,
        expiration: entry.expiration ?? null,
      };
      if (value.includes("\uFFFD")) {
        if (budget < 1) break outer;
        const bytes = await ns.get(entry.name, "arrayBuffer");
        budget -= 1;
        if (bytes === null) {
          done += 1;
          continue;
        }
        try {
          record = { ...record, value: strictUtf8.decode(bytes) };
        } catch {
          record = { ...record, value: encodeBase64(bytes), value_encoding: "base64" };
        }
      }
      records.push(record);
      done += 1;
    }
  }
  if (done < entries.length) {
    return { records, cursor: RESUME_PREFIX + encodeCursor({ c: resume.c, s: resume.s + done, l: listLimit }), list_complete: false };
  }
  const cursor = listing.list_complete ? null : listing.cursor;
  return { records, cursor, list_complete: listing.list_complete };
}
