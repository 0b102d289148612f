/** GET /openapi.json: every route of the app's route table, the bodies the routes validate with, live answers inside it. */
import { Validator, type Schema } from "@cfworker/json-schema";
import { env as baseEnv } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import sourceSchema from "../../config/source.schema.json";
import { app } from "../src/app";
import { RUN_REQUEST_SCHEMA, STATUS_UPDATE_SCHEMA } from "../src/bodies";
import { MIDDLEWARE_MOUNTS, openApiDocument, openApiPath } from "../src/openapi";
import { call, definition, INTERNAL, json, testEnv, uniqueId } from "./helpers";

type Doc = { paths: Record<string, Record<string, any>>; components: { schemas: Record<string, any> } };

async function documentOf(): Promise<Doc> {
  const { env } = testEnv();
  const response = await call(env, "GET", "/openapi.json", { token: null });
  expect(response.status).toBe(200);
  return json<Doc>(response);
}

/** Every "$ref" string in `node`. */
function refs(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((item) => refs(item, found));
  else if (node && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (key === "$ref" && typeof value === "string") found.push(value);
      else refs(value, found);
    }
  }
  return found;
}

/** A check of a live answer against the document's schema for that operation and status. */
function answerCheck(doc: Doc) {
  return (method: string, path: string, status: number, body: unknown) => {
    const responses = doc.paths[path][method.toLowerCase()].responses;
    const declared = responses[String(status)] ?? responses.default;
    const schema = declared.content["application/json"].schema;
    const validator = new Validator({ ...schema, components: doc.components } as Schema, "2020-12", false);
    const result = validator.validate(body);
    return { valid: result.valid, errors: JSON.stringify(result.errors.slice(0, 3)) };
  };
}

describe("OpenAPI document", () => {
  it("describes every route registered in the app, and is public", async () => {
    const doc = await documentOf();
    const { undocumented } = openApiDocument(app.routes, "test");
    expect(undocumented).toEqual([]);
    const registered = new Set(
      app.routes.map((r) => `${r.method} ${r.path}`).filter((key) => !MIDDLEWARE_MOUNTS.has(key)),
    );
    // The operator and internal APIs at least: the route table must not come back nearly empty.
    expect(registered.size).toBeGreaterThan(30);
    for (const key of registered) {
      const [method, path] = key.split(" ");
      const methods = method === "ALL" ? ["get", "post"] : [method.toLowerCase()];
      for (const m of methods) expect(doc.paths[openApiPath(path)]?.[m], key).toBeDefined();
    }
  });

  it("holds no secret of the deployment", async () => {
    const text = JSON.stringify(await documentOf());
    const secrets = [baseEnv.DLT_OPERATOR_TOKEN, baseEnv.DLT_INTERNAL_TOKEN, baseEnv.ADMIN_SESSION_KEY];
    for (const secret of secrets) {
      expect(secret).toBeTruthy();
      expect(text).not.toContain(secret as string);
    }
  });

  it("takes its body schemas from the validators and resolves every reference", async () => {
    const doc = await documentOf();
    expect(doc.paths["/sources/{source_id}/runs"].post.requestBody.content["application/json"].schema).toEqual(
      JSON.parse(JSON.stringify(RUN_REQUEST_SCHEMA)),
    );
    expect(doc.paths["/internal/runs/{run_id}/status"].post.requestBody.content["application/json"].schema).toEqual(
      JSON.parse(JSON.stringify(STATUS_UPDATE_SCHEMA)),
    );
    // The definition: config/source.schema.json, its $defs lifted beside it.
    const { $defs, $id: _id, ...root } = sourceSchema as Record<string, any>;
    expect(refs(doc.components.schemas.SourceDefinition).length).toBeGreaterThan(0);
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining([...Object.keys($defs), "SourceDefinition"]));
    expect(doc.components.schemas.SourceDefinition.required).toEqual(root.required);
    for (const target of refs(doc)) {
      const match = /^#\/components\/schemas\/(.+)$/.exec(target);
      expect(match && doc.components.schemas[match[1]], target).toBeTruthy();
    }
  });

  it("admits the live answers of the operator and internal APIs, refusals included", async () => {
    const doc = await documentOf();
    const admits = answerCheck(doc);
    const check = (method: string, path: string, status: number, body: unknown) => {
      const { valid, errors } = admits(method, path, status, body);
      expect(valid, `${method} ${path} ${status}: ${errors}`).toBe(true);
    };
    // The check itself refuses what the document does not describe.
    expect(admits("GET", "/sources/{source_id}", 200, { source_id: "x" }).valid).toBe(false);
    expect(admits("GET", "/runs", 400, { error: { code: 1 } }).valid).toBe(false);
    expect(admits("GET", "/runs/{run_id}", 200, { run_id: "r", source_id: "s", status: "nope", trigger: "api", created_at: "t" }).valid).toBe(false);
    const { env } = testEnv({ DLT_READONLY_TOKEN: "test-readonly-token" });
    const sourceId = uniqueId("oa");
    const cases: [string, string, string, Parameters<typeof call>[3]][] = [
      ["POST", "/sources", "/sources", { body: definition(sourceId) }],
      ["GET", "/sources", "/sources", {}],
      ["GET", `/sources/${sourceId}`, "/sources/{source_id}", {}],
      ["GET", `/sources/${sourceId}/versions`, "/sources/{source_id}/versions", {}],
      ["POST", "/sources/validate", "/sources/validate", { body: { source_id: "x" } }],
      ["POST", `/sources/${sourceId}/runs`, "/sources/{source_id}/runs", { body: { limit: 5 } }],
      ["GET", "/runs", "/runs", {}],
      ["GET", "/runs?limit=0", "/runs", {}],
      ["POST", "/sources", "/sources", { body: { source_id: 1 } }],
      ["POST", "/sources", "/sources", { token: "test-readonly-token", body: definition(uniqueId("oa")) }],
      ["GET", "/sources", "/sources", { token: null }],
      ["GET", "/sources/nope", "/sources/{source_id}", {}],
      ["PUT", `/sources/${sourceId}`, "/sources/{source_id}", { body: { version: 7, definition: definition(sourceId) } }],
      ["GET", "/internal/sources", "/internal/sources", { token: INTERNAL }],
      ["GET", "/health", "/health", { token: null }],
    ];
    let runId = "";
    for (const [method, path, documented, options] of cases) {
      const response = await call(env, method, path, options);
      expect(response.status, `${method} ${path}`).toBeLessThan(500);
      const body = await json(response);
      if (body.run_id) runId = body.run_id;
      check(method, documented, response.status, body);
    }
    const run = await call(env, "GET", `/runs/${runId}`);
    check("GET", "/runs/{run_id}", run.status, await json(run));
  });
});
