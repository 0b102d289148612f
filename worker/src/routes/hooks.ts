/**
 * Webhook intake: POST /hooks/:source_id (public; the signature is the authentication). The raw bytes are verified
 * before anything is parsed; an accepted delivery is in R2 and D1 before the 200; a refused one stores nothing and
 * is counted by reason.
 */
import { Hono } from "hono";
import { PLATFORM_SECRET_INFIX, PLATFORM_SECRET_PREFIXES } from "../contract";
import { numberVar, type AppEnv, type Env } from "../env";
import { findSource } from "../ledger";
import { receivesDeliveries } from "../source_types";
import {
  countRefusal,
  isRecorded,
  sameBodyRecorded,
  sha256Hex,
  storeDelivery,
  type DeliveryDocument,
  type ReplayWindow,
} from "../webhooks/deliveries";
import { required, verifyDelivery, webhookConfig, type FieldLocation, type WebhookConfig } from "../webhooks/presets";
import { Refusal } from "../webhooks/refusals";
import { UNKNOWN_SOURCE_ID } from "../webhooks/stats";
import { concatBytes } from "../webhooks/verify";

export const hooks = new Hono<AppEnv>();

/** Longest delivery id and event type kept (ids go into R2 keys and D1's primary key). */
const MAX_DELIVERY_ID = 256;
const MAX_EVENT_TYPE = 200;

/** The body, refused as soon as it is over `max` bytes, whether Content-Length says so or the stream does. */
async function readBody(request: Request, max: number): Promise<Uint8Array> {
  const tooLarge = () => new Refusal("body_too_large", `the body is larger than ${max} bytes`);
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > max) throw tooLarge();
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return concatBytes(...chunks);
}

function mediaType(headers: Headers): string {
  return (headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
}

/** A name the platform's own secrets use (the list is dlt_platform/contract.py's), never a webhook's key. */
function isPlatformSecret(name: string): boolean {
  return PLATFORM_SECRET_PREFIXES.some((prefix) => name.startsWith(prefix)) || name.includes(PLATFORM_SECRET_INFIX);
}

/**
 * The values of the secrets the definition names that the Worker has (one or two during a rotation). A platform
 * secret is never used as a key, even by a definition stored before the validator refused such names: the intake
 * would otherwise verify HMACs keyed with the operator token or the session key.
 */
function secretsOf(env: Env, config: WebhookConfig): string[] {
  const platform = config.secretNames.filter(isPlatformSecret);
  if (platform.length) {
    console.error(`webhook secret_names name platform secrets, not used: ${platform.join(", ")}`);
    throw new Refusal("secret_not_configured", "the source's signing secret is not configured");
  }
  const values = config.secretNames.map((name) => (env as unknown as Record<string, unknown>)[name]);
  const secrets = values.filter((value): value is string => typeof value === "string" && value.length > 0);
  if (!secrets.length) {
    // The operator learns which one from the log; the sender only learns it should retry later.
    console.error(`webhook secret not set: ${config.secretNames.join(" or ")}`);
    throw new Refusal("secret_not_configured", "the source's signing secret is not configured");
  }
  return secrets;
}

// Ids read from a JSON body keep their type: the number 12345 and the string "12345" are two deliveries. A number
// is its decimal text and most strings are kept as sent (so ids already stored do not change); a string that
// reads like an integer, or starts with the tag, is tagged, so no two values share an id.
const STRING_TAG = "string:";
const INTEGER_TEXT = /^-?(0|[1-9][0-9]*)$/;

// A lone surrogate (no UTF-8 form) or U+FFFD (what a decoder leaves of bytes that were not UTF-8).
const NOT_UTF8 = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]|\ufffd/;

/**
 * The delivery id `value` stands for: trimmed, NFC, type-tagged when it comes from a JSON body; null when there is
 * none (absent, blank, not a string or an integer that a number holds exactly).
 */
function deliveryIdOf(value: unknown, fromBody: boolean): string | null {
  if (typeof value === "number") return fromBody && Number.isSafeInteger(value) ? String(value) : null;
  if (typeof value !== "string") return null;
  const text = value.trim();
  if (!text) return null;
  if (NOT_UTF8.test(text)) throw new Refusal("delivery_id_not_utf8", "the delivery id is not UTF-8 text");
  const id = text.normalize("NFC");
  return fromBody && (INTEGER_TEXT.test(id) || id.startsWith(STRING_TAG)) ? `${STRING_TAG}${id}` : id;
}

function asText(value: unknown): string | null {
  if (typeof value === "string" && value.length) return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return null;
}

/**
 * The delivery id and event type of a verified delivery, from headers or the JSON body (parsed at most once, only
 * now). A header the delivery id comes from is required like the signature's.
 */
