/** The Hono application: routes of every module, JSON errors. */
import { Hono } from "hono";
import pkg from "../../package.json";
import type { AppEnv } from "./env";
import { errorBody, errorResponse } from "./errors";
import { admin } from "./routes/admin";
import { internal } from "./routes/internal";
import { operator } from "./routes/operator";

export const VERSION: string = pkg.version;

export const app = new Hono<AppEnv>();

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

app.notFound((c) => c.json(errorBody("not_found", "no such route"), 404));
app.onError((err, c) => errorResponse(c, err));
