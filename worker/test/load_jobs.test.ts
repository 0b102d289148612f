/** BigQuery's load-job quota: load jobs counted per table per UTC day from runs' final statuses, and the one
 * warning per table per day (run event + alert) at 80% of the budget. Counts are seeded, not waited for. */
import { describe, expect, it } from "vitest";
import { alertBox, passReceiverThrough } from "./alerts";
import { call, createSource, INTERNAL, json, registeredRun, testEnv, uniqueId } from "./helpers";

type TestEnv = ReturnType<typeof testEnv>["env"];

const DATASET = "source_cloudflare";
const today = () => new Date().toISOString().slice(0, 10);

function finish(env: TestEnv, runId: string, body: Record<string, unknown>) {
  return call(env, "POST", `/internal/runs/${runId}/status`, { token: INTERNAL, body });
}

function loadJobs(tables: Record<string, number>, options: { destination?: string; budget?: number } = {}) {
  return { destination: options.destination ?? "bigquery", dataset: DATASET, budget: options.budget ?? 1000, tables };
}

async function tablesOf(env: TestEnv, sourceId: string) {
  const answer = await json(await call(env, "GET", `/internal/sources/${sourceId}/load-jobs`, { token: INTERNAL }));
  expect(answer.day).toBe(today());
  return answer.tables as { table: string; jobs: number; source_jobs: number; runs: number; destination: string }[];
}

