/** The read-only token (DLT_READONLY_TOKEN): reads pass, every change is refused 403 and stores nothing. */
import { env as baseEnv } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { app } from "../src/app";
import { csrfFrom, form } from "./admin_helpers";
import { call, definition, json, testEnv, uniqueId } from "./helpers";

const READONLY = "test-readonly-token";

/** Operator API routes of the app's own route table (the admin page, /mcp and the internal API have their own tests). */
function operatorRoutes() {
  return app.routes.filter(
    (route) =>
      route.method !== "ALL" &&
      !/^\/(internal|hooks|admin|dagster|mcp|openapi)/.test(route.path) &&
      route.path !== "/health" &&
      route.path !== "/*",
  );
}

/** Every row of every table that a change through the API would touch, to compare before and after. */
async function snapshot(db: D1Database) {
  const tables = ["sources", "source_versions", "runs", "run_events", "webhook_deliveries"];
  const rows: Record<string, unknown[]> = {};
  for (const table of tables) rows[table] = (await db.prepare(`SELECT * FROM ${table}`).all()).results;
  return rows;
}

async function setUp() {
  const { env, jobs } = testEnv({ DLT_READONLY_TOKEN: READONLY });
  const sourceId = uniqueId("ro");
  expect((await call(env, "POST", "/sources", { body: definition(sourceId) })).status).toBe(201);
  const started = await call(env, "POST", `/sources/${sourceId}/runs`, { body: {} });
  expect(started.status).toBe(202);
  const { run_id: runId } = await json(started);
  return { env, jobs, sourceId, runId, sent: jobs.sent.length };
}

function fill(path: string, ids: { sourceId: string; runId: string }) {
  return path.replace(":source_id", ids.sourceId).replace(":run_id", ids.runId);
}

describe("read-only token", () => {
  it("is refused 403 read_only on every changing operator route, and nothing is stored", async () => {
    const ids = await setUp();
    const before = await snapshot(ids.env.DB);
    // POST /sources/validate checks and stores nothing: open to the read-only token (asserted below).
    const changing = operatorRoutes().filter((route) => route.method !== "GET" && route.path !== "/sources/validate");
    // POST/PUT/DELETE /sources, enable, disable, runs, retry, cancel: the table must not shrink unnoticed.
    expect(changing.length).toBeGreaterThanOrEqual(8);
    for (const route of changing) {
      // A body the operator token would have accepted, so only the role can be the reason for the refusal.
      const body =
        route.method === "PUT"
          ? { version: 1, definition: definition(ids.sourceId, { description: "changed" }) }
          : route.path === "/sources"
            ? definition(uniqueId("ro_new"))
            : {};
      const response = await call(ids.env, route.method, fill(route.path, ids), { token: READONLY, body });
      expect(response.status, `${route.method} ${route.path}`).toBe(403);
      expect((await json(response)).error.code).toBe("read_only");
    }
    const validated = await call(ids.env, "POST", "/sources/validate", { token: READONLY, body: definition(uniqueId("ro_v")) });
    expect(validated.status).toBe(200);
    expect(await json(validated)).toEqual({ valid: true, problems: [] });
    expect(await snapshot(ids.env.DB)).toEqual(before);
    expect(ids.jobs.sent.length).toBe(ids.sent);
  });

  it("reads every listing and detail the operator token reads", async () => {
    const ids = await setUp();
    const reads = operatorRoutes().filter((route) => route.method === "GET");
    expect(reads.length).toBeGreaterThanOrEqual(6);
    for (const route of reads) {
      const path = fill(route.path, ids);
      const asOperator = await call(ids.env, "GET", path);
      const asReader = await call(ids.env, "GET", path, { token: READONLY });
      expect(asReader.status, path).toBe(asOperator.status);
      expect(await asReader.json()).toEqual(await asOperator.json());
    }
    const listed = await json(await call(ids.env, "GET", "/sources", { token: READONLY }));
    expect(listed.sources.map((s: { source_id: string }) => s.source_id)).toContain(ids.sourceId);
  });

  it("without DLT_READONLY_TOKEN set, or with a wrong token, is 401", async () => {
    const { env } = testEnv();
    expect((await call(env, "GET", "/sources", { token: READONLY })).status).toBe(401);
    const { env: withReader } = testEnv({ DLT_READONLY_TOKEN: READONLY });
    expect((await call(withReader, "GET", "/sources", { token: `${READONLY}x` })).status).toBe(401);
    expect((await call(withReader, "GET", "/sources", { token: null })).status).toBe(401);
    // A blank read-only token never matches an empty bearer.
    const { env: blank } = testEnv({ DLT_READONLY_TOKEN: "" });
    expect((await call(blank, "GET", "/sources", { headers: { Authorization: "Bearer " }, token: null })).status).toBe(401);
  });
});

