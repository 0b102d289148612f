/**
 * The signature presets of webhook sources, as each sender documents them:
 * - github: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`, id `X-GitHub-Delivery`, type `X-GitHub-Event`.
 * - stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`, HMAC-SHA256 of `<t>.<body>`; id and type from the body.
 * - svix (standard-webhooks): `svix-id`, `svix-timestamp`, `svix-signature: v1,<base64> [v1,<base64> ...]`,
 *   HMAC-SHA256 of `<id>.<timestamp>.<body>` keyed with the base64 after `whsec_` (the `webhook-*` names work too).
 * - hmac: the definition's header, algorithm, encoding and prefix; `<timestamp>.<body>` when it names a timestamp header.
 * The definition is stored as given, so every default of the Python model (dlt_platform/config.py) is applied here.
 */
import { WEBHOOK_DEFAULT_R2_PREFIX } from "../contract";
import type { SourceDefinition } from "../validation";
import { Refusal } from "./refusals";
import {
  anySignatureMatches,
  concatBytes,
  fromBase64,
  fromHex,
  timestampProblem,
  utf8,
  type HashName,
} from "./verify";

export type Preset = "github" | "stripe" | "svix" | "hmac";

export interface FieldLocation {
  header?: string;
  json_path?: string;
}

export interface WebhookConfig {
  preset: Preset;
  secretNames: string[];
  header: string | null;
  algorithm: HashName;
  encoding: "hex" | "base64";
  signaturePrefix: string | null;
  timestampHeader: string | null;
  toleranceSeconds: number;
  /** Null: the preset's own (the svix id header is whichever family the request uses). */
  deliveryId: FieldLocation | null;
  eventType: FieldLocation | null;
  maxBodyBytes: number;
  /** Lower-case media types. */
  contentTypes: string[];
  r2Prefix: string;
}

interface SignatureSettings {
  preset: Preset;
  secret_names: string[];
  header?: string | null;
  algorithm?: HashName;
  encoding?: "hex" | "base64";
  signature_prefix?: string | null;
  timestamp_header?: string | null;
  tolerance_seconds?: number;
}

interface WebhookExtract {
  signature: SignatureSettings;
  delivery_id?: FieldLocation | null;
  event_type?: FieldLocation | null;
  max_body_bytes?: number;
  content_types?: string[];
}

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

const PRESET_EVENT_TYPE: Record<Preset, FieldLocation | null> = {
  github: { header: "X-GitHub-Event" },
  stripe: { json_path: "type" },
  svix: null,
  hmac: null,
};

const PRESET_DELIVERY_ID: Record<Preset, FieldLocation | null> = {
  github: { header: "X-GitHub-Delivery" },
  stripe: { json_path: "id" },
  svix: null, // the signed id header
  hmac: null, // the definition must name it
};

/** The webhook settings of a (validated) webhook definition, with the model's defaults. */
export function webhookConfig(definition: SourceDefinition): WebhookConfig {
  const extract = definition.extract as unknown as WebhookExtract;
  const sig = extract.signature;
  const staging = definition.staging as { r2_prefix?: string | null } | undefined;
  return {
    preset: sig.preset,
    secretNames: sig.secret_names,
    header: sig.header ?? null,
    algorithm: sig.algorithm ?? "sha256",
    encoding: sig.encoding ?? "hex",
    signaturePrefix: sig.signature_prefix ?? null,
    timestampHeader: sig.timestamp_header ?? null,
    toleranceSeconds: sig.tolerance_seconds ?? 300,
    deliveryId: extract.delivery_id ?? PRESET_DELIVERY_ID[sig.preset],
    eventType: extract.event_type ?? PRESET_EVENT_TYPE[sig.preset],
    maxBodyBytes: extract.max_body_bytes ?? DEFAULT_MAX_BODY_BYTES,
    contentTypes: (extract.content_types ?? ["application/json"]).map((type) => type.trim().toLowerCase()),
    r2Prefix: staging?.r2_prefix || WEBHOOK_DEFAULT_R2_PREFIX,
  };
}

/** What a verified request says beyond its body: its signed id (svix) and the headers its document keeps. */
export interface Verified {
  signedId: string | null;
  /** Lower-case names of the preset's id/event/timestamp headers (never the signature header). */
  keptHeaders: string[];
}

export function required(headers: Headers, name: string): string {
  const value = headers.get(name);
  if (value === null || value.trim() === "") throw new Refusal("missing_header", `the ${name} header is required`);
  return value.trim();
}

