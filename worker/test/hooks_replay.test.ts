/**
 * GitHub signs neither the delivery id nor a time: a captured delivery re-sent under a new X-GitHub-Delivery id
 * verifies. Within the replay window the same body is the same delivery; ids the signature covers are not affected.
 */
import { env as bindings } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { json, testEnv, uniqueId } from "./helpers";
import { createWebhookSource, githubExtract, githubHeaders, postHook, SECRET_NAMES, stored, svixHeaders } from "./webhook_helpers";

const push = (n: number) => JSON.stringify({ ref: "refs/heads/main", after: `sha-${n}`, repository: { full_name: "o/r" } });

describe("webhook replays under a new id", () => {
  it("a captured github delivery re-sent under new delivery ids adds no row and no object", async () => {
    const { env } = testEnv();
    const source = await createWebhookSource(env, uniqueId("hook"), githubExtract());
    const body = push(1);
    expect(await json(await postHook(env, source, body, githubHeaders(body, "d-original")))).toEqual({
      delivery_id: "d-original",
      duplicate: false,
    });
    // The same signed bytes, a fresh id each time: one after the other, then four at once.
    expect(await json(await postHook(env, source, body, githubHeaders(body, "d-replay-1")))).toEqual({
      delivery_id: "d-replay-1",
      duplicate: true,
    });
    const burst = await Promise.all(
      [2, 3, 4, 5].map(async (n) => json(await postHook(env, source, body, githubHeaders(body, `d-replay-${n}`)))),
    );
    expect(burst.map((answer) => answer.duplicate)).toEqual([true, true, true, true]);
    const { keys, rows } = await stored(source);
    expect(rows.map((row) => row.delivery_id)).toEqual(["d-original"]);
    expect(keys).toHaveLength(1);
    // Another event is another body: it lands.
    const next = push(2);
    expect((await json(await postHook(env, source, next, githubHeaders(next, "d-next")))).duplicate).toBe(false);
  });

  it("concurrent first copies under different ids leave one row and one object", async () => {
    const { env } = testEnv();
    const source = await createWebhookSource(env, uniqueId("hook"), githubExtract());
    const body = push(3);
    const answers = await Promise.all(
      [1, 2, 3, 4, 5].map(async (n) => json(await postHook(env, source, body, githubHeaders(body, `d-race-${n}`)))),
    );
    expect(answers.filter((answer) => !answer.duplicate)).toHaveLength(1);
    const { keys, rows } = await stored(source);
    expect(rows).toHaveLength(1);
    expect(keys).toEqual([rows[0].r2_key]);
  });

  it("after the window the same body lands again; WEBHOOK_REPLAY_WINDOW_HOURS=0 turns the check off", async () => {
    const { env } = testEnv({ WEBHOOK_REPLAY_WINDOW_HOURS: "1" });
    const source = await createWebhookSource(env, uniqueId("hook"), githubExtract());
    const body = push(4);
    await postHook(env, source, body, githubHeaders(body, "d-old"));
    await bindings.DB.prepare("UPDATE webhook_deliveries SET received_at = ? WHERE source_id = ?")
      .bind(new Date(Date.now() - 2 * 3_600_000).toISOString(), source)
      .run();
    expect((await json(await postHook(env, source, body, githubHeaders(body, "d-late")))).duplicate).toBe(false);

    const off = testEnv({ WEBHOOK_REPLAY_WINDOW_HOURS: "0" }).env;
    const open = await createWebhookSource(off, uniqueId("hook"), githubExtract());
    await postHook(off, open, body, githubHeaders(body, "d-a"));
    expect((await json(await postHook(off, open, body, githubHeaders(body, "d-b")))).duplicate).toBe(false);
  });

  it("leaves sources whose id the signature covers alone: two svix messages with one body are two deliveries", async () => {
    const { env } = testEnv();
    const source = await createWebhookSource(env, uniqueId("hook"), { signature: { preset: "svix", secret_names: [SECRET_NAMES.svix] } });
    const body = JSON.stringify({ type: "user.created", data: { id: "u1" } });
    expect((await json(await postHook(env, source, body, svixHeaders(body, "msg_1")))).duplicate).toBe(false);
    expect((await json(await postHook(env, source, body, svixHeaders(body, "msg_2")))).duplicate).toBe(false);
    expect((await stored(source)).rows).toHaveLength(2);
  });
});
