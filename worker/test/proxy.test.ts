/** The /dagster/* proxy never lets another origin drive the signed-in Dagster UI; the admin page's headers. */
import { describe, expect, it, vi } from "vitest";
import { signIn } from "./admin_helpers";
import { call, testEnv } from "./helpers";

type TestEnv = ReturnType<typeof testEnv>["env"];

const OWN_ORIGIN = "https://orchestrator.test";
const LAUNCH = `mutation { launchRun(executionParams: {selector: {repositoryLocationName: "dlt_platform",
  repositoryName: "__repository__", jobName: "__ASSET_JOB"}}) { __typename } }`;

/** Dagster behind the proxy: records what reaches it and answers 200. */
function dagsterSeen() {
  const seen: Request[] = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
    seen.push(new Request(input as RequestInfo, init));
    return Response.json({ data: {} });
  });
  return seen;
}

async function withCookie(env: TestEnv, method: string, path: string, headers: Record<string, string>, body?: string) {
  return call(env, method, path, { token: null, headers: { Cookie: await signIn(env), ...headers }, body });
}

async function refused(response: Response, status = 403) {
  expect(response.status).toBe(status);
  const body = (await response.json()) as { error: { code: string; message: string } };
  expect(body.error.message).not.toBe("");
  return body.error;
}

describe("/dagster/* proxy across sites", () => {
  it("refuses a mutation sent as GET (an <img> on another port), with a session or a bearer", async () => {
    const { env } = testEnv();
    const seen = dagsterSeen();
    const path = `/dagster/graphql?query=${encodeURIComponent(LAUNCH)}`;
    const viaImg = await withCookie(env, "GET", path, { "Sec-Fetch-Site": "same-site", "Sec-Fetch-Dest": "image" });
    expect((await refused(viaImg)).code).toBe("cross_site_refused");
    // Hidden behind a comment, or next to a harmless query, it is still a mutation.
    const commented = `/dagster/graphql?query=${encodeURIComponent(`# read only\n${LAUNCH}`)}`;
    await refused(await withCookie(env, "GET", commented, {}));
    const mixed = `/dagster/graphql?operationName=q&query=${encodeURIComponent(`query q { version } ${LAUNCH}`)}`;
    await refused(await withCookie(env, "GET", mixed, {}));
    await refused(await call(env, "GET", path));
    await refused(await call(env, "GET", `/dagster/graphql?query=${encodeURIComponent("mutation {")}`));
    expect(seen).toHaveLength(0);
  });

  it("refuses POSTs with the cookie from another origin, another site or no origin at all", async () => {
    const { env } = testEnv();
    const seen = dagsterSeen();
    const json = { "content-type": "application/json" };
    const body = JSON.stringify({ query: LAUNCH, variables: {} });
    const evil = await withCookie(env, "POST", "/dagster/graphql", { ...json, Origin: "https://evil.example" }, body);
    expect((await refused(evil)).message).toContain("https://evil.example");
    const otherPort = await withCookie(env, "POST", "/dagster/graphql", { ...json, Origin: "https://orchestrator.test:8443" }, body);
    await refused(otherPort);
    await refused(await withCookie(env, "POST", "/dagster/graphql", { ...json, "Sec-Fetch-Site": "same-site" }, body));
    await refused(await withCookie(env, "POST", "/dagster/graphql", json, body));
    // A cross-site form can only send form encodings or text/plain: refused even from our own origin.
    const textPlain = { "content-type": "text/plain", Origin: OWN_ORIGIN };
    expect((await refused(await withCookie(env, "POST", "/dagster/graphql", textPlain, body), 415)).code).toBe(
      "unsupported_media_type",
    );
    expect(seen).toHaveLength(0);
  });

  it("forwards the UI's own traffic: same-origin JSON POSTs, GET queries, assets and WebSockets", async () => {
    const { env } = testEnv();
    const seen = dagsterSeen();
    const body = JSON.stringify({ query: LAUNCH, variables: {} });
    const json = { "content-type": "application/json; charset=utf-8" };
    expect((await withCookie(env, "POST", "/dagster/graphql", { ...json, Origin: OWN_ORIGIN }, body)).status).toBe(200);
    expect((await withCookie(env, "POST", "/dagster/graphql", { ...json, "Sec-Fetch-Site": "same-origin" }, body)).status).toBe(200);
    const query = `/dagster/graphql?query=${encodeURIComponent("query { version }")}`;
    expect((await withCookie(env, "GET", query, { "Sec-Fetch-Site": "same-site" })).status).toBe(200);
    expect((await withCookie(env, "GET", "/dagster/static/js/main.js", { "Sec-Fetch-Site": "same-site" })).status).toBe(200);
    const ws = { Upgrade: "websocket", Connection: "Upgrade", Origin: OWN_ORIGIN };
    expect((await withCookie(env, "GET", "/dagster/graphql", ws)).status).toBe(200);
    // A bearer client (no browser, nothing to forge) needs no Origin.
    expect((await call(env, "POST", "/dagster/graphql", { body: { query: "query { version }" } })).status).toBe(200);
    expect(seen.map((r) => `${r.method} ${new URL(r.url).pathname}`)).toEqual([
      "POST /dagster/graphql",
      "POST /dagster/graphql",
      "GET /dagster/graphql",
      "GET /dagster/static/js/main.js",
      "GET /dagster/graphql",
      "POST /dagster/graphql",
    ]);
  });

  it("refuses a WebSocket opened by another origin", async () => {
    const { env } = testEnv();
    const seen = dagsterSeen();
    const ws = { Upgrade: "websocket", Connection: "Upgrade" };
    await refused(await withCookie(env, "GET", "/dagster/graphql", { ...ws, Origin: "http://127.0.0.1:9999" }));
    await refused(await withCookie(env, "GET", "/dagster/graphql", ws));
    expect(seen).toHaveLength(0);
  });
});

