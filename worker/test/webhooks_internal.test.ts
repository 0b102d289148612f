import { afterEach, describe, expect, it, vi } from "vitest";
import { signIn } from "./admin_helpers";
import { call, INTERNAL, json, OPERATOR, testEnv, uniqueId } from "./helpers";
import { createWebhookSource, githubExtract, githubHeaders, postHook } from "./webhook_helpers";

const asDagster = { token: INTERNAL };
type TestEnv = ReturnType<typeof testEnv>["env"];

async function deliver(env: TestEnv, sourceId: string, id: string, payload: unknown = { id }) {
  const body = JSON.stringify(payload);
  const response = await postHook(env, sourceId, body, githubHeaders(body, id, undefined, "issues"));
  expect(response.status).toBe(200);
  return body;
}

/** Every delivery of a listing, following `next` until it is null. */
async function pageAll(env: TestEnv, path: string) {
  const pages: any[][] = [];
  let after: string | null = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const response = await call(env, "GET", `${path}${after ? `${sep}after=${encodeURIComponent(after)}` : ""}`, asDagster);
    expect(response.status).toBe(200);
    const page = await json(response);
    pages.push(page.deliveries);
    after = page.next;
  } while (after);
  return pages;
}

afterEach(() => {
  vi.useRealTimers();
});

describe("internal webhook API", () => {
  it("summarises what waits per enabled webhook source", async () => {
    const { env } = testEnv();
    const busy = await createWebhookSource(env, uniqueId("wh"), githubExtract());
    const idle = await createWebhookSource(env, uniqueId("wh"), githubExtract());
    const off = await createWebhookSource(env, uniqueId("wh"), githubExtract());
    await deliver(env, busy, "w-1");
    await deliver(env, busy, "w-2");
    await deliver(env, off, "w-3");
    await call(env, "POST", `/sources/${off}/disable`);

    const { sources } = await json(await call(env, "GET", "/internal/webhooks/waiting", asDagster));
    const byId = Object.fromEntries(sources.map((s: any) => [s.source_id, s]));
    const oldest = (await json(await call(env, "GET", `/internal/webhooks/${busy}/deliveries?state=waiting`, asDagster)))
      .deliveries[0].received_at;
    expect(byId[busy]).toEqual({ source_id: busy, waiting: 2, oldest_received_at: oldest });
    expect(byId[idle]).toEqual({ source_id: idle, waiting: 0, oldest_received_at: null });
    expect(byId[off]).toBeUndefined();
    // Only webhook sources are listed.
    expect(sources.every((s: any) => typeof s.waiting === "number")).toBe(true);
  });

  it("pages waiting deliveries in (received_at, delivery_id) order with a cursor, documents as stored", async () => {
    const { env } = testEnv();
    const sourceId = await createWebhookSource(env, uniqueId("wh"), githubExtract());
    const bodies = new Map<string, string>();
    for (const id of ["p-1", "p-2", "p-3", "p-4", "p-5"]) bodies.set(id, await deliver(env, sourceId, id, { id, n: id.length }));

    const pages = await pageAll(env, `/internal/webhooks/${sourceId}/deliveries?state=waiting&limit=2`);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    const all = pages.flat();
    const order = [...all].sort((a, b) => a.received_at.localeCompare(b.received_at) || a.delivery_id.localeCompare(b.delivery_id));
    expect(all).toEqual(order);
    expect(all.map((d) => d.delivery_id).sort()).toEqual([...bodies.keys()]);
    for (const doc of all) {
      expect(doc).toMatchObject({ source_id: sourceId, event_type: "issues", signature_preset: "github", body: bodies.get(doc.delivery_id) });
    }
  });

  it("marks loaded idempotently; waiting pages skip them; the hour listing still has them", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const { env } = testEnv();
    const sourceId = await createWebhookSource(env, uniqueId("wh"), githubExtract());
    vi.setSystemTime(new Date("2026-11-28T09:59:59.900Z"));
    await deliver(env, sourceId, "h-09");
    vi.setSystemTime(new Date("2026-11-28T10:00:00.000Z"));
    await deliver(env, sourceId, "h-10a");
    vi.setSystemTime(new Date("2026-11-28T10:59:59.999Z"));
    await deliver(env, sourceId, "h-10b");
    vi.setSystemTime(new Date("2026-11-28T11:00:00.000Z"));
    await deliver(env, sourceId, "h-11");
    vi.useRealTimers();

    const loaded = (ids: string[], runId = "dagster-run-1") =>
      call(env, "POST", `/internal/webhooks/${sourceId}/deliveries/loaded`, { ...asDagster, body: { run_id: runId, delivery_ids: ids } });
    expect(await json(await loaded(["h-10a", "h-11", "not-a-delivery"]))).toEqual({ marked: 2 });
    expect(await json(await loaded(["h-10a", "h-11"], "dagster-run-2"))).toEqual({ marked: 0 });

    const waiting = (await pageAll(env, `/internal/webhooks/${sourceId}/deliveries?state=waiting`)).flat();
    expect(waiting.map((d) => d.delivery_id)).toEqual(["h-09", "h-10b"]);
    const hour = (await pageAll(env, `/internal/webhooks/${sourceId}/deliveries?hour=2026-11-28T10&limit=1`)).flat();
    expect(hour.map((d) => d.delivery_id)).toEqual(["h-10a", "h-10b"]);
    expect(hour[0].received_at).toBe("2026-11-28T10:00:00.000Z");

    const stats = await json(await call(env, "GET", `/sources/${sourceId}/webhook`));
    expect(stats).toMatchObject({ accepted: 4, waiting: 2, loaded: 2, refused_total: 0, last_delivery_at: "2026-11-28T11:00:00.000Z" });
    const summary = (await json(await call(env, "GET", "/internal/webhooks/waiting", asDagster))).sources.find(
      (s: any) => s.source_id === sourceId,
    );
    expect(summary).toEqual({ source_id: sourceId, waiting: 2, oldest_received_at: "2026-11-28T09:59:59.900Z" });
  });

  it("stops a page at about 8 MB and resumes after it", async () => {
    const { env } = testEnv();
    const sourceId = await createWebhookSource(env, uniqueId("wh"), { ...githubExtract(), max_body_bytes: 2_000_000 });
    for (let i = 0; i < 9; i++) await deliver(env, sourceId, `big-${i}`, { i, pad: "z".repeat(1_100_000) });
    const pages = await pageAll(env, `/internal/webhooks/${sourceId}/deliveries?state=waiting&limit=1000`);
    expect(pages.map((p) => p.length)).toEqual([8, 1]);
    expect(new Set(pages.flat().map((d) => d.delivery_id)).size).toBe(9);
  });

  it("requires the internal token and validates what it is given", async () => {
    const { env } = testEnv();
    const sourceId = await createWebhookSource(env, uniqueId("wh"), githubExtract());
    const paths: [string, string][] = [
      ["GET", "/internal/webhooks/waiting"],
      ["GET", `/internal/webhooks/${sourceId}/deliveries?state=waiting`],
      ["POST", `/internal/webhooks/${sourceId}/deliveries/loaded`],
    ];
    for (const [method, path] of paths) {
      const body = method === "POST" ? { run_id: "r", delivery_ids: ["x"] } : undefined;
      expect((await call(env, method, path, { token: null, body })).status).toBe(401);
      expect((await call(env, method, path, { token: OPERATOR, body })).status).toBe(401);
    }
    expect((await call(env, "GET", "/webhooks", { token: INTERNAL })).status).toBe(401);

    const bad = async (path: string, fields: string[]) => {
      const response = await call(env, "GET", path, asDagster);
      expect(response.status).toBe(400);
      expect((await json(response)).error.fields.map((f: any) => f.field)).toEqual(fields);
    };
    await bad(`/internal/webhooks/${sourceId}/deliveries`, ["state"]);
    await bad(`/internal/webhooks/${sourceId}/deliveries?state=done&limit=1001`, ["state", "limit"]);
    await bad(`/internal/webhooks/${sourceId}/deliveries?hour=2026-11-28`, ["hour"]);
    await bad(`/internal/webhooks/${sourceId}/deliveries?state=waiting&after=nonsense`, ["after"]);
    const marking = await call(env, "POST", `/internal/webhooks/${sourceId}/deliveries/loaded`, {
      ...asDagster,
      body: { run_id: "", delivery_ids: Array.from({ length: 1001 }, (_, i) => `d${i}`) },
    });
    expect(marking.status).toBe(400);
    expect((await json(marking)).error.fields.map((f: any) => f.field)).toEqual(["run_id", "delivery_ids"]);
    const unknown = await call(env, "GET", `/internal/webhooks/${uniqueId("nope")}/deliveries?state=waiting`, asDagster);
    expect(unknown.status).toBe(404);
  });
});

