/**
 * Webhook test helpers: definitions, and senders that sign as each preset's documentation says, with node:crypto
 * (independent of the Worker's WebCrypto code).
 */
import { createExecutionContext, env as bindings, waitOnExecutionContext } from "cloudflare:test";
import { createHmac } from "node:crypto";
import { expect } from "vitest";
import { app } from "../src/app";
import type { Env } from "../src/env";
import { call, json } from "./helpers";

export const SECRETS = {
  github: "test-github-hook-secret",
  stripe: "whsec_test_stripe_hook_secret",
  svix: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  hmac: "test-hmac-hook-secret",
};

export const SECRET_NAMES = {
  github: "TEST_GITHUB_HOOK_SECRET",
  stripe: "TEST_STRIPE_HOOK_SECRET",
  svix: "TEST_SVIX_HOOK_SECRET",
  hmac: "TEST_HMAC_HOOK_SECRET",
};

export function webhookDefinition(sourceId: string, extract: Record<string, unknown>, overrides: Record<string, unknown> = {}) {
  return {
    source_id: sourceId,
    source_type: "webhook",
    enabled: true,
    description: "test webhook feed",
    destination: { type: "bigquery", dataset: "source_webhooks", table: `${sourceId}_events`, write_disposition: "merge" },
    extract,
    ...overrides,
  };
}

export async function createWebhookSource(
  e: Env,
  sourceId: string,
  extract: Record<string, unknown>,
  overrides: Record<string, unknown> = {},
) {
  const response = await call(e, "POST", "/sources", { body: webhookDefinition(sourceId, extract, overrides) });
  if (response.status !== 201) throw new Error(`create failed: ${response.status} ${await response.text()}`);
  return sourceId;
}

export const githubExtract = (secretNames = [SECRET_NAMES.github]) => ({
  signature: { preset: "github", secret_names: secretNames },
});

/** POSTs to /hooks/:source_id; a string or bytes body gets a Content-Length, a stream does not (chunked). */
export async function postHook(
  e: Env,
  sourceId: string,
  body: string | Uint8Array | ReadableStream,
  headers: Record<string, string>,
): Promise<Response> {
  const ctx = createExecutionContext();
  const init: RequestInit & { duplex?: string } = { method: "POST", headers, body };
  const response = await app.fetch(new Request(`https://orchestrator.test/hooks/${encodeURIComponent(sourceId)}`, init), e, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** GitHub: X-Hub-Signature-256 = "sha256=" + hex HMAC-SHA256(secret, raw body). */
export function githubHeaders(body: string, deliveryId: string, secret = SECRETS.github, event = "push") {
  return {
    "content-type": "application/json",
    "user-agent": "GitHub-Hookshot/test",
    "x-github-delivery": deliveryId,
    "x-github-event": event,
    "x-hub-signature-256": `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`,
  };
}

/** Stripe: Stripe-Signature = "t=<unix>,v1=<hex HMAC-SHA256(secret, `${t}.${body}`)>". */
export function stripeSignature(body: string, secret = SECRETS.stripe, t = nowSeconds()) {
  return `t=${t},v1=${createHmac("sha256", secret).update(`${t}.${body}`).digest("hex")}`;
}

/** Standard webhooks: "v1," + base64 HMAC-SHA256(base64-decoded key after whsec_, `${id}.${ts}.${body}`). */
export function svixHeaders(body: string, id: string, secret = SECRETS.svix, ts = nowSeconds(), family = "svix") {
  const key = Uint8Array.from(atob(secret.slice("whsec_".length)), (ch) => ch.charCodeAt(0));
  const signature = createHmac("sha256", key).update(`${id}.${ts}.${body}`).digest("base64");
  return {
    "content-type": "application/json",
    [`${family}-id`]: id,
    [`${family}-timestamp`]: String(ts),
    [`${family}-signature`]: `v1,${signature}`,
  };
}

/** What the Worker kept of a source: its R2 objects and its D1 rows. */
export async function stored(sourceId: string, prefix = "webhooks") {
  const listing = await bindings.RAW_STAGING.list({ prefix: `${prefix}/${sourceId}/` });
  const { results } = await bindings.DB.prepare(
    "SELECT * FROM webhook_deliveries WHERE source_id = ? ORDER BY received_at, delivery_id",
  )
    .bind(sourceId)
    .all<Record<string, any>>();
  return { keys: listing.objects.map((o) => o.key), rows: results };
}

export async function refusals(sourceId: string): Promise<Record<string, number>> {
  const { results } = await bindings.DB.prepare("SELECT reason, count FROM webhook_refusals WHERE source_id = ?")
    .bind(sourceId)
    .all<{ reason: string; count: number }>();
  return Object.fromEntries(results.map((r) => [r.reason, r.count]));
}

/** A refusal answers one line `{"error", "reason"}` with the status. */
export async function expectRefused(response: Response, status: number, reason: string) {
  expect(response.status).toBe(status);
  const body = await json(response);
  expect(body).toEqual({ error: expect.any(String), reason });
  expect(body.error).not.toContain("\n");
  return body;
}
