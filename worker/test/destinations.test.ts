/** One source per destination table: a create or edit that would load another live source's table is refused. */
import { describe, expect, it } from "vitest";
import { warehouseName } from "../src/ledger/destinations";
import { call, definition, json, testEnv, uniqueId } from "./helpers";

type TestEnv = ReturnType<typeof testEnv>["env"];

/** A KV source loading `dataset.table`. */
function kvDefinition(sourceId: string, dataset: string, table: string, overrides: Record<string, unknown> = {}) {
  return definition(sourceId, {
    destination: { type: "bigquery", dataset, table, write_disposition: "replace" },
    ...overrides,
  });
}

function restDefinition(sourceId: string, dataset: string, names: string[]) {
  return definition(sourceId, {
    source_type: "rest_api",
    destination: { type: "bigquery", dataset, write_disposition: "replace" },
    extract: {
      client: { base_url: "https://api.example.com/v1" },
      resources: names.map((name) => ({ name, endpoint: { path: name } })),
    },
  });
}

async function refusedAsTaken(response: Response, field: string, owner: string) {
  expect(response.status, await response.clone().text()).toBe(409);
  const { error } = await json(response);
  expect(error.code).toBe("destination_taken");
  expect(error.message).toContain(field);
  expect(error.message).toContain(`already loaded by source ${owner}`);
  expect(error.message).not.toContain("\n");
  expect(error.fields).toEqual([{ field, message: expect.stringContaining(owner) }]);
}

/** Creates the source `body` defines; its id. */
async function created(env: TestEnv, body: { source_id: string }) {
  const response = await call(env, "POST", "/sources", { body });
  expect(response.status, await response.clone().text()).toBe(201);
  return body.source_id;
}

async function sourceCount(env: TestEnv, sourceId: string) {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM sources WHERE source_id = ?").bind(sourceId).first<{ n: number }>();
  return row?.n;
}

describe("one source per destination table", () => {
  it("refuses a new source whose table a disabled source already loads, naming the field and the owner", async () => {
    const { env } = testEnv();
    const dataset = uniqueId("ds");
    const owner = await created(env, kvDefinition(uniqueId("zz"), dataset, "orders", { enabled: false }));
    const intruder = uniqueId("aa");
    await refusedAsTaken(
      await call(env, "POST", "/sources", { body: kvDefinition(intruder, dataset, "orders") }),
      "destination.table",
      owner,
    );
    expect(await sourceCount(env, intruder)).toBe(0);
    // The warehouse names tables with dlt's snake_case: Orders and orders are the same table there.
    await refusedAsTaken(
      await call(env, "POST", "/sources", { body: kvDefinition(intruder, dataset, "Orders") }),
      "destination.table",
      owner,
    );
    // Another dataset, or another table, is free.
    expect((await call(env, "POST", "/sources", { body: kvDefinition(intruder, dataset, "orders_eu") })).status).toBe(201);
  });

  it("refuses a rest_api source one of whose resources is another source's table, naming the resource", async () => {
    const { env } = testEnv();
    const dataset = uniqueId("ds");
    const owner = await created(env, kvDefinition(uniqueId("kv"), dataset, "IssueComments"));
    const api = uniqueId("api");
    const response = await call(env, "POST", "/sources", { body: restDefinition(api, dataset, ["issues", "issue_comments"]) });
    await refusedAsTaken(response, "extract.resources.1.name", owner);
    // A KV source may not take a rest_api source's resource table either.
    const apiOwner = uniqueId("api");
    expect((await call(env, "POST", "/sources", { body: restDefinition(apiOwner, dataset, ["issues"]) })).status).toBe(201);
    await refusedAsTaken(
      await call(env, "POST", "/sources", { body: kvDefinition(uniqueId("kv"), dataset, "issues") }),
      "destination.table",
      apiOwner,
    );
  });

  it("refuses an edit that moves a source onto another's table; edits keeping their tables and enabling pass", async () => {
    const { env } = testEnv();
    const dataset = uniqueId("ds");
    const owner = await created(env, kvDefinition(uniqueId("kv"), dataset, "orders"));
    const other = await created(env, kvDefinition(uniqueId("kv"), dataset, "leads"));
    const moved = await call(env, "PUT", `/sources/${other}`, { body: { version: 1, definition: kvDefinition(other, dataset, "orders") } });
    await refusedAsTaken(moved, "destination.table", owner);
    expect((await json(await call(env, "GET", `/sources/${other}`))).version).toBe(1);

    const described = kvDefinition(other, dataset, "leads", { description: "renamed" });
    expect((await call(env, "PUT", `/sources/${other}`, { body: { version: 1, definition: described } })).status).toBe(200);
    expect((await call(env, "POST", `/sources/${other}/disable`)).status).toBe(200);
    expect((await call(env, "POST", `/sources/${other}/enable`)).status).toBe(200);
  });

  it("a retired source's tables are free again", async () => {
    const { env } = testEnv();
    const dataset = uniqueId("ds");
    const old = await created(env, kvDefinition(uniqueId("kv"), dataset, "orders"));
    expect((await call(env, "DELETE", `/sources/${old}`)).status).toBe(200);
    expect((await call(env, "POST", "/sources", { body: kvDefinition(uniqueId("kv"), dataset, "orders") })).status).toBe(201);
  });

  it("of concurrent creates for one table exactly one lands; unrelated concurrent creates all land", async () => {
    const { env } = testEnv();
    const dataset = uniqueId("ds");
    const ids = Array.from({ length: 6 }, () => uniqueId("kv"));
    const sameTable = await Promise.all(ids.map((id) => call(env, "POST", "/sources", { body: kvDefinition(id, dataset, "orders") })));
    const statuses = sameTable.map((response) => response.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409]);
    const owners = await env.DB.prepare(
      `SELECT COUNT(*) AS n FROM sources WHERE json_extract(definition, '$.destination.dataset') = ?`,
    )
      .bind(dataset)
      .first<{ n: number }>();
    expect(owners?.n).toBe(1);

    const unrelated = await Promise.all(
      ids.map((id, index) => call(env, "POST", "/sources", { body: kvDefinition(`${id}_u`, dataset, `t${index}`) })),
    );
    expect(unrelated.map((response) => response.status)).toEqual([201, 201, 201, 201, 201, 201]);
  });

  it("compares names as dlt's snake_case naming convention writes them", () => {
    // Pairs dlt 1.x's snake_case NamingConvention.normalize_table_identifier maps to one name.
    expect(warehouseName("OrderItems")).toBe(warehouseName("order_items"));
    expect(warehouseName("ORDERS")).toBe(warehouseName("orders"));
    expect(warehouseName("a__b")).toBe(warehouseName("a_b"));
    expect(warehouseName("HTTPServer")).toBe("http_server");
    expect(warehouseName("Orders_")).toBe("ordersx");
    expect(warehouseName("orders")).not.toBe(warehouseName("orders_eu"));
  });
});
