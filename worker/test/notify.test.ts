/** Operators find out: one alert per failed, dead-lettered or stuck run, to a real loopback webhook. */
import { describe, expect, it } from "vitest";
import { DLQ_NAME } from "../src/queue";
import { reconcile } from "../src/reconcile";
import { alertBox, passReceiverThrough } from "./alerts";
import {
  deliverBatch, call,
  createSource,
  dagsterDouble,
  queueMessage,
  INTERNAL,
  json,
  OPERATOR,
  registeredRun,
  testEnv,
  uniqueId,
} from "./helpers";

type TestEnv = ReturnType<typeof testEnv>["env"];

const ORCHESTRATOR_URL = "https://orchestrator.example";

const eventsOf = async (env: TestEnv, runId: string) =>
  (await json(await call(env, "GET", `/runs/${runId}`))).events as { message: string }[];

describe("alerts", () => {
  it("sends one alert with source, run, reason and links when a run is dead-lettered, and no secret", async () => {
    const box = alertBox();
    const { env } = testEnv({ ALERT_WEBHOOK_URL: box.url, DLT_ORCHESTRATOR_URL: ORCHESTRATOR_URL });
    const sourceId = await createSource(env);
    const { run_id: runId } = await json(await call(env, "POST", `/sources/${sourceId}/runs`));
    dagsterDouble(() => ({ launchRun: { __typename: "PipelineNotFoundError", message: "no job __ASSET_JOB" } }));
    passReceiverThrough();
    await deliverBatch("dlt-jobs-v2", [queueMessage({ run_id: runId }).message], env);
    expect((await box.read()).attempts).toBe(0);

    await deliverBatch(DLQ_NAME, [queueMessage({ run_id: runId }).message], env);

    const received = await box.read();
    expect(received.bodies).toHaveLength(1);
    expect(received.content_types).toEqual(["application/json"]);
    const [alert] = received.bodies;
    expect(alert.text).toContain(`Run ${runId} of source ${sourceId} dead_lettered`);
    expect(alert.text).toContain("no job __ASSET_JOB");
    expect(alert.text).toContain(`${ORCHESTRATOR_URL}/admin/runs/${runId}`);
    expect(alert.blocks?.[0]).toMatchObject({ type: "section", text: { type: "mrkdwn" } });
    const raw = JSON.stringify(alert);
    for (const secret of [box.url, OPERATOR, INTERNAL]) expect(raw).not.toContain(secret);
    expect((await eventsOf(env, runId)).map((e) => e.message)).toContain("alert sent to the webhook");

    // Later passes (cron, further batches) do not send it again.
    const report = await reconcile(env, Date.now() + 3600_000);
    expect(report.notified).toBe(0);
    expect((await box.read()).bodies).toHaveLength(1);
  });

  it("retries a failed delivery on a later cron, sends it once, and never holds up the status change", async () => {
    const box = alertBox({ fail: 1 });
    const { env } = testEnv({ ALERT_WEBHOOK_URL: box.url, DLT_ORCHESTRATOR_URL: ORCHESTRATOR_URL });
    const sourceId = await createSource(env);
    const { runId, dagsterRunId } = await registeredRun(env, sourceId);
    passReceiverThrough();

    const response = await call(env, "POST", `/internal/runs/${runId}/status`, {
      token: INTERNAL,
      body: { status: "failed", message: `load failed: credentials test-internal-token rejected` },
    });
    expect(await json(response)).toMatchObject({ status: "failed", applied: true });
    expect((await box.read()).attempts).toBe(1);
    expect((await eventsOf(env, runId)).at(-1)?.message).toContain("alert delivery failed (HTTP 500)");

    // Too early for the retry: the backoff holds it.
    expect((await reconcile(env, Date.now() + 10_000)).notified).toBe(0);
    const report = await reconcile(env, Date.now() + 5 * 60_000);
    expect(report.notified).toBe(1);
    expect((await reconcile(env, Date.now() + 60 * 60_000)).notified).toBe(0);

    const received = await box.read();
    expect(received.attempts).toBe(2);
    expect(received.bodies).toHaveLength(1);
    expect(received.bodies[0].text).toContain("failed: load failed");
    expect(received.bodies[0].text).toContain(`${ORCHESTRATOR_URL}/dagster/runs/${dagsterRunId}`);
    expect(received.bodies[0].text).not.toContain(INTERNAL);
    expect(received.bodies[0].text).toContain("[redacted]");
  });

  it("alerts on a stuck run the cron failed, and not on runs that succeeded or were canceled", async () => {
    const box = alertBox();
    const { env } = testEnv({ ALERT_WEBHOOK_URL: box.url, RUN_MAX_RUNTIME_SECONDS: "600" });
    const sourceId = await createSource(env);
    const stuck = await registeredRun(env, sourceId);
    const done = await registeredRun(env, sourceId);
    const canceled = await registeredRun(env, sourceId);
    const past = new Date(Date.now() - 3600_000).toISOString();
    await env.DB.prepare("UPDATE runs SET started_at = ? WHERE run_id = ?").bind(past, stuck.runId).run();
    const statuses: Record<string, string> = {
      [stuck.dagsterRunId]: "STARTED",
      [done.dagsterRunId]: "SUCCESS",
      [canceled.dagsterRunId]: "CANCELED",
    };
    dagsterDouble(({ query, variables }) =>
      query.includes("terminateRun")
        ? { terminateRun: { __typename: "TerminateRunSuccess", run: { runId: variables.runId, status: "CANCELED" } } }
        : { runOrError: { __typename: "Run", runId: variables.runId, status: statuses[variables.runId] } },
    );
    passReceiverThrough();

    const report = await reconcile(env);

    expect(report).toMatchObject({ updated: 3, stuck: 1, notified: 1 });
    const received = await box.read();
    expect(received.bodies).toHaveLength(1);
    expect(received.bodies[0].text).toContain(`Run ${stuck.runId} of source ${sourceId} failed: stuck: running for`);
    expect(received.bodies[0].text).toContain("RUN_MAX_RUNTIME_SECONDS=600");
    // Without DLT_ORCHESTRATOR_URL the alert carries no links rather than wrong ones.
    expect(received.bodies[0].text).not.toContain("http");
  });

  it("alerts on a run that succeeded but set a load package aside, and not on a plain success", async () => {
    const box = alertBox();
    const { env } = testEnv({ ALERT_WEBHOOK_URL: box.url });
    const sourceId = await createSource(env);
    const plain = await registeredRun(env, sourceId);
    const setAside = await registeredRun(env, sourceId);
    passReceiverThrough();
    await call(env, "POST", `/internal/runs/${plain.runId}/status`, { token: INTERNAL, body: { status: "succeeded" } });
    const why = "loaded; load package 1796.1 set aside in /data/failed_packages/x/1796.1: Out of Memory Error";
    const response = await call(env, "POST", `/internal/runs/${setAside.runId}/status`, {
      token: INTERNAL,
      body: { status: "succeeded", message: why, alert: true },
    });
    expect(await json(response)).toMatchObject({ status: "succeeded", applied: true });
    const received = await box.read();
    expect(received.bodies).toHaveLength(1);
    expect(received.bodies[0].text).toContain(`Run ${setAside.runId} of source ${sourceId} succeeded: ${why}`);
    expect((await json(await call(env, "GET", `/runs/${setAside.runId}`))).message).toBe(why);
  });

  it("alerts on a run Dagster registers after it already failed", async () => {
    const box = alertBox();
    const { env } = testEnv({ ALERT_WEBHOOK_URL: box.url });
    const sourceId = await createSource(env);
    passReceiverThrough();
    const { run_id: runId } = await json(
      await call(env, "POST", "/internal/runs", {
        token: INTERNAL,
        body: { dagster_run_id: uniqueId("dg"), source_id: sourceId, trigger: "ui", status: "failed" },
      }),
    );
    const received = await box.read();
    expect(received.bodies).toHaveLength(1);
    expect(received.bodies[0].text).toContain(`Run ${runId} of source ${sourceId} failed`);
  });

  it("sends nothing and spends no attempt without ALERT_WEBHOOK_URL", async () => {
    const { env } = testEnv();
    const sourceId = await createSource(env);
    const { runId } = await registeredRun(env, sourceId);
    await call(env, "POST", `/internal/runs/${runId}/status`, { token: INTERNAL, body: { status: "failed" } });
    expect((await reconcile(env)).notified).toBe(0);
    const row = await env.DB.prepare("SELECT attempts, sent_at FROM run_notifications WHERE run_id = ?")
      .bind(runId)
      .first();
    expect(row).toEqual({ attempts: 0, sent_at: null });
  });
});
