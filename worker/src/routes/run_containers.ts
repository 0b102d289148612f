/**
 * Internal API of Dagster's run launcher (bearer DLT_INTERNAL_TOKEN): start, state and stop of a run's container
 * (dlt_platform/orchestration/run_containers.py). Each start, exit and stop is a run event in D1.
 *
 * The run's environment is built here, not by Dagster: the platform's run variables the Worker holds, the secrets
 * its own source's definition names ({"env": NAME}) and nothing else; the launcher adds only non-secret settings
 * from a fixed list (RUN_SETTINGS).
 */
import { Hono } from "hono";
import { requireInternal } from "../auth";
import { RUN_SOURCE_ENV } from "../contract";
import { numberVar, type AppEnv, type Env } from "../env";
import { validationFailed, type FieldError } from "../errors";
import { background, jsonBody } from "../http";
import { findRun, findRunByDagsterId, findSource } from "../ledger";
import { addRunContainerEvent } from "../run_container_events";
import { DEFAULT_INSTANCE_TYPE, instanceTypeOf, isInstanceType, runContainers, type InstanceType } from "../run_containers";

export const runContainerRoutes = new Hono<AppEnv>();

/** What every run gets from the Worker when set: storage, the way back to the Worker, the warehouse, raw staging. */
export const RUN_ENV = [
  "DAGSTER_PG_URL",
  "DLT_ORCHESTRATOR_URL",
  "DLT_INTERNAL_TOKEN",
  "DESTINATION__BIGQUERY__CREDENTIALS",
  "CLOUDFLARE_ACCOUNT_ID",
  "CLOUDFLARE_API_TOKEN",
  "DLT_R2_BUCKET",
  "DLT_R2_ENDPOINT_URL",
  "DLT_R2_ACCESS_KEY_ID",
  "DLT_R2_SECRET_ACCESS_KEY",
  "DLT_PLATFORM_DESTINATION",
  "DLT_PLATFORM_KV_TRANSPORT",
  "DLT_PLATFORM_ALLOW_PRIVATE_HOSTS",
  "DLT_PLATFORM_ALLOW_EMBEDDED",
] as const;

/** Non-secret settings the launcher may pass from the control process (paths, modes, emulator endpoints). */
export const RUN_SETTINGS = new Set([
  "DAGSTER_HOME",
  "DLT_PLATFORM_CONFIG",
  "DLT_PLATFORM_DATA_DIR",
  "DLT_PLATFORM_DESTINATION",
  "DLT_PLATFORM_KV_TRANSPORT",
  "DLT_PLATFORM_KV_SHAPING",
  "DLT_PLATFORM_DUCKDB_MEMORY_LIMIT",
  "DLT_PLATFORM_ALLOW_PRIVATE_HOSTS",
  "DLT_PLATFORM_ALLOW_EMBEDDED",
  "DLT_PLATFORM_CONTAINER",
  "BIGQUERY_EMULATOR_HOST",
  "GOOGLE_CLOUD_PROJECT",
  "CLOUDFLARE_API_BASE_URL",
  "PYTHONUNBUFFERED",
  "TZ",
  "LANG",
]);

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const SOURCE_ID = /^[a-z][a-z0-9_]{0,62}$/;
const SECRET_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;
const MAX_COMMAND_CHARS = 64 * 1024;

export interface RunContainerStart {
  dagster_run_id: string;
  run_id: string | null;
  source_id: string | null;
  command: string[];
  settings: Record<string, string>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function parseRunContainerStart(body: unknown): RunContainerStart {
  const errors: FieldError[] = [];
  const doc = isObject(body) ? body : {};
  if (!isObject(body)) errors.push({ field: "body", message: "expected a JSON object" });
  const dagsterRunId = doc.dagster_run_id;
  if (typeof dagsterRunId !== "string" || !NAME.test(dagsterRunId)) {
    errors.push({ field: "dagster_run_id", message: "expected a Dagster run id" });
  }
  const runId = doc.run_id ?? null;
  if (runId !== null && (typeof runId !== "string" || runId.length > 100)) {
    errors.push({ field: "run_id", message: "expected a run id or null" });
  }
  const sourceId = doc.source_id ?? null;
  if (sourceId !== null && (typeof sourceId !== "string" || !SOURCE_ID.test(sourceId))) {
    errors.push({ field: "source_id", message: "expected a source id or null" });
  }
  const command = doc.command;
  if (
    !Array.isArray(command) ||
    !command.length ||
    !command.every((part) => typeof part === "string" && part.length > 0) ||
    command.join(" ").length > MAX_COMMAND_CHARS
  ) {
    errors.push({ field: "command", message: `expected a non-empty list of strings, at most ${MAX_COMMAND_CHARS} characters` });
  }
  const settings = doc.settings ?? {};
  if (!isObject(settings)) {
    errors.push({ field: "settings", message: "expected an object of strings" });
  } else {
    for (const [name, value] of Object.entries(settings)) {
      if (!RUN_SETTINGS.has(name)) errors.push({ field: `settings.${name.slice(0, 64)}`, message: "not a run setting the launcher may pass" });
      else if (typeof value !== "string") errors.push({ field: `settings.${name}`, message: "expected a string" });
    }
  }
  if (errors.length) throw validationFailed(errors);
  return {
    dagster_run_id: dagsterRunId as string,
    run_id: runId as string | null,
    source_id: sourceId as string | null,
    command: command as string[],
    settings: settings as Record<string, string>,
  };
}

/** Names a definition gives as {"env": NAME} anywhere in it (rest_api credentials). */
export function namedSecrets(definition: unknown): string[] {
  const names = new Set<string>();
  const visit = (value: unknown) => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (isObject(value)) {
      const keys = Object.keys(value);
      if (keys.length === 1 && keys[0] === "env" && typeof value.env === "string" && SECRET_NAME.test(value.env)) {
        names.add(value.env);
      } else Object.values(value).forEach(visit);
    }
  };
  visit(definition);
  return [...names];
}

