import { Container } from "@cloudflare/containers";
import type { Env } from "./env";
import { addRunContainerEvent } from "./run_container_events";

/**
 * What the Dagster container receives as environment variables, when set on the Worker: the list
 * dlt_platform/settings.py declares as CONTAINER_ENV (dlt_platform_tests/test_container.py compares the two).
 * `required` ones are named by GET /health (with the operator token) when missing.
 */
export const CONTAINER_ENV = [
  { name: "DLT_ORCHESTRATOR_URL", required: true },
  { name: "DLT_INTERNAL_TOKEN", required: true },
  { name: "DAGSTER_PG_URL", required: true },
  { name: "DESTINATION__BIGQUERY__CREDENTIALS", required: false },
  { name: "CLOUDFLARE_ACCOUNT_ID", required: false },
  { name: "CLOUDFLARE_API_TOKEN", required: false },
  { name: "DLT_R2_BUCKET", required: false },
  { name: "DLT_R2_ENDPOINT_URL", required: false },
  { name: "DLT_R2_ACCESS_KEY_ID", required: false },
  { name: "DLT_R2_SECRET_ACCESS_KEY", required: false },
  { name: "DLT_SOURCE_SECRETS", required: false },
  { name: "DAGSTER_ALLOWED_HOSTS", required: false },
  { name: "DLT_PLATFORM_DESTINATION", required: false },
  { name: "DLT_PLATFORM_KV_TRANSPORT", required: false },
  { name: "DLT_PLATFORM_ALLOW_EMBEDDED", required: false },
] as const;

/** The Worker's own secrets it cannot work without (settings.py WORKER_SECRETS, the required ones). */
export const REQUIRED_WORKER_SECRETS = ["DLT_OPERATOR_TOKEN", "DLT_INTERNAL_TOKEN", "ADMIN_SESSION_KEY"] as const;

/** What DLT_PLATFORM_ALLOW_EMBEDDED=1 lets the container do without (serve checks the same, serve.py). */
const EMBEDDED_OPTIONAL = new Set<string>(["DAGSTER_PG_URL", "DLT_ORCHESTRATOR_URL"]);

const SECRET_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;

/** Names of rest_api sources' secrets: SOURCE_SECRETS ("A,B") and the keys of DLT_SOURCE_SECRETS (JSON). */
function sourceSecretNames(env: Env): string[] {
  const listed = String(env.SOURCE_SECRETS ?? "").split(/[\s,]+/);
  let scoped: string[] = [];
  try {
    const document: unknown = JSON.parse(String(env.DLT_SOURCE_SECRETS ?? "") || "{}");
    if (document && typeof document === "object" && !Array.isArray(document)) scoped = Object.keys(document);
  } catch {
    // Not JSON: the container's settings refuse it with the variable named; the Worker forwards no name from it.
  }
  return [...new Set([...listed, ...scoped])].filter((name) => SECRET_NAME.test(name));
}

function isSet(env: Env, name: string): boolean {
  const value = (env as unknown as Record<string, unknown>)[name];
  return typeof value === "string" ? value !== "" : value !== undefined && value !== null;
}

/**
 * Names (never values) of what this deployment lacks: required Worker secrets, required container variables,
 * secrets listed in SOURCE_SECRETS but not set, and bindings (the containers', or DAGSTER_URL and
 * RUN_CONTAINER_HOST_URL in their place).
 */
export function missingConfiguration(env: Env): { secrets: string[]; bindings: string[] } {
  // A throw-away deployment (and the local stack) keeps Dagster's history and definitions on its own disk.
  const embedded = (env as unknown as Record<string, unknown>).DLT_PLATFORM_ALLOW_EMBEDDED === "1";
  const secrets = [
    ...REQUIRED_WORKER_SECRETS,
    ...CONTAINER_ENV.filter((variable) => variable.required && !(embedded && EMBEDDED_OPTIONAL.has(variable.name))).map(
      (variable) => variable.name,
    ),
    ...sourceSecretNames(env),
  ].filter((name, index, names) => names.indexOf(name) === index && !isSet(env, name));
  const bindings: string[] = ["DB", "JOBS", "RAW_STAGING"].filter((name) => !isSet(env, name));
  if (!isSet(env, "DAGSTER") && !isSet(env, "DAGSTER_URL")) bindings.push("DAGSTER");
  // The default (standard-1) runner class; the other sizes' bindings are needed only by sources that name them.
  if (!isSet(env, "RUNNER") && !isSet(env, "RUN_CONTAINER_HOST_URL")) bindings.push("RUNNER");
  return { secrets, bindings };
}

/**
 * The container's environment: the settings above, plus the secrets rest_api definitions name as
 * {"env": NAME}, listed in the Worker var SOURCE_SECRETS ("GITHUB_TOKEN,STRIPE_SECRET_KEY") and set as Worker
 * secrets. Listing them keeps every other binding (operator tokens, session keys) out of the container.
 */
export function containerEnv(env: Env): Record<string, string> {
  const source = env as unknown as Record<string, unknown>;
  const vars: Record<string, string> = {};
  for (const name of [...CONTAINER_ENV.map((variable) => variable.name), ...sourceSecretNames(env)]) {
    const value = source[name];
    if (typeof value === "string" && value) vars[name] = value;
  }
  return vars;
}

/** Dagster webserver (under /dagster on port 3000) and daemon, one instance. */
export class DagsterContainer extends Container<Env> {
  defaultPort = 3000;
  // The daemon runs schedules and sensors: keep it up between the 5-minute cron wake-ups.
  sleepAfter = "2h";

  constructor(ctx: DurableObjectState<{}>, env: Env) {
    super(ctx, env);
    this.envVars = containerEnv(env);
  }
}

/**
 * One run's container (wrangler.toml [[containers]] RUNNER). Its command and environment come with each start
 * (routes/run_containers.ts); it runs until its run ends. Cloudflare stops an idle container after sleepAfter and
 * only requests count as activity, so an expiry while the run still works renews the timeout instead.
 */
export class RunnerContainer extends Container<Env> {
  sleepAfter = "10m";

  override async onActivityExpired(): Promise<void> {
    const { status } = await this.getState();
    if (status === "running" || status === "healthy") this.renewActivityTimeout();
  }

  override async onStop(params: { exitCode: number; reason: "exit" | "runtime_signal" }): Promise<void> {
    // The instance is named by its Dagster run id (getContainer(RUNNER, dagster_run_id)).
    const dagsterRunId = this.ctx.id.name;
    if (!dagsterRunId) return;
    await addRunContainerEvent(this.env.DB, dagsterRunId, null, "exited", {
      exit_code: params.exitCode,
      reason: params.reason,
    });
  }
}

// The same run container in the other instance types (wrangler.toml fixes the type per class; runner.instance_type
// of a source picks the class, run_containers.ts RUNNER_BINDINGS).
export class RunnerLiteContainer extends RunnerContainer {}
export class RunnerBasicContainer extends RunnerContainer {}
export class RunnerStandard2Container extends RunnerContainer {}
export class RunnerStandard3Container extends RunnerContainer {}
export class RunnerStandard4Container extends RunnerContainer {}
