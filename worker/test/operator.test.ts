import { afterEach, describe, expect, it, vi } from "vitest";
import { encodeCursor } from "../src/cursor";
import { call, createSource, dagsterDouble, definition, incrementalExtract, json, testEnv, uniqueId } from "./helpers";

afterEach(() => vi.restoreAllMocks());

describe("health", () => {
  it("answers without auth with D1 state and the package version", async () => {
    const { env } = testEnv();
    const response = await call(env, "GET", "/health", { token: null });
    expect(response.status).toBe(200);
    expect(await json(response)).toEqual({ ok: true, d1: "ok", version: "0.1.0" });
  });

  it("answers 503 when D1 fails", async () => {
    const { env } = testEnv();
    const broken = { ...env, DB: { prepare: () => ({ first: async () => Promise.reject(new Error("D1 down")) }) } };
    const response = await call(broken as never, "GET", "/health", { token: null });
    expect(response.status).toBe(503);
    expect((await json(response)).d1).toContain("D1 down");
  });
});

describe("sources", () => {
  it("creates, reads, lists and versions a source", async () => {
    const { env } = testEnv();
    dagsterDouble(() => ({ reloadRepositoryLocation: { __typename: "WorkspaceLocationEntry" } }));
    const id = uniqueId();
    const created = await call(env, "POST", "/sources", { body: definition(id), headers: { "X-Actor": "alice" } });
    expect(created.status).toBe(201);
    const body = await json(created);
    expect(body).toMatchObject({ source_id: id, version: 1, enabled: true, updated_by: "alice", last_run: null });
    expect(body.definition).toEqual(definition(id));

    const one = await json(await call(env, "GET", `/sources/${id}`));
    expect(one.definition.destination.table).toBe(`${id}_t`);
    const list = await json(await call(env, "GET", "/sources"));
    expect(list.sources.map((s: any) => s.source_id)).toContain(id);

    const versions = await json(await call(env, "GET", `/sources/${id}/versions`));
    expect(versions.versions).toEqual([
      expect.objectContaining({ version: 1, change: "create", changed_by: "alice", definition: definition(id) }),
    ]);
  });

  it("calls reloadRepositoryLocation after a change and survives its failure", async () => {
    const { env } = testEnv();
    const dagster = dagsterDouble(() => {
      throw new Error("connection refused");
    });
    const id = uniqueId();
    expect((await call(env, "POST", "/sources", { body: definition(id) })).status).toBe(201);
    expect(dagster.calls).toHaveLength(1);
    expect(dagster.calls[0].query).toContain("reloadRepositoryLocation");
    expect(dagster.calls[0].variables).toEqual({ name: "dlt_platform" });
  });

  it("rejects an invalid definition naming the fields, and stores nothing", async () => {
    const { env } = testEnv();
    const id = uniqueId();
    const bad = definition(id, {
      destination: { dataset: "ok", table: "bad-table" },
      extract: { namespace_title: "ORDERS_KV" },
      surprise: 1,
    });
    const response = await call(env, "POST", "/sources", { body: bad });
    expect(response.status).toBe(400);
    const body = await json(response);
    expect(body.error.code).toBe("validation_failed");
    const fields = body.error.fields.map((f: any) => f.field);
    expect(fields).toEqual(expect.arrayContaining(["destination.table", "extract.namespace_id", "surprise"]));
    expect((await call(env, "GET", `/sources/${id}`)).status).toBe(404);
  });

  it("rejects a schedule whose cron fields are out of range", async () => {
    const { env } = testEnv();
    const response = await call(env, "POST", "/sources", { body: definition(uniqueId(), { schedule: "61 * * * *" }) });
    expect(response.status).toBe(400);
    expect((await json(response)).error.fields).toEqual([{ field: "schedule", message: expect.any(String) }]);
  });

  it("rejects a body that is not JSON", async () => {
    const { env } = testEnv();
    const response = await call(env, "POST", "/sources", { body: "{nope" });
    expect(response.status).toBe(400);
    expect((await json(response)).error.code).toBe("validation_failed");
  });

  it("answers 409 for a duplicate source_id", async () => {
    const { env } = testEnv();
    const id = await createSource(env);
    const response = await call(env, "POST", "/sources", { body: definition(id) });
    expect(response.status).toBe(409);
    expect((await json(response)).error.code).toBe("conflict");
  });

  it("updates with the edited version and answers 409 for a stale one", async () => {
    const { env } = testEnv();
    const id = await createSource(env);
    const changed = definition(id, { description: "changed" });
    const ok = await call(env, "PUT", `/sources/${id}`, { body: { version: 1, definition: changed } });
    expect(ok.status).toBe(200);
    expect(await json(ok)).toMatchObject({ version: 2, definition: { description: "changed" } });

    const stale = await call(env, "PUT", `/sources/${id}`, { body: { version: 1, definition: definition(id) } });
    expect(stale.status).toBe(409);
    expect((await json(stale)).error.code).toBe("conflict");
    expect((await json(await call(env, "GET", `/sources/${id}`))).definition.description).toBe("changed");

    const disable = await call(env, "PUT", `/sources/${id}`, {
      body: { version: 2, definition: { ...changed, enabled: false } },
    });
    expect(await json(disable)).toMatchObject({ version: 3, enabled: false });
    const versions = await json(await call(env, "GET", `/sources/${id}/versions`));
    expect(versions.versions.map((v: any) => [v.version, v.change])).toEqual([
      [3, "disable"],
      [2, "update"],
      [1, "create"],
    ]);
  });

  it("refuses a PUT whose source_id differs from the path, or without version", async () => {
    const { env } = testEnv();
    const id = await createSource(env);
    const other = await call(env, "PUT", `/sources/${id}`, { body: { version: 1, definition: definition("other_id") } });
    expect(other.status).toBe(400);
    expect((await json(other)).error.fields).toEqual([{ field: "source_id", message: expect.any(String) }]);
    const noVersion = await call(env, "PUT", `/sources/${id}`, { body: { definition: definition(id) } });
    expect(noVersion.status).toBe(400);
    expect((await json(noVersion)).error.fields.map((f: any) => f.field)).toEqual(["version"]);
    expect((await json(await call(env, "GET", `/sources/${id}`))).version).toBe(1);
  });

  it("answers 404 with the stable error shape for an unknown source", async () => {
    const { env } = testEnv();
    const response = await call(env, "GET", "/sources/nope_nope");
    expect(response.status).toBe(404);
    expect(await json(response)).toEqual({ error: { code: "not_found", message: "source nope_nope not found" } });
  });
});