function checkTimestamp(value: string, config: WebhookConfig, nowMs: number): void {
  const problem = timestampProblem(value, config.toleranceSeconds, nowMs);
  if (problem === "bad_timestamp") throw new Refusal(problem, "the signed timestamp is not unix seconds");
  if (problem) {
    const when = problem === "stale_timestamp" ? "older" : "later";
    throw new Refusal(problem, `the signed timestamp is ${when} than the ${config.toleranceSeconds} s tolerance`);
  }
}

function badSignature(): Refusal {
  return new Refusal("bad_signature", "the signature does not match the body");
}

function decodeAll(values: string[], decode: (text: string) => Uint8Array | null): Uint8Array[] {
  return values.map(decode).filter((bytes): bytes is Uint8Array => bytes !== null && bytes.length > 0);
}

/** Standard-webhooks secrets are `whsec_<base64 key>`; a secret without the prefix is the base64 key itself. */
function svixKey(secret: string): Uint8Array {
  const key = fromBase64(secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret);
  if (!key || key.length === 0) throw new Refusal("secret_not_configured", "the signing secret is not a whsec_ key");
  return key;
}

/**
 * Verifies the raw body against the request's signature with any of `secrets`; throws a Refusal.
 * The signature is checked before the timestamp: a stale refusal is an authentic delivery sent too late.
 */
export async function verifyDelivery(
  config: WebhookConfig,
  headers: Headers,
  body: Uint8Array,
  secrets: string[],
  nowMs: number,
): Promise<Verified> {
  const keys = () => secrets.map(utf8);
  switch (config.preset) {
    case "github": {
      const signature = required(headers, "X-Hub-Signature-256");
      const hex = signature.startsWith("sha256=") ? signature.slice("sha256=".length) : "";
      if (!(await anySignatureMatches("sha256", keys(), body, decodeAll([hex], fromHex)))) throw badSignature();
      return { signedId: null, keptHeaders: ["x-github-delivery", "x-github-event"] };
    }
    case "stripe": {
      const header = required(headers, "Stripe-Signature");
      let timestamp: string | null = null;
      const v1: string[] = [];
      for (const part of header.split(",")) {
        const at = part.indexOf("=");
        const [name, value] = [part.slice(0, at).trim(), part.slice(at + 1).trim()];
        if (name === "t") timestamp = value;
        else if (name === "v1") v1.push(value);
      }
      if (timestamp === null || !v1.length) throw badSignature();
      const message = concatBytes(utf8(`${timestamp}.`), body);
      if (!(await anySignatureMatches("sha256", keys(), message, decodeAll(v1, fromHex)))) throw badSignature();
      checkTimestamp(timestamp, config, nowMs);
      return { signedId: null, keptHeaders: [] };
    }
    case "svix": {
      // Svix sends svix-*; other standard-webhooks senders send webhook-*.
      const family = headers.has("svix-signature") || !headers.has("webhook-signature") ? "svix" : "webhook";
      const id = required(headers, `${family}-id`);
      const timestamp = required(headers, `${family}-timestamp`);
      const signatures = required(headers, `${family}-signature`)
        .split(" ")
        .filter((entry) => entry.startsWith("v1,"))
        .map((entry) => entry.slice("v1,".length));
      const message = concatBytes(utf8(`${id}.${timestamp}.`), body);
      const svixKeys = secrets.map(svixKey);
      if (!(await anySignatureMatches("sha256", svixKeys, message, decodeAll(signatures, fromBase64)))) {
        throw badSignature();
      }
      checkTimestamp(timestamp, config, nowMs);
      return { signedId: id, keptHeaders: [`${family}-id`, `${family}-timestamp`] };
    }
    case "hmac": {
      const header = config.header as string;
      let signature = required(headers, header);
      const timestamp = config.timestampHeader ? required(headers, config.timestampHeader) : null;
      if (config.signaturePrefix) {
        if (!signature.startsWith(config.signaturePrefix)) throw badSignature();
        signature = signature.slice(config.signaturePrefix.length);
      }
      const decode = config.encoding === "hex" ? fromHex : fromBase64;
      const message = timestamp === null ? body : concatBytes(utf8(`${timestamp}.`), body);
      if (!(await anySignatureMatches(config.algorithm, keys(), message, decodeAll([signature], decode)))) {
        throw badSignature();
      }
      if (timestamp !== null) checkTimestamp(timestamp, config, nowMs);
      return { signedId: null, keptHeaders: config.timestampHeader ? [config.timestampHeader.toLowerCase()] : [] };
    }
  }
}
