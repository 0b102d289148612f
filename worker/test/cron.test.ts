import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { reconcile } from "../src/reconcile";
import { call, createSource, dagsterDouble, json, registeredRun, testEnv } from "./helpers";

type TestEnv = ReturnType<typeof testEnv>["env"];

async function age(env: TestEnv, runId: string, minutes: number) {
  const past = new Date(Date.now() - minutes * 60_000).toISOString();
  await env.DB.prepare("UPDATE runs SET updated_at = ?, created_at = ? WHERE run_id = ?").bind(past, past, runId).run();
}

describe("cron reconciliation", () => {
  it("takes stuck runs' status from Dagster and re-sends old queued and launching runs", async () => {
    const { env, jobs } = testEnv();
    const sourceId = await createSource(env);
    const stuckDone = await registeredRun(env, sourceId, "launched");
    const stuckRunning = await registeredRun(env, sourceId, "running");
    const stuckStarted = await registeredRun(env, sourceId, "launched");
    const fresh = await registeredRun(env, sourceId, "launched");
    for (const run of [stuckDone, stuckRunning, stuckStarted]) await age(env, run.runId, 30);

    const oldQueued = (await json(await call(env, "POST", `/sources/${sourceId}/runs`))).run_id;
    const newQueued = (await json(await call(env, "POST", `/sources/${sourceId}/runs`))).run_id;
    const oldLaunching = (await json(await call(env, "POST", `/sources/${sourceId}/runs`))).run_id;
    await env.DB.prepare("UPDATE runs SET status = 'launching' WHERE run_id = ?").bind(oldLaunching).run();
    await age(env, oldQueued, 11);
    await age(env, oldLaunching, 20);
    jobs.sent.length = 0;

    const statuses: Record<string, string> = {
      [stuckDone.dagsterRunId]: "SUCCESS",
      [stuckRunning.dagsterRunId]: "FAILURE",
      [stuckStarted.dagsterRunId]: "STARTED",
      [fresh.dagsterRunId]: "STARTING",
    };
    const dagster = dagsterDouble(({ query, variables }) => {
      expect(query).toContain("runOrError(runId: $runId)");
      return { runOrError: { __typename: "Run", runId: variables.runId, status: statuses[variables.runId] } };
    });

    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "*/5 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);

    // Every launched or running run is checked, however recently it was updated.
    expect(dagster.calls.map((c) => c.variables.runId).sort()).toEqual(
      [stuckDone.dagsterRunId, stuckRunning.dagsterRunId, stuckStarted.dagsterRunId, fresh.dagsterRunId].sort(),
    );
    const statusOf = async (runId: string) => (await json(await call(env, "GET", `/runs/${runId}`))).status;
    expect(await statusOf(stuckDone.runId)).toBe("succeeded");
    expect(await statusOf(stuckRunning.runId)).toBe("failed");
    expect(await statusOf(stuckStarted.runId)).toBe("running");
    expect(await statusOf(fresh.runId)).toBe("launched");
    expect(jobs.sent.map((m) => m.run_id).sort()).toEqual([oldQueued, oldLaunching].sort());
    expect(jobs.sent.map((m) => m.run_id)).not.toContain(newQueued);
    const events = (await json(await call(env, "GET", `/runs/${oldQueued}`))).events;
    expect(events.at(-1).message).toContain("re-sent");
  });

  it("keeps going when Dagster fails for one run and does not wake the container when DAGSTER_URL is set", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env);
    const a = await registeredRun(env, sourceId, "launched");
    const b = await registeredRun(env, sourceId, "launched");
    await age(env, a.runId, 60);
    await age(env, b.runId, 59);
    dagsterDouble(({ variables }) => {
      if (variables.runId === a.dagsterRunId) return new Response("oops", { status: 500 });
      return { runOrError: { __typename: "Run", runId: b.dagsterRunId, status: "CANCELED" } };
    });
    const report = await reconcile(env);
    expect(report.woke_container).toBe(false);
    expect(report.errors).toBe(1);
    expect((await json(await call(env, "GET", `/runs/${b.runId}`))).status).toBe("canceled");
    expect((await json(await call(env, "GET", `/runs/${a.runId}`))).status).toBe("launched");
  });
});
