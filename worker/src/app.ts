/** The Hono application: routes of every module, JSON errors. */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import pkg from "../../package.json";
import { positiveNumberVar, type AppEnv } from "./env";
import { errorBody, errorResponse } from "./errors";
import { admin } from "./routes/admin";
import { hooks } from "./routes/hooks";
import { internal } from "./routes/internal";
import { operator } from "./routes/operator";
import { webhooks } from "./routes/webhooks";

export const VERSION: string = pkg.version;

export const app = new Hono<AppEnv>();

// Every body is bounded before any route reads it (a D1 row holds 2 MB; a definition or run request is far smaller).
app.use("*", async (c, next) => {
  // Webhook deliveries are bounded by their source's own limit (routes/hooks.ts).
  if (c.req.path.startsWith("/hooks/")) return next();
  const maxKb = Math.floor(positiveNumberVar(c.env.MAX_BODY_KB, 256));
  const limit = bodyLimit({
    maxSize: maxKb * 1024,
    onError: (c) => c.json(errorBody("payload_too_large", `request body is larger than ${maxKb} KB (MAX_BODY_KB)`), 413),
  });
  return limit(c, next);
});

app.get("/health", async (c) => {
  try {
    await c.env.DB.prepare("SELECT 1").first();
    return c.json({ ok: true, d1: "ok", version: VERSION });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return c.json({ ok: false, d1: message.replace(/\s+/g, " ").slice(0, 200), version: VERSION }, 503);
  }
});

app.route("/", operator);
app.route("/", internal);
app.route("/", admin);
app.route("/", hooks);
app.route("/", webhooks);

app.notFound((c) => c.json(errorBody("not_found", "no such route"), 404));
app.onError((err, c) => errorResponse(c, err));
