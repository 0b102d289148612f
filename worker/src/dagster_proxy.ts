/**
 * /dagster/*: the Dagster UI and its GraphQL and WebSocket traffic, for signed-in operators (an admin session
 * cookie or the operator bearer token) only, never driven cross-site: what goes on is the canonical request
 * proxy_guard.ts builds and checks.
 */
import { Hono } from "hono";
import { passes, requireOperator, SESSION_COOKIE, sessionFrom } from "./auth";
import { dagsterFetch } from "./dagster";
import type { AppEnv } from "./env";
import { unauthorized } from "./errors";
import { canonicalProxyRequest } from "./proxy_guard";

export const dagsterProxy = new Hono<AppEnv>();

dagsterProxy.all("/dagster/*", async (c) => {
  const viaBearer = await passes(requireOperator, c);
  if (!viaBearer && (await sessionFrom(c)) === null) throw unauthorized();
  // Only the request the guard built goes on: what it checked is what Dagster executes.
  const { path, init } = canonicalProxyRequest(c.req.raw, viaBearer, SESSION_COOKIE);
  return dagsterFetch(c.env, path, init);
});
