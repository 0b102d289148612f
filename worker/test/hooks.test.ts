import { env as bindings } from "cloudflare:test";
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { call, createSource, json, testEnv, uniqueId } from "./helpers";
import {
  createWebhookSource,
  expectRefused,
  githubExtract,
  githubHeaders,
  nowSeconds,
  postHook,
  refusals,
  SECRET_NAMES,
  SECRETS,
  stored,
  stripeSignature,
  svixHeaders,
} from "./webhook_helpers";

const hookId = () => uniqueId("hook");

describe("webhook intake: valid deliveries land", () => {
  it("github: the document is in R2 at its hour's key and the row waits in D1", async () => {
    const { env } = testEnv();
    const sourceId = await createWebhookSource(env, hookId(), githubExtract());
    const body = JSON.stringify({ ref: "refs/heads/main", commits: [{ id: "abc" }], note: "héllo" });
    const before = Date.now();
    const response = await postHook(env, sourceId, body, githubHeaders(body, "72d3162e-cc78-11e3-81ab-4c9367dc0958"));
    expect(response.status).toBe(200);
    expect(await json(response)).toEqual({ delivery_id: "72d3162e-cc78-11e3-81ab-4c9367dc0958", duplicate: false });

    const { keys, rows } = await stored(sourceId);
    expect(rows).toHaveLength(1);
    const row = rows[0];
    const receivedMs = Date.parse(row.received_at);
    expect(receivedMs).toBeGreaterThanOrEqual(before - 1);
    const at = new Date(receivedMs).toISOString();
    const key = `webhooks/${sourceId}/dt=${at.slice(0, 10)}/hr=${at.slice(11, 13)}/72d3162e-cc78-11e3-81ab-4c9367dc0958.json`;
    expect(keys).toEqual([key]);
    expect(row).toMatchObject({
      delivery_id: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
      event_type: "push",
      r2_key: key,
      body_bytes: new TextEncoder().encode(body).length,
      state: "waiting",
      run_id: null,
      loaded_at: null,
    });
    const doc = await (await bindings.RAW_STAGING.get(key))!.json();
    expect(doc).toEqual({
      source_id: sourceId,
      delivery_id: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
      received_at: row.received_at,
      event_type: "push",
      signature_preset: "github",
      headers: {
        "content-type": "application/json",
        "user-agent": "GitHub-Hookshot/test",
        "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "x-github-event": "push",
      },
      body,
    });
  });

  it("stripe: id and type from the body, any of several v1 signatures, the staging prefix", async () => {
    const { env } = testEnv();
    const sourceId = await createWebhookSource(
      env,
      hookId(),
      { signature: { preset: "stripe", secret_names: [SECRET_NAMES.stripe] } },
      { staging: { r2_prefix: "hooks/stripe" } },
    );
    const body = JSON.stringify({ id: "evt_1NG8Du2eZvKYlo2CUI79vXWy", type: "invoice.paid", data: { object: { id: "in_1" } } });
    const t = nowSeconds();
    const good = createHmac("sha256", SECRETS.stripe).update(`${t}.${body}`).digest("hex");
    const other = createHmac("sha256", "some-other-endpoint-secret").update(`${t}.${body}`).digest("hex");
    const response = await postHook(env, sourceId, body, {
      "content-type": "application/json; charset=utf-8",
      "stripe-signature": `t=${t},v1=${other},v1=${good},v0=${"0".repeat(64)}`,
    });
    expect(await json(response)).toEqual({ delivery_id: "evt_1NG8Du2eZvKYlo2CUI79vXWy", duplicate: false });
    const { keys, rows } = await stored(sourceId, "hooks/stripe");
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(new RegExp(`^hooks/stripe/${sourceId}/dt=\\d{4}-\\d{2}-\\d{2}/hr=\\d{2}/evt_1NG8Du2eZvKYlo2CUI79vXWy\\.json$`));
    expect(rows[0]).toMatchObject({ event_type: "invoice.paid", state: "waiting" });
    const doc = await (await bindings.RAW_STAGING.get(keys[0]))!.json<any>();
    expect(doc).toMatchObject({ signature_preset: "stripe", event_type: "invoice.paid", body });
    expect(doc.headers).toEqual({ "content-type": "application/json; charset=utf-8" });
  });

  it("svix: the signed svix-id is the delivery id; the webhook-* header names verify too", async () => {
    const { env } = testEnv();
    const sourceId = await createWebhookSource(env, hookId(), {
      signature: { preset: "svix", secret_names: [SECRET_NAMES.svix] },
      event_type: { json_path: "type" },
    });
    const body = JSON.stringify({ type: "user.created", data: { id: 7 } });
    const first = await postHook(env, sourceId, body, svixHeaders(body, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"));
    expect(await json(first)).toEqual({ delivery_id: "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", duplicate: false });
    const standard = await postHook(env, sourceId, body, svixHeaders(body, "msg_standard/1", SECRETS.svix, nowSeconds(), "webhook"));
    expect(await json(standard)).toEqual({ delivery_id: "msg_standard/1", duplicate: false });

    const { keys, rows } = await stored(sourceId);
    expect(rows.map((r) => r.delivery_id).sort()).toEqual(["msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "msg_standard/1"]);
    expect(keys.some((k) => k.endsWith("/msg_standard%2F1.json"))).toBe(true);
    const doc = await (await bindings.RAW_STAGING.get(keys.find((k) => k.includes("msg_2KW"))!))!.json<any>();
    expect(doc.event_type).toBe("user.created");
    expect(Object.keys(doc.headers).sort()).toEqual(["content-type", "svix-id", "svix-timestamp"]);
  });

  it("generic hmac: sha512, base64, prefix, timestamp header, delivery id from a JSON path", async () => {
    const { env } = testEnv();
    const sourceId = await createWebhookSource(env, hookId(), {
      signature: {
        preset: "hmac",
        secret_names: [SECRET_NAMES.hmac],
        header: "X-Partner-Signature",
        algorithm: "sha512",
        encoding: "base64",
        signature_prefix: "sig=",
        timestamp_header: "X-Partner-Time",
      },
      delivery_id: { json_path: "event.id" },
      event_type: { header: "X-Partner-Event" },
      content_types: ["application/json", "application/x-ndjson"],
    });
    const body = JSON.stringify({ event: { id: 98765 }, amount: 12 });
    const ts = String(nowSeconds());
    const signature = createHmac("sha512", SECRETS.hmac).update(`${ts}.${body}`).digest("base64");
    const headers = {
      "content-type": "application/x-ndjson",
      "x-partner-signature": `sig=${signature}`,
      "x-partner-time": ts,
      "x-partner-event": "payment.settled",
    };
    expect(await json(await postHook(env, sourceId, body, headers))).toEqual({ delivery_id: "98765", duplicate: false });
    const { keys, rows } = await stored(sourceId);
    expect(rows[0]).toMatchObject({ delivery_id: "98765", event_type: "payment.settled" });
    const doc = await (await bindings.RAW_STAGING.get(keys[0]))!.json<any>();
    expect(doc.headers).toEqual({ "content-type": "application/x-ndjson", "x-partner-time": ts, "x-partner-event": "payment.settled" });

    // Without the prefix the same signature does not verify.
    const bare = await postHook(env, sourceId, body, { ...headers, "x-partner-signature": signature });
    await expectRefused(bare, 401, "bad_signature");
  });
});

describe("webhook intake: refusals store nothing and are counted", () => {
  it("refuses each bad request with its status and reason", async () => {
    const { env } = testEnv();
    const github = await createWebhookSource(env, hookId(), { ...githubExtract(), max_body_bytes: 1000 });
    const stripe = await createWebhookSource(env, hookId(), {
      signature: { preset: "stripe", secret_names: [SECRET_NAMES.stripe], tolerance_seconds: 300 },
    });
    const svix = await createWebhookSource(env, hookId(), { signature: { preset: "svix", secret_names: [SECRET_NAMES.svix] } });
    const body = JSON.stringify({ action: "opened", number: 1 });
    const stripeBody = JSON.stringify({ id: "evt_1", type: "charge.succeeded" });
    const signed = githubHeaders(body, "d-1");

    // Tampered body: the signature of the original body.
    await expectRefused(await postHook(env, github, body.replace("opened", "closed"), signed), 401, "bad_signature");
    // Wrong secret.
    await expectRefused(await postHook(env, github, body, githubHeaders(body, "d-1", "not-the-secret")), 401, "bad_signature");
    // Missing signature header, missing delivery header.
    const { "x-hub-signature-256": _, ...unsigned } = signed;
    await expectRefused(await postHook(env, github, body, unsigned), 400, "missing_header");
    const { "x-github-delivery": __, ...noId } = signed;
    await expectRefused(await postHook(env, github, body, noId), 400, "missing_header");
    // Wrong content type.
    await expectRefused(await postHook(env, github, body, { ...signed, "content-type": "text/plain" }), 415, "unsupported_content_type");
    // Oversized: declared by Content-Length, and streamed without one.
    const big = JSON.stringify({ pad: "x".repeat(2000) });
    await expectRefused(await postHook(env, github, big, githubHeaders(big, "d-2")), 413, "body_too_large");
    const chunks = [new TextEncoder().encode(big.slice(0, 900)), new TextEncoder().encode(big.slice(900))];
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(chunk);
        controller.close();
      },
    });
    const streamed = new Request("https://x.test/", { method: "POST", body: stream, duplex: "half" } as RequestInit);
    expect(streamed.headers.get("content-length")).toBeNull();
    await expectRefused(await postHook(env, github, streamed.body!, githubHeaders(big, "d-3")), 413, "body_too_large");
    // Stale and future timestamps, correctly signed.
    const stale = stripeSignature(stripeBody, SECRETS.stripe, nowSeconds() - 301);
    await expectRefused(
      await postHook(env, stripe, stripeBody, { "content-type": "application/json", "stripe-signature": stale }),
      401,
      "stale_timestamp",
    );
    const future = svixHeaders(stripeBody, "msg_future", SECRETS.svix, nowSeconds() + 400);
    await expectRefused(await postHook(env, svix, stripeBody, future), 401, "future_timestamp");
    // A timestamp that is not unix seconds, signed as it is.
    const notSeconds = `t=soon,v1=${createHmac("sha256", SECRETS.stripe).update(`soon.${stripeBody}`).digest("hex")}`;
    await expectRefused(
      await postHook(env, stripe, stripeBody, { "content-type": "application/json", "stripe-signature": notSeconds }),
      401,
      "bad_timestamp",
    );
    const noSvixId = svixHeaders(stripeBody, "msg_x");
    delete (noSvixId as Record<string, string>)["svix-id"];
    await expectRefused(await postHook(env, svix, stripeBody, noSvixId), 400, "missing_header");

    for (const sourceId of [github, stripe, svix]) expect(await stored(sourceId)).toEqual({ keys: [], rows: [] });
    expect(await refusals(github)).toEqual({
      bad_signature: 2,
      missing_header: 2,
      unsupported_content_type: 1,
      body_too_large: 2,
    });
    expect(await refusals(stripe)).toEqual({ stale_timestamp: 1, bad_timestamp: 1 });
    expect(await refusals(svix)).toEqual({ future_timestamp: 1, missing_header: 1 });

    // The operator API shows the same figures.
    const stats = await json(await call(env, "GET", `/sources/${github}/webhook`));
    expect(stats).toMatchObject({ source_id: github, accepted: 0, waiting: 0, loaded: 0, refused_total: 7, last_delivery_at: null });
    expect(stats.refused).toEqual({ bad_signature: 2, missing_header: 2, unsupported_content_type: 1, body_too_large: 2 });
  });

  it("refuses unknown, disabled and non-webhook sources with 404, storing nothing", async () => {
    const { env } = testEnv();
    const disabled = await createWebhookSource(env, hookId(), githubExtract(), { enabled: false });
    const kv = await createSource(env, uniqueId("kv"));
    const unknown = hookId();
    const body = JSON.stringify({ a: 1 });
    const unknownBefore = (await refusals("*")).unknown_source ?? 0;

    await expectRefused(await postHook(env, unknown, body, githubHeaders(body, "u-1")), 404, "unknown_source");
    await expectRefused(await postHook(env, disabled, body, githubHeaders(body, "u-2")), 404, "source_disabled");
    await expectRefused(await postHook(env, kv, body, githubHeaders(body, "u-3")), 404, "not_a_webhook_source");

    for (const sourceId of [unknown, disabled, kv]) expect(await stored(sourceId)).toEqual({ keys: [], rows: [] });
    expect(await refusals(disabled)).toEqual({ source_disabled: 1 });
    expect(await refusals(kv)).toEqual({ not_a_webhook_source: 1 });
    // Ids that name no source are counted together, not one row per made-up id.
    expect(await refusals(unknown)).toEqual({});
    expect((await refusals("*")).unknown_source).toBe(unknownBefore + 1);
    const all = await json(await call(env, "GET", "/webhooks"));
    expect(all.unknown_source).toBe(unknownBefore + 1);
    expect(all.sources.find((s: any) => s.source_id === disabled)).toMatchObject({ enabled: false, refused: { source_disabled: 1 } });
    expect(all.sources.find((s: any) => s.source_id === kv)).toBeUndefined();
  });

  it("refuses a body that is not UTF-8 and a delivery id the body does not have", async () => {
    const { env } = testEnv();
    const stripe = await createWebhookSource(env, hookId(), { signature: { preset: "stripe", secret_names: [SECRET_NAMES.stripe] } });
    const noId = JSON.stringify({ type: "charge.succeeded" });
    const sign = (b: string) => ({ "content-type": "application/json", "stripe-signature": stripeSignature(b) });
    await expectRefused(await postHook(env, stripe, noId, sign(noId)), 400, "missing_delivery_id");
    const notJson = "id=evt_1";
    await expectRefused(await postHook(env, stripe, notJson, sign(notJson)), 400, "missing_delivery_id");

    const github = await createWebhookSource(env, hookId(), githubExtract());
    const latin1 = new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d]); // {"a":"<0xE9>"}
    const signature = `sha256=${createHmac("sha256", SECRETS.github).update(latin1).digest("hex")}`;
    const response = await postHook(env, github, latin1, {
      "content-type": "application/json",
      "x-github-delivery": "latin1",
      "x-hub-signature-256": signature,
    });
    await expectRefused(response, 400, "body_not_utf8");
    expect(await stored(stripe)).toEqual({ keys: [], rows: [] });
    expect(await stored(github)).toEqual({ keys: [], rows: [] });
  });

  it("answers 503 while the source's secret is not set, and names no secret", async () => {
    const { env } = testEnv();
    const sourceId = await createWebhookSource(env, hookId(), githubExtract(["TEST_HOOK_SECRET_NEVER_SET"]));
    const body = "{}";
    const response = await postHook(env, sourceId, body, githubHeaders(body, "n-1"));
    const refusal = await expectRefused(response, 503, "secret_not_configured");
    expect(refusal.error).not.toContain("TEST_HOOK_SECRET_NEVER_SET");
    expect(await stored(sourceId)).toEqual({ keys: [], rows: [] });
  });
});

