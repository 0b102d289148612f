import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import type { AppEnv, Env } from "./env";
import { unauthorized } from "./errors";

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

/** Session value `<expiry>.<hmac(operator token, label+expiry)>`: opaque, expiring, never the token. */
export async function createSession(env: Env, nowMs = Date.now()): Promise<string> {
  const expires = Math.floor(nowMs / 1000) + SESSION_SECONDS;
  return `${expires}.${await hmacHex(env.DLT_OPERATOR_TOKEN ?? "", `dlt-admin-session:${expires}`)}`;
}

export async function verifySession(env: Env, value: string | undefined, nowMs = Date.now()): Promise<boolean> {
  if (!value || !env.DLT_OPERATOR_TOKEN) return false;
  const match = /^(\d{1,12})\.([0-9a-f]{64})$/.exec(value);
  if (!match) return false;
  if (Number(match[1]) * 1000 < nowMs) return false;
  const expected = await hmacHex(env.DLT_OPERATOR_TOKEN, `dlt-admin-session:${match[1]}`);
  return safeEqual(match[2], expected);
}

/** CSRF token bound to the session: a form is only accepted with the token of the cookie that posts it. */
export async function csrfToken(env: Env, session: string): Promise<string> {
  return hmacHex(env.DLT_OPERATOR_TOKEN ?? "", `dlt-admin-csrf:${session}`);
}

export async function sessionFrom(c: Context<AppEnv>): Promise<string | null> {
  const value = getCookie(c, SESSION_COOKIE);
  return (await verifySession(c.env, value)) ? (value as string) : null;
}
