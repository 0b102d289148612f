/**
 * The Model Context Protocol server of the Worker (POST /mcp, routes/mcp.ts): tools that mirror the operator API
 * and resources that describe it, on the official SDK's low-level Server.
 *
 * Each tool is one or more requests to the operator API itself, made in-process with the caller's own bearer
 * token and `X-Actor: mcp`: the same routes run (auth and token roles, validation, the ledger writes, the audit
 * trail), so a tool can do nothing the token could not do over HTTP and answers what the route answers. Input
 * schemas are the schemas the routes validate with (config/source.schema.json, bodies.ts).
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CallToolRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  type CallToolResult,
  type Tool,
} from "@modelcontextprotocol/sdk/types.js";
import { CfWorkerJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/cfworker-provider.js";
import sourceSchema from "../../config/source.schema.json";
import { RUN_REQUEST_SCHEMA, SOURCE_UPDATE_SCHEMA } from "./bodies";
import { RUN_STATUSES } from "./contract";
import { receivesDeliveries } from "./source_types";

/** Sends a request to the Worker's own routes (app.fetch) and returns its answer. */
export type Dispatch = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<Response>;

export const MCP_ACTOR = "mcp";
export const SCHEMA_URI = "dlt://schema/source-definition";
export const OPENAPI_URI = "dlt://openapi";

// The definition schema with its $defs at the root of a tool's input schema, so its "#/$defs/..." refs resolve
// there unchanged; its $id is left out (it would move the refs' base away from the tool's schema).
const { $defs: definitionDefs, $id: _definitionId, ...definitionRoot } = sourceSchema as Record<string, unknown>;

function input(properties: Record<string, unknown>, required: string[], withDefinition = false): Tool["inputSchema"] {
  return {
    type: "object",
    properties,
    required,
    additionalProperties: false,
    ...(withDefinition ? { $defs: definitionDefs } : {}),
  } as Tool["inputSchema"];
}

const sourceId = { type: "string", minLength: 1, description: "the source's source_id" };
const runId = { type: "string", minLength: 1, description: "the run's run_id" };

/** Each tool: its description for the agent, its input schema, whether it changes anything. */
const TOOLS: Tool[] = [
  {
    name: "list_sources",
    description: "List sources: definition, version, enabled, last run, load error.",
    inputSchema: input({ include_retired: { type: "boolean", description: "list retired sources too" } }, []),
    annotations: { readOnlyHint: true },
  },
  {
    name: "get_source",
    description: "One source: definition, version (send it back to update_source), versions with their actors, "
      + "load error, and for webhook sources the delivery figures.",
    inputSchema: input({ source_id: sourceId }, ["source_id"]),
    annotations: { readOnlyHint: true },
  },
  {
    name: "validate_definition",
    description: "The Worker's full check of a source definition (schema, schedule, rest_api rules, hosts); "
      + "stores nothing. Answers {valid, problems: [{field, message}]}. The schema is the resource "
      + `${SCHEMA_URI}.`,
    inputSchema: input({ definition: definitionRoot }, ["definition"], true),
    annotations: { readOnlyHint: true },
  },
  {
    name: "create_source",
    description: "Create a source from a definition (checked in full; refused when the id or a destination table is taken).",
    inputSchema: input({ definition: definitionRoot }, ["definition"], true),
    annotations: { readOnlyHint: false, destructiveHint: false },
  },
  {
    name: "update_source",
    description: "Replace a source's definition. `version` is the version last read (get_source); a newer one "
      + "refuses the update with a conflict: read again and redo the change.",
    inputSchema: input(
      { source_id: sourceId, version: SOURCE_UPDATE_SCHEMA.properties.version, definition: definitionRoot },
      ["source_id", "version", "definition"],
      true,
    ),
    annotations: { readOnlyHint: false, destructiveHint: true },
  },
  {
    name: "retire_source",
    description: "Retire a source: disabled for good and gone from Dagster; its versions and runs are kept.",
    inputSchema: input({ source_id: sourceId }, ["source_id"]),
    annotations: { readOnlyHint: false, destructiveHint: true },
  },
  {
    name: "trigger_run",
    description: "Request a run of a source (limit, keys, partition, full_refresh). The same idempotency_key "
      + "finds the run an earlier request made. Poll get_run until a terminal status.",
    inputSchema: input(
      {
        source_id: sourceId,
        ...RUN_REQUEST_SCHEMA.properties,
        idempotency_key: { type: "string", minLength: 1, maxLength: 200, description: "retries find the same run" },
      },
      ["source_id"],
    ),
    annotations: { readOnlyHint: false, destructiveHint: false },
  },
  {
    name: "get_run",
    description: "One run: status, rows per table (tables), message, events, and the Dagster run's page (dagster_url).",
    inputSchema: input({ run_id: runId }, ["run_id"]),
    annotations: { readOnlyHint: true },
  },
  {
    name: "list_runs",
    description: "Runs, newest first, filtered by source and status; pass next_cursor back as cursor for the next page.",
    inputSchema: input(
      {
        source_id: sourceId,
        status: { enum: RUN_STATUSES },
        limit: { type: "integer", minimum: 1, maximum: 200 },
        cursor: { type: "string" },
      },
      [],
    ),
    annotations: { readOnlyHint: true },
  },
  {
    name: "cancel_run",
    description: "Cancel a run that has not finished (its Dagster run too).",
    inputSchema: input({ run_id: runId }, ["run_id"]),
    annotations: { readOnlyHint: false, destructiveHint: true },
  },
];

