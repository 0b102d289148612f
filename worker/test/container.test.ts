/**
 * Without DAGSTER_URL the Worker reaches Dagster through the container's Durable Object (getContainer().fetch):
 * the DAGSTER binding here is a real Durable Object namespace whose object plays the container.
 */
import { describe, expect, it } from "vitest";
import { deliverBatch, call, createSource, queueMessage, json, OPERATOR, testEnv } from "./helpers";

function containerEnv() {
  return testEnv({ DAGSTER_URL: "" });
}

describe("Dagster through the container", () => {
  it("proxies /dagster/* to the one container object, path and query kept, operator credentials dropped", async () => {
    const { env } = containerEnv();
    const response = await call(env, "GET", "/dagster/runs?status=FAILURE", {
      headers: { Cookie: "dlt_admin=secret; dagster_ui=1" },
    });
    expect(response.status).toBe(200);
    const seen = await json(response);
    expect(seen).toMatchObject({
      method: "GET",
      url: "http://container/dagster/runs?status=FAILURE",
      authorization: null,
      cookie: "dagster_ui=1",
    });
    // Every request goes to the same object: one container runs Dagster.
    const again = await json(await call(env, "GET", "/dagster/"));
    expect(again.object).toBe(seen.object);
    expect(JSON.stringify(seen)).not.toContain(OPERATOR);
  });

  it("launches a queued run with GraphQL sent to the container, never to a URL", async () => {
    const { env } = containerEnv();
    const sourceId = await createSource(env);
    const { run_id } = await json(await call(env, "POST", `/sources/${sourceId}/runs`));
    const { message, state } = queueMessage({ run_id });
    await deliverBatch("dlt-jobs-v2", [message], env);
    expect(state).toMatchObject({ acked: true, retried: false });
    const run = await json(await call(env, "GET", `/runs/${run_id}`));
    expect(run.status).toBe("launched");
    expect(run.dagster_run_id).toMatch(/^dg-container-[0-9a-f]{8}$/);
    // The DAGSTER_URL branch would have gone through fetch(), which setup.ts stubs for every test.
    expect(globalThis.fetch).not.toHaveBeenCalled();
    const seen: { url: string; body: string }[] = await json(await call(env, "GET", "/dagster/__double/seen"));
    const launch = seen.find((request) => request.body.includes("launchRun(") && request.body.includes(run_id));
    expect(launch?.url).toBe("http://container/dagster/graphql");
  });
});
