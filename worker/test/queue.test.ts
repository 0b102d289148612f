import { describe, expect, it } from "vitest";
import { retryDelaySeconds } from "../src/queue";
import {
  INTERNAL,
  deliverBatch, call,
  createSource,
  dagsterDouble,
  queueMessage,
  incrementalExtract,
  json,
  testEnv,
  uniqueId,
} from "./helpers";

async function queuedRun(e: ReturnType<typeof testEnv>["env"], body?: unknown, sourceOverrides = {}) {
  const sourceId = await createSource(e, uniqueId(), sourceOverrides);
  const { run_id } = await json(await call(e, "POST", `/sources/${sourceId}/runs`, { body }));
  return { sourceId, runId: run_id as string };
}

function launchSuccess(runId = "dagster-run-1") {
  return { launchRun: { __typename: "LaunchRunSuccess", run: { runId, status: "QUEUED" } } };
}

describe("queue consumer", () => {
  it("launches a queued run with the contract's executionParams and records launched", async () => {
    const { env } = testEnv();
    const { sourceId, runId } = await queuedRun(
      env,
      { limit: 10, keys: ["k1"], partition: "2026-01-02", full_refresh: true },
      { extract: incrementalExtract() },
    );
    const dagster = dagsterDouble(() => launchSuccess("dg-abc"));
    const { message, state } = queueMessage({ run_id: runId });
    await deliverBatch("dlt-jobs-v2", [message], env);

    expect(state).toMatchObject({ acked: true, retried: false });
    expect(dagster.calls).toHaveLength(1);
    const { query, variables } = dagster.calls[0];
    expect(query).toContain("launchRun(executionParams: $executionParams)");
    expect(query).toContain("LaunchRunSuccess");
    expect(variables.executionParams).toEqual({
      selector: {
        repositoryLocationName: "dlt_platform",
        repositoryName: "__repository__",
        jobName: "__ASSET_JOB",
        assetSelection: [{ path: ["source_cloudflare", `${sourceId}_t`] }],
      },
      runConfigData: { ops: { [sourceId]: { config: { limit: 10, keys: ["k1"], full_refresh: true } } } },
      executionMetadata: {
        tags: [
          { key: "dlt_platform/run_id", value: runId },
          { key: "dlt_platform/source_id", value: sourceId },
          { key: "dlt_platform/trigger", value: "api" },
          { key: "dagster/partition", value: "2026-01-02" },
        ],
      },
    });
    const run = await json(await call(env, "GET", `/runs/${runId}`));
    expect(run).toMatchObject({ status: "launched", dagster_run_id: "dg-abc" });
    expect(run.events.map((e: any) => e.status)).toEqual(["queued", "launching", "launched"]);
  });

  it("omits ops config and the partition tag when the request has none", async () => {
    const { env } = testEnv();
    const { runId } = await queuedRun(env);
    const dagster = dagsterDouble(() => launchSuccess(`dg-${runId}`));
    const { message } = queueMessage({ run_id: runId });
    await deliverBatch("dlt-jobs-v2", [message], env);
    const params = dagster.calls[0].variables.executionParams;
    expect(params.runConfigData).toEqual({});
    expect(params.executionMetadata.tags.map((t: any) => t.key)).toEqual([
      "dlt_platform/run_id",
      "dlt_platform/source_id",
      "dlt_platform/trigger",
    ]);
  });

  it("acks a run that is past queued without calling Dagster (duplicate delivery)", async () => {
    const { env } = testEnv();
    const { runId } = await queuedRun(env);
    const dagster = dagsterDouble(() => launchSuccess(`dg-dup-${runId}`));
    const first = queueMessage({ run_id: runId });
    await deliverBatch("dlt-jobs-v2", [first.message], env);
    const second = queueMessage({ run_id: runId }, 2);
    await deliverBatch("dlt-jobs-v2", [second.message], env);
    expect(second.state).toMatchObject({ acked: true, retried: false });
    expect(dagster.calls).toHaveLength(1);
    // The acked duplicate leaves an event (what the end-to-end test waits on); the run stays launched.
    const run = await json(await call(env, "GET", `/runs/${runId}`));
    expect(run.status).toBe("launched");
    expect(run.events.map((e: any) => [e.status, e.message, e.data])).toEqual([
      ["queued", "queued (api)", { trigger: "api" }],
      ["launching", "launching in Dagster", null],
      ["launched", "launched in Dagster", { dagster_run_id: `dg-dup-${runId}` }],
      [
        "launched",
        "queue delivery acked without launching",
        { duplicate_delivery: true, delivery_attempts: 2, status: "launched" },
      ],
    ]);
  });

  it("records nothing for a delivery whose run the ledger does not hold", async () => {
    const { env } = testEnv();
    const { message, state } = queueMessage({ run_id: "run_NOPE" });
    await deliverBatch("dlt-jobs-v2", [message], env);
    expect(state).toMatchObject({ acked: true, retried: false });
    const { n } = (await env.DB.prepare("SELECT COUNT(*) AS n FROM run_events WHERE run_id = 'run_NOPE'").first<{
      n: number;
    }>())!;
    expect(n).toBe(0);
  });

  it("acks a canceled run without launching it", async () => {
    const { env } = testEnv();
    const { runId } = await queuedRun(env);
    await call(env, "POST", `/runs/${runId}/cancel`);
    const dagster = dagsterDouble(() => launchSuccess());
    const { message, state } = queueMessage({ run_id: runId });
    await deliverBatch("dlt-jobs-v2", [message], env);
    expect(state.acked).toBe(true);
    expect(dagster.calls).toHaveLength(0);
  });

  it("retries with a growing delay when Dagster answers an error, and launches on a later attempt", async () => {
    const { env } = testEnv();
    const { runId } = await queuedRun(env);
    let answer: unknown = { launchRun: { __typename: "PythonError", message: "code location failed to load" } };
    dagsterDouble(() => answer);
    const first = queueMessage({ run_id: runId }, 1);
    await deliverBatch("dlt-jobs-v2", [first.message], env);
    expect(first.state).toMatchObject({ acked: false, retried: true, delaySeconds: 30 });
    let run = await json(await call(env, "GET", `/runs/${runId}`));
    expect(run.status).toBe("launching");
    expect(run.events.at(-1).message).toContain("PythonError: code location failed to load");

    const second = queueMessage({ run_id: runId }, 2);
    answer = { launchRun: { __typename: "RunConfigValidationInvalid", errors: [{ message: "bad config" }] } };
    await deliverBatch("dlt-jobs-v2", [second.message], env);
    expect(second.state).toMatchObject({ retried: true, delaySeconds: 60 });

    const third = queueMessage({ run_id: runId }, 3);
    answer = launchSuccess(`dg-late-${runId}`);
    await deliverBatch("dlt-jobs-v2", [third.message], env);
    expect(third.state).toMatchObject({ acked: true, retried: false });
    run = await json(await call(env, "GET", `/runs/${runId}`));
    expect(run).toMatchObject({ status: "launched", dagster_run_id: `dg-late-${runId}` });
  });

  it("retries when Dagster is unreachable or answers HTTP errors", async () => {
    const { env } = testEnv();
    const { runId } = await queuedRun(env);
    dagsterDouble(() => new Response("bad gateway", { status: 502 }));
    const { message, state } = queueMessage({ run_id: runId }, 4);
    await deliverBatch("dlt-jobs-v2", [message], env);
    expect(state).toMatchObject({ retried: true, delaySeconds: 240 });
    const run = await json(await call(env, "GET", `/runs/${runId}`));
    expect(run.events.at(-1).message).toContain("HTTP 502");
  });

  it("handles each message on its own: one failure does not retry the others", async () => {
    const { env } = testEnv();
    const ok = await queuedRun(env);
    const bad = await queuedRun(env);
    dagsterDouble(({ variables }) => {
      const runTag = variables.executionParams.executionMetadata.tags[0].value;
      if (runTag === bad.runId) throw new Error("connection reset");
      return launchSuccess(`dg-ok-${ok.runId}`);
    });
    const a = queueMessage({ run_id: ok.runId });
    const b = queueMessage({ run_id: bad.runId });
    const broken = queueMessage("not an object");
    await deliverBatch("dlt-jobs-v2", [b.message, a.message, broken.message], env);
    expect(a.state).toMatchObject({ acked: true, retried: false });
    expect(b.state).toMatchObject({ acked: false, retried: true });
    expect(broken.state).toMatchObject({ acked: true });
  });

  it("retries a message when D1 itself fails instead of throwing out of queue()", async () => {
    const { env } = testEnv();
    const brokenDb = { prepare: () => { throw new Error("D1 unavailable"); } };
    const { message, state } = queueMessage({ run_id: "run_whatever" });
    const result = await deliverBatch("dlt-jobs-v2", [message], { ...env, DB: brokenDb as never });
    expect(result.outcome).toBe("ok");
    expect(state.retried).toBe(true);
  });

  it("computes growing, capped delays", () => {
    expect([1, 2, 3, 4, 5, 6, 10].map((attempts) => retryDelaySeconds(attempts))).toEqual([30, 60, 120, 240, 480, 600, 600]);
    expect([1, 2, 3].map((attempts) => retryDelaySeconds(attempts, 2))).toEqual([2, 4, 8]);
  });
});

