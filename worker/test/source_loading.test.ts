/** A run launches once Dagster has loaded its source's current version; definitions Dagster cannot build are
 * reported back and shown, and their runs fail with the reason instead of retrying. */
import { describe, expect, it } from "vitest";
import { deliverBatch, call, createSource, dagsterDouble, definition, queueMessage, INTERNAL, json, OPERATOR, testEnv } from "./helpers";

type TestEnv = ReturnType<typeof testEnv>["env"];

const notFound = { assetNodeOrError: { __typename: "AssetNotFoundError", message: "not found" } };
const atVersion = (version: number) => ({
  assetNodeOrError: {
    __typename: "AssetNode",
    metadataEntries: [
      { label: "source_id" },
      { label: "dlt_platform/source_version", intValue: version },
    ],
  },
});
let launches = 0;
const launched = () => ({
  launchRun: { __typename: "LaunchRunSuccess", run: { runId: `dg-loading-${++launches}`, status: "QUEUED" } },
});
const reloaded = { reloadRepositoryLocation: { __typename: "WorkspaceLocationEntry" } };

async function requestRun(env: TestEnv, sourceId: string) {
  const { run_id } = await json(await call(env, "POST", `/sources/${sourceId}/runs`, { body: {} }));
  return run_id as string;
}

async function deliver(env: TestEnv, runId: string) {
  const { message, state } = queueMessage({ run_id: runId });
  await deliverBatch("dlt-jobs-v2", [message], env);
  return state;
}

function events(run: { events: { status: string; message: string | null }[] }) {
  return run.events.map((e) => `${e.status}: ${e.message}`);
}

describe("launching a new or changed source", () => {
  it("waits for the reload that creating the source started, then launches once without a failed launch", async () => {
    const { env } = testEnv({ LOAD_WAIT_SECONDS: "20" });
    const sourceId = await createSource(env);
    const runId = await requestRun(env, sourceId);
    let polls = 0;
    const dagster = dagsterDouble(
      (c) => (c.query.includes("launchRun") ? launched() : reloaded),
      { assetNode: () => (++polls < 3 ? notFound : atVersion(1)) },
    );
    const state = await deliver(env, runId);

    expect(state).toMatchObject({ acked: true, retried: false });
    // The reload POST /sources started is the one waited for: the consumer asks for none itself.
    expect(dagster.calls.map((c) => c.query.match(/^\w+ (\w+)/)?.[1])).toEqual(["LaunchRun"]);
    expect(dagster.assetQueries).toHaveLength(3);
    expect(dagster.assetQueries[0].variables).toEqual({ assetKey: { path: ["source_cloudflare", `${sourceId}_t`] } });
    const run = await json(await call(env, "GET", `/runs/${runId}`));
    expect(events(run)).toEqual([`queued: queued (api)`, `launching: launching in Dagster`, `launched: launched in Dagster`]);
  });

  it("asks Dagster to reload itself when the source has not arrived a grace period after the change", async () => {
    const { env } = testEnv({ LOAD_WAIT_SECONDS: "3" }); // grace: a third of the wait
    const sourceId = await createSource(env);
    const runId = await requestRun(env, sourceId);
    let reloads = 0;
    let reloadAt = 0;
    const dagster = dagsterDouble(
      (c) => {
        if (c.query.includes("reloadRepositoryLocation")) {
          reloads += 1;
          reloadAt = Date.now();
        }
        return c.query.includes("launchRun") ? launched() : reloaded;
      },
      { assetNode: () => (reloads ? atVersion(1) : notFound) },
    );
    expect(await deliver(env, runId)).toMatchObject({ acked: true, retried: false });
    expect(reloads).toBe(1);
    // Not before the grace (a third of LOAD_WAIT_SECONDS) counted from the change, and Dagster was polled meanwhile.
    const changedAt = Date.parse((await json(await call(env, "GET", `/sources/${sourceId}`))).updated_at);
    expect(reloadAt - changedAt).toBeGreaterThanOrEqual(1000);
    expect(dagster.assetQueries.length).toBeGreaterThan(1);
    expect(dagster.calls.at(-1)?.query).toContain("launchRun");
  });

  it("waits for the changed version, not just the asset, after PUT /sources/:id", async () => {
    const { env } = testEnv({ LOAD_WAIT_SECONDS: "20" });
    const sourceId = await createSource(env);
    const changed = definition(sourceId, { schedule: "5 * * * *" });
    expect((await call(env, "PUT", `/sources/${sourceId}`, { body: { version: 1, definition: changed } })).status).toBe(200);
    const runId = await requestRun(env, sourceId);
    let polls = 0;
    dagsterDouble((c) => (c.query.includes("launchRun") ? launched() : reloaded), {
      assetNode: () => (++polls < 4 ? atVersion(1) : atVersion(2)),
    });
    expect(await deliver(env, runId)).toMatchObject({ acked: true });
    expect(polls).toBe(4);
    expect((await json(await call(env, "GET", `/runs/${runId}`))).status).toBe("launched");
  });

  it("records a launch failure and retries when Dagster still lacks the source after the bound", async () => {
    const { env } = testEnv({ LOAD_WAIT_SECONDS: "1" });
    const sourceId = await createSource(env);
    const runId = await requestRun(env, sourceId);
    const dagster = dagsterDouble(() => reloaded, { assetNode: () => notFound });
    const state = await deliver(env, runId);
    expect(state).toMatchObject({ acked: false, retried: true });
    expect(dagster.calls.some((c) => c.query.includes("launchRun"))).toBe(false);
    const run = await json(await call(env, "GET", `/runs/${runId}`));
    expect(run.status).toBe("launching");
    expect(events(run).at(-1)).toContain(`Dagster has not loaded version 1 of ${sourceId} after 1 s`);
  });
});

