/** Bounded input and work: body size, pending runs per source, idempotency keys, run-request numbers, partitions. */
import { describe, expect, it } from "vitest";
import { call, createSource, definition, incrementalExtract, INTERNAL, json, testEnv, uniqueId } from "./helpers";

type TestEnv = ReturnType<typeof testEnv>["env"];

function runRequest(env: TestEnv, sourceId: string, body?: unknown, headers: Record<string, string> = {}) {
  return call(env, "POST", `/sources/${sourceId}/runs`, { body, headers });
}

/** A UTC day `offset` days from today, as a daily partition key. */
function day(offset: number): string {
  return new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
}

describe("request bodies", () => {
  it("answers 413 naming the limit for a body over 256 KB, and stores nothing", async () => {
    const { env } = testEnv();
    const id = uniqueId();
    for (const size of [300 * 1024, 5 * 1024 * 1024]) {
      const response = await call(env, "POST", "/sources", { body: definition(id, { description: "x".repeat(size) }) });
      expect(response.status).toBe(413);
      const error = (await json(response)).error;
      expect(error.code).toBe("payload_too_large");
      expect(error.message).toContain("256 KB");
    }
    expect((await call(env, "GET", `/sources/${id}`)).status).toBe(404);
    // Without a Content-Length (a streamed body) the limit holds as well.
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(JSON.stringify(definition(id, { description: "y".repeat(300 * 1024) }))));
        controller.close();
      },
    });
    const { app } = await import("../src/app");
    const streamed = await app.fetch(
      new Request("https://orchestrator.test/sources", {
        method: "POST",
        body: stream,
        headers: { Authorization: "Bearer test-operator-token", "content-type": "application/json" },
        duplex: "half",
      } as RequestInit),
      env,
    );
    expect(streamed.status).toBe(413);
  });
});

describe("pending runs per source", () => {
  it("accepts MAX_PENDING_RUNS_PER_SOURCE waiting runs and answers 429 with Retry-After beyond", async () => {
    const { env, jobs } = testEnv({ MAX_PENDING_RUNS_PER_SOURCE: "3" });
    const id = await createSource(env);
    const other = await createSource(env);
    // Ten at once: the count and the insert are one statement, so exactly three get in.
    const answers = await Promise.all(Array.from({ length: 10 }, () => runRequest(env, id)));
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([202, 202, 202, 429, 429, 429, 429, 429, 429, 429]);
    const refused = answers.find((r) => r.status === 429) as Response;
    expect(refused.headers.get("Retry-After")).toBe("60");
    const error = (await json(refused)).error;
    expect(error.code).toBe("too_many_pending_runs");
    expect(error.message).toContain("MAX_PENDING_RUNS_PER_SOURCE=3");
    expect(jobs.sent).toHaveLength(3);
    const listed = await json(await call(env, "GET", `/runs?source_id=${id}`));
    expect(listed.runs).toHaveLength(3);

    // Another source has its own allowance; a run that starts frees a place.
    expect((await runRequest(env, other)).status).toBe(202);
    const started = await call(env, "POST", `/internal/runs/${listed.runs[0].run_id}/status`, {
      token: INTERNAL,
      body: { status: "running" },
    });
    expect(started.status).toBe(200);
    expect((await runRequest(env, id)).status).toBe(202);
    expect((await runRequest(env, id)).status).toBe(429);
  });
});

