/**
 * The run launcher's internal API over the RUNNER binding (a Durable Object double of @cloudflare/containers'
 * Container): a run's container gets its command and an environment with its own source's secrets and no other's,
 * its start, exit code and stop are run events in D1, stop is SIGTERM then SIGKILL after the grace.
 */
import { env as bindings } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { getContainer } from "@cloudflare/containers";
import { RUN_SOURCE_ENV } from "../src/contract";
import { call, createSource, definition, INTERNAL, json, OPERATOR, registeredRun, testEnv, uniqueId } from "./helpers";

type RunnerDouble = {
  __seen(): Promise<{ starts: { entrypoint: string[]; envVars: Record<string, string> }[]; signals: string[] }>;
  __exit(code: number): Promise<void>;
};

function runnerEnv(overrides: Record<string, string> = {}) {
  return testEnv({
    DLT_ORCHESTRATOR_URL: "https://orchestrator.test",
    DAGSTER_PG_URL: "postgresql://dagster:pw@db.test/dagster",
    OWN_API_TOKEN: "own-token-value",
    OTHER_API_TOKEN: "other-token-value",
    DLT_SOURCE_SECRETS: JSON.stringify({ OWN_API_TOKEN: ["api.own.test"], OTHER_API_TOKEN: ["api.other.test"] }),
    ...overrides,
  } as never);
}

function restDefinition(sourceId: string, secret: string, host: string) {
  return definition(sourceId, {
    source_type: "rest_api",
    destination: { type: "bigquery", dataset: `source_${sourceId}`, write_disposition: "merge" },
    extract: {
      client: { base_url: `https://${host}/v1`, auth: { type: "bearer", token: { env: secret } } },
      resource_defaults: { primary_key: "id" },
      resources: [{ name: "items", endpoint: { path: "items" } }],
    },
  });
}

async function events(e: ReturnType<typeof runnerEnv>["env"], runId: string): Promise<{ message: string; data: any }[]> {
  return (await json(await call(e, "GET", `/runs/${runId}`, { token: OPERATOR }))).events;
}

const runner = (name: string, binding: string = "RUNNER") =>
  getContainer((bindings as unknown as Record<string, never>)[binding], name) as unknown as RunnerDouble;

