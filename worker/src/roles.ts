/**
 * Token roles of the operator API and /mcp: the operator token (DLT_OPERATOR_TOKEN) may do everything, the optional
 * read-only token (DLT_READONLY_TOKEN) may list and read but change nothing. The admin page gives sessions the
 * role of the token they were opened with (routes/admin.ts).
 */
import type { Context, MiddlewareHandler } from "hono";
import { safeEqual } from "./auth";
import type { AppEnv } from "./env";
import { ApiError } from "./errors";

export type Role = "operator" | "reader";

// RFC 6750's b64token, as Hono's bearer middleware accepts it.
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*)$/i;

/** The role `token` carries: compared in constant time with each configured token; null when it matches none. */
export async function tokenRole(env: AppEnv["Bindings"], token: string): Promise<Role | null> {
  // Both comparisons always run, so the answer's timing does not tell which token was close.
  const [operator, reader] = await Promise.all([
    env.DLT_OPERATOR_TOKEN ? safeEqual(token, env.DLT_OPERATOR_TOKEN) : Promise.resolve(false),
    env.DLT_READONLY_TOKEN ? safeEqual(token, env.DLT_READONLY_TOKEN) : Promise.resolve(false),
  ]);
  return operator ? "operator" : reader ? "reader" : null;
}

/** The role of the request's `Authorization: Bearer` token; null without one or with an unknown one. */
export async function bearerRole(c: Context<AppEnv>): Promise<Role | null> {
  const match = BEARER.exec(c.req.header("Authorization") ?? "");
  return match ? tokenRole(c.env, match[1]) : null;
}

/** The refusal of a change asked with the read-only token. */
export const readOnly = () => new ApiError(403, "read_only", "the read-only token may list and read, not change anything");

function requireRole(allowed: readonly Role[]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const role = await bearerRole(c);
    if (!role) {
      // RFC 6750's challenge, as the other bearer routes answer (auth.ts).
      const challenge = c.req.header("Authorization") ? 'Bearer error="invalid_token"' : 'Bearer realm=""';
      throw new ApiError(401, "unauthorized", "missing or invalid credentials", undefined, { "WWW-Authenticate": challenge });
    }
    if (!allowed.includes(role)) throw readOnly();
    await next();
  };
}

/** Routes that read: the operator or the read-only token. */
export const requireReader = requireRole(["operator", "reader"]);
/** Routes that change anything: the operator token; the read-only token gets 403 read_only. */
export const requireWriter = requireRole(["operator"]);
