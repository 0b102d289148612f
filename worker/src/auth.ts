import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import type { AppEnv, Env } from "./env";
import { ApiError, unauthorized } from "./errors";

const encoder = new TextEncoder();

async function sha256(value: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", encoder.encode(value));
}

/** Constant-time string comparison: both sides are hashed first so lengths never leak. */
export async function safeEqual(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([sha256(a), sha256(b)]);
  return crypto.subtle.timingSafeEqual(da, db);
}

function bearerToken(header: string | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match ? match[1] : null;
}

/** True when the request carries `Authorization: Bearer <expected>`; an unset secret refuses everyone. */
export async function hasBearer(header: string | undefined, expected: string | undefined): Promise<boolean> {
  const token = bearerToken(header);
  if (!token || !expected) return false;
  return safeEqual(token, expected);
}

export const requireOperator: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!(await hasBearer(c.req.header("Authorization"), c.env.DLT_OPERATOR_TOKEN))) throw unauthorized();
  await next();
};

export const requireInternal: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!(await hasBearer(c.req.header("Authorization"), c.env.DLT_INTERNAL_TOKEN))) throw unauthorized();
  await next();
};

// --- admin session -------------------------------------------------------------------------

export const SESSION_COOKIE = "dlt_admin";
export const SESSION_SECONDS = 12 * 60 * 60;

async function hmacHex(key: string, message: string): Promise<string> {
  const cryptoKey = await crypto.subtle.importKey("raw", encoder.encode(key), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const sig = await crypto.subtle.sign("HMAC", cryptoKey, encoder.encode(message));
  return [...new Uint8Array(sig)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Clock difference tolerated between the Worker instances that issue and check a session. */
const CLOCK_SKEW_SECONDS = 60;

/** The session signing key; sessions are off (sign-in answers 503) until the secret is set. */
function sessionKey(env: Env): string | null {
  return env.ADMIN_SESSION_KEY?.trim() || null;
}

/** What a session signs: its expiry and the operator token it was issued for (rotating the token ends it too). */
async function sessionMessage(env: Env, expires: string): Promise<string> {
  const token = [...new Uint8Array(await sha256(env.DLT_OPERATOR_TOKEN ?? ""))].map((b) => b.toString(16).padStart(2, "0"));
  return `dlt-admin-session:${expires}:${token.join("")}`;
}

/**
 * Session value `<expiry>.<hmac(ADMIN_SESSION_KEY, expiry + operator token hash)>`: opaque, expiring, never the
 * token. Rotating ADMIN_SESSION_KEY signs every operator out without touching the API token.
 */
export async function createSession(env: Env, nowMs = Date.now()): Promise<string> {
  const key = sessionKey(env);
  if (!key) throw new ApiError(503, "admin_sessions_off", "admin sign-in needs the ADMIN_SESSION_KEY secret");
  const expires = String(Math.floor(nowMs / 1000) + SESSION_SECONDS);
  return `${expires}.${await hmacHex(key, await sessionMessage(env, expires))}`;
}

/** A session signed with the current key whose expiry lies in the next SESSION_SECONDS, whatever it claims. */
export async function verifySession(env: Env, value: string | undefined, nowMs = Date.now()): Promise<boolean> {
  const key = sessionKey(env);
  if (!value || !key || !env.DLT_OPERATOR_TOKEN) return false;
  const match = /^(\d{1,12})\.([0-9a-f]{64})$/.exec(value);
  if (!match) return false;
  const expiresMs = Number(match[1]) * 1000;
  if (expiresMs < nowMs || expiresMs > nowMs + (SESSION_SECONDS + CLOCK_SKEW_SECONDS) * 1000) return false;
  const expected = await hmacHex(key, await sessionMessage(env, match[1]));
  return safeEqual(match[2], expected);
}

/** CSRF token bound to the session: a form is only accepted with the token of the cookie that posts it. */
export async function csrfToken(env: Env, session: string): Promise<string> {
  return hmacHex(sessionKey(env) ?? "", `dlt-admin-csrf:${session}`);
}

export async function sessionFrom(c: Context<AppEnv>): Promise<string | null> {
  const value = getCookie(c, SESSION_COOKIE);
  return (await verifySession(c.env, value)) ? (value as string) : null;
}