describe("Idempotency-Key", () => {
  it("answers 422 when a key is reused with a different request, the first run when it is the same", async () => {
    const { env, jobs } = testEnv();
    const id = await createSource(env);
    const first = await runRequest(env, id, { limit: 5 }, { "Idempotency-Key": "nightly-1" });
    expect(first.status).toBe(202);
    const { run_id } = await json(first);
    const again = await runRequest(env, id, { limit: 5 }, { "Idempotency-Key": "nightly-1" });
    expect((await json(again)).run_id).toBe(run_id);
    const different = await runRequest(env, id, { limit: 6 }, { "Idempotency-Key": "nightly-1" });
    expect(different.status).toBe(422);
    const error = (await json(different)).error;
    expect(error.code).toBe("idempotency_key_reused");
    expect(error.message).toContain(run_id);
    expect((await runRequest(env, id, undefined, { "Idempotency-Key": "nightly-1" })).status).toBe(422);
    expect(jobs.sent).toHaveLength(1);
  });

  it("refuses keys over 200 characters instead of cutting them", async () => {
    const { env, jobs } = testEnv();
    const id = await createSource(env);
    const base = "k".repeat(200);
    expect((await runRequest(env, id, undefined, { "Idempotency-Key": base })).status).toBe(202);
    for (const key of [`${base}-a`, `${base}-b`]) {
      const response = await runRequest(env, id, undefined, { "Idempotency-Key": key });
      expect(response.status).toBe(400);
      expect((await json(response)).error.fields).toEqual([{ field: "Idempotency-Key", message: expect.stringContaining("200") }]);
    }
    const { runs } = await json(await call(env, "GET", `/runs?source_id=${id}`));
    await call(env, "POST", `/runs/${runs[0].run_id}/cancel`);
    const retry = await call(env, "POST", `/runs/${runs[0].run_id}/retry`, { headers: { "Idempotency-Key": `${base}x` } });
    expect(retry.status).toBe(400);
    expect(jobs.sent).toHaveLength(1);
  });
});

describe("run-request numbers", () => {
  it.each([["1e308"], ["1.5"], ["-1"], ["0"], ["10000001"], ['"5"']])("refuses limit %s naming the field", async (limit) => {
    const { env, jobs } = testEnv();
    const id = await createSource(env);
    const response = await runRequest(env, id, `{"limit": ${limit}}`);
    expect(response.status).toBe(400);
    expect((await json(response)).error.fields).toEqual([{ field: "limit", message: expect.stringContaining("10000000") }]);
    expect(jobs.sent).toHaveLength(0);
  });

  it("accepts the largest limit", async () => {
    const { env } = testEnv();
    const id = await createSource(env);
    expect((await runRequest(env, id, { limit: 10_000_000 })).status).toBe(202);
  });
});

describe("partitions", () => {
  async function expectPartitionRefused(env: TestEnv, id: string, partition: string, words: string) {
    const response = await runRequest(env, id, { partition });
    expect(response.status, partition).toBe(400);
    const fields = (await json(response)).error.fields;
    expect(fields, partition).toEqual([{ field: "partition", message: expect.stringContaining(words) }]);
  }

  it("refuses a partition on a source without partitions instead of running it whole", async () => {
    const { env, jobs } = testEnv();
    const id = await createSource(env);
    await expectPartitionRefused(env, id, "2026-01-02", "has no partitions");
    expect(jobs.sent).toHaveLength(0);
  });

  it("accepts only the daily keys of an incremental source from its start to today", async () => {
    const { env, jobs } = testEnv();
    const id = await createSource(env, uniqueId(), { extract: incrementalExtract("day", "2026-01-01") });
    await expectPartitionRefused(env, id, "2026-13-01", "YYYY-MM-DD");
    await expectPartitionRefused(env, id, "2026-02-30", "YYYY-MM-DD");
    await expectPartitionRefused(env, id, "2026-01-01-00:00", "YYYY-MM-DD");
    await expectPartitionRefused(env, id, "2025-12-31", "2026-01-01");
    await expectPartitionRefused(env, id, day(1), "future");
    expect(jobs.sent).toHaveLength(0);
    for (const partition of ["2026-01-01", day(0)]) {
      const response = await runRequest(env, id, { partition });
      expect(response.status, partition).toBe(202);
      expect((await json(await call(env, "GET", `/runs/${(await json(response)).run_id}`))).partition).toBe(partition);
    }
  });

  it("accepts only the hourly keys YYYY-MM-DD-HH:00 of an hourly source", async () => {
    const { env } = testEnv();
    const id = await createSource(env, uniqueId(), { extract: incrementalExtract("hour", "2026-01-01") });
    await expectPartitionRefused(env, id, "2026-01-05", "YYYY-MM-DD-HH:00");
    await expectPartitionRefused(env, id, "2026-01-05-03:30", "YYYY-MM-DD-HH:00");
    await expectPartitionRefused(env, id, "2026-01-05-24:00", "YYYY-MM-DD-HH:00");
    const nextHour = new Date(Date.now() + 3600_000).toISOString();
    await expectPartitionRefused(env, id, `${nextHour.slice(0, 10)}-${nextHour.slice(11, 13)}:00`, "future");
    expect((await runRequest(env, id, { partition: "2026-01-05-03:00" })).status).toBe(202);
  });
});
