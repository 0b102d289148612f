/** rest_api definitions in the Worker: accepted by the generated schema, literal secrets and missing parents
 * refused with the field named, launched in Dagster with every resource table selected, shown on the admin page. */
import { describe, expect, it } from "vitest";
import { signIn } from "./admin_helpers";
import { deliverBatch, call, dagsterDouble, definition, queueMessage, json, testEnv, uniqueId } from "./helpers";

// One source per table: tests that keep their sources pass a dataset of their own.
function restDefinition(sourceId: string, extract: Record<string, unknown> = {}, dataset = "source_api") {
  const base = definition(sourceId, {
    source_type: "rest_api",
    destination: { type: "bigquery", dataset, write_disposition: "merge" },
    extract: {
      client: {
        base_url: "https://api.example.com/v1",
        auth: { type: "bearer", token: { env: "EXAMPLE_API_TOKEN" } },
        paginator: { type: "header_link" },
      },
      resource_defaults: { primary_key: "id" },
      resources: [
        { name: "issues", endpoint: { path: "issues", params: { per_page: 100 } } },
        { name: "issue_comments", endpoint: { path: "issues/{resources.issues.number}/comments" } },
        { name: "repos", selected: false, endpoint: { path: "repos" } },
      ],
      ...extract,
    },
  });
  return base;
}

describe("rest_api sources", () => {
  it("are stored as defined and launched with one asset per loaded resource", async () => {
    const { env } = testEnv();
    const sourceId = uniqueId("api");
    const created = await call(env, "POST", "/sources", { body: restDefinition(sourceId) });
    expect(created.status, await created.clone().text()).toBe(201);
    const stored = await json(await call(env, "GET", `/sources/${sourceId}`));
    expect(stored.definition.extract.client.auth).toEqual({ type: "bearer", token: { env: "EXAMPLE_API_TOKEN" } });

    const { run_id } = await json(await call(env, "POST", `/sources/${sourceId}/runs`));
    const dagster = dagsterDouble(() => ({ launchRun: { __typename: "LaunchRunSuccess", run: { runId: "dg-api", status: "QUEUED" } } }));
    await deliverBatch("dlt-jobs-v2", [queueMessage({ run_id }).message], env);

    expect(dagster.calls[0].variables.executionParams.selector.assetSelection).toEqual([
      { path: ["source_api", "issues"] },
      { path: ["source_api", "issue_comments"] },
    ]);
    // "Is the current version loaded?" asks about the source's first table.
    expect(dagster.assetQueries[0].variables.assetKey).toEqual({ path: ["source_api", "issues"] });
    expect((await json(await call(env, "GET", `/runs/${run_id}`))).status).toBe("launched");
  });

  it("refuses a literal secret, naming the field and never echoing the value", async () => {
    const { env } = testEnv();
    const body = restDefinition(uniqueId("api"), {
      client: { base_url: "https://api.example.com", auth: { type: "bearer", token: "ghp_literal_secret_value" } },
    });
    const response = await call(env, "POST", "/sources", { body });
    expect(response.status).toBe(400);
    const text = await response.text();
    expect(text).toContain("extract.client.auth.token");
    expect(text).toContain('must be {\\"env\\": \\"NAME\\"}');
    expect(text).not.toContain("ghp_literal_secret_value");
  });

  it("refuses a child resource whose parent is missing", async () => {
    const { env } = testEnv();
    const body = restDefinition(uniqueId("api"), {
      resources: [{ name: "comments", primary_key: "id", endpoint: { path: "issues/{resources.issues.number}/comments" } }],
    });
    const response = await call(env, "POST", "/sources", { body });
    expect(response.status).toBe(400);
    const problem = (await json(response)).error.fields.find((f: { field: string }) => f.field === "extract.resources");
    expect(problem.message).toContain("resource 'comments' refers to missing parent resource 'issues'");
  });

  it("are listed on the admin page with their tables", async () => {
    const { env } = testEnv();
    const sourceId = uniqueId("api");
    expect((await call(env, "POST", "/sources", { body: restDefinition(sourceId, {}, "api_listed") })).status).toBe(201);
    const cookie = await signIn(env);
    const page = await (await call(env, "GET", "/admin", { token: null, headers: { Cookie: cookie } })).text();
    expect(page).toContain(sourceId);
    expect(page).toContain("rest_api &rarr; api_listed.issues, api_listed.issue_comments");
  });

  it("take a partition only when the definition has partitions", async () => {
    const { env } = testEnv();
    const plain = uniqueId("api");
    expect((await call(env, "POST", "/sources", { body: restDefinition(plain, {}, "api_plain") })).status).toBe(201);
    const refused = await call(env, "POST", `/sources/${plain}/runs`, { body: { partition: "2026-01-02" } });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain("has no partitions");

    const partitioned = uniqueId("api");
    const body = restDefinition(partitioned, { partitions: { step: "day", start: "2026-01-01" } }, "api_partitioned");
    expect((await call(env, "POST", "/sources", { body })).status).toBe(201);
    const accepted = await call(env, "POST", `/sources/${partitioned}/runs`, { body: { partition: "2026-01-02" } });
    expect(accepted.status, await accepted.clone().text()).toBe(202);
    const early = await call(env, "POST", `/sources/${partitioned}/runs`, { body: { partition: "2025-12-31" } });
    expect(early.status).toBe(400);
  });
});

describe("the Dagster container's environment", () => {
  it("gets the secrets SOURCE_SECRETS lists, and no other binding", async () => {
    const { containerEnv } = await import("../src/container");
    const env = {
      DLT_INTERNAL_TOKEN: "internal",
      DLT_OPERATOR_TOKEN: "operator",
      GITHUB_TOKEN: "ghp_x",
      STRIPE_SECRET_KEY: "sk_x",
      UNLISTED_SECRET: "nope",
      SOURCE_SECRETS: "GITHUB_TOKEN, STRIPE_SECRET_KEY,lower_case,MISSING_ONE",
    } as never;
    expect(containerEnv(env)).toEqual({ DLT_INTERNAL_TOKEN: "internal", GITHUB_TOKEN: "ghp_x", STRIPE_SECRET_KEY: "sk_x" });
  });
});
