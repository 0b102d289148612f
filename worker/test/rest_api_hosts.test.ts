/** rest_api definitions naming the platform's own network as base_url (or OAuth2 token URL) are refused at create
 * and update, unless DLT_PLATFORM_ALLOW_PRIVATE_HOSTS lists the host; Dagster refuses them again when a run starts,
 * names resolved (dlt_platform/source_types/rest_api/hosts.py). */
import { describe, expect, it } from "vitest";
import { call, definition, json, testEnv, uniqueId } from "./helpers";

function restDefinition(sourceId: string, client: Record<string, unknown>) {
  return definition(sourceId, {
    source_type: "rest_api",
    destination: { type: "bigquery", dataset: `api_${sourceId}`, write_disposition: "replace" },
    extract: { client, resources: [{ name: "issues", endpoint: { path: "issues" } }] },
  });
}

async function refusal(env: ReturnType<typeof testEnv>["env"], client: Record<string, unknown>) {
  const response = await call(env, "POST", "/sources", { body: restDefinition(uniqueId("api"), client) });
  return { status: response.status, body: await json(response) };
}

describe("rest_api base_url hosts", () => {
  it("refuses the metadata address, loopback, private ranges and numeric spellings of them", async () => {
    const { env } = testEnv();
    for (const [url, where] of [
      ["http://169.254.169.254/latest", "169.254.169.254:80"],
      ["http://127.0.0.1:8790", "127.0.0.1:8790"],
      ["https://10.1.2.3/v1", "10.1.2.3:443"],
      ["http://172.20.0.1", "172.20.0.1:80"],
      ["http://192.168.1.10", "192.168.1.10:80"],
      ["http://0.0.0.0:3000", "0.0.0.0:3000"],
      ["http://2130706433:3000", "127.0.0.1:3000"], // 127.0.0.1 as one number
      ["http://localhost:3000", "localhost:3000"],
    ]) {
      const { status, body } = await refusal(env, { base_url: url });
      expect(status, url).toBe(400);
      expect(body.error.fields).toEqual([
        {
          field: "extract.client.base_url",
          message: `${where} is a loopback, link-local, private or unspecified address: sources may not reach it, unless DLT_PLATFORM_ALLOW_PRIVATE_HOSTS lists ${where}`,
        },
      ]);
    }
  });

  it("refuses the Worker's own host and a private OAuth2 token URL", async () => {
    const { env } = testEnv({ DLT_ORCHESTRATOR_URL: "https://dlt-orchestrator.example.workers.dev" });
    for (const url of ["https://orchestrator.test/internal", "https://DLT-orchestrator.example.workers.dev"]) {
      const { status, body } = await refusal(env, { base_url: url });
      expect(status, url).toBe(400);
      expect(body.error.fields[0].field).toBe("extract.client.base_url");
      expect(body.error.fields[0].message).toContain("is the orchestrator Worker's own host");
    }
    const oauth = await refusal(env, {
      base_url: "https://api.example.com",
      auth: {
        type: "oauth2_client_credentials",
        access_token_url: "http://10.0.0.5/token",
        client_id: "loader",
        client_secret: { env: "API_CLIENT_SECRET" },
      },
    });
    expect(oauth.status).toBe(400);
    expect(oauth.body.error.fields.map((f: { field: string }) => f.field)).toEqual(["extract.client.auth.access_token_url"]);
  });

  it("accepts public hosts, and a private host the deployment allows, on create and update", async () => {
    const { env } = testEnv({ DLT_PLATFORM_ALLOW_PRIVATE_HOSTS: "127.0.0.1:8790, 10.0.0.7" });
    const sourceId = uniqueId("api");
    const created = await call(env, "POST", "/sources", { body: restDefinition(sourceId, { base_url: "http://127.0.0.1:8790" }) });
    expect(created.status, await created.clone().text()).toBe(201);
    expect((await refusal(env, { base_url: "http://10.0.0.7:9000/v1" })).status).toBe(201); // any port of a bare host
    expect((await refusal(env, { base_url: "http://127.0.0.1:8791" })).status).toBe(400); // that port only
    expect((await refusal(env, { base_url: "https://api.example.com/v1" })).status).toBe(201);

    const { version } = await json(await call(env, "GET", `/sources/${sourceId}`));
    const moved = restDefinition(sourceId, { base_url: "http://169.254.169.254" });
    const updated = await call(env, "PUT", `/sources/${sourceId}`, { body: { version, definition: moved } });
    expect(updated.status).toBe(400);
    expect((await json(updated)).error.fields[0].field).toBe("extract.client.base_url");
  });
});