describe("operator figures", () => {
  it("the admin page shows accepted, waiting, loaded, refused by reason and the last delivery", async () => {
    const { env } = testEnv();
    const sourceId = await createWebhookSource(env, uniqueId("wh"), githubExtract());
    await deliver(env, sourceId, "a-1");
    await deliver(env, sourceId, "a-2");
    await call(env, "POST", `/internal/webhooks/${sourceId}/deliveries/loaded`, {
      ...asDagster,
      body: { run_id: "run-a", delivery_ids: ["a-1"] },
    });
    const body = "{}";
    await postHook(env, sourceId, body, githubHeaders(body, "a-3", "wrong-secret"));
    const stats = await json(await call(env, "GET", `/sources/${sourceId}/webhook`));
    expect(stats).toMatchObject({ accepted: 2, waiting: 1, loaded: 1, refused: { bad_signature: 1 }, refused_total: 1 });

    const cookie = await signIn(env);
    const page = await (await call(env, "GET", "/admin", { token: null, headers: { Cookie: cookie } })).text();
    const row = new RegExp(
      `<td>${sourceId}</td>\\s*<td>2</td>\\s*<td>1</td>\\s*<td>1</td>\\s*<td>1<div class="muted">bad_signature: 1</div></td>\\s*<td>${stats.last_delivery_at}</td>`,
    );
    expect(page).toMatch(row);
    expect((await call(env, "GET", `/sources/${uniqueId("kv")}/webhook`)).status).toBe(404);
  });
});
