/** Small request helpers shared by the route modules. */
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "./env";
import { validationFailed } from "./errors";

/** Parses the JSON body; `optional` accepts an empty body as undefined. */
async function readJson(c: Context<AppEnv>, optional = false): Promise<unknown> {
  const text = await c.req.text();
  if (!text.trim()) {
    if (optional) return undefined;
    throw validationFailed([{ field: "(body)", message: "a JSON body is required" }]);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw validationFailed([{ field: "(body)", message: "body is not valid JSON" }]);
  }
}

/**
 * The one way routes take a JSON body: read (any content type; 400 when missing or not JSON), handed to `parse`
 * (a schema check that throws the 400 naming each field), then available as `c.req.valid("json")`.
 */
export function jsonBody<T extends object>(
  parse: (body: unknown) => T,
  options: { optional?: boolean } = {},
): MiddlewareHandler<AppEnv, string, { out: { json: T } }> {
  return async (c, next) => {
    c.req.addValidatedData("json", parse(await readJson(c, options.optional)));
    await next();
  };
}

/** Longest Idempotency-Key accepted; a longer one is refused rather than cut (two keys must never collide). */
export const MAX_IDEMPOTENCY_KEY = 200;

/** The Idempotency-Key header, trimmed; null when absent or blank, 400 when longer than the limit. */
export function idempotencyKey(c: Context<AppEnv>): string | null {
  const key = c.req.header("Idempotency-Key")?.trim() ?? "";
  if (key.length > MAX_IDEMPOTENCY_KEY) {
    throw validationFailed(
      [{ field: "Idempotency-Key", message: `must be at most ${MAX_IDEMPOTENCY_KEY} characters (got ${key.length})` }],
      "request header is not valid",
    );
  }
  return key || null;
}

/** Who made a change: the X-Actor header, default "operator". */
export function actorOf(c: Context<AppEnv>, fallback = "operator"): string {
  const actor = (c.req.header("X-Actor") ?? "").trim().slice(0, 100);
  return actor || fallback;
}

/** Runs `promise` after the response when an execution context exists. */
export function background(c: Context<AppEnv>, promise: Promise<unknown>): void {
  try {
    c.executionCtx.waitUntil(promise);
  } catch {
    void promise;
  }
}
