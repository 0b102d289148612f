/** Retention (cron): old finished runs and loaded deliveries go, in bounded batches; nothing unfinished does. */
import { describe, expect, it } from "vitest";
import { pruneOld } from "../src/retention";
import { testEnv, uniqueId } from "./helpers";

const NOW = new Date("2026-12-01T00:00:00.000Z");
const OLD = "2026-08-01T00:00:00.000Z"; // 122 days before NOW
const RECENT = "2026-11-20T00:00:00.000Z";

async function insertRun(db: D1Database, sourceId: string, status: string, at: string, finished: boolean) {
  const runId = uniqueId("run");
  await db.batch([
    db
      .prepare(
        `INSERT INTO runs (run_id, source_id, status, trigger, created_at, updated_at, finished_at)
         VALUES (?, ?, ?, 'api', ?, ?, ?)`,
      )
      .bind(runId, sourceId, status, at, at, finished ? at : null),
    db.prepare("INSERT INTO run_events (run_id, status, at) VALUES (?, 'queued', ?)").bind(runId, at),
    db.prepare("INSERT INTO run_events (run_id, status, at) VALUES (?, ?, ?)").bind(runId, status, at),
  ]);
  return runId;
}

async function insertDelivery(env: ReturnType<typeof testEnv>["env"], sourceId: string, state: string, at: string) {
  const deliveryId = uniqueId("dlv");
  const key = `webhooks/${sourceId}/${deliveryId}.json`;
  await env.RAW_STAGING.put(key, `{"delivery": "${deliveryId}"}`);
  await env.DB.prepare(
    `INSERT INTO webhook_deliveries (source_id, delivery_id, received_at, r2_key, body_bytes, state, loaded_at)
     VALUES (?, ?, ?, ?, 20, ?, ?)`,
  )
    .bind(sourceId, deliveryId, at, key, state, state === "loaded" ? at : null)
    .run();
  return { deliveryId, key };
}

async function runIds(db: D1Database, sourceId: string): Promise<string[]> {
  const { results } = await db.prepare("SELECT run_id FROM runs WHERE source_id = ? ORDER BY run_id").bind(sourceId).all();
  return results.map((row) => row.run_id as string);
}

describe("retention", () => {
  it("deletes finished runs older than RETENTION_DAYS with their events and alerts, never an unfinished one", async () => {
    const { env } = testEnv({ RETENTION_DAYS: "90" } as never);
    const source = uniqueId();
    const oldDone = await Promise.all(
      (["succeeded", "failed", "canceled", "dead_lettered"] as const).map((s) => insertRun(env.DB, source, s, OLD, true)),
    );
    await env.DB.prepare("INSERT INTO run_notifications (run_id, status, created_at) VALUES (?, 'failed', ?)")
      .bind(oldDone[1], OLD)
      .run();
    const kept = [
      await insertRun(env.DB, source, "running", OLD, false),
      await insertRun(env.DB, source, "queued", OLD, false),
      await insertRun(env.DB, source, "launched", OLD, false),
      await insertRun(env.DB, source, "succeeded", RECENT, true),
    ];

    const report = await pruneOld(env, NOW);
    expect(report).toMatchObject({ cutoff: "2026-09-02T00:00:00.000Z", runs: 4, run_events: 8, notifications: 1 });
    expect(await runIds(env.DB, source)).toEqual([...kept].sort());
    const events = await env.DB.prepare(
      `SELECT COUNT(*) AS n FROM run_events WHERE run_id IN (${kept.map(() => "?").join(",")})`,
    )
      .bind(...kept)
      .first<{ n: number }>();
    expect(events?.n).toBe(8);
  });

  it("deletes loaded deliveries and their R2 objects, never a waiting one, a bounded number per cron", async () => {
    const { env } = testEnv({ RETENTION_DAYS: "90", RETENTION_BATCHES: "1" } as never);
    const source = uniqueId();
    const oldLoaded = [];
    for (let i = 0; i < 130; i++) oldLoaded.push(await insertDelivery(env, source, "loaded", OLD));
    const waiting = await insertDelivery(env, source, "waiting", OLD);
    const recent = await insertDelivery(env, source, "loaded", RECENT);

    const first = await pruneOld(env, NOW);
    expect(first).toMatchObject({ deliveries: 100, r2_objects: 100 });
    const second = await pruneOld(env, NOW);
    expect(second).toMatchObject({ deliveries: 30, r2_objects: 30 });
    expect(await pruneOld(env, NOW)).toMatchObject({ deliveries: 0, r2_objects: 0 });

    const { results } = await env.DB.prepare("SELECT delivery_id FROM webhook_deliveries WHERE source_id = ?")
      .bind(source)
      .all();
    expect(results.map((row) => row.delivery_id).sort()).toEqual([waiting.deliveryId, recent.deliveryId].sort());
    expect(await env.RAW_STAGING.get(waiting.key)).not.toBeNull();
    expect(await env.RAW_STAGING.get(recent.key)).not.toBeNull();
    for (const gone of oldLoaded.slice(0, 5)) expect(await env.RAW_STAGING.get(gone.key)).toBeNull();
  });

  it("keeps everything with RETENTION_DAYS = 0", async () => {
    const { env } = testEnv({ RETENTION_DAYS: "0" } as never);
    const source = uniqueId();
    const run = await insertRun(env.DB, source, "succeeded", OLD, true);
    const delivery = await insertDelivery(env, source, "loaded", OLD);
    expect(await pruneOld(env, NOW)).toBeNull();
    expect(await runIds(env.DB, source)).toEqual([run]);
    expect(await env.RAW_STAGING.get(delivery.key)).not.toBeNull();
  });
});

describe("retention of load-job counts", () => {
  it("deletes the counts and warnings of UTC days before the cutoff's, and keeps later days", async () => {
    const { env } = testEnv({ RETENTION_DAYS: "90" } as never);
    const source = uniqueId();
    const insert = (day: string) =>
      env.DB.batch([
        env.DB.prepare(
          `INSERT INTO load_jobs (day, destination, dataset, table_name, source_id, jobs, runs, last_run_at)
           VALUES (?, 'bigquery', 'ds', ?, ?, 900, 900, ?)`,
        ).bind(day, `${source}_t`, source, `${day}T23:00:00.000Z`),
        env.DB.prepare(
          `INSERT INTO load_job_warnings (day, destination, dataset, table_name, run_id, jobs, budget, at)
           VALUES (?, 'bigquery', 'ds', ?, 'run_x', 800, 1000, ?)`,
        ).bind(day, `${source}_t`, `${day}T20:00:00.000Z`),
      ]);
    for (const day of ["2026-09-01", "2026-09-02", "2026-11-30"]) await insert(day); // cutoff 2026-09-02T00:00Z

    expect(await pruneOld(env, NOW)).toMatchObject({ load_job_rows: 2 });
    const { results } = await env.DB.prepare("SELECT day FROM load_jobs WHERE source_id = ? ORDER BY day")
      .bind(source)
      .all<{ day: string }>();
    expect(results.map((row) => row.day)).toEqual(["2026-09-02", "2026-11-30"]);
    const warnings = await env.DB.prepare("SELECT COUNT(*) AS n FROM load_job_warnings WHERE table_name = ?")
      .bind(`${source}_t`)
      .first<{ n: number }>();
    expect(warnings?.n).toBe(2);
  });
});