describe("runs", () => {
  it("queues a run, sends only its id, and records the first event", async () => {
    const { env, jobs } = testEnv();
    const id = await createSource(env, uniqueId(), { extract: incrementalExtract() });
    const response = await call(env, "POST", `/sources/${id}/runs`, {
      body: { limit: 5, keys: ["a", "b"], partition: "2026-01-01", full_refresh: true },
    });
    expect(response.status).toBe(202);
    const { run_id, status } = await json(response);
    expect(run_id).toMatch(/^run_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(status).toBe("queued");
    expect(jobs.sent).toEqual([{ run_id }]);

    const run = await json(await call(env, "GET", `/runs/${run_id}`));
    expect(run).toMatchObject({
      run_id,
      source_id: id,
      status: "queued",
      trigger: "api",
      dagster_run_id: null,
      retry_of: null,
      request: { limit: 5, keys: ["a", "b"], partition: "2026-01-01", full_refresh: true },
      partition: "2026-01-01",
      rows_loaded: null,
      tables: null,
      started_at: null,
      finished_at: null,
    });
    expect(run.events).toEqual([expect.objectContaining({ status: "queued", event_id: expect.any(Number) })]);
    expect(new Date(run.created_at).toISOString()).toBe(run.created_at);

    const source = await json(await call(env, "GET", `/sources/${id}`));
    expect(source.last_run).toEqual({ run_id, status: "queued", created_at: run.created_at });
  });

  it("returns the same run for a repeated Idempotency-Key", async () => {
    const { env, jobs } = testEnv();
    const id = await createSource(env);
    const headers = { "Idempotency-Key": "key-1" };
    const first = await json(await call(env, "POST", `/sources/${id}/runs`, { headers }));
    const second = await call(env, "POST", `/sources/${id}/runs`, { headers });
    expect(second.status).toBe(202);
    expect((await json(second)).run_id).toBe(first.run_id);
    expect(jobs.sent).toHaveLength(1);
    const third = await json(await call(env, "POST", `/sources/${id}/runs`, { headers: { "Idempotency-Key": "key-2" } }));
    expect(third.run_id).not.toBe(first.run_id);
    expect(jobs.sent).toHaveLength(2);
  });

  it("rejects unknown and invalid run request fields", async () => {
    const { env, jobs } = testEnv();
    const id = await createSource(env);
    const response = await call(env, "POST", `/sources/${id}/runs`, { body: { limit: 0, keys: [], bogus: true } });
    expect(response.status).toBe(400);
    const fields = (await json(response)).error.fields.map((f: any) => f.field);
    expect(fields).toEqual(expect.arrayContaining(["bogus", "limit", "keys"]));
    expect(jobs.sent).toHaveLength(0);
  });

  it("answers 404 for an unknown source and 409 source_disabled for a disabled one", async () => {
    const { env, jobs } = testEnv();
    expect((await call(env, "POST", "/sources/missing_source/runs")).status).toBe(404);
    const id = await createSource(env, uniqueId(), { enabled: false });
    const response = await call(env, "POST", `/sources/${id}/runs`);
    expect(response.status).toBe(409);
    expect((await json(response)).error.code).toBe("source_disabled");
    expect(jobs.sent).toHaveLength(0);
  });

  it("lists runs newest first, filtered, with cursor pagination", async () => {
    const { env } = testEnv();
    const id = await createSource(env);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await json(await call(env, "POST", `/sources/${id}/runs`))).run_id);
    const page1 = await json(await call(env, "GET", `/runs?source_id=${id}&limit=2`));
    expect(page1.runs.map((r: any) => r.run_id)).toEqual([ids[4], ids[3]]);
    expect(page1.runs[0]).not.toHaveProperty("events");
    const page2 = await json(await call(env, "GET", `/runs?source_id=${id}&limit=2&cursor=${page1.next_cursor}`));
    expect(page2.runs.map((r: any) => r.run_id)).toEqual([ids[2], ids[1]]);
    const page3 = await json(await call(env, "GET", `/runs?source_id=${id}&limit=2&cursor=${page2.next_cursor}`));
    expect(page3.runs.map((r: any) => r.run_id)).toEqual([ids[0]]);
    expect(page3.next_cursor).toBeNull();

    const queued = await json(await call(env, "GET", `/runs?source_id=${id}&status=queued`));
    expect(queued.runs).toHaveLength(5);
    const none = await json(await call(env, "GET", `/runs?source_id=${id}&status=succeeded`));
    expect(none.runs).toHaveLength(0);
    expect((await call(env, "GET", "/runs?status=bogus")).status).toBe(400);
    expect((await call(env, "GET", "/runs?limit=201")).status).toBe(400);
    expect((await call(env, "GET", "/runs?cursor=%%%")).status).toBe(400);
    // Well-formed base64url JSON, but not a position in this list.
    const foreign = await call(env, "GET", `/runs?cursor=${encodeCursor({ created_at: "x", run_id: "y" })}`);
    expect((await json(foreign)).error.fields).toEqual([{ field: "cursor", message: "not a cursor this endpoint returned" }]);
    // The cursor is URL-safe as returned (no padding, no + or /).
    expect(page1.next_cursor).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it("cancels a queued run without Dagster, and refuses a second cancel", async () => {
    const { env } = testEnv();
    const dagster = dagsterDouble(() => ({}));
    const id = await createSource(env);
    dagster.calls.length = 0;
    const { run_id } = await json(await call(env, "POST", `/sources/${id}/runs`));
    const canceled = await call(env, "POST", `/runs/${run_id}/cancel`);
    expect(canceled.status).toBe(200);
    expect(await json(canceled)).toMatchObject({ run_id, status: "canceled" });
    expect(dagster.calls).toHaveLength(0);
    expect((await call(env, "POST", `/runs/${run_id}/cancel`)).status).toBe(409);
    const run = await json(await call(env, "GET", `/runs/${run_id}`));
    expect(run.finished_at).not.toBeNull();
    expect(run.events.map((e: any) => e.status)).toEqual(["queued", "canceled"]);
  });

  it("retries a finished run as a new run naming the old one; refuses an active one", async () => {
    const { env, jobs } = testEnv();
    const id = await createSource(env);
    const { run_id } = await json(await call(env, "POST", `/sources/${id}/runs`, { body: { limit: 3 } }));
    expect((await call(env, "POST", `/runs/${run_id}/retry`)).status).toBe(409);
    await call(env, "POST", `/runs/${run_id}/cancel`);
    const retry = await call(env, "POST", `/runs/${run_id}/retry`);
    expect(retry.status).toBe(202);
    const body = await json(retry);
    expect(body).toMatchObject({ status: "queued", retry_of: run_id });
    const run = await json(await call(env, "GET", `/runs/${body.run_id}`));
    expect(run).toMatchObject({ trigger: "retry", retry_of: run_id, request: { limit: 3 } });
    expect(jobs.sent.at(-1)).toEqual({ run_id: body.run_id });
    expect((await call(env, "POST", "/runs/run_missing/retry")).status).toBe(404);
  });
});