describe("cancel during launch", () => {
  it("terminates the Dagster run when the run was canceled while launching", async () => {
    const { env } = testEnv();
    const { runId } = await queuedRun(env);
    const dagster = dagsterDouble(async ({ query }) => {
      if (query.includes("terminateRun")) return { terminateRun: { __typename: "TerminateRunSuccess", run: null } };
      // The operator cancels while Dagster is still answering launchRun.
      const cancel = await call(env, "POST", `/runs/${runId}/cancel`);
      expect(cancel.status).toBe(200);
      return launchSuccess(`dg-race-${runId}`);
    });
    const { message, state } = queueMessage({ run_id: runId });
    await deliverBatch("dlt-jobs-v2", [message], env);
    expect(state.acked).toBe(true);
    expect(dagster.calls.map((c) => c.query.includes("terminateRun"))).toEqual([false, true]);
    expect(dagster.calls[1].variables).toEqual({ runId: `dg-race-${runId}`, terminatePolicy: "SAFE_TERMINATE" });
    expect((await json(await call(env, "GET", `/runs/${runId}`))).status).toBe("canceled");
  });
});

describe("running reported during launch", () => {
  it("keeps a run the Dagster run already reported running, with its Dagster run id", async () => {
    const { env } = testEnv();
    const { runId } = await queuedRun(env);
    const dagsterRunId = `dg-fast-${runId}`;
    const dagster = dagsterDouble(async () => {
      // The run starts and pushes `running` before the consumer has recorded `launched`.
      const pushed = await call(env, "POST", `/internal/runs/${runId}/status`, {
        token: INTERNAL,
        body: { status: "running", dagster_run_id: dagsterRunId, message: "running in Dagster" },
      });
      expect(await json(pushed)).toMatchObject({ status: "running", applied: true });
      return launchSuccess(dagsterRunId);
    });
    const { message, state } = queueMessage({ run_id: runId });
    await deliverBatch("dlt-jobs-v2", [message], env);
    expect(state).toMatchObject({ acked: true, retried: false });
    expect(dagster.calls).toHaveLength(1); // no terminateRun: the late `launched` is simply not applied
    const run = await json(await call(env, "GET", `/runs/${runId}`));
    expect(run).toMatchObject({ status: "running", dagster_run_id: dagsterRunId });
    expect(run.events.map((e: any) => e.status)).toEqual(["queued", "launching", "running"]);
  });
});

