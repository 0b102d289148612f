/** HMAC signatures of webhook deliveries: WebCrypto MACs compared in constant time, and signed timestamps. */

export type HashName = "sha1" | "sha256" | "sha512";

const WEBCRYPTO_HASH: Record<HashName, string> = { sha1: "SHA-1", sha256: "SHA-256", sha512: "SHA-512" };

const encoder = new TextEncoder();

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** `parts` joined into one byte array (a signed message such as "<timestamp>." + raw body). */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Hex text (either case) as bytes; null when it is not hex. */
export function fromHex(text: string): Uint8Array | null {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return null;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Base64 (standard or URL-safe, padded or not) as bytes; null when it is not base64. */
export function fromBase64(text: string): Uint8Array | null {
  const standard = text.replace(/-/g, "+").replace(/_/g, "/");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(standard)) return null;
  try {
    const binary = atob(standard.padEnd(Math.ceil(standard.length / 4) * 4, "="));
    return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  } catch {
    return null;
  }
}

export async function hmac(hash: HashName, key: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
  const cryptoKey = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: WEBCRYPTO_HASH[hash] }, false, [
    "sign",
  ]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, message));
}

/** Constant time for equal lengths; the length of a MAC is public, so a length mismatch may answer early. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && crypto.subtle.timingSafeEqual(a, b);
}

/**
 * True when one of `candidates` (signatures the request carries, already decoded) is the MAC of `message` under
 * one of `keys` (two during a rotation). Every pair is compared, so timing does not say which key matched.
 */
export async function anySignatureMatches(
  hash: HashName,
  keys: Uint8Array[],
  message: Uint8Array,
  candidates: Uint8Array[],
): Promise<boolean> {
  let matched = false;
  for (const key of keys) {
    const expected = await hmac(hash, key, message);
    for (const candidate of candidates) matched = sameBytes(expected, candidate) || matched;
  }
  return matched;
}

export type TimestampProblem = "bad_timestamp" | "stale_timestamp" | "future_timestamp";

/** Checks a signed unix-seconds timestamp against the clock, `toleranceSeconds` either way. */
export function timestampProblem(value: string, toleranceSeconds: number, nowMs: number): TimestampProblem | null {
  if (!/^\d{1,12}$/.test(value.trim())) return "bad_timestamp";
  const skew = Number(value.trim()) - nowMs / 1000;
  if (skew < -toleranceSeconds) return "stale_timestamp";
  if (skew > toleranceSeconds) return "future_timestamp";
  return null;
}
