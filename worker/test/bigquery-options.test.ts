import { describe, expect, it, vi, afterEach } from "vitest";
import { call, dagsterDouble, definition, json, testEnv, uniqueId } from "./helpers";

afterEach(() => vi.restoreAllMocks());

// The BigQuery table options of `destination`, validated by the schema generated from dlt_platform/config.py.
describe("BigQuery destination options", () => {
  it("accepts location, partition_by and cluster_by and stores them as given", async () => {
    const { env } = testEnv();
    dagsterDouble(() => ({ reloadRepositoryLocation: { __typename: "WorkspaceLocationEntry" } }));
    const id = uniqueId();
    const destination = {
      type: "bigquery", dataset: "source_cloudflare", table: `${id}_t`, write_disposition: "merge", location: "EU",
      partition_by: { column: "cf_kv_fetched_at", granularity: "hour" }, cluster_by: ["cf_kv_key", "cf_kv_namespace_id"],
    };
    const created = await call(env, "POST", "/sources", { body: definition(id, { destination }) });
    expect(created.status).toBe(201);
    expect((await json(created)).definition.destination).toEqual(destination);
  });

  it("refuses a bad granularity, five or repeated cluster columns, naming each field", async () => {
    const { env } = testEnv();
    const bad = (destination: Record<string, unknown>) => definition(uniqueId(), {
      destination: { type: "bigquery", dataset: "d", table: "t", ...destination },
    });
    const cases: [Record<string, unknown>, string][] = [
      [{ partition_by: { column: "cf_kv_fetched_at", granularity: "week" } }, "destination.partition_by.granularity"],
      [{ cluster_by: ["a", "b", "c", "d", "e"] }, "destination.cluster_by"],
      [{ cluster_by: ["a", "a"] }, "destination.cluster_by"],
      [{ location: "EU; DROP" }, "destination.location"],
    ];
    for (const [destination, field] of cases) {
      const response = await call(env, "POST", "/sources", { body: bad(destination) });
      expect(response.status, JSON.stringify(destination)).toBe(400);
      const fields = (await json(response)).error.fields.map((f: any) => f.field);
      expect(fields.some((f: string) => f.startsWith(field)), `${fields} for ${JSON.stringify(destination)}`).toBe(true);
    }
  });
});