/** A tool's answer: the route's JSON as text and as structured content; a refusal is a tool error, not a crash. */
async function result(response: Response): Promise<CallToolResult> {
  const body = (await response.json()) as Record<string, unknown>;
  return { content: [{ type: "text", text: JSON.stringify(body) }], structuredContent: body, isError: !response.ok };
}

function refusal(message: string): CallToolResult {
  const body = { error: { code: "validation_failed", message } };
  return { content: [{ type: "text", text: JSON.stringify(body) }], structuredContent: body, isError: true };
}

const segment = (value: unknown) => encodeURIComponent(String(value));

function stringArg(args: Record<string, unknown>, name: string): string | null {
  const value = args[name];
  return typeof value === "string" && value.trim() ? value : null;
}

/**
 * Runs tool `name` with `args` through `dispatch`; `dagsterBase` is where the Worker proxies the Dagster UI
 * (links in get_run).
 */
export async function callTool(
  dispatch: Dispatch,
  name: string,
  args: Record<string, unknown>,
  dagsterBase: string,
): Promise<CallToolResult> {
  const needs = (field: string) => {
    const value = stringArg(args, field);
    if (value === null) throw new MissingArgument(field);
    return value;
  };
  try {
    switch (name) {
      case "list_sources":
        return result(await dispatch("GET", `/sources${args.include_retired === true ? "?include_retired=1" : ""}`));
      case "get_source": {
        const id = segment(needs("source_id"));
        const source = await dispatch("GET", `/sources/${id}`);
        if (!source.ok) return result(source);
        const body = (await source.json()) as { definition?: { source_type?: string } } & Record<string, unknown>;
        const versions = (await (await dispatch("GET", `/sources/${id}/versions`)).json()) as { versions?: unknown };
        const webhook =
          receivesDeliveries(body.definition) ? await (await dispatch("GET", `/sources/${id}/webhook`)).json() : null;
        return result(Response.json({ ...body, versions: versions.versions ?? [], webhook }));
      }
      case "validate_definition":
        return result(await dispatch("POST", "/sources/validate", args.definition ?? null));
      case "create_source":
        return result(await dispatch("POST", "/sources", args.definition ?? null));
      case "update_source":
        return result(
          await dispatch("PUT", `/sources/${segment(needs("source_id"))}`, { version: args.version, definition: args.definition }),
        );
      case "retire_source":
        return result(await dispatch("DELETE", `/sources/${segment(needs("source_id"))}`));
      case "trigger_run": {
        const { source_id: _id, idempotency_key: key, ...request } = args;
        const headers: Record<string, string> = typeof key === "string" ? { "Idempotency-Key": key } : {};
        return result(await dispatch("POST", `/sources/${segment(needs("source_id"))}/runs`, request, headers));
      }
      case "get_run": {
        const response = await dispatch("GET", `/runs/${segment(needs("run_id"))}`);
        if (!response.ok) return result(response);
        const run = (await response.json()) as { dagster_run_id?: string | null } & Record<string, unknown>;
        const dagster_url = run.dagster_run_id ? `${dagsterBase}/dagster/runs/${segment(run.dagster_run_id)}` : null;
        return result(Response.json({ ...run, dagster_url }));
      }
      case "list_runs": {
        const query = new URLSearchParams();
        for (const field of ["source_id", "status", "cursor"]) {
          const value = stringArg(args, field);
          if (value !== null) query.set(field, value);
        }
        if (args.limit !== undefined) query.set("limit", String(args.limit));
        return result(await dispatch("GET", `/runs${query.size ? `?${query}` : ""}`));
      }
      case "cancel_run":
        return result(await dispatch("POST", `/runs/${segment(needs("run_id"))}/cancel`));
      default:
        return refusal(`unknown tool ${name}`);
    }
  } catch (err) {
    if (err instanceof MissingArgument) return refusal(`${err.field}: required non-empty string`);
    throw err;
  }
}

class MissingArgument extends Error {
  constructor(readonly field: string) {
    super(field);
  }
}

/** A server for one request (the transport is stateless: nothing is kept between requests). */
export function mcpServer(dispatch: Dispatch, version: string, dagsterBase: string, openapi: () => unknown): Server {
  const server = new Server(
    { name: "dlt-orchestrator", version },
    {
      capabilities: { tools: {}, resources: {} },
      // The SDK's default validator compiles schemas to code, which workerd does not allow.
      jsonSchemaValidator: new CfWorkerJsonSchemaValidator(),
      instructions:
        "Tools of the dlt platform's operator API. Validate a definition before creating it; update_source needs the "
        + "version get_source returned; poll get_run until succeeded, failed, canceled or dead_lettered.",
    },
  );
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, async (request) =>
    callTool(dispatch, request.params.name, (request.params.arguments ?? {}) as Record<string, unknown>, dagsterBase),
  );
  server.setRequestHandler(ListResourcesRequestSchema, async () => ({
    resources: [
      {
        uri: SCHEMA_URI,
        name: "source-definition-schema",
        description: "JSON Schema of a source definition (config/source.schema.json)",
        mimeType: "application/schema+json",
      },
      { uri: OPENAPI_URI, name: "openapi", description: "OpenAPI 3.1 document of the Worker (/openapi.json)", mimeType: "application/json" },
    ],
  }));
  server.setRequestHandler(ReadResourceRequestSchema, async (request) => {
    const { uri } = request.params;
    const text =
      uri === SCHEMA_URI ? JSON.stringify(sourceSchema) : uri === OPENAPI_URI ? JSON.stringify(openapi()) : null;
    if (text === null) throw new Error(`no resource ${uri}`);
    return { contents: [{ uri, mimeType: uri === SCHEMA_URI ? "application/schema+json" : "application/json", text }] };
  });
  return server;
}