describe("run containers", () => {
  it("start a run with its command and only its own source's secrets, and record start and exit in D1", async () => {
    const { env } = runnerEnv();
    const sourceId = uniqueId("api");
    const created = await call(env, "POST", "/sources", { body: restDefinition(sourceId, "OWN_API_TOKEN", "api.own.test") });
    expect(created.status).toBe(201);
    await call(env, "POST", "/sources", { body: restDefinition(uniqueId("api"), "OTHER_API_TOKEN", "api.other.test") });
    const { runId, dagsterRunId } = await registeredRun(env, sourceId);
    const command = ["dagster", "api", "execute_run", '{"__class__": "ExecuteRunArgs"}'];
    const started = await call(env, "POST", "/internal/run-containers", {
      token: INTERNAL,
      body: { dagster_run_id: dagsterRunId, run_id: runId, source_id: sourceId, command, settings: { DAGSTER_HOME: "/app/dagster" } },
    });
    expect(started.status).toBe(201);
    expect(await json(started)).toMatchObject({ name: dagsterRunId, started: true, status: "running", run_id: runId });

    const { starts } = await runner(dagsterRunId).__seen();
    expect(starts).toHaveLength(1);
    expect(starts[0].entrypoint).toEqual(command);
    const given = starts[0].envVars;
    expect(given).toMatchObject({
      OWN_API_TOKEN: "own-token-value",
      DLT_INTERNAL_TOKEN: INTERNAL,
      DAGSTER_PG_URL: "postgresql://dagster:pw@db.test/dagster",
      DAGSTER_HOME: "/app/dagster",
    });
    expect(JSON.parse(given.DLT_SOURCE_SECRETS)).toEqual({ OWN_API_TOKEN: ["api.own.test"] });
    const text = JSON.stringify(given);
    for (const foreign of ["other-token-value", "OTHER_API_TOKEN", OPERATOR, "test-admin-session-key", "test-github-hook-secret"]) {
      expect(text).not.toContain(foreign);
    }

    // A repeated launch of the same run starts nothing.
    const again = await call(env, "POST", "/internal/run-containers", {
      token: INTERNAL,
      body: { dagster_run_id: dagsterRunId, source_id: sourceId, command },
    });
    expect(again.status).toBe(200);
    expect((await runner(dagsterRunId).__seen()).starts).toHaveLength(1);

    await runner(dagsterRunId).__exit(3);
    const state = await json(await call(env, "GET", `/internal/run-containers/${dagsterRunId}`, { token: INTERNAL }));
    expect(state).toEqual({ name: dagsterRunId, instance_type: "standard-1", status: "exited", exit_code: 3, reason: "exit" });
    await call(env, "GET", `/internal/run-containers/${dagsterRunId}`, { token: INTERNAL });
    const recorded = await events(env, runId);
    const mine = recorded.filter((event) => event.message.startsWith("run container"));
    expect(mine.map((event) => event.message)).toEqual(["run container started", "run container exited with code 3"]);
    // Names of what the run received, never values.
    expect(mine[0].data.env_names).toContain("OWN_API_TOKEN");
    expect(JSON.stringify(recorded)).not.toContain("own-token-value");
  });

  it("start a run in the runner class of its source's runner.instance_type and record the size", async () => {
    const { env } = runnerEnv();
    const sourceId = await createSource(env, uniqueId(), { runner: { instance_type: "standard-4" } });
    const { runId, dagsterRunId } = await registeredRun(env, sourceId);
    const started = await call(env, "POST", "/internal/run-containers", {
      token: INTERNAL,
      body: { dagster_run_id: dagsterRunId, run_id: runId, source_id: sourceId, command: ["true"] },
    });
    expect(started.status).toBe(201);
    expect(await json(started)).toMatchObject({ started: true, instance_type: "standard-4", status: "running" });
    expect((await runner(dagsterRunId, "RUNNER_STANDARD_4").__seen()).starts).toHaveLength(1);
    expect((await runner(dagsterRunId, "RUNNER").__seen()).starts).toHaveLength(0);
    const [event] = (await events(env, runId)).filter((item) => item.message === "run container started");
    expect(event.data.instance_type).toBe("standard-4");

    // State and stop look in the class the start named; the default class knows nothing of this run.
    const path = `/internal/run-containers/${dagsterRunId}`;
    expect((await json(await call(env, "GET", path, { token: INTERNAL }))).status).toBe("not_found");
    const running = await json(await call(env, "GET", `${path}?instance_type=standard-4`, { token: INTERNAL }));
    expect(running).toEqual({ name: dagsterRunId, instance_type: "standard-4", status: "running" });
    const stopped = await call(env, "POST", `${path}/stop?instance_type=standard-4`, { token: INTERNAL, body: { grace_seconds: 0 } });
    expect(stopped.status).toBe(202);
    expect((await runner(dagsterRunId, "RUNNER_STANDARD_4").__seen()).signals).toEqual(["SIGTERM", "SIGKILL"]);
  });

  it("start a run of a source without runner in the default standard-1 class", async () => {
    const { env } = runnerEnv();
    const sourceId = await createSource(env);
    const { runId, dagsterRunId } = await registeredRun(env, sourceId);
    const started = await json(
      await call(env, "POST", "/internal/run-containers", {
        token: INTERNAL,
        body: { dagster_run_id: dagsterRunId, run_id: runId, source_id: sourceId, command: ["true"] },
      }),
    );
    expect(started.instance_type).toBe("standard-1");
    expect((await runner(dagsterRunId, "RUNNER").__seen()).starts).toHaveLength(1);
    const [event] = (await events(env, runId)).filter((item) => item.message === "run container started");
    expect(event.data.instance_type).toBe("standard-1");
  });

  it("name the run's source to its run worker only when the run's tag names it", async () => {
    const { env } = runnerEnv();
    const sourceId = await createSource(env);
    const tagged = await registeredRun(env, sourceId);
    await call(env, "POST", "/internal/run-containers", {
      token: INTERNAL,
      body: { dagster_run_id: tagged.dagsterRunId, run_id: tagged.runId, source_id: sourceId, command: ["true"] },
    });
    expect((await runner(tagged.dagsterRunId).__seen()).starts[0].envVars[RUN_SOURCE_ENV]).toBe(sourceId);
    // Launched from Dagster's UI: no tag, the ledger knows the run's source, the run worker builds every source.
    const untagged = await registeredRun(env, sourceId);
    await call(env, "POST", "/internal/run-containers", {
      token: INTERNAL,
      body: { dagster_run_id: untagged.dagsterRunId, command: ["true"] },
    });
    const [start] = (await runner(untagged.dagsterRunId).__seen()).starts;
    expect(start.envVars.DLT_INTERNAL_TOKEN).toBe(INTERNAL);
    expect(start.envVars).not.toHaveProperty(RUN_SOURCE_ENV);
  });

  it("refuses a size whose runner class this deployment lacks, naming the binding", async () => {
    const { env } = runnerEnv({ RUNNER_BASIC: undefined } as never);
    const sourceId = await createSource(env, uniqueId(), { runner: { instance_type: "basic" } });
    const { dagsterRunId } = await registeredRun(env, sourceId);
    const refused = await call(env, "POST", "/internal/run-containers", {
      token: INTERNAL,
      body: { dagster_run_id: dagsterRunId, source_id: sourceId, command: ["true"] },
    });
    expect(refused.status).toBe(503);
    expect((await json(refused)).error.message).toBe(
      "runner.instance_type basic needs the RUNNER_BASIC binding (its runner class in wrangler.toml)",
    );
    const badType = await call(env, "GET", `/internal/run-containers/${dagsterRunId}?instance_type=huge`, { token: INTERNAL });
    expect(badType.status).toBe(400);
    expect((await json(badType)).error.message).toContain("instance_type");
  });

  it("answers not_found for a run that never had a container", async () => {
    const { env } = runnerEnv();
    const response = await call(env, "GET", `/internal/run-containers/${uniqueId("dg")}`, { token: INTERNAL });
    expect(response.status).toBe(200);
    expect((await json(response)).status).toBe("not_found");
  });

  it("stops with SIGTERM, then SIGKILL after the grace, and records the stop", async () => {
    const { env } = runnerEnv();
    const sourceId = await createSource(env);
    const { runId, dagsterRunId } = await registeredRun(env, sourceId);
    await call(env, "POST", "/internal/run-containers", {
      token: INTERNAL,
      body: { dagster_run_id: dagsterRunId, source_id: sourceId, command: ["true"] },
    });
    const stopped = await call(env, "POST", `/internal/run-containers/${dagsterRunId}/stop`, {
      token: INTERNAL,
      body: { grace_seconds: 0, reason: "terminated from the Dagster UI" },
    });
    expect(stopped.status).toBe(202);
    // call() waits for the response's background work: the kill after the grace has happened.
    expect((await runner(dagsterRunId).__seen()).signals).toEqual(["SIGTERM", "SIGKILL"]);
    const state = await json(await call(env, "GET", `/internal/run-containers/${dagsterRunId}`, { token: INTERNAL }));
    expect(state).toMatchObject({ status: "exited", exit_code: 137 });
    const messages = (await events(env, runId)).map((event) => event.message);
    expect(messages).toContain("run container stop requested: terminated from the Dagster UI");
    expect(messages).toContain("run container exited with code 137");
  });

  it("refuses bad requests naming the field, and anyone without the internal token", async () => {
    const { env } = runnerEnv();
    const unauthorized = await call(env, "POST", "/internal/run-containers", {
      token: OPERATOR,
      body: { dagster_run_id: "x", command: ["true"] },
    });
    expect(unauthorized.status).toBe(401);
    const secretSetting = await call(env, "POST", "/internal/run-containers", {
      token: INTERNAL,
      body: { dagster_run_id: "run-1", command: ["true"], settings: { DLT_OPERATOR_TOKEN: "x" } },
    });
    expect(secretSetting.status).toBe(400);
    expect((await json(secretSetting)).error.message).toContain("settings.DLT_OPERATOR_TOKEN");
    const noCommand = await call(env, "POST", "/internal/run-containers", {
      token: INTERNAL,
      body: { dagster_run_id: "run-1", command: [] },
    });
    expect((await json(noCommand)).error.message).toContain("command");
    const grace = await call(env, "POST", "/internal/run-containers/run-1/stop", { token: INTERNAL, body: { grace_seconds: 99 } });
    expect(grace.status).toBe(400);
    expect((await json(grace)).error.message).toContain("grace_seconds");
  });
});