describe("dead letter consumer", () => {
  it("marks a launching run dead_lettered with the last error", async () => {
    const { env } = testEnv();
    const { runId } = await queuedRun(env);
    dagsterDouble(() => ({ launchRun: { __typename: "PipelineNotFoundError", message: "no job __ASSET_JOB" } }));
    await deliverBatch("dlt-jobs-v2", [queueMessage({ run_id: runId }).message], env);
    const dead = queueMessage({ run_id: runId });
    await deliverBatch("dlt-jobs-v2-dlq", [dead.message], env);
    expect(dead.state.acked).toBe(true);
    const run = await json(await call(env, "GET", `/runs/${runId}`));
    expect(run.status).toBe("dead_lettered");
    expect(run.finished_at).not.toBeNull();
    const last = run.events.at(-1);
    expect(last.status).toBe("dead_lettered");
    expect(last.message).toContain("no job __ASSET_JOB");
    expect(last.data).toMatchObject({ last_error: expect.stringContaining("PipelineNotFoundError") });
  });

  it("leaves a run that got further alone", async () => {
    const { env } = testEnv();
    const { runId } = await queuedRun(env);
    dagsterDouble(() => launchSuccess(`dg-dlq-${runId}`));
    await deliverBatch("dlt-jobs-v2", [queueMessage({ run_id: runId }).message], env);
    const dead = queueMessage({ run_id: runId });
    await deliverBatch("dlt-jobs-v2-dlq", [dead.message], env);
    expect(dead.state.acked).toBe(true);
    expect((await json(await call(env, "GET", `/runs/${runId}`))).status).toBe("launched");
  });
});

describe("cancel of a launched run", () => {
  it("terminates it in Dagster, then marks it canceled", async () => {
    const { env } = testEnv();
    const { runId } = await queuedRun(env);
    const dagster = dagsterDouble(({ query }) =>
      query.includes("terminateRun")
        ? { terminateRun: { __typename: "TerminateRunSuccess", run: { runId: "x", status: "CANCELING" } } }
        : launchSuccess(`dg-cancel-${runId}`),
    );
    await deliverBatch("dlt-jobs-v2", [queueMessage({ run_id: runId }).message], env);
    const response = await call(env, "POST", `/runs/${runId}/cancel`);
    expect(response.status).toBe(200);
    expect((await json(response)).status).toBe("canceled");
    const terminate = dagster.calls.find((c) => c.query.includes("terminateRun"));
    expect(terminate?.variables).toEqual({ runId: `dg-cancel-${runId}`, terminatePolicy: "SAFE_TERMINATE" });
  });

  it("answers 502 and keeps the run when Dagster cannot terminate it", async () => {
    const { env } = testEnv();
    const { runId } = await queuedRun(env);
    dagsterDouble(({ query }) =>
      query.includes("terminateRun")
        ? { terminateRun: { __typename: "PythonError", message: "boom" } }
        : launchSuccess(`dg-keep-${runId}`),
    );
    await deliverBatch("dlt-jobs-v2", [queueMessage({ run_id: runId }).message], env);
    const response = await call(env, "POST", `/runs/${runId}/cancel`);
    expect(response.status).toBe(502);
    expect((await json(response)).error.code).toBe("dagster_unavailable");
    expect((await json(await call(env, "GET", `/runs/${runId}`))).status).toBe("launched");
  });
});
