import { describe, expect, it, vi } from "vitest";
import { sessionCookie } from "../src/auth";
import { adminStatusWith, csrfFrom, form, signIn } from "./admin_helpers";
import { call, createSource, INTERNAL, json, OPERATOR, testEnv, uniqueId } from "./helpers";

describe("admin", () => {
  it("turns ?token= into a secure session cookie and drops the token from the URL", async () => {
    const { env } = testEnv();
    const response = await call(env, "GET", `/admin?token=${OPERATOR}`, { token: null });
    expect(response.status).toBe(303);
    expect(response.headers.get("Location")).toBe("/admin");
    const cookie = response.headers.get("Set-Cookie") ?? "";
    expect(cookie).toMatch(/^dlt_admin=[^;]+;/);
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("Secure");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).toContain("Path=/");
    expect(cookie).not.toContain(OPERATOR);
  });

  it("refreshes every 5 seconds while a run is in flight and stops refreshing a finished run", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env, uniqueId());
    const { run_id } = await json(await call(env, "POST", `/sources/${sourceId}/runs`));
    const cookie = await signIn(env);
    const list = await (await call(env, "GET", "/admin", { token: null, headers: { Cookie: cookie } })).text();
    expect(list).toContain('<meta http-equiv="refresh" content="5" />');
    const open = await (await call(env, "GET", `/admin/runs/${run_id}`, { token: null, headers: { Cookie: cookie } })).text();
    expect(open).toContain('http-equiv="refresh"');
    const done = await call(env, "POST", `/internal/runs/${run_id}/status`, { token: INTERNAL, body: { status: "succeeded" } });
    expect(done.status).toBe(200);
    const finished = await (await call(env, "GET", `/admin/runs/${run_id}`, { token: null, headers: { Cookie: cookie } })).text();
    expect(finished).not.toContain('http-equiv="refresh"');
  });

  it("refuses a wrong token, a forged cookie and an expired session", async () => {
    const { env } = testEnv();
    expect((await call(env, "GET", "/admin?token=wrong", { token: null })).status).toBe(401);
    const forged = await call(env, "GET", "/admin", { token: null, headers: { Cookie: `dlt_admin=${OPERATOR}` } });
    expect(forged.status).toBe(401);
    const old = await sessionCookie(env, Date.now() - 13 * 3600 * 1000);
    expect(await adminStatusWith(env, old)).toBe(401);
    expect(await adminStatusWith(env, await sessionCookie(env))).toBe(200);
    expect(await adminStatusWith({ ...env, DLT_OPERATOR_TOKEN: "rotated" }, await sessionCookie(env))).toBe(401);
    // A signed value changed after signing (a later expiry) is refused.
    const [, signed] = /^dlt_admin=([^;]*)/.exec(await sessionCookie(env)) ?? [];
    const [expires, ...rest] = decodeURIComponent(signed).split(".");
    const later = [String(Number(expires) + 60), ...rest].join(".");
    expect(await adminStatusWith(env, `dlt_admin=${encodeURIComponent(later)}`)).toBe(401);
    expect(await adminStatusWith(env, `dlt_admin=${signed}`)).toBe(200);
  });

  it("renders sources and runs, escaped, with a link to the Dagster UI", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env, uniqueId(), { description: "<script>alert(1)</script>" });
    const { run_id } = await json(await call(env, "POST", `/sources/${sourceId}/runs`));
    const cookie = await signIn(env);
    const response = await call(env, "GET", "/admin", { token: null, headers: { Cookie: cookie } });
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(page).toContain(sourceId);
    expect(page).toContain(run_id);
    expect(page).toContain('href="/dagster/"');
    expect(page).not.toContain("<script>alert(1)</script>");
    expect(page).toContain("&lt;script&gt;");

    const runPage = await (await call(env, "GET", `/admin/runs/${run_id}`, { token: null, headers: { Cookie: cookie } })).text();
    expect(runPage).toContain("queued");
    expect(runPage).toContain("Events");
  });

  it("starts runs and toggles sources through CSRF-checked forms", async () => {
    const { env, jobs } = testEnv();
    const sourceId = await createSource(env);
    const cookie = await signIn(env);
    const csrf = await csrfFrom(env, cookie);

    expect((await form(env, `/admin/sources/${sourceId}/runs`, cookie)).status).toBe(403);
    expect((await form(env, `/admin/sources/${sourceId}/runs`, cookie, "0".repeat(64))).status).toBe(403);
    expect(jobs.sent).toHaveLength(0);

    const run = await form(env, `/admin/sources/${sourceId}/runs`, cookie, csrf);
    expect(run.status).toBe(303);
    expect(jobs.sent).toHaveLength(1);
    const created = await json(await call(env, "GET", `/runs/${jobs.sent[0].run_id}`));
    expect(created).toMatchObject({ source_id: sourceId, trigger: "admin", status: "queued" });

    expect((await form(env, `/admin/sources/${sourceId}/disable`, cookie, csrf)).status).toBe(303);
    expect((await json(await call(env, "GET", `/sources/${sourceId}`))).enabled).toBe(false);
    const refused = await form(env, `/admin/sources/${sourceId}/runs`, cookie, csrf);
    expect(refused.status).toBe(409);
    expect((await form(env, `/admin/sources/${sourceId}/enable`, cookie, csrf)).status).toBe(303);
    const versions = (await json(await call(env, "GET", `/sources/${sourceId}/versions`))).versions;
    expect(versions.slice(0, 2).map((v: any) => [v.change, v.changed_by, v.definition.enabled])).toEqual([
      ["enable", "admin", true],
      ["disable", "admin", false],
    ]);
  });

  it("shows a failed run's message, escaped, with a CSRF-checked Retry that names the failed run", async () => {
    const { env, jobs } = testEnv();
    const sourceId = await createSource(env);
    const { run_id: failedId } = await json(await call(env, "POST", `/sources/${sourceId}/runs`));
    const reason = "HTTP 500 from <img src=x onerror=alert(1)> & more";
    const failed = await call(env, "POST", `/internal/runs/${failedId}/status`, {
      token: INTERNAL,
      body: { status: "failed", message: reason },
    });
    expect(failed.status).toBe(200);
    const cookie = await signIn(env);
    for (const path of ["/admin", `/admin/runs/${failedId}`]) {
      const page = await (await call(env, "GET", path, { token: null, headers: { Cookie: cookie } })).text();
      expect(page, path).toContain("HTTP 500 from &lt;img src=x onerror=alert(1)&gt; &amp; more");
      expect(page, path).not.toContain("<img src=x");
      expect(page, path).toContain(`action="/admin/runs/${failedId}/retry"`);
    }
    const retryPath = `/admin/runs/${failedId}/retry`;
    expect((await form(env, retryPath, cookie)).status).toBe(403);
    expect((await form(env, retryPath, cookie, "0".repeat(64))).status).toBe(403);
    const sentBefore = jobs.sent.length;
    const csrf = await csrfFrom(env, cookie);
    const retried = await form(env, retryPath, cookie, csrf);
    expect(retried.status).toBe(303);
    expect(jobs.sent).toHaveLength(sentBefore + 1);
    const retry = await json(await call(env, "GET", `/runs/${jobs.sent[sentBefore].run_id}`));
    expect(retry).toMatchObject({ source_id: sourceId, trigger: "retry", retry_of: failedId, status: "queued" });
    // A second click retries the same failed run: the same retry, not another run.
    expect((await form(env, retryPath, cookie, csrf)).status).toBe(303);
    expect(jobs.sent).toHaveLength(sentBefore + 1);
    // Only finished runs are retried, and the button is only offered for failed ones.
    expect((await form(env, `/admin/runs/${retry.run_id}/retry`, cookie, csrf)).status).toBe(409);
    const page = await (await call(env, "GET", "/admin", { token: null, headers: { Cookie: cookie } })).text();
    expect(page).not.toContain(`action="/admin/runs/${retry.run_id}/retry"`);
  });

  it("proxies /dagster/* for a signed-in operator, keeping the path and dropping credentials", async () => {
    const { env } = testEnv();
    const cookie = await signIn(env);
    const seen: Request[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
      seen.push(new Request(input as RequestInfo, init));
      return new Response("<html>dagster</html>", { headers: { "content-type": "text/html" } });
    });
    const viaCookie = await call(env, "GET", "/dagster/runs?x=1", {
      token: null,
      headers: { Cookie: `${cookie}; other=1` },
    });
    expect(viaCookie.status).toBe(200);
    expect(await viaCookie.text()).toContain("dagster");
    const viaBearer = await call(env, "GET", "/dagster/graphql", { token: OPERATOR });
    expect(viaBearer.status).toBe(200);
    expect(seen.map((r) => r.url)).toEqual(["http://dagster.test/dagster/runs?x=1", "http://dagster.test/dagster/graphql"]);
    expect(seen[0].headers.get("Cookie")).toBe("other=1");
    expect(seen[1].headers.get("Authorization")).toBeNull();

    expect((await call(env, "GET", "/dagster/", { token: INTERNAL })).status).toBe(401);
    expect(seen).toHaveLength(2);
  });

  it("passes WebSocket upgrade requests through to Dagster", async () => {
    const { env } = testEnv();
    const seen: Request[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
      seen.push(new Request(input as RequestInfo, init));
      return new Response("upgraded", { status: 200 });
    });
    await call(env, "GET", "/dagster/graphql", { headers: { Upgrade: "websocket", Connection: "Upgrade" } });
    expect(seen[0].headers.get("Upgrade")).toBe("websocket");
  });
});
