import { Container } from "@cloudflare/containers";
import type { Env } from "./env";

/** Secrets and settings the Dagster container receives as environment variables, when set on the Worker. */
// Names are the ones dlt_platform/settings.py (and dlt, for BigQuery) read.
const FORWARDED_ENV = [
  "DLT_INTERNAL_TOKEN",
  "DLT_ORCHESTRATOR_URL",
  "DAGSTER_PG_URL",
  "CLOUDFLARE_ACCOUNT_ID",
  "CLOUDFLARE_API_TOKEN",
  "DLT_R2_BUCKET",
  "DLT_R2_ENDPOINT_URL",
  "DLT_R2_ACCESS_KEY_ID",
  "DLT_R2_SECRET_ACCESS_KEY",
  "DESTINATION__BIGQUERY__CREDENTIALS",
  "DLT_PLATFORM_DESTINATION",
  "DLT_PLATFORM_KV_TRANSPORT",
] as const;

const SECRET_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;

/**
 * The container's environment: the settings above, plus the secrets rest_api definitions name as
 * {"env": NAME}, listed in the Worker var SOURCE_SECRETS ("GITHUB_TOKEN,STRIPE_SECRET_KEY") and set as Worker
 * secrets. Listing them keeps every other binding (operator tokens, session keys) out of the container.
 */
export function containerEnv(env: Env): Record<string, string> {
  const source = env as unknown as Record<string, unknown>;
  const listed = String(source.SOURCE_SECRETS ?? "")
    .split(/[\s,]+/)
    .filter((name) => SECRET_NAME.test(name));
  const vars: Record<string, string> = {};
  for (const name of [...FORWARDED_ENV, ...listed]) {
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