/** A table that already has `jobs` load jobs today, as earlier runs of the source would have left it. */
async function seed(env: TestEnv, sourceId: string, table: string, jobs: number, destination = "bigquery") {
  await env.DB.prepare(
    `INSERT INTO load_jobs (day, destination, dataset, table_name, source_id, jobs, runs, last_run_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  )
    .bind(today(), destination, DATASET, table, sourceId, jobs, jobs, new Date().toISOString())
    .run();
}

async function eventsOf(env: TestEnv, runId: string): Promise<string[]> {
  const run = await json(await call(env, "GET", `/runs/${runId}`));
  return (run.events as { message: string | null }[]).map((event) => event.message ?? "");
}

describe("load jobs per table per UTC day", () => {
  it("adds each run's load jobs once, failed runs' too, and sums sources that share a table", async () => {
    const { env } = testEnv();
    const first = await createSource(env);
    const second = await createSource(env);
    const table = `${first}_t`;
    const state = `_dlt_pipeline_state_${uniqueId("s")}`; // dlt's state table, shared by a dataset's sources

    const ok = await registeredRun(env, first);
    const report = { status: "succeeded", load_jobs: loadJobs({ [table]: 3, [state]: 1 }) };
    expect(await json(await finish(env, ok.runId, report))).toMatchObject({ applied: true });
    // The mirror sends a status again after a Worker outage: the repeat adds nothing.
    expect(await json(await finish(env, ok.runId, report))).toMatchObject({ applied: false });

    const failed = await registeredRun(env, first);
    await finish(env, failed.runId, { status: "failed", message: "HTTP 400", load_jobs: loadJobs({ [table]: 2 }) });
    const other = await registeredRun(env, second);
    await finish(env, other.runId, { status: "succeeded", load_jobs: loadJobs({ [state]: 4 }) });
    // A run that ended yesterday counts on yesterday.
    const late = await registeredRun(env, first);
    const yesterday = new Date(Date.now() - 86_400_000).toISOString();
    await finish(env, late.runId, { status: "succeeded", at: yesterday, load_jobs: loadJobs({ [table]: 7 }) });

    const tables = await tablesOf(env, first);
    expect(tables).toEqual([
      expect.objectContaining({ table: state, jobs: 5, source_jobs: 1, runs: 1, destination: "bigquery" }),
      expect.objectContaining({ table, jobs: 5, source_jobs: 5, runs: 2 }),
    ]);
    expect(await tablesOf(env, second)).toEqual([expect.objectContaining({ table: state, jobs: 5, source_jobs: 4 })]);
    const run = await json(await call(env, "GET", `/runs/${ok.runId}`));
    expect(run.events.at(-1).data).toMatchObject({ load_jobs: { [table]: 3, [state]: 1 } });
  });

  it("refuses a report whose counts are not integers, naming the field", async () => {
    const { env } = testEnv();
    const { runId } = await registeredRun(env, await createSource(env));
    const response = await finish(env, runId, { status: "succeeded", load_jobs: loadJobs({ t: -1 }) });
    expect(response.status).toBe(400);
    const fields = (await json(response)).error.fields.map((field: { field: string }) => field.field);
    expect(fields.join(" ")).toContain("load_jobs.tables");
  });
});

describe("the 80% warning", () => {
  it("raises one run event and one alert per table per day, on the run that crosses 80% of the budget", async () => {
    const box = alertBox();
    const { env } = testEnv({ ALERT_WEBHOOK_URL: box.url });
    const sourceId = await createSource(env);
    const table = `${sourceId}_t`;
    await seed(env, sourceId, table, 797);
    passReceiverThrough();

    const below = await registeredRun(env, sourceId);
    await finish(env, below.runId, { status: "succeeded", load_jobs: loadJobs({ [table]: 2 }) }); // 799 of 1000
    expect((await box.read()).bodies).toHaveLength(0);
    expect((await eventsOf(env, below.runId)).join(" ")).not.toContain("load-job budget");

    const crossing = await registeredRun(env, sourceId);
    await finish(env, crossing.runId, { status: "succeeded", load_jobs: loadJobs({ [table]: 1 }) }); // 800
    const warning = `load-job budget: ${DATASET}.${table} has used 800 of its 1000 load jobs on ${today()} (80%, UTC day)`;
    expect((await eventsOf(env, crossing.runId)).some((message) => message.startsWith(warning))).toBe(true);
    const received = await box.read();
    expect(received.bodies).toHaveLength(1);
    expect(received.bodies[0].text).toContain(`Run ${crossing.runId} of source ${sourceId} succeeded: ${warning}`);
    expect(received.bodies[0].text).toContain("BigQuery refuses loads into it after 1500 until 00:00 UTC");

    const after = await registeredRun(env, sourceId);
    await finish(env, after.runId, { status: "succeeded", load_jobs: loadJobs({ [table]: 5 }) }); // 805: warned
    expect((await box.read()).bodies).toHaveLength(1);
    expect((await eventsOf(env, after.runId)).join(" ")).not.toContain("load-job budget");
    expect(await tablesOf(env, sourceId)).toEqual([expect.objectContaining({ table, jobs: 805 })]);
  });

  it("adds the warning to a failed run's own alert, and follows the source's budget", async () => {
    const box = alertBox();
    const { env } = testEnv({ ALERT_WEBHOOK_URL: box.url });
    const sourceId = await createSource(env);
    const table = `${sourceId}_t`;
    await seed(env, sourceId, table, 38);
    passReceiverThrough();
    const { runId } = await registeredRun(env, sourceId);
    await finish(env, runId, {
      status: "failed",
      message: "BigQuery: Quota exceeded",
      load_jobs: loadJobs({ [table]: 2 }, { budget: 50 }), // 40 of 50
    });
    const received = await box.read();
    expect(received.bodies).toHaveLength(1);
    expect(received.bodies[0].text).toContain(
      `Run ${runId} of source ${sourceId} failed: BigQuery: Quota exceeded; load-job budget: ${DATASET}.${table} ` +
        "has used 40 of its 50 load jobs",
    );
  });

  it("counts DuckDB tables the same way and warns about none (DuckDB has no load-job quota)", async () => {
    const box = alertBox();
    const { env } = testEnv({ ALERT_WEBHOOK_URL: box.url });
    const sourceId = await createSource(env);
    const table = `${sourceId}_t`;
    await seed(env, sourceId, table, 990, "duckdb");
    passReceiverThrough();
    const { runId } = await registeredRun(env, sourceId);
    await finish(env, runId, { status: "succeeded", load_jobs: loadJobs({ [table]: 20 }, { destination: "duckdb" }) });
    expect(await tablesOf(env, sourceId)).toEqual([expect.objectContaining({ table, jobs: 1010, destination: "duckdb" })]);
    expect((await box.read()).bodies).toHaveLength(0);
    expect((await eventsOf(env, runId)).join(" ")).not.toContain("load-job budget");
  });
});