describe("admin page with the read-only token", () => {
  async function readOnlySession(env: ReturnType<typeof testEnv>["env"]) {
    const response = await call(env, "GET", `/admin?token=${READONLY}`, { token: null });
    expect(response.status).toBe(303);
    return (response.headers.get("Set-Cookie") ?? "").split(";")[0];
  }

  it("shows sources and runs without forms that change state, and refuses those forms 403", async () => {
    const ids = await setUp();
    // A failed run, whose Retry form the operator would see.
    await ids.env.DB.prepare("UPDATE runs SET status = 'failed', message = 'boom' WHERE run_id = ?").bind(ids.runId).run();
    const cookie = await readOnlySession(ids.env);
    const page = await (await call(ids.env, "GET", "/admin", { token: null, headers: { Cookie: cookie } })).text();
    expect(page).toContain(ids.sourceId);
    expect(page).toContain(ids.runId);
    expect(page).not.toMatch(/action="\/admin\/(sources|runs)\//);
    const runPage = await call(ids.env, "GET", `/admin/runs/${ids.runId}`, { token: null, headers: { Cookie: cookie } });
    expect(runPage.status).toBe(200);
    expect(await runPage.text()).not.toContain("/retry");

    const csrf = await csrfFrom(ids.env, cookie);
    const before = await snapshot(ids.env.DB);
    for (const path of [
      `/admin/sources/${ids.sourceId}/runs`,
      `/admin/sources/${ids.sourceId}/disable`,
      `/admin/sources/${ids.sourceId}/enable`,
      `/admin/runs/${ids.runId}/retry`,
    ]) {
      const response = await form(ids.env, path, cookie, csrf);
      expect(response.status, path).toBe(403);
      expect((await json(response)).error.code).toBe("read_only");
    }
    expect(await snapshot(ids.env.DB)).toEqual(before);
    expect(ids.jobs.sent.length).toBe(ids.sent);
    // Not the Dagster UI, which can launch runs.
    expect((await call(ids.env, "GET", "/dagster/", { token: null, headers: { Cookie: cookie } })).status).toBe(401);
    // Signing out works, and ends the session.
    expect((await form(ids.env, "/admin/logout", cookie, csrf)).status).toBe(200);
    expect((await call(ids.env, "GET", "/admin", { token: null, headers: { Cookie: cookie } })).status).toBe(401);
  });

  it("an operator session still has its forms; a read-only cookie stops working when that token changes", async () => {
    const ids = await setUp();
    const operatorCookie = (
      (await call(ids.env, "GET", `/admin?token=${baseEnv.DLT_OPERATOR_TOKEN}`, { token: null })).headers.get("Set-Cookie") ?? ""
    ).split(";")[0];
    const page = await (await call(ids.env, "GET", "/admin", { token: null, headers: { Cookie: operatorCookie } })).text();
    expect(page).toMatch(/action="\/admin\/sources\//);
    const cookie = await readOnlySession(ids.env);
    const rotated = { ...ids.env, DLT_READONLY_TOKEN: "another-readonly-token" };
    expect((await call(rotated, "GET", "/admin", { token: null, headers: { Cookie: cookie } })).status).toBe(401);
  });
});