/**
 * A run's environment: the launcher's settings, the platform's run variables, and of the sources' secrets only
 * those the run's own definition names, with DLT_SOURCE_SECRETS cut down to them. Values come from the Worker's
 * own secrets and vars; nothing else of the Worker's (operator token, session key, webhook secrets) is included.
 */
export function runEnvironment(env: Env, definition: unknown, settings: Record<string, string>): Record<string, string> {
  const source = env as unknown as Record<string, unknown>;
  const vars: Record<string, string> = { ...settings };
  for (const name of RUN_ENV) {
    const value = source[name];
    if (typeof value === "string" && value) vars[name] = value;
  }
  const secrets = definition ? namedSecrets(definition) : [];
  for (const name of secrets) {
    const value = source[name];
    if (typeof value === "string" && value) vars[name] = value;
  }
  let scoped: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(String(env.DLT_SOURCE_SECRETS ?? "") || "{}");
    if (isObject(parsed)) scoped = parsed;
  } catch {
    // Not JSON: the run's settings refuse a missing listing by name; nothing is forwarded from it.
  }
  const own = Object.fromEntries(secrets.filter((name) => name in scoped).map((name) => [name, scoped[name]]));
  if (Object.keys(own).length) vars.DLT_SOURCE_SECRETS = JSON.stringify(own);
  return vars;
}

runContainerRoutes.post("/internal/run-containers", requireInternal, jsonBody(parseRunContainerStart), async (c) => {
  const body = c.req.valid("json");
  // A run launched without its source's tag (from Dagster's UI) takes the source the ledger has for it, if any.
  const ledgerRun = (body.run_id ? await findRun(c.env.DB, body.run_id) : null) ?? (await findRunByDagsterId(c.env.DB, body.dagster_run_id));
  const sourceId = body.source_id ?? ledgerRun?.source_id ?? null;
  const source = sourceId ? await findSource(c.env.DB, sourceId) : null;
  const env = runEnvironment(c.env, source?.definition, body.settings);
  // The run worker then builds only this source's definitions. Only a run whose tag names its source: a run from
  // Dagster's UI may hold several sources' assets, whatever source the ledger filed it under.
  if (body.source_id) env[RUN_SOURCE_ENV] = body.source_id;
  // The size the run's source asks for (runner.instance_type); a run without a known source gets the default.
  const instanceType = instanceTypeOf(source?.definition);
  const { started, state } = await runContainers(c.env).start(body.dagster_run_id, instanceType, body.command, env);
  let ledgerRunId: string | null = null;
  if (started) {
    // Names only: the values are the run's secrets.
    ledgerRunId = await addRunContainerEvent(c.env.DB, body.dagster_run_id, body.run_id, "started", {
      source_id: sourceId,
      instance_type: instanceType,
      env_names: Object.keys(env).sort(),
    });
  }
  return c.json(
    { name: body.dagster_run_id, started, run_id: ledgerRunId, instance_type: instanceType, ...state },
    started ? 201 : 200,
  );
});

/**
 * The instance type a state or stop request names (?instance_type=, as the start answered it; the launcher keeps it
 * as a run tag): in production the runner class the container is in. Default standard-1.
 */
function queriedInstanceType(value: string | undefined): InstanceType {
  if (value === undefined || value === "") return DEFAULT_INSTANCE_TYPE;
  if (!isInstanceType(value)) {
    throw validationFailed([{ field: "instance_type", message: "expected lite, basic or standard-1 to standard-4" }]);
  }
  return value;
}

runContainerRoutes.get("/internal/run-containers/:name", requireInternal, async (c) => {
  const name = c.req.param("name");
  if (!NAME.test(name)) throw validationFailed([{ field: "name", message: "expected a Dagster run id" }]);
  const instanceType = queriedInstanceType(c.req.query("instance_type"));
  const state = await runContainers(c.env).state(name, instanceType);
  if (state.status === "exited") {
    await addRunContainerEvent(c.env.DB, name, null, "exited", { exit_code: state.exit_code, reason: state.reason });
  }
  return c.json({ name, instance_type: instanceType, ...state });
});

runContainerRoutes.post("/internal/run-containers/:name/stop", requireInternal, async (c) => {
  const name = c.req.param("name");
  if (!NAME.test(name)) throw validationFailed([{ field: "name", message: "expected a Dagster run id" }]);
  const instanceType = queriedInstanceType(c.req.query("instance_type"));
  const body: unknown = await c.req.json().catch(() => ({}));
  const doc = isObject(body) ? body : {};
  const grace = doc.grace_seconds ?? numberVar(c.env, "RUN_CONTAINER_STOP_GRACE_SECONDS", { min: 0 });
  if (typeof grace !== "number" || !(grace >= 0 && grace <= 25)) {
    // Cloudflare keeps a Worker's background work about 30 s after its response: the kill must fit in it.
    throw validationFailed([{ field: "grace_seconds", message: "expected seconds from 0 to 25" }]);
  }
  const reason = typeof doc.reason === "string" ? doc.reason.slice(0, 200) : "terminate requested";
  const state = await runContainers(c.env).stop(name, instanceType, grace, (work) => background(c, work));
  if (state.status === "running") {
    await addRunContainerEvent(c.env.DB, name, null, "stop_requested", { reason, grace_seconds: grace });
  }
  return c.json({ name, instance_type: instanceType, ...state }, 202);
});
