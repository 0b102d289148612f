/** GET /health: open status for anyone; with the operator token, what the deployment lacks, by name only. */
import { describe, expect, it } from "vitest";
import { containerEnv } from "../src/container";
import { call, json, testEnv } from "./helpers";

const COMPLETE = {
  DLT_ORCHESTRATOR_URL: "https://dlt-orchestrator.example.workers.dev",
  DAGSTER_PG_URL: "postgresql://dagster:pg-secret-value@db.example/dagster",
};

describe("health", () => {
  it("stays as it was without the operator token: no word on configuration", async () => {
    const { env } = testEnv({ DAGSTER_PG_URL: undefined } as never);
    const response = await call(env, "GET", "/health", { token: null });
    expect(response.status).toBe(200);
    expect(await json(response)).toEqual({ ok: true, d1: "ok", version: "0.1.0" });
    const wrong = await call(env, "GET", "/health", { token: "not-the-operator-token" });
    expect(await json(wrong)).toEqual({ ok: true, d1: "ok", version: "0.1.0" });
  });

  it("names missing required secrets, SOURCE_SECRETS and bindings with the token, never a value", async () => {
    const { env } = testEnv({
      ADMIN_SESSION_KEY: "",
      DLT_ORCHESTRATOR_URL: COMPLETE.DLT_ORCHESTRATOR_URL,
      SOURCE_SECRETS: "GITHUB_TOKEN,STRIPE_SECRET_KEY",
      STRIPE_SECRET_KEY: "sk_live_value",
      RAW_STAGING: undefined,
    } as never);
    const response = await call(env, "GET", "/health");
    expect(response.status).toBe(503);
    const body = await json(response);
    expect(body).toEqual({
      ok: false,
      d1: "ok",
      version: "0.1.0",
      missing: { secrets: ["ADMIN_SESSION_KEY", "DAGSTER_PG_URL", "GITHUB_TOKEN"], bindings: ["RAW_STAGING"] },
    });
    const text = JSON.stringify(body);
    for (const value of ["sk_live_value", COMPLETE.DLT_ORCHESTRATOR_URL, "test-operator-token"]) {
      expect(text).not.toContain(value);
    }
  });

  it("is ok with everything set; DAGSTER without DAGSTER_URL and RUNNER without its host are missing", async () => {
    const { env } = testEnv(COMPLETE as never);
    expect(await json(await call(env, "GET", "/health"))).toEqual({
      ok: true,
      d1: "ok",
      version: "0.1.0",
      missing: { secrets: [], bindings: [] },
    });
    const { env: noDagster } = testEnv({ ...COMPLETE, DAGSTER: undefined, DAGSTER_URL: "" } as never);
    expect((await json(await call(noDagster, "GET", "/health"))).missing.bindings).toEqual(["DAGSTER"]);
    const { env: noRunner } = testEnv({ ...COMPLETE, RUNNER: undefined, RUN_CONTAINER_HOST_URL: "" } as never);
    expect((await json(await call(noRunner, "GET", "/health"))).missing.bindings).toEqual(["RUNNER"]);
  });

  it("lets a throw-away deployment (DLT_PLATFORM_ALLOW_EMBEDDED=1) run without Postgres or the Worker URL", async () => {
    const { env } = testEnv({ DLT_PLATFORM_ALLOW_EMBEDDED: "1" } as never);
    expect((await json(await call(env, "GET", "/health"))).missing).toEqual({ secrets: [], bindings: [] });
  });
});

describe("containerEnv", () => {
  it("forwards the declared variables and the SOURCE_SECRETS names, nothing else", () => {
    const { env } = testEnv({
      ...COMPLETE,
      DAGSTER_ALLOWED_HOSTS: "dlt.example.com",
      SOURCE_SECRETS: "GITHUB_TOKEN",
      GITHUB_TOKEN: "ghp_value",
      ALERT_WEBHOOK_URL: "https://hooks.example/alert",
    } as never);
    const forwarded = containerEnv(env);
    expect(forwarded).toMatchObject({ ...COMPLETE, DAGSTER_ALLOWED_HOSTS: "dlt.example.com", GITHUB_TOKEN: "ghp_value" });
    for (const own of ["DLT_OPERATOR_TOKEN", "ADMIN_SESSION_KEY", "ALERT_WEBHOOK_URL", "SOURCE_SECRETS", "DAGSTER_URL"]) {
      expect(forwarded).not.toHaveProperty(own);
    }
  });
});

describe("rest_api secrets named by DLT_SOURCE_SECRETS", () => {
  it("forwards DLT_SOURCE_SECRETS and each secret it names; health names the unset ones", async () => {
    const scopes = JSON.stringify({ GITHUB_TOKEN: ["api.github.com"], LINEAR_KEY: ["api.linear.app"] });
    const { env } = testEnv({ ...COMPLETE, DLT_SOURCE_SECRETS: scopes, GITHUB_TOKEN: "ghp_value" } as never);
    expect(containerEnv(env)).toMatchObject({ DLT_SOURCE_SECRETS: scopes, GITHUB_TOKEN: "ghp_value" });
    expect((await json(await call(env, "GET", "/health"))).missing.secrets).toEqual(["LINEAR_KEY"]);
  });
});
