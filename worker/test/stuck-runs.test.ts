/** Runs left behind by a crash end: reconciliation limits and a cancel that works on an orphaned run. */
import { describe, expect, it } from "vitest";
import { reconcile } from "../src/reconcile";
import { call, createSource, dagsterDouble, json, registeredRun, testEnv } from "./helpers";

type TestEnv = ReturnType<typeof testEnv>["env"];

/** Moves a run and its events `seconds` into the past, as if it had been in its status that long. */
async function age(env: TestEnv, runId: string, seconds: number) {
  const past = new Date(Date.now() - seconds * 1000).toISOString();
  await env.DB.batch([
    env.DB.prepare(
      "UPDATE runs SET updated_at = ?, created_at = ?, started_at = CASE WHEN started_at IS NULL THEN NULL ELSE ? END WHERE run_id = ?",
    ).bind(past, past, past, runId),
    env.DB.prepare("UPDATE run_events SET at = ? WHERE run_id = ?").bind(past, runId),
  ]);
}

const runOf = async (env: TestEnv, runId: string) => json(await call(env, "GET", `/runs/${runId}`));

describe("reconciliation of runs a crash left behind", () => {
  it("fails a run Dagster still calls STARTING once it is past RUN_STALE_AFTER_SECONDS, and tells Dagster", async () => {
    const { env } = testEnv({ RUN_STALE_AFTER_SECONDS: "600", RUN_MAX_RUNTIME_SECONDS: "3600" });
    const sourceId = await createSource(env);
    const crashed = await registeredRun(env, sourceId, "launched", "api");
    const young = await registeredRun(env, sourceId, "launched", "api");
    await age(env, crashed.runId, 11 * 60);
    await age(env, young.runId, 5 * 60);
    const dagster = dagsterDouble(({ query, variables }) => {
      if (query.includes("terminateRun")) {
        return { terminateRun: { __typename: "TerminateRunSuccess", run: { runId: variables.runId, status: "CANCELED" } } };
      }
      return { runOrError: { __typename: "Run", runId: variables.runId, status: "STARTING" } };
    });

    const report = await reconcile(env);

    expect(report).toMatchObject({ checked: 2, updated: 1, errors: 0 });
    const run = await runOf(env, crashed.runId);
    expect(run.status).toBe("failed");
    expect(run.finished_at).not.toBeNull();
    const failed = run.events.filter((e: any) => e.status === "failed");
    expect(failed[0].message).toContain("RUN_STALE_AFTER_SECONDS");
    expect(failed[0].data).toMatchObject({ reason: "stale", dagster_status: "STARTING", limit_seconds: 600 });
    expect(run.events.at(-1).message).toBe("marked canceled in Dagster");
    expect((await runOf(env, young.runId)).status).toBe("launched");
    // Dagster is told too, so its own queue does not wait behind the dead run.
    const terminate = dagster.calls.find((c) => c.query.includes("terminateRun"));
    expect(terminate?.variables).toEqual({ runId: crashed.dagsterRunId, terminatePolicy: "MARK_AS_CANCELED_IMMEDIATELY" });
    expect(dagster.calls.filter((c) => c.query.includes("terminateRun"))).toHaveLength(1);
  });

  it("fails a running run past RUN_MAX_RUNTIME_SECONDS, even when Dagster does not answer", async () => {
    const { env } = testEnv({ RUN_STALE_AFTER_SECONDS: "600", RUN_MAX_RUNTIME_SECONDS: "3600" });
    const sourceId = await createSource(env);
    const long = await registeredRun(env, sourceId, "running", "api");
    const short = await registeredRun(env, sourceId, "running", "api");
    await age(env, long.runId, 3700);
    await age(env, short.runId, 3000);
    dagsterDouble(() => new Response("unavailable", { status: 503 }));

    const report = await reconcile(env);

    expect(report.updated).toBe(1);
    const run = await runOf(env, long.runId);
    expect(run.status).toBe("failed");
    expect(run.events.at(-1).message).toContain("RUN_MAX_RUNTIME_SECONDS");
    expect(run.events.at(-1).data).toMatchObject({ reason: "max_runtime", limit_seconds: 3600 });
    expect((await runOf(env, short.runId)).status).toBe("running");
  });

  it("asks Dagster about every in-flight run, recently updated ones too", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env);
    const done = await registeredRun(env, sourceId, "launched", "api");
    await age(env, done.runId, 60);
    dagsterDouble(({ variables }) => ({ runOrError: { __typename: "Run", runId: variables.runId, status: "FAILURE" } }));
    // Earlier tests of this file leave runs in flight too: Dagster answers FAILURE for each of them as well.
    const { results: inFlight } = await env.DB.prepare(
      "SELECT run_id, dagster_run_id FROM runs WHERE status IN ('launched', 'running')",
    ).all<{ run_id: string; dagster_run_id: string | null }>();
    expect(inFlight.map((r) => r.run_id)).toContain(done.runId);
    const known = inFlight.filter((r) => r.dagster_run_id !== null).length;

    const report = await reconcile(env);

    expect(report).toMatchObject({ checked: inFlight.length, updated: known, errors: 0 });
    const run = await runOf(env, done.runId);
    expect(run.status).toBe("failed");
    expect(run.events.at(-1).message).toContain("FAILURE");
  });
});