describe("definitions Dagster cannot build", () => {
  const report = (env: TestEnv, errors: unknown[]) =>
    call(env, "POST", "/internal/sources/load-errors", { token: INTERNAL, body: { errors } });

  it("are reported by the code location and shown by GET /sources/:id until the report or the version changes", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env);
    const other = await createSource(env);
    expect((await call(env, "POST", "/internal/sources/load-errors", { token: OPERATOR, body: { errors: [] } })).status).toBe(401);
    expect((await report(env, [{ source_id: sourceId, version: "x", message: "" }])).status).toBe(400);

    const message = "sources[0].staging.r2_prefix: must be a relative path";
    expect(await json(await report(env, [{ source_id: sourceId, version: 1, message }]))).toEqual({ recorded: 1 });
    const source = await json(await call(env, "GET", `/sources/${sourceId}`));
    expect(source.load_error).toMatchObject({ message, version: 1 });
    expect((await json(await call(env, "GET", `/sources/${other}`))).load_error).toBeNull();
    const listed = (await json(await call(env, "GET", "/sources"))).sources;
    expect(listed.find((s: any) => s.source_id === sourceId).load_error.message).toBe(message);

    const internal = await json(await call(env, "GET", "/internal/sources", { token: INTERNAL }));
    expect(internal.versions[sourceId]).toBe(1);

    // A new version is not what Dagster failed on: the old error is no longer shown.
    const changed = definition(sourceId, { description: "fixed" });
    await call(env, "PUT", `/sources/${sourceId}`, { body: { version: 1, definition: changed } });
    expect((await json(await call(env, "GET", `/sources/${sourceId}`))).load_error).toBeNull();

    await report(env, [{ source_id: other, version: 1, message: "boom" }]);
    await report(env, []);
    expect((await json(await call(env, "GET", `/sources/${other}`))).load_error).toBeNull();
  });

  it("fail a run of that source at launch with the reason, without calling launchRun", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env);
    const runId = await requestRun(env, sourceId);
    await report(env, [{ source_id: sourceId, version: 1, message: "ValueError: table is already loaded by source x" }]);
    const dagster = dagsterDouble(launched);
    expect(await deliver(env, runId)).toMatchObject({ acked: true, retried: false });
    expect(dagster.calls).toHaveLength(0);
    const run = await json(await call(env, "GET", `/runs/${runId}`));
    expect(run.status).toBe("failed");
    expect(run.message).toBe(
      `Dagster could not load the definition of ${sourceId}: ValueError: table is already loaded by source x`,
    );
  });

  it("are shown on the admin page, escaped", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env);
    await report(env, [{ source_id: sourceId, version: 1, message: "<script>alert(1)</script> bad prefix" }]);
    const signIn = await call(env, "GET", `/admin?token=${OPERATOR}`, { token: null });
    const cookie = (signIn.headers.get("Set-Cookie") ?? "").split(";")[0];
    const page = await (await call(env, "GET", "/admin", { token: null, headers: { Cookie: cookie } })).text();
    expect(page).toContain("Dagster could not load this definition: &lt;script&gt;alert(1)&lt;/script&gt; bad prefix");
    expect(page).not.toContain("<script>alert(1)");
  });
});
