/**
 * POST /mcp: the Model Context Protocol's streamable HTTP transport (mcp.ts), stateless (no session id: each
 * request gets a fresh server and transport) and answering JSON. Bearer token as the operator API: the operator
 * token or the read-only one (whose writing tools are refused 403 read_only by the routes they call).
 */
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { Hono, type Context } from "hono";
import type { AppEnv, Env } from "../env";
import { ApiError } from "../errors";
import { background } from "../http";
import { MCP_ACTOR, mcpServer, type Dispatch } from "../mcp";
import { requireReader } from "../roles";

/** What the MCP routes need of the app: its fetch (tools call the API's routes) and the OpenAPI document. */
export interface McpHost {
  fetch: (request: Request, env: Env, ctx?: ExecutionContext) => Response | Promise<Response>;
  version: string;
  openapi: () => unknown;
}

function executionContext(c: Context<AppEnv>): ExecutionContext | undefined {
  try {
    return c.executionCtx;
  } catch {
    return undefined;
  }
}

export function mcpRoutes(host: McpHost): Hono<AppEnv> {
  const mcp = new Hono<AppEnv>();

  mcp.post("/mcp", requireReader, async (c) => {
    const authorization = c.req.header("Authorization") as string;
    const ctx = executionContext(c);
    // The caller's own token goes with every request a tool makes, so its role decides there as over HTTP.
    const dispatch: Dispatch = (method, path, body, headers = {}) =>
      Promise.resolve(
        host.fetch(
          new Request(new URL(path, c.req.url), {
            method,
            headers: { Authorization: authorization, "X-Actor": MCP_ACTOR, "content-type": "application/json", ...headers },
            body: body === undefined ? undefined : JSON.stringify(body),
          }),
          c.env,
          ctx,
        ),
      );
    const base = (c.env.DLT_ORCHESTRATOR_URL || new URL(c.req.url).origin).replace(/\/+$/, "");
    const server = mcpServer(dispatch, host.version, base, host.openapi);
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    await server.connect(transport);
    const response = await transport.handleRequest(c.req.raw);
    // The JSON answer is complete; the server and transport of this request are done.
    background(c, server.close());
    return response;
  });

  // Stateless: no stream for server-initiated messages (GET) and no session to end (DELETE).
  for (const method of ["GET", "DELETE"] as const) {
    mcp.on(method, "/mcp", requireReader, () => {
      throw new ApiError(405, "method_not_allowed", "/mcp takes POST only (stateless streamable HTTP)", undefined, {
        Allow: "POST",
      });
    });
  }
  return mcp;
}
