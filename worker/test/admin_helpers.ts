/** Admin-page helpers: sign in through ?token=, read the page's CSRF token, post a form with the cookie. */
import { expect } from "vitest";
import { call, OPERATOR, testEnv } from "./helpers";

type TestEnv = ReturnType<typeof testEnv>["env"];

/** The `dlt_admin=<value>` cookie pair a sign-in sets. */
export async function signIn(env: TestEnv): Promise<string> {
  const response = await call(env, "GET", `/admin?token=${OPERATOR}`, { token: null });
  expect(response.status).toBe(303);
  const cookie = response.headers.get("Set-Cookie") ?? "";
  return cookie.split(";")[0];
}

export async function csrfFrom(env: TestEnv, cookie: string): Promise<string> {
  const page = await (await call(env, "GET", "/admin", { token: null, headers: { Cookie: cookie } })).text();
  const match = /name="csrf" value="([0-9a-f]+)"/.exec(page);
  if (!match) throw new Error("no CSRF token on the page");
  return match[1];
}

export function form(env: TestEnv, path: string, cookie: string, csrf?: string) {
  return call(env, "POST", path, {
    token: null,
    headers: { Cookie: cookie, "content-type": "application/x-www-form-urlencoded" },
    body: csrf === undefined ? "" : `csrf=${encodeURIComponent(csrf)}`,
  });
}

/** The status GET /admin answers with the session a Set-Cookie value (auth.sessionCookie) carries. */
export async function adminStatusWith(env: TestEnv, setCookie: string): Promise<number> {
  const response = await call(env, "GET", "/admin", { token: null, headers: { Cookie: setCookie.split(";")[0] } });
  return response.status;
}
