/** Request bodies: one JSON Schema each, through one middleware; every refusal names its fields. */
import { describe, expect, it } from "vitest";
import { parseStatusUpdate, type InternalRunBody, type RunRequest, type StatusUpdate } from "../src/bodies";
import { call, createSource, definition, INTERNAL, json, testEnv, uniqueId } from "./helpers";

type Env = ReturnType<typeof testEnv>["env"];

async function refusedFields(response: Response): Promise<Record<string, string>> {
  expect(response.status).toBe(400);
  const { error } = await json(response);
  expect(error.code).toBe("validation_failed");
  return Object.fromEntries(error.fields.map((f: { field: string; message: string }) => [f.field, f.message]));
}

async function registeredRun(env: Env): Promise<string> {
  const sourceId = await createSource(env);
  const body = { dagster_run_id: `dg-${uniqueId()}`, source_id: sourceId, trigger: "ui" };
  return (await json(await call(env, "POST", "/internal/runs", { token: INTERNAL, body }))).run_id;
}

describe("request bodies", () => {
  it("reads a body sent without a JSON content type, and refuses a missing or malformed one", async () => {
    const { env } = testEnv();
    const id = uniqueId();
    const plain = await call(env, "POST", "/sources", {
      body: JSON.stringify(definition(id)),
      headers: { "content-type": "text/plain" },
    });
    expect(plain.status).toBe(201);
    expect(await refusedFields(await call(env, "POST", "/sources"))).toEqual({ "(body)": "a JSON body is required" });
    expect(await refusedFields(await call(env, "POST", "/sources", { body: "{nope" }))).toEqual({
      "(body)": "body is not valid JSON",
    });
  });

  it("refuses a PUT envelope with unknown keys, no version or a definition that is not an object", async () => {
    const { env } = testEnv();
    const id = await createSource(env);
    const fields = await refusedFields(await call(env, "PUT", `/sources/${id}`, { body: { definition: [], extra: 1 } }));
    expect(fields).toEqual({
      version: "required",
      definition: "must be the source definition (an object)",
      extra: "unknown field",
    });
    // The definition itself is held to config/source.schema.json, its fields named as in a POST.
    const bad = await call(env, "PUT", `/sources/${id}`, { body: { version: 1, definition: { ...definition(id), source_type: "x" } } });
    expect(Object.keys(await refusedFields(bad))).toEqual(["source_type"]);
  });

  it("refuses a status report field by field and applies nothing", async () => {
    const { env } = testEnv();
    const runId = await registeredRun(env);
    const response = await call(env, "POST", `/internal/runs/${runId}/status`, {
      token: INTERNAL,
      body: { status: "done", rows_loaded: -1, tables: { orders: 1.5 }, at: "2026-13-45T00:00:00Z", dagster_run_id: "" },
    });
    expect(await refusedFields(response)).toEqual({
      status: expect.stringContaining("must be one of queued, launching"),
      rows_loaded: "must be an integer >= 0",
      "tables.orders": "must map table names to integer row counts",
      dagster_run_id: "must be a non-empty string",
    });
    // The time's shape passes the schema; the date itself does not exist.
    const badDate = await call(env, "POST", `/internal/runs/${runId}/status`, {
      token: INTERNAL,
      body: { status: "running", at: "2026-13-45T00:00:00Z" },
    });
    expect(await refusedFields(badDate)).toEqual({ at: "must be an ISO-8601 time" });
    const run = await json(await call(env, "GET", `/runs/${runId}`));
    expect(run.status).toBe("launched");
  });

  it("refuses a load error report naming the entry at fault and keeps the previous report", async () => {
    const { env } = testEnv();
    const good = { errors: [{ source_id: "kept", version: 2, message: "boom" }] };
    expect((await call(env, "POST", "/internal/sources/load-errors", { token: INTERNAL, body: good })).status).toBe(200);
    const bad = { errors: [{ source_id: "x", message: "m" }, { source_id: "", version: 0 }] };
    const fields = await refusedFields(await call(env, "POST", "/internal/sources/load-errors", { token: INTERNAL, body: bad }));
    expect(fields).toEqual({
      "errors.1.source_id": "required string",
      "errors.1.version": "must be an integer >= 1 or null",
      "errors.1.message": "required",
    });
    const { results } = await env.DB.prepare("SELECT source_id FROM source_load_errors").all<{ source_id: string }>();
    expect(results.map((r) => r.source_id)).toEqual(["kept"]);
  });
});

describe("body types", () => {
  it("are derived from the schemas: what a schema refuses, the type refuses (tsc checks the expect-error lines)", () => {
    const update: StatusUpdate = parseStatusUpdate({ status: "running", message: null, tables: { orders: 3 } });
    expect(update).toEqual({ status: "running", tables: { orders: 3 } });
    // @ts-expect-error: not a run status of the contract
    const badStatus: StatusUpdate = { status: "lost" };
    // @ts-expect-error: the run request schema allows no other field
    const badRequest: RunRequest = { limit: 1, priority: "high" };
    // @ts-expect-error: a registration names its trigger, one of the contract's
    const badRun: InternalRunBody = { dagster_run_id: "d", source_id: "s", trigger: "cron", partition: null, status: "launched" };
    expect([badStatus, badRequest, badRun]).toHaveLength(3);
  });
});