function identify(config: WebhookConfig, headers: Headers, text: string, signedId: string | null) {
  let parsed: { value: unknown } | undefined;
  const fromBody = (path: string): unknown => {
    if (!parsed) {
      try {
        parsed = { value: JSON.parse(text) };
      } catch {
        parsed = { value: undefined };
      }
    }
    let value = parsed.value;
    for (const part of path.split(".")) {
      const isObject = typeof value === "object" && value !== null && !Array.isArray(value);
      value = isObject ? (value as Record<string, unknown>)[part] : undefined;
    }
    return value;
  };
  const at = (location: FieldLocation, isRequired: boolean) =>
    location.header
      ? isRequired
        ? required(headers, location.header)
        : headers.get(location.header)?.trim()
      : fromBody(location.json_path as string);

  const idInBody = Boolean(config.deliveryId?.json_path);
  const deliveryId = deliveryIdOf(config.deliveryId ? at(config.deliveryId, true) : signedId, idInBody);
  if (!deliveryId || deliveryId.length > MAX_DELIVERY_ID) {
    const where = idInBody ? `body field ${config.deliveryId?.json_path}` : "delivery id header";
    const what = idInBody ? "a string or an integer id" : "an id";
    throw new Refusal("missing_delivery_id", `the ${where} must hold ${what} of 1 to ${MAX_DELIVERY_ID} characters`);
  }
  const eventType = config.eventType ? asText(at(config.eventType, false))?.slice(0, MAX_EVENT_TYPE) ?? null : null;
  return { deliveryId, eventType };
}

/**
 * The body-digest window of a source whose delivery id is not signed (read from a header: github's
 * X-GitHub-Delivery, an hmac header): a captured delivery re-sent under a new id verifies, so within the window the
 * same body is the same delivery. Null for ids the signature covers (a JSON body field, svix's signed id) or with
 * WEBHOOK_REPLAY_WINDOW_HOURS=0.
 */
async function replayWindow(env: Env, config: WebhookConfig, body: Uint8Array, receivedMs: number): Promise<ReplayWindow | null> {
  if (!config.deliveryId?.header) return null;
  const hours = numberVar(env, "WEBHOOK_REPLAY_WINDOW_HOURS", { min: 0 });
  if (hours === 0) return null;
  return { bodySha256: await sha256Hex(body), since: new Date(receivedMs - hours * 3_600_000).toISOString() };
}

/** Never kept in a delivery document, whatever a definition names. */
const SIGNATURE_HEADERS = new Set([
  "x-hub-signature-256",
  "x-hub-signature",
  "stripe-signature",
  "svix-signature",
  "webhook-signature",
]);

function keptHeaders(headers: Headers, config: WebhookConfig, presetHeaders: string[]): Record<string, string> {
  const names = ["content-type", "user-agent", ...presetHeaders];
  for (const location of [config.deliveryId, config.eventType]) {
    if (location?.header) names.push(location.header.toLowerCase());
  }
  const kept: Record<string, string> = {};
  for (const name of names) {
    const value = headers.get(name);
    if (value !== null && !SIGNATURE_HEADERS.has(name) && name !== config.header?.toLowerCase()) kept[name] = value;
  }
  return kept;
}

async function accept(env: Env, request: Request, sourceId: string, receivedMs: number) {
  const source = await findSource(env.DB, sourceId);
  if (!source) throw new Refusal("unknown_source", `no webhook source ${sourceId}`);
  if (!receivesDeliveries(source.definition)) {
    throw new Refusal("not_a_webhook_source", `source ${sourceId} is not a webhook source`);
  }
  if (!source.enabled) throw new Refusal("source_disabled", `source ${sourceId} is disabled`);
  const config = webhookConfig(source.definition);

  const type = mediaType(request.headers);
  if (!config.contentTypes.includes(type)) {
    const wanted = config.contentTypes.join(" or ");
    throw new Refusal("unsupported_content_type", `content type must be ${wanted}, not ${type || "missing"}`);
  }
  const body = await readBody(request, config.maxBodyBytes);
  const verified = await verifyDelivery(config, request.headers, body, secretsOf(env, config), Date.now());

  // Verified: now the bytes may be read.
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    throw new Refusal("body_not_utf8", "the body is not UTF-8 text");
  }
  const { deliveryId, eventType } = identify(config, request.headers, text, verified.signedId);

  if (await isRecorded(env.DB, sourceId, deliveryId)) return { delivery_id: deliveryId, duplicate: true };
  const replay = await replayWindow(env, config, body, receivedMs);
  if (replay && (await sameBodyRecorded(env.DB, sourceId, replay)) !== null) {
    return { delivery_id: deliveryId, duplicate: true };
  }
  const doc: DeliveryDocument = {
    source_id: sourceId,
    delivery_id: deliveryId,
    received_at: new Date(receivedMs).toISOString(),
    event_type: eventType,
    signature_preset: config.preset,
    headers: keptHeaders(request.headers, config, verified.keptHeaders),
    body: text,
  };
  const stored = await storeDelivery(env, config.r2Prefix, doc, body.byteLength, replay);
  return { delivery_id: deliveryId, duplicate: !stored };
}

hooks.post("/hooks/:source_id", async (c) => {
  const sourceId = c.req.param("source_id");
  try {
    return c.json(await accept(c.env, c.req.raw, sourceId, Date.now()));
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    // Ids that name no source share one counter, so unauthenticated requests cannot grow the table.
    await countRefusal(c.env.DB, err.reason === "unknown_source" ? UNKNOWN_SOURCE_ID : sourceId, err.reason);
    return c.json(err.body(), err.status);
  }
});
