/**
 * Webhook delivery ids: normalized (trimmed, NFC), type-tagged when read from a JSON body, refused when blank or not
 * UTF-8, and kept out of R2 keys that would pass R2's 1,024-byte limit.
 */
import { describe, expect, it } from "vitest";
import { call, json, OPERATOR, testEnv, uniqueId } from "./helpers";
import {
  createWebhookSource,
  expectRefused,
  githubExtract,
  githubHeaders,
  postHook,
  SECRET_NAMES,
  stored,
  stripeSignature,
  webhookDefinition,
} from "./webhook_helpers";

const stripeExtract = { signature: { preset: "stripe", secret_names: [SECRET_NAMES.stripe] } };
const stripeHeaders = (body: string) => ({ "content-type": "application/json", "stripe-signature": stripeSignature(body) });

async function sendStripe(env: ReturnType<typeof testEnv>["env"], sourceId: string, id: unknown) {
  const body = JSON.stringify({ id, type: "charge.succeeded" });
  return postHook(env, sourceId, body, stripeHeaders(body));
}

describe("webhook delivery ids", () => {
  it("keeps a numeric and a string id from the body apart (type-tagged), and a tag-like string apart from both", async () => {
    const { env } = testEnv();
    const source = await createWebhookSource(env, uniqueId("hook"), stripeExtract);
    const asNumber = await json(await sendStripe(env, source, 12345));
    const asString = await json(await sendStripe(env, source, "12345"));
    const tagLike = await json(await sendStripe(env, source, "string:12345"));
    const plain = await json(await sendStripe(env, source, "evt_1"));
    expect([asNumber.duplicate, asString.duplicate, tagLike.duplicate, plain.duplicate]).toEqual([false, false, false, false]);
    expect(new Set([asNumber.delivery_id, asString.delivery_id, tagLike.delivery_id]).size).toBe(3);
    // Numbers and ordinary string ids are kept as before: ids of stored deliveries do not change.
    expect([asNumber.delivery_id, plain.delivery_id]).toEqual(["12345", "evt_1"]);
    expect((await json(await sendStripe(env, source, 12345))).duplicate).toBe(true);
    expect((await json(await sendStripe(env, source, "12345"))).duplicate).toBe(true);
    expect((await stored(source)).rows).toHaveLength(4);
    // A number an id cannot hold exactly is refused rather than rounded into another delivery's id.
    await expectRefused(await sendStripe(env, source, 2 ** 53 + 1), 400, "missing_delivery_id");
  });

  it("trims and NFC-normalizes ids, so one delivery written two ways is one delivery", async () => {
    const { env } = testEnv();
    const stripe = await createWebhookSource(env, uniqueId("hook"), stripeExtract);
    const composed = "evt_caf\u00e9";
    const decomposed = "evt_cafe\u0301";
    expect((await json(await sendStripe(env, stripe, ` ${composed} `))).delivery_id).toBe(composed);
    expect(await json(await sendStripe(env, stripe, decomposed))).toEqual({ delivery_id: composed, duplicate: true });

    const github = await createWebhookSource(env, uniqueId("hook"), githubExtract());
    const body = JSON.stringify({ zen: "x" });
    const first = await postHook(env, github, body, githubHeaders(body, "  d-1  "));
    expect(await json(first)).toEqual({ delivery_id: "d-1", duplicate: false });
  });

  it("refuses a blank id and an id that is not UTF-8, storing nothing", async () => {
    const { env } = testEnv();
    const stripe = await createWebhookSource(env, uniqueId("hook"), stripeExtract);
    await expectRefused(await sendStripe(env, stripe, "   "), 400, "missing_delivery_id");
    await expectRefused(await sendStripe(env, stripe, "\u3000\t"), 400, "missing_delivery_id");
    // A lone surrogate has no UTF-8 form; U+FFFD is what a decoder leaves of bytes that were not UTF-8.
    const lone = '{"id":"evt_\\ud800","type":"x"}';
    await expectRefused(await postHook(env, stripe, lone, stripeHeaders(lone)), 400, "delivery_id_not_utf8");
    await expectRefused(await sendStripe(env, stripe, "evt_\ufffd"), 400, "delivery_id_not_utf8");
    expect(await stored(stripe)).toEqual({ keys: [], rows: [] });
  });

  it("stores an id whose encoded R2 key would pass 1,024 bytes under a hashed key, and reads it back", async () => {
    const { env } = testEnv();
    const stripe = await createWebhookSource(env, uniqueId("hook"), stripeExtract);
    const long = `evt_${"\u20ac".repeat(250)}`; // 254 characters, 2,262 bytes once percent-encoded
    const accepted = await sendStripe(env, stripe, long);
    expect(accepted.status, await accepted.clone().text()).toBe(200);
    expect(await json(accepted)).toEqual({ delivery_id: long, duplicate: false });
    const { keys, rows } = await stored(stripe);
    expect(keys).toHaveLength(1);
    expect(new TextEncoder().encode(keys[0]).length).toBeLessThanOrEqual(1024);
    expect(keys[0]).toMatch(/\/hr=\d{2}\/sha256\/[0-9a-f]{64}\.json$/);
    expect(rows[0]).toMatchObject({ delivery_id: long, r2_key: keys[0] });
    expect(await json(await sendStripe(env, stripe, long))).toEqual({ delivery_id: long, duplicate: true });
    // Short ids keep their readable key.
    await sendStripe(env, stripe, "evt_short");
    expect((await stored(stripe)).keys.some((key) => key.endsWith("/evt_short.json"))).toBe(true);
  });
});

describe("webhook signing secrets", () => {
  it("a definition may not name a platform secret, and one stored before that rule never verifies with it", async () => {
    const { env } = testEnv();
    const sourceId = uniqueId("hook");
    for (const name of ["DLT_OPERATOR_TOKEN", "ADMIN_SESSION_KEY", "DAGSTER_PG_URL", "DESTINATION__BIGQUERY__CREDENTIALS"]) {
      const body = webhookDefinition(sourceId, githubExtract([SECRET_NAMES.github, name]));
      const refused = await call(env, "POST", "/sources", { body });
      expect(refused.status, name).toBe(400);
      const { error } = await json(refused);
      expect(error.fields, name).toEqual([
        { field: "extract.signature.secret_names.1", message: expect.stringContaining("names a platform secret") },
      ]);
    }
    // A definition stored before the rule (written to D1 directly) naming the operator token.
    await createWebhookSource(env, sourceId, githubExtract());
    const legacy = webhookDefinition(sourceId, githubExtract(["DLT_OPERATOR_TOKEN"]));
    await env.DB.prepare("UPDATE sources SET definition = ? WHERE source_id = ?").bind(JSON.stringify(legacy), sourceId).run();
    const payload = JSON.stringify({ forged: true });
    const signedWithToken = await postHook(env, sourceId, payload, githubHeaders(payload, "d-forged", OPERATOR));
    const answer = await expectRefused(signedWithToken, 503, "secret_not_configured");
    expect(answer.error).not.toContain("DLT_OPERATOR_TOKEN");
    expect(await stored(sourceId)).toEqual({ keys: [], rows: [] });
  });
});
