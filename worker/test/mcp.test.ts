/** /mcp with the official TypeScript client over the streamable HTTP transport, its fetch served by the Worker in-process. */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import sourceSchema from "../../config/source.schema.json";
import { app } from "../src/app";
import type { Env } from "../src/env";
import { call, definition, json, OPERATOR, testEnv, uniqueId } from "./helpers";

const READONLY = "test-readonly-token";

/** A connected client whose requests carry `token` and reach `env`'s Worker without a network. */
async function connect(env: Env, token: string | null) {
  const transport = new StreamableHTTPClientTransport(new URL("https://orchestrator.test/mcp"), {
    requestInit: token ? { headers: { Authorization: `Bearer ${token}` } } : {},
    fetch: async (url, init) => {
      const ctx = createExecutionContext();
      const response = await app.fetch(new Request(url, init), env, ctx);
      await waitOnExecutionContext(ctx);
      return response;
    },
  });
  const client = new Client({ name: "mcp-test", version: "1" });
  await client.connect(transport);
  return client;
}

async function tool(client: Client, name: string, args: Record<string, unknown>) {
  const result = await client.callTool({ name, arguments: args });
  return { isError: Boolean(result.isError), body: result.structuredContent as Record<string, any> };
}

async function countRows(db: D1Database) {
  const row = await db
    .prepare("SELECT (SELECT COUNT(*) FROM sources) AS sources, (SELECT COUNT(*) FROM source_versions) AS versions, (SELECT COUNT(*) FROM runs) AS runs")
    .first();
  return row;
}

describe("MCP server", () => {
  it("initializes, lists the tools with the validators' schemas, and serves the definition schema", async () => {
    const { env } = testEnv();
    const client = await connect(env, OPERATOR);
    expect(client.getServerVersion()?.name).toBe("dlt-orchestrator");
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      [
        "cancel_run",
        "create_source",
        "get_run",
        "get_source",
        "list_runs",
        "list_sources",
        "retire_source",
        "trigger_run",
        "update_source",
        "validate_definition",
      ].sort(),
    );
    const create = tools.find((t) => t.name === "create_source")!;
    expect((create.inputSchema as any).$defs).toEqual(sourceSchema.$defs);
    expect((create.inputSchema.properties as any).definition.required).toEqual(sourceSchema.required);
    const resource = await client.readResource({ uri: "dlt://schema/source-definition" });
    const [content] = resource.contents;
    expect("text" in content && JSON.parse(content.text)).toEqual(sourceSchema);
    await client.close();
  });

  it("runs an agent's flow: validate a broken definition, fix, create, update with the version read, run, read", async () => {
    const { env, jobs } = testEnv();
    const client = await connect(env, OPERATOR);
    const sourceId = uniqueId("mcp");
    const before = await countRows(env.DB);

    const broken = definition(sourceId, { schedule: "every hour", destination: { dataset: "d" } });
    const checked = await tool(client, "validate_definition", { definition: broken });
    expect(checked.isError).toBe(false);
    expect(checked.body.valid).toBe(false);
    const fields = checked.body.problems.map((p: { field: string }) => p.field);
    expect(fields).toEqual(expect.arrayContaining(["schedule", "destination.table"]));
    expect(await countRows(env.DB)).toEqual(before);

    const fixed = definition(sourceId);
    expect((await tool(client, "validate_definition", { definition: fixed })).body).toEqual({ valid: true, problems: [] });
    const created = await tool(client, "create_source", { definition: fixed });
    expect(created.isError).toBe(false);
    expect(created.body).toMatchObject({ source_id: sourceId, version: 1, updated_by: "mcp" });

    // An update naming an old version is refused; with the version read it lands.
    const changed = definition(sourceId, { description: "changed by an agent" });
    const stale = await tool(client, "update_source", { source_id: sourceId, version: 7, definition: changed });
    expect(stale.isError).toBe(true);
    expect(stale.body.error.code).toBe("conflict");
    const read = await tool(client, "get_source", { source_id: sourceId });
    expect(read.body.versions.map((v: { changed_by: string }) => v.changed_by)).toEqual(["mcp"]);
    const updated = await tool(client, "update_source", { source_id: sourceId, version: read.body.version, definition: changed });
    expect(updated.body).toMatchObject({ version: 2, updated_by: "mcp" });

    const sent = jobs.sent.length;
    const started = await tool(client, "trigger_run", { source_id: sourceId, limit: 10, idempotency_key: "agent-1" });
    expect(started.isError).toBe(false);
    const again = await tool(client, "trigger_run", { source_id: sourceId, limit: 10, idempotency_key: "agent-1" });
    expect(again.body.run_id).toBe(started.body.run_id);
    expect(jobs.sent.length).toBe(sent + 1);
    const run = await tool(client, "get_run", { run_id: started.body.run_id });
    expect(run.body).toMatchObject({ run_id: started.body.run_id, source_id: sourceId, request: { limit: 10 } });
    expect(run.body.events.length).toBeGreaterThan(0);
    const listed = await tool(client, "list_runs", { source_id: sourceId, limit: 5 });
    expect(listed.body.runs.map((r: { run_id: string }) => r.run_id)).toEqual([started.body.run_id]);

    const canceled = await tool(client, "cancel_run", { run_id: started.body.run_id });
    expect(canceled.body.status).toBe("canceled");
    const retired = await tool(client, "retire_source", { source_id: sourceId });
    expect(retired.body.retired_at).toBeTruthy();
    await client.close();
  });

  it("refuses no token and a wrong token at the door, and the read-only token's writes, storing nothing", async () => {
    const { env, jobs } = testEnv({ DLT_READONLY_TOKEN: READONLY });
    const sourceId = uniqueId("mcp_ro");
    expect((await call(env, "POST", "/sources", { body: definition(sourceId) })).status).toBe(201);
    const before = await countRows(env.DB);

    await expect(connect(env, null)).rejects.toThrow(/unauthorized/);
    await expect(connect(env, "wrong-token")).rejects.toThrow(/unauthorized/);

    const client = await connect(env, READONLY);
    const listed = await tool(client, "list_sources", {});
    expect(listed.body.sources.map((s: { source_id: string }) => s.source_id)).toContain(sourceId);
    expect((await tool(client, "validate_definition", { definition: definition(uniqueId("x")) })).body.valid).toBe(true);
    const read = await tool(client, "get_source", { source_id: sourceId });
    for (const [name, args] of [
      ["create_source", { definition: definition(uniqueId("mcp_ro_new")) }],
      ["update_source", { source_id: sourceId, version: read.body.version, definition: definition(sourceId, { description: "x" }) }],
      ["retire_source", { source_id: sourceId }],
      ["trigger_run", { source_id: sourceId }],
    ] as const) {
      const refused = await tool(client, name, args);
      expect(refused.isError, name).toBe(true);
      expect(refused.body.error.code, name).toBe("read_only");
    }
    expect(await countRows(env.DB)).toEqual(before);
    expect(jobs.sent.length).toBe(0);
    await client.close();
  });

  it("answers GET and DELETE with 405: the server is stateless", async () => {
    const { env } = testEnv();
    for (const method of ["GET", "DELETE"]) {
      const response = await call(env, method, "/mcp", { headers: { Accept: "text/event-stream" } });
      expect(response.status).toBe(405);
      expect((await json(response)).error.code).toBe("method_not_allowed");
    }
  });
});
