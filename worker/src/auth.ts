import type { Context, MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { generateSignedCookie, getSignedCookie } from "hono/cookie";
import { HTTPException } from "hono/http-exception";
import type { AppEnv, Env } from "./env";
import { ApiError, errorBody } from "./errors";
import type { Role } from "./roles";

const encoder = new TextEncoder();

async function sha256(value: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", encoder.encode(value));
}

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Constant-time string comparison: both sides are hashed first so lengths never leak. */
export async function safeEqual(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([sha256(a), sha256(b)]);
  return crypto.subtle.timingSafeEqual(da, db);
}

// --- bearer tokens -------------------------------------------------------------------------

// Every refusal is the API's 401 (a malformed header too: clients need not tell the cases apart).
const refusal = { message: (c: Context) => c.json(errorBody("unauthorized", "missing or invalid credentials"), 401) };

/** `Authorization: Bearer <secret>`, compared in constant time; an unset secret refuses everyone. */
function requireBearer(secret: (env: Env) => string | undefined): MiddlewareHandler<AppEnv> {
  return bearerAuth<AppEnv>({
    verifyToken: async (token, c) => {
      const expected = secret(c.env);
      return Boolean(expected) && (await safeEqual(token, expected as string));
    },
    noAuthenticationHeader: refusal,
    invalidAuthenticationHeader: refusal,
    invalidToken: refusal,
  });
}

export const requireOperator = requireBearer((env) => env.DLT_OPERATOR_TOKEN);
export const requireInternal = requireBearer((env) => env.DLT_INTERNAL_TOKEN);

/** Whether `middleware` lets the request through, without answering it (routes open to two kinds of credentials). */
export async function passes(middleware: MiddlewareHandler<AppEnv>, c: Context<AppEnv>): Promise<boolean> {
  let passed = false;
  try {
    await middleware(c, async () => {
      passed = true;
    });
  } catch (err) {
    if (!(err instanceof HTTPException)) throw err;
  }
  return passed;
}

// --- admin session -------------------------------------------------------------------------

export const SESSION_COOKIE = "dlt_admin";
export const SESSION_SECONDS = 12 * 60 * 60;

/** Clock difference tolerated between the Worker instances that issue and check a session. */
const CLOCK_SKEW_SECONDS = 60;

/**
 * What session cookies are signed with: ADMIN_SESSION_KEY, bound to the token the session was issued for (the
 * operator's or the read-only one, DLT_READONLY_TOKEN: a cookie of one role never passes as the other; rotating
 * the key or that token ends its sessions; rotating the key leaves the API tokens alone). Null until both are
 * set: sign-in answers 503.
 */
async function sessionSecret(env: Env, role: Role = "operator"): Promise<string | null> {
  const key = env.ADMIN_SESSION_KEY?.trim();
  const token = role === "operator" ? env.DLT_OPERATOR_TOKEN : env.DLT_READONLY_TOKEN;
  if (!key || !token) return null;
  const label = role === "operator" ? "dlt-admin-session" : "dlt-admin-session-readonly";
  return `${label}\n${key}\n${hex(await sha256(token))}`;
}

/**
 * The Set-Cookie value of a new session: signed `<expiry>.<nonce>` (Hono's signed cookie, HMAC-SHA256), opaque,
 * expiring, never the token.
 */
export async function sessionCookie(env: Env, nowMs = Date.now(), role: Role = "operator"): Promise<string> {
  const secret = await sessionSecret(env, role);
  if (!secret) throw new ApiError(503, "admin_sessions_off", "admin sign-in needs the ADMIN_SESSION_KEY secret");
  const expires = Math.floor(nowMs / 1000) + SESSION_SECONDS;
  return generateSignedCookie(SESSION_COOKIE, `${expires}.${crypto.randomUUID()}`, secret, {
    httpOnly: true,
    secure: true,
    sameSite: "Strict",
    path: "/",
    maxAge: SESSION_SECONDS,
  });
}

/** What D1 keeps of an ended session: a digest, so the table never holds a usable cookie value. */
async function sessionDigest(session: string): Promise<string> {
  return hex(await sha256(`dlt-admin-session-revocation\n${session}`));
}

/**
 * The session of the request: a cookie signed with the current secret of `role` whose expiry lies in the next
 * SESSION_SECONDS, whatever it claims, and that was not ended by a sign-out; null otherwise.
 */
export async function sessionFrom(c: Context<AppEnv>, nowMs = Date.now(), role: Role = "operator"): Promise<string | null> {
  const secret = await sessionSecret(c.env, role);
  if (!secret) return null;
  const value = await getSignedCookie(c, secret, SESSION_COOKIE);
  const match = typeof value === "string" ? /^(\d{1,12})\.[0-9a-f-]{36}$/.exec(value) : null;
  if (!match) return null;
  const expiresMs = Number(match[1]) * 1000;
  if (expiresMs < nowMs || expiresMs > nowMs + (SESSION_SECONDS + CLOCK_SKEW_SECONDS) * 1000) return null;
  const revoked = await c.env.DB.prepare("SELECT 1 AS revoked FROM admin_session_revocations WHERE session_digest = ?")
    .bind(await sessionDigest(value as string))
    .first();
  return revoked ? null : (value as string);
}

/** The admin session of the request with its role: an operator session, else a read-only one; null for neither. */
export async function sessionWithRole(c: Context<AppEnv>): Promise<{ session: string; role: Role } | null> {
  for (const role of ["operator", "reader"] as const) {
    const session = await sessionFrom(c, Date.now(), role);
    if (session) return { session, role };
  }
  return null;
}

/**
 * Ends `session` on the server (sign-out): refused from now on, whoever holds a copy of the cookie. Rows of
 * sessions that have expired anyway are removed in the same batch.
 */
export async function revokeSession(env: Env, session: string, nowMs = Date.now()): Promise<void> {
  const expires = Number(session.split(".")[0]);
  await env.DB.batch([
    env.DB.prepare("INSERT OR IGNORE INTO admin_session_revocations (session_digest, expires_at) VALUES (?, ?)").bind(
      await sessionDigest(session),
      expires,
    ),
    env.DB.prepare("DELETE FROM admin_session_revocations WHERE expires_at < ?").bind(Math.floor(nowMs / 1000)),
  ]);
}

/** CSRF token bound to the session: a form is only accepted with the token of the cookie that posts it. */
export async function csrfToken(env: Env, session: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(env.ADMIN_SESSION_KEY?.trim() ?? ""),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return hex(await crypto.subtle.sign("HMAC", key, encoder.encode(`dlt-admin-csrf:${session}`)));
}
