/** The names defined in dlt_platform/contract.py are what D1 accepts and what the Worker sends Dagster. */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { RUN_STATUSES, TRIGGERS } from "../src/contract";
import { executionParams } from "../src/dagster";
import { insertRun, type RunRow } from "../src/ledger";
import { definition, uniqueId } from "./helpers";

describe("contract", () => {
  it("every run status and trigger of the contract is accepted by D1, and nothing else", async () => {
    for (const trigger of TRIGGERS) {
      for (const status of RUN_STATUSES) {
        const run = await insertRun(env.DB, { source_id: uniqueId(), trigger, status });
        expect([run?.trigger, run?.status]).toEqual([trigger, status]);
      }
    }
    await expect(insertRun(env.DB, { source_id: uniqueId(), trigger: "cron" as never })).rejects.toThrow(/CHECK/);
    await expect(insertRun(env.DB, { source_id: uniqueId(), trigger: "api", status: "lost" as never })).rejects.toThrow(
      /CHECK/,
    );
  });

  it("the runs table's CHECK constraints list exactly the contract's statuses and triggers", async () => {
    // Migrations cannot be changed once applied; the schema D1 holds after all of them is what must agree.
    const table = await env.DB.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'runs'").first<{
      sql: string;
    }>();
    const checked = (column: string) => {
      const list = new RegExp(`\\b${column}\\s+TEXT[^,]*?CHECK\\s*\\(\\s*${column}\\s+IN\\s*\\(([^)]*)\\)`).exec(table!.sql);
      return list ? [...list[1].matchAll(/'([^']*)'/g)].map((match) => match[1]) : `no CHECK on ${column}`;
    };
    expect(checked("status")).toEqual([...RUN_STATUSES]);
    expect(checked("trigger")).toEqual([...TRIGGERS]);
  });

  it("launches carry the contract's tag names", async () => {
    const sourceId = uniqueId();
    const run = await insertRun(env.DB, { source_id: sourceId, trigger: "webhook", request: { partition: "2026-01-02" } });
    const params = executionParams(run as RunRow, definition(sourceId) as never);
    expect(params.executionMetadata.tags.map((t) => t.key)).toEqual([
      "dlt_platform/run_id",
      "dlt_platform/source_id",
      "dlt_platform/trigger",
      "dagster/partition",
    ]);
    expect(params.selector.repositoryLocationName).toBe("dlt_platform");
  });
});