describe("cancel of an orphaned run", () => {
  it("marks the run canceled in Dagster and in the ledger when Dagster cannot terminate it", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env);
    const orphan = await registeredRun(env, sourceId, "launched", "api");
    const dagster = dagsterDouble(({ query, variables }) => {
      if (variables.terminatePolicy === "MARK_AS_CANCELED_IMMEDIATELY") {
        return { terminateRun: { __typename: "TerminateRunSuccess", run: { runId: variables.runId, status: "CANCELED" } } };
      }
      expect(query).toContain("terminateRun");
      return {
        terminateRun: {
          __typename: "TerminateRunFailure",
          message: `Unable to terminate run ${variables.runId}`,
          run: { runId: variables.runId, status: "STARTING" },
        },
      };
    });

    const response = await call(env, "POST", `/runs/${orphan.runId}/cancel`, { headers: { "X-Actor": "ops" } });

    expect(response.status).toBe(200);
    const body = await json(response);
    expect(body).toMatchObject({ run_id: orphan.runId, status: "canceled", dagster: "marked_canceled" });
    expect(dagster.calls.map((c) => c.variables.terminatePolicy ?? "SAFE_TERMINATE")).toEqual([
      "SAFE_TERMINATE",
      "MARK_AS_CANCELED_IMMEDIATELY",
    ]);
    const run = await runOf(env, orphan.runId);
    expect(run.status).toBe("canceled");
    expect(run.events.at(-1).message).toContain("canceled by ops");
    expect(run.events.at(-1).data).toMatchObject({ dagster: "marked_canceled", dagster_status: "STARTING" });
  });

  it("force-marks the run canceled when Dagster raised an error terminating it (its code server is gone)", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env);
    const orphan = await registeredRun(env, sourceId, "running", "api");
    // What the real Dagster answers then: HTTP 500 around a GraphQL body whose result is a PythonError.
    dagsterDouble(({ variables }) =>
      variables.terminatePolicy === "MARK_AS_CANCELED_IMMEDIATELY"
        ? { terminateRun: { __typename: "TerminateRunSuccess", run: { runId: variables.runId, status: "CANCELED" } } }
        : Response.json(
            { data: { terminateRun: { __typename: "PythonError", message: "DagsterUserCodeUnreachableError: gone" } } },
            { status: 500 },
          ),
    );
    const response = await call(env, "POST", `/runs/${orphan.runId}/cancel`);
    expect(response.status).toBe(200);
    expect(await json(response)).toMatchObject({ status: "canceled", dagster: "marked_canceled" });
  });

  it("marks a run Dagster does not know canceled", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env);
    const orphan = await registeredRun(env, sourceId, "running", "api");
    dagsterDouble(() => ({ terminateRun: { __typename: "RunNotFoundError", message: "Run not found" } }));
    const response = await call(env, "POST", `/runs/${orphan.runId}/cancel`);
    expect(response.status).toBe(200);
    expect(await json(response)).toMatchObject({ status: "canceled", dagster: "not_found" });
  });

  it("records Dagster's final status when the run had already ended there", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env);
    const ended = await registeredRun(env, sourceId, "running", "api");
    dagsterDouble(({ variables }) => ({
      terminateRun: {
        __typename: "TerminateRunFailure",
        message: `Run ${variables.runId} could not be terminated due to having status SUCCESS.`,
        run: { runId: variables.runId, status: "SUCCESS" },
      },
    }));
    const response = await call(env, "POST", `/runs/${ended.runId}/cancel`);
    expect(response.status).toBe(409);
    const body = await json(response);
    expect(body.error.message).toContain("already succeeded in Dagster");
    expect((await runOf(env, ended.runId)).status).toBe("succeeded");
  });

  it("answers 502 and changes nothing when Dagster cannot be reached", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env);
    const run = await registeredRun(env, sourceId, "launched", "api");
    dagsterDouble(() => new Response("down", { status: 503 }));
    const response = await call(env, "POST", `/runs/${run.runId}/cancel`);
    expect(response.status).toBe(502);
    expect((await json(response)).error.code).toBe("dagster_unavailable");
    expect((await runOf(env, run.runId)).status).toBe("launched");
  });
});
