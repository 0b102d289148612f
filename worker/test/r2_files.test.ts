/** r2_files definitions in the Worker: accepted by the generated schema, launched in Dagster with one asset per
 * table (a Logpush table named after its dataset), listed on the admin page with their tables, and the rules the
 * schema cannot say refused naming the field. */
import { describe, expect, it } from "vitest";
import { signIn } from "./admin_helpers";
import { call, dagsterDouble, definition, deliverBatch, json, queueMessage, testEnv, uniqueId } from "./helpers";

function filesDefinition(sourceId: string, tables: unknown[], dataset = "edge_logs") {
  return definition(sourceId, {
    source_type: "r2_files",
    destination: { type: "bigquery", dataset, write_disposition: "append" },
    extract: { bucket: "edge-logs", tables },
  });
}

const LOGPUSH = { type: "logpush", dataset: "http_requests", prefix: "logpush/http_requests", timestamp_format: "unixnano" };
const ORDERS = { type: "files", name: "orders", glob: "exports/orders/*.csv.gz", format: "csv", primary_key: "order_id", write_disposition: "merge" };

describe("r2_files sources", () => {
  it("are stored as defined and launched with one asset per table", async () => {
    const { env } = testEnv();
    const sourceId = uniqueId("files");
    const created = await call(env, "POST", "/sources", { body: filesDefinition(sourceId, [LOGPUSH, ORDERS]) });
    expect(created.status, await created.clone().text()).toBe(201);
    expect((await json(await call(env, "GET", `/sources/${sourceId}`))).definition.extract.tables[0]).toEqual(LOGPUSH);

    const { run_id } = await json(await call(env, "POST", `/sources/${sourceId}/runs`));
    const dagster = dagsterDouble(() => ({ launchRun: { __typename: "LaunchRunSuccess", run: { runId: "dg-files", status: "QUEUED" } } }));
    await deliverBatch("dlt-jobs-v2", [queueMessage({ run_id }).message], env);

    expect(dagster.calls[0].variables.executionParams.selector.assetSelection).toEqual([
      { path: ["edge_logs", "http_requests"] },
      { path: ["edge_logs", "orders"] },
    ]);
  });

  it("are listed on the admin page with their tables", async () => {
    const { env } = testEnv();
    const sourceId = uniqueId("files");
    const created = await call(env, "POST", "/sources", { body: filesDefinition(sourceId, [LOGPUSH, ORDERS], "files_listed") });
    expect(created.status).toBe(201);
    const cookie = await signIn(env);
    const page = await (await call(env, "GET", "/admin", { token: null, headers: { Cookie: cookie } })).text();
    expect(page).toContain(sourceId);
    expect(page).toContain("r2_files &rarr; files_listed.http_requests, files_listed.orders");
  });

  it("refuses two tables of one name and a merge without a key, naming the field", async () => {
    const { env } = testEnv();
    const twice = await call(env, "POST", "/sources", {
      body: filesDefinition(uniqueId("files"), [LOGPUSH, { ...ORDERS, name: "http_requests" }]),
    });
    expect(twice.status).toBe(400);
    expect(await twice.text()).toMatch(/extract\.tables.*duplicate table name 'http_requests'/);

    const keyless = await call(env, "POST", "/sources", {
      body: filesDefinition(uniqueId("files"), [{ ...ORDERS, primary_key: null }]),
    });
    expect(keyless.status).toBe(400);
    expect(await keyless.text()).toContain("tables.0: table 'orders' merges but has no primary_key");
  });
});
