/** Small request helpers shared by the route modules. */
import type { Context } from "hono";
import type { AppEnv } from "./env";
import { validationFailed } from "./errors";

/** Parses the JSON body; `optional` accepts an empty body as undefined. */
export async function readJson(c: Context<AppEnv>, optional = false): Promise<unknown> {
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
