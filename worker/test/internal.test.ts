import { env as bindings } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { readKvPage } from "../src/kv";
import { call, createSource, definition, INTERNAL, json, testEnv, uniqueId } from "./helpers";

const asDagster = { token: INTERNAL };

describe("internal runs", () => {
  it("registers a Dagster-started run once per dagster_run_id", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env);
    const dagsterRunId = uniqueId("dg");
    const body = { dagster_run_id: dagsterRunId, source_id: sourceId, trigger: "schedule", partition: "2026-01-01" };
    const first = await call(env, "POST", "/internal/runs", { ...asDagster, body });
    expect(first.status).toBe(200);
    const created = await json(first);
    expect(created).toEqual({ run_id: expect.stringMatching(/^run_/), created: true });
    const again = await json(await call(env, "POST", "/internal/runs", { ...asDagster, body }));
    expect(again).toEqual({ run_id: created.run_id, created: false });

    const run = await json(await call(env, "GET", `/runs/${created.run_id}`));
    expect(run).toMatchObject({
      status: "launched",
      trigger: "schedule",
      dagster_run_id: dagsterRunId,
      partition: "2026-01-01",
    });
  });

  it("returns the Worker-launched run that already carries the dagster_run_id", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env);
    const { run_id } = await json(await call(env, "POST", `/sources/${sourceId}/runs`));
    const dagsterRunId = uniqueId("dg");
    await call(env, "POST", `/internal/runs/${run_id}/status`, {
      ...asDagster,
      body: { status: "launched", dagster_run_id: dagsterRunId },
    });
    const response = await json(
      await call(env, "POST", "/internal/runs", {
        ...asDagster,
        body: { dagster_run_id: dagsterRunId, source_id: sourceId, trigger: "api" },
      }),
    );
    expect(response).toEqual({ run_id, created: false });
  });

  it("validates the registration body", async () => {
    const { env } = testEnv();
    const response = await call(env, "POST", "/internal/runs", {
      ...asDagster,
      body: { source_id: "x", trigger: "cron", status: "done", at: "yesterday" },
    });
    expect(response.status).toBe(400);
    const fields = (await json(response)).error.fields.map((f: any) => f.field);
    expect(fields).toEqual(expect.arrayContaining(["dagster_run_id", "trigger", "status", "at"]));
  });

  it("applies statuses forward only and ignores backward or repeated ones", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env);
    const { run_id } = await json(
      await call(env, "POST", "/internal/runs", {
        ...asDagster,
        body: { dagster_run_id: uniqueId("dg"), source_id: sourceId, trigger: "ui", at: "2026-03-01T10:00:00Z" },
      }),
    );
    const post = (body: unknown) => call(env, "POST", `/internal/runs/${run_id}/status`, { ...asDagster, body });

    const running = await json(await post({ status: "running", at: "2026-03-01T10:01:00Z" }));
    expect(running).toEqual({ run_id, status: "running", applied: true });
    expect(await json(await post({ status: "running" }))).toEqual({ run_id, status: "running", applied: false });
    expect(await json(await post({ status: "launched" }))).toEqual({ run_id, status: "running", applied: false });
    expect(await json(await post({ status: "dead_lettered" }))).toMatchObject({ applied: false });

    const done = await json(
      await post({
        status: "succeeded",
        at: "2026-03-01T10:05:00+00:00",
        message: "loaded",
        rows_loaded: 42,
        tables: { orders_kv: 40, orders_kv__items: 2 },
      }),
    );
    expect(done).toEqual({ run_id, status: "succeeded", applied: true });
    expect(await json(await post({ status: "failed" }))).toEqual({ run_id, status: "succeeded", applied: false });

    const run = await json(await call(env, "GET", `/runs/${run_id}`));
    expect(run).toMatchObject({
      status: "succeeded",
      rows_loaded: 42,
      tables: { orders_kv: 40, orders_kv__items: 2 },
      message: "loaded",
      created_at: "2026-03-01T10:00:00.000Z",
      started_at: "2026-03-01T10:01:00.000Z",
      finished_at: "2026-03-01T10:05:00.000Z",
    });
    expect(run.events.map((e: any) => e.status)).toEqual(["launched", "running", "succeeded"]);
    expect(run.events[2].data).toEqual({ rows_loaded: 42, tables: { orders_kv: 40, orders_kv__items: 2 } });
  });

  it("allows canceled from any non-terminal status", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env);
    const { run_id } = await json(await call(env, "POST", `/sources/${sourceId}/runs`));
    const response = await json(
      await call(env, "POST", `/internal/runs/${run_id}/status`, { ...asDagster, body: { status: "canceled" } }),
    );
    expect(response).toEqual({ run_id, status: "canceled", applied: true });
  });

  it("answers 404 for an unknown run and 400 for an unknown status", async () => {
    const { env } = testEnv();
    const missing = await call(env, "POST", "/internal/runs/run_missing/status", { ...asDagster, body: { status: "running" } });
    expect(missing.status).toBe(404);
    expect((await json(missing)).error.code).toBe("not_found");
    const bad = await call(env, "POST", "/internal/runs/run_missing/status", { ...asDagster, body: { status: "done" } });
    expect(bad.status).toBe(400);
  });

  it("lists every definition, enabled or not", async () => {
    const { env } = testEnv();
    const on = await createSource(env);
    const off = await createSource(env, uniqueId(), { enabled: false });
    const { sources } = await json(await call(env, "GET", "/internal/sources", asDagster));
    const byId = new Map(sources.map((s: any) => [s.source_id, s]));
    expect(byId.get(on)).toEqual(definition(on));
    expect(byId.get(off)).toEqual(definition(off, { enabled: false }));
  });
});

