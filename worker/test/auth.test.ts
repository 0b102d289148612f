import { describe, expect, it } from "vitest";
import { call, INTERNAL, json, OPERATOR, testEnv } from "./helpers";

const OPERATOR_ROUTES: [string, string][] = [
  ["GET", "/sources"],
  ["POST", "/sources"],
  ["GET", "/sources/some_source"],
  ["PUT", "/sources/some_source"],
  ["DELETE", "/sources/some_source"],
  ["GET", "/sources/some_source/versions"],
  ["POST", "/sources/some_source/enable"],
  ["POST", "/sources/some_source/disable"],
  ["POST", "/sources/some_source/runs"],
  ["GET", "/runs"],
  ["GET", "/runs/run_x"],
  ["POST", "/runs/run_x/retry"],
  ["POST", "/runs/run_x/cancel"],
  ["GET", "/dagster/"],
];

const INTERNAL_ROUTES: [string, string][] = [
  ["GET", "/internal/sources"],
  ["POST", "/internal/runs"],
  ["POST", "/internal/runs/run_x/status"],
  ["GET", "/internal/kv/ORDERS_KV/page"],
];

const ADMIN_ROUTES: [string, string][] = [
  ["GET", "/admin"],
  ["GET", "/admin/runs/run_x"],
  ["POST", "/admin/sources/some_source/runs"],
  ["POST", "/admin/sources/some_source/enable"],
  ["POST", "/admin/sources/some_source/disable"],
  ["POST", "/admin/logout"],
];

async function expectUnauthorized(method: string, path: string, token: string | null) {
  const { env, jobs } = testEnv();
  const response = await call(env, method, path, { token, body: method === "GET" ? undefined : {} });
  expect(response.status, `${method} ${path} with ${token ?? "no token"}`).toBe(401);
  expect(await json(response)).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
  expect(jobs.sent).toHaveLength(0);
}

describe("auth", () => {
  it.each(OPERATOR_ROUTES)("operator route %s %s refuses no token, a wrong one and the internal one", async (method, path) => {
    await expectUnauthorized(method, path, null);
    await expectUnauthorized(method, path, "wrong-token");
    await expectUnauthorized(method, path, INTERNAL);
  });

  it.each(INTERNAL_ROUTES)("internal route %s %s refuses no token, a wrong one and the operator one", async (method, path) => {
    await expectUnauthorized(method, path, null);
    await expectUnauthorized(method, path, "wrong-token");
    await expectUnauthorized(method, path, OPERATOR);
  });

  it.each(ADMIN_ROUTES)("admin route %s %s refuses requests without a session", async (method, path) => {
    await expectUnauthorized(method, path, null);
    await expectUnauthorized(method, path, INTERNAL);
  });

  it("answers a malformed Authorization header with the same JSON 401 and a Bearer challenge", async () => {
    const { env } = testEnv();
    for (const header of [`Basic ${btoa("a:b")}`, `Bearer ${OPERATOR} extra`, "Bearer", `Bearer\t${OPERATOR}`]) {
      const response = await call(env, "GET", "/sources", { token: null, headers: { Authorization: header } });
      expect(response.status, header).toBe(401);
      expect(response.headers.get("WWW-Authenticate"), header).toMatch(/^Bearer /);
      expect(await json(response)).toEqual({ error: { code: "unauthorized", message: "missing or invalid credentials" } });
    }
    const lowerCase = await call(env, "GET", "/sources", { token: null, headers: { Authorization: `bearer ${OPERATOR}` } });
    expect(lowerCase.status).toBe(200);
  });

  it("refuses everyone when the secret is not set", async () => {
    const { env } = testEnv({ DLT_OPERATOR_TOKEN: "" });
    const response = await call(env, "GET", "/sources", { token: "" });
    expect(response.status).toBe(401);
    const withAnything = await call(env, "GET", "/sources", { token: "x" });
    expect(withAnything.status).toBe(401);
  });

  it("answers unknown routes with a JSON 404", async () => {
    const { env } = testEnv();
    const response = await call(env, "GET", "/nope");
    expect(response.status).toBe(404);
    expect((await json(response)).error.code).toBe("not_found");
  });
});