describe("webhook intake: idempotent and rotating", () => {
  it("stores the same delivery once; four more answer duplicate", async () => {
    const { env } = testEnv();
    const sourceId = await createWebhookSource(env, hookId(), githubExtract());
    const body = JSON.stringify({ n: 1 });
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await json(await postHook(env, sourceId, body, githubHeaders(body, "same-1"))));
    expect(answers.map((a) => a.duplicate)).toEqual([false, true, true, true, true]);
    expect(answers.every((a) => a.delivery_id === "same-1")).toBe(true);
    const { keys, rows } = await stored(sourceId);
    expect(keys).toHaveLength(1);
    expect(rows).toHaveLength(1);

    // A duplicate still needs a valid signature.
    await expectRefused(await postHook(env, sourceId, body, githubHeaders(body, "same-1", "wrong")), 401, "bad_signature");
  });

  it("five concurrent copies of one delivery: one stored, four duplicates", async () => {
    const { env } = testEnv();
    const sourceId = await createWebhookSource(env, hookId(), githubExtract());
    const body = JSON.stringify({ n: 2 });
    const answers = await Promise.all(
      Array.from({ length: 5 }, async () => json(await postHook(env, sourceId, body, githubHeaders(body, "race-1")))),
    );
    expect(answers.filter((a) => !a.duplicate)).toHaveLength(1);
    const { keys, rows } = await stored(sourceId);
    expect(rows).toHaveLength(1);
    expect(keys).toEqual([rows[0].r2_key]);
    const doc = await (await bindings.RAW_STAGING.get(rows[0].r2_key))!.json<any>();
    expect(doc.delivery_id).toBe("race-1");
  });

  it("accepts the old and the new secret during a rotation, and refuses a third", async () => {
    const { env: base } = testEnv();
    const env = { ...base, HOOK_KEY_NEW: "rotation-new-key", HOOK_KEY_OLD: "rotation-old-key" } as typeof base;
    const sourceId = await createWebhookSource(env, hookId(), githubExtract(["HOOK_KEY_NEW", "HOOK_KEY_OLD"]));
    const body = JSON.stringify({ r: 1 });
    // Two events (one body under two ids would be a replay, see hooks_replay.test.ts).
    const other = JSON.stringify({ r: 2 });
    expect((await postHook(env, sourceId, body, githubHeaders(body, "rot-new", "rotation-new-key"))).status).toBe(200);
    expect((await postHook(env, sourceId, other, githubHeaders(other, "rot-old", "rotation-old-key"))).status).toBe(200);
    await expectRefused(await postHook(env, sourceId, body, githubHeaders(body, "rot-3", "rotation-third-key")), 401, "bad_signature");
    expect((await stored(sourceId)).rows.map((r) => r.delivery_id).sort()).toEqual(["rot-new", "rot-old"]);

    // Once the old secret is deleted, only the new one verifies.
    const { HOOK_KEY_OLD: _, ...withoutOld } = env as typeof env & { HOOK_KEY_OLD: string };
    const after = withoutOld as typeof base;
    expect((await postHook(after, sourceId, body, githubHeaders(body, "rot-new-2", "rotation-new-key"))).status).toBe(200);
    await expectRefused(await postHook(after, sourceId, body, githubHeaders(body, "rot-old-2", "rotation-old-key")), 401, "bad_signature");
  });

  it("reads a body over the general request limit when the source allows it", async () => {
    const { env } = testEnv();
    const sourceId = await createWebhookSource(env, hookId(), githubExtract());
    const body = JSON.stringify({ pad: "y".repeat(600 * 1024) }); // over MAX_BODY_KB (256), under the 1 MB default
    const response = await postHook(env, sourceId, body, githubHeaders(body, "big-1"));
    expect(await json(response)).toEqual({ delivery_id: "big-1", duplicate: false });
    const over = JSON.stringify({ pad: "y".repeat(1024 * 1024) });
    await expectRefused(await postHook(env, sourceId, over, githubHeaders(over, "big-2")), 413, "body_too_large");
  });
});
