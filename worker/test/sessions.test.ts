/** Admin sessions: the server bounds their life, operators can sign out, rotating ADMIN_SESSION_KEY ends them all. */
import { describe, expect, it } from "vitest";
import { SESSION_SECONDS, sessionCookie } from "../src/auth";
import { adminStatusWith, csrfFrom, form, signIn } from "./admin_helpers";
import { call, OPERATOR, testEnv } from "./helpers";

const HOUR_MS = 3600 * 1000;

describe("admin sessions", () => {
  it("refuses a validly signed session whose expiry lies beyond 12 hours", async () => {
    const { env } = testEnv();
    expect(SESSION_SECONDS).toBe(12 * 3600);
    // Signed as if issued ten years from now: the signature holds, the expiry is not believable.
    const longLived = await sessionCookie(env, Date.now() + 10 * 365 * 24 * HOUR_MS);
    expect(await adminStatusWith(env, longLived)).toBe(401);
    // Issued an hour ago: still good for eleven hours; thirteen hours ago: over.
    expect(await adminStatusWith(env, await sessionCookie(env, Date.now() - HOUR_MS))).toBe(200);
    expect(await adminStatusWith(env, await sessionCookie(env, Date.now() - 13 * HOUR_MS))).toBe(401);
  });

  it("signs out with a CSRF-checked POST /admin/logout that clears the cookie", async () => {
    const { env } = testEnv();
    const cookie = await signIn(env);
    const csrf = await csrfFrom(env, cookie);
    const page = await (await call(env, "GET", "/admin", { token: null, headers: { Cookie: cookie } })).text();
    expect(page).toContain('action="/admin/logout"');

    expect((await form(env, "/admin/logout", cookie)).status).toBe(403);
    expect((await form(env, "/admin/logout", cookie, "0".repeat(64))).status).toBe(403);
    const out = await form(env, "/admin/logout", cookie, csrf);
    expect(out.status).toBe(200);
    const cleared = out.headers.get("Set-Cookie") ?? "";
    expect(cleared).toMatch(/^dlt_admin=;/);
    expect(cleared).toMatch(/Max-Age=0/);
    expect(cleared).toContain("Path=/");
    expect(await out.text()).toContain("Signed out");
  });

  it("ends the session on the server at sign-out: the same cookie, replayed, is refused; other sessions go on", async () => {
    const { env } = testEnv();
    const cookie = await signIn(env);
    const other = await signIn(env);
    expect(await adminStatusWith(env, cookie)).toBe(200);
    expect((await form(env, "/admin/logout", cookie, await csrfFrom(env, cookie))).status).toBe(200);
    // A copy of the cookie kept from before the sign-out (another tab, a stolen copy) no longer works.
    expect(await adminStatusWith(env, cookie)).toBe(401);
    expect((await call(env, "GET", "/dagster/", { token: null, headers: { Cookie: cookie } })).status).toBe(401);
    expect((await form(env, "/admin/logout", cookie, "0".repeat(64))).status).toBe(401);
    expect(await adminStatusWith(env, other)).toBe(200);
    // What D1 keeps of the ended session is a digest, never the cookie value.
    const { results } = await env.DB.prepare("SELECT * FROM admin_session_revocations").all<Record<string, unknown>>();
    const value = decodeURIComponent(cookie.slice(cookie.indexOf("=") + 1));
    expect(JSON.stringify(results)).not.toContain(value.split(".")[1]);
    expect(results.length).toBeGreaterThanOrEqual(1);
  });

  it("ends every session when ADMIN_SESSION_KEY is rotated, while the operator token keeps working", async () => {
    const { env } = testEnv();
    const cookie = await signIn(env);
    expect((await call(env, "GET", "/admin", { token: null, headers: { Cookie: cookie } })).status).toBe(200);
    const rotated = { ...env, ADMIN_SESSION_KEY: "a-new-session-key" };
    expect((await call(rotated, "GET", "/admin", { token: null, headers: { Cookie: cookie } })).status).toBe(401);
    expect((await call(rotated, "GET", "/dagster/", { token: null, headers: { Cookie: cookie } })).status).toBe(401);
    expect((await call(rotated, "GET", "/sources")).status).toBe(200);
    // A session is signed with the session key, not the operator token.
    const withTokenAsKey = { ...env, ADMIN_SESSION_KEY: OPERATOR };
    expect(await adminStatusWith(withTokenAsKey, cookie)).toBe(401);
  });

  it("turns sign-in off, with a clear error, until ADMIN_SESSION_KEY is set", async () => {
    const { env } = testEnv({ ADMIN_SESSION_KEY: "" });
    const response = await call(env, "GET", `/admin?token=${OPERATOR}`, { token: null });
    expect(response.status).toBe(503);
    expect(((await response.json()) as any).error.message).toContain("ADMIN_SESSION_KEY");
    expect(response.headers.get("Set-Cookie")).toBeNull();
  });
});