describe("/dagster/* proxy forwards only the request it checked", () => {
  const SET_NUX = "mutation%7BsetNuxSeen%7D";

  it("refuses a repeated `query` parameter (the guard would read one, Dagster the last)", async () => {
    const { env } = testEnv();
    const seen = dagsterSeen();
    const repeated = await withCookie(env, "GET", `/dagster/graphql?query=%7B__typename%7D&query=${SET_NUX}`, {});
    expect((await refused(repeated, 400)).message).toContain("query");
    // An encoded parameter name is the same parameter to both sides.
    await refused(await withCookie(env, "GET", `/dagster/graphql?query=%7B__typename%7D&%71uery=${SET_NUX}`, {}), 400);
    await refused(await call(env, "GET", `/dagster/graphql?query=%7B__typename%7D&query=${SET_NUX}`), 400);
    expect(seen).toHaveLength(0);
  });

  it("decides on the decoded path: an encoded /graphql is GraphQL too", async () => {
    const { env } = testEnv();
    const seen = dagsterSeen();
    await refused(await withCookie(env, "GET", `/dagster/graphq%6c?query=${SET_NUX}`, {}));
    // HEAD runs Dagster's GET handler (Starlette adds it); its refusal has no body to read.
    expect((await withCookie(env, "HEAD", `/dagster/%67raphql?query=${SET_NUX}`, {})).status).toBe(403);
    await refused(await call(env, "GET", `/dagster/graphq%6C/?query=${SET_NUX}`));
    const textPlain = { "content-type": "text/plain", Origin: OWN_ORIGIN };
    const body = JSON.stringify({ query: LAUNCH });
    const post = await withCookie(env, "POST", `/dagster/graphq%6c?query=${SET_NUX}`, textPlain, body);
    expect((await refused(post, 415)).code).toBe("unsupported_media_type");
    expect(seen).toHaveLength(0);
  });

  it("refuses paths that would decode differently twice, encoded slashes, a ? hidden in the path, bad escapes", async () => {
    const { env } = testEnv();
    const seen = dagsterSeen();
    for (const path of [
      "/dagster/graphq%256c",
      "/dagster/x%2Fgraphql",
      "/dagster/x%2fgraphql",
      "/dagster/x%5Cgraphql",
      "/dagster/graphql%3Fquery=mutation",
      "/dagster/%E0%A4%A",
    ]) {
      const error = await refused(await withCookie(env, "GET", `${path}?query=%7B__typename%7D`, {}), 400);
      expect(error.code, path).toBe("proxy_request_refused");
    }
    expect(seen).toHaveLength(0);
  });

  it("forwards the canonical request: decoded path, the one checked query, no credentials, redirects not followed", async () => {
    const { env } = testEnv();
    const seen = dagsterSeen();
    const query = "{ version }";
    const response = await withCookie(env, "GET", `/dagster/graphq%6c?query=${encodeURIComponent(query)}&variables=%7B%7D`, {
      Cookie: `${await signIn(env)}; dagster_ui_pref=1`,
    });
    expect(response.status).toBe(200);
    expect(seen).toHaveLength(1);
    const forwarded = new URL(seen[0].url);
    expect(forwarded.pathname).toBe("/dagster/graphql");
    expect(forwarded.searchParams.getAll("query")).toEqual([query]);
    expect(forwarded.searchParams.get("variables")).toBe("{}");
    expect(seen[0].redirect).toBe("manual");
    expect(seen[0].headers.get("Cookie")).toBe("dagster_ui_pref=1");
    expect(seen[0].headers.get("Authorization")).toBeNull();
  });
});

describe("admin page headers", () => {
  it("sends a CSP, X-Frame-Options DENY and a Referrer-Policy", async () => {
    const { env } = testEnv();
    const cookie = await signIn(env);
    for (const path of ["/admin", "/admin/runs/run_missing"]) {
      const response = await call(env, "GET", path, { token: null, headers: { Cookie: cookie } });
      const csp = response.headers.get("Content-Security-Policy") ?? "";
      expect(csp, path).toContain("default-src 'none'");
      expect(csp, path).toContain("frame-ancestors 'none'");
      expect(csp, path).toContain("form-action 'self'");
      expect(response.headers.get("X-Frame-Options"), path).toBe("DENY");
      expect(response.headers.get("Referrer-Policy"), path).toBe("no-referrer");
    }
  });
});
