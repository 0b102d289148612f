/** The Hono application: routes of every module, JSON errors. */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import pkg from "../../package.json";
import { passes, requireOperator } from "./auth";
import { missingConfiguration } from "./container";
import { numberVar, type AppEnv } from "./env";
import { dagsterProxy } from "./dagster_proxy";
import { errorBody, errorResponse } from "./errors";
import { openApiDocument } from "./openapi";
import { admin } from "./routes/admin";
import { hooks } from "./routes/hooks";
import { d1Routes } from "./routes/d1";
import { internal } from "./routes/internal";
import { mcpRoutes } from "./routes/mcp";
import { operator } from "./routes/operator";
import { runContainerRoutes } from "./routes/run_containers";
import { webhooks } from "./routes/webhooks";

export const VERSION: string = pkg.version;

export const app = new Hono<AppEnv>();

// Every body is bounded before any route reads it (a D1 row holds 2 MB; a definition or run request is far smaller).
app.use("*", async (c, next) => {
  // Webhook deliveries are bounded by their source's own limit (routes/hooks.ts).
  if (c.req.path.startsWith("/hooks/")) return next();
  const maxKb = Math.floor(numberVar(c.env, "MAX_BODY_KB"));
  const limit = bodyLimit({
    maxSize: maxKb * 1024,
    onError: (c) => c.json(errorBody("payload_too_large", `request body is larger than ${maxKb} KB (MAX_BODY_KB)`), 413),
  });
  return limit(c, next);
});

// Open to anyone: D1's state and the version. With the operator token also what the deployment lacks, by name
// (missingConfiguration never reads a value out), and `ok` then requires nothing to be missing.
app.get("/health", async (c) => {
  let d1 = "ok";
  try {
    await c.env.DB.prepare("SELECT 1").first();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    d1 = message.replace(/\s+/g, " ").slice(0, 200);
  }
  if (!(await passes(requireOperator, c))) {
    return c.json({ ok: d1 === "ok", d1, version: VERSION }, d1 === "ok" ? 200 : 503);
  }
  const missing = missingConfiguration(c.env);
  const ok = d1 === "ok" && !missing.secrets.length && !missing.bindings.length;
  return c.json({ ok, d1, version: VERSION, missing }, ok ? 200 : 503);
});

app.route("/", operator);
app.route("/", internal);
app.route("/", d1Routes);
app.route("/", runContainerRoutes);
app.route("/", admin);
app.route("/", dagsterProxy);
app.route("/", hooks);
app.route("/", webhooks);

/** The OpenAPI 3.1 document of every route above (openapi.ts); public, the same for every deployment. */
function openapi() {
  return openApiDocument(app.routes, VERSION).document;
}
app.get("/openapi.json", (c) => c.json(openapi()));
// Agents: the Model Context Protocol, its tools calling the routes above (routes/mcp.ts, docs/agents.md).
app.route("/", mcpRoutes({ fetch: (request, env, ctx) => app.fetch(request, env, ctx), version: VERSION, openapi }));

app.notFound((c) => c.json(errorBody("not_found", "no such route"), 404));
app.onError((err, c) => errorResponse(c, err));