describe("internal KV pages", () => {
  async function seed(ns: KVNamespace, prefix: string, count: number) {
    for (let i = 0; i < count; i++) {
      const key = `${prefix}${String(i).padStart(4, "0")}`;
      await ns.put(key, JSON.stringify({ n: i }), { metadata: { i } });
    }
  }

  it("pages through a namespace with values, metadata and expiration", async () => {
    const { env } = testEnv();
    const prefix = `${uniqueId("p")}:`;
    await seed(bindings.LEADS_KV, prefix, 5);
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    await bindings.LEADS_KV.put(`${prefix}9999`, "plain text", { expiration: expiresAt });
    const first = await json(
      await call(env, "GET", `/internal/kv/LEADS_KV/page?prefix=${encodeURIComponent(prefix)}&limit=4`, asDagster),
    );
    expect(first.records.map((r: any) => r.key)).toEqual([0, 1, 2, 3].map((i) => `${prefix}000${i}`));
    expect(first.records[1]).toEqual({
      key: `${prefix}0001`,
      value: '{"n":1}',
      value_encoding: "text",
      metadata: { i: 1 },
      expiration: null,
    });
    expect(first.list_complete).toBe(false);
    expect(typeof first.cursor).toBe("string");
    const second = await json(
      await call(
        env,
        "GET",
        `/internal/kv/LEADS_KV/page?prefix=${encodeURIComponent(prefix)}&limit=4&cursor=${encodeURIComponent(first.cursor)}`,
        asDagster,
      ),
    );
    expect(second.records.map((r: any) => r.key)).toEqual([`${prefix}0004`, `${prefix}9999`]);
    expect(second.records[1]).toMatchObject({ value: "plain text", metadata: null, expiration: expiresAt });
    expect(second).toMatchObject({ cursor: null, list_complete: true });
  });

  it("returns binary values as base64 and keeps valid UTF-8 as text", async () => {
    const { env } = testEnv();
    const prefix = `${uniqueId("b")}:`;
    const binary = new Uint8Array([0xff, 0xfe, 0x00, 0x41, 0x80]);
    await bindings.VENDOR_KV.put(`${prefix}bin`, binary);
    await bindings.VENDOR_KV.put(`${prefix}txt`, "caf\u00e9 \uFFFD literal");
    const page = await json(
      await call(env, "GET", `/internal/kv/VENDOR_KV/page?prefix=${encodeURIComponent(prefix)}`, asDagster),
    );
    expect(page.records).toEqual([
      { key: `${prefix}bin`, value: btoa(String.fromCharCode(...binary)), value_encoding: "base64", metadata: null, expiration: null },
      { key: `${prefix}txt`, value: "caf\u00e9 \uFFFD literal", value_encoding: "text", metadata: null, expiration: null },
    ]);
  });

  it("reads 250 keys with one list and three bulk gets", async () => {
    const prefix = `${uniqueId("n")}:`;
    await seed(bindings.ORDERS_KV, prefix, 250);
    const ns = bindings.ORDERS_KV;
    const calls = { list: 0, bulk: 0, single: 0 };
    const counting = {
      list: (o: KVNamespaceListOptions) => (calls.list++, ns.list(o)),
      getWithMetadata: (keys: any, type: any) => (Array.isArray(keys) ? calls.bulk++ : calls.single++, ns.getWithMetadata(keys, type)),
      get: (key: any, type: any) => (calls.single++, ns.get(key, type)),
    } as unknown as KVNamespace;
    const page = await readKvPage(counting, { prefix, limit: 1000 });
    expect(page.records).toHaveLength(250);
    expect(page.list_complete).toBe(true);
    expect(calls).toEqual({ list: 1, bulk: 3, single: 0 });
  });

  it("skips keys whose value vanished between list and get", async () => {
    const prefix = `${uniqueId("v")}:`;
    await seed(bindings.ORDERS_KV, prefix, 3);
    const ns = bindings.ORDERS_KV;
    const vanishing = {
      list: async (o: KVNamespaceListOptions) => {
        const listing = await ns.list(o);
        await ns.delete(`${prefix}0001`);
        return listing;
      },
      getWithMetadata: (keys: any, type: any) => ns.getWithMetadata(keys, type),
      get: (key: any, type: any) => ns.get(key, type),
    } as unknown as KVNamespace;
    const page = await readKvPage(vanishing, { prefix, limit: 1000 });
    expect(page.records.map((r) => r.key)).toEqual([`${prefix}0000`, `${prefix}0002`]);
  });

  it("ends a page early within the operation budget and resumes where it stopped", async () => {
    const prefix = `${uniqueId("q")}:`;
    for (let i = 0; i < 4; i++) await bindings.ORDERS_KV.put(`${prefix}${i}`, new Uint8Array([0xff, i]));
    // budget 4: list + bulk get + 2 single re-reads
    const first = await readKvPage(bindings.ORDERS_KV, { prefix, limit: 1000, budget: 4 });
    expect(first.records.map((r) => r.key)).toEqual([`${prefix}0`, `${prefix}1`]);
    expect(first.list_complete).toBe(false);
    const second = await readKvPage(bindings.ORDERS_KV, { prefix, limit: 1000, cursor: first.cursor!, budget: 4 });
    expect(second.records.map((r) => r.key)).toEqual([`${prefix}2`, `${prefix}3`]);
    expect(second).toMatchObject({ list_complete: true, cursor: null });
    expect(second.records.every((r) => r.value_encoding === "base64")).toBe(true);
  });

  it("answers 404 unknown_namespace for a title that is not a bound KV namespace, 400 for bad limits", async () => {
    const { env } = testEnv();
    for (const title of ["NOPE_KV", "DB", "RAW_STAGING", "DLT_INTERNAL_TOKEN"]) {
      const response = await call(env, "GET", `/internal/kv/${title}/page`, asDagster);
      expect(response.status, title).toBe(404);
      expect((await json(response)).error.code).toBe("unknown_namespace");
    }
    expect((await call(env, "GET", "/internal/kv/ORDERS_KV/page?limit=0", asDagster)).status).toBe(400);
    expect((await call(env, "GET", "/internal/kv/ORDERS_KV/page?limit=1001", asDagster)).status).toBe(400);
    expect((await call(env, "GET", "/internal/kv/ORDERS_KV/page?cursor=dltp1.%25%25", asDagster)).status).toBe(400);
  });
});
