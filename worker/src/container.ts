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

/** Dagster webserver (under /dagster on port 3000) and daemon, one instance. */
export class DagsterContainer extends Container<Env> {
  defaultPort = 3000;
  // The daemon runs schedules and sensors: keep it up between the 5-minute cron wake-ups.
  sleepAfter = "2h";

  constructor(ctx: DurableObjectState<{}>, env: Env) {
    super(ctx, env);
    const vars: Record<string, string> = {};
    const source = env as unknown as Record<string, unknown>;
    for (const name of FORWARDED_ENV) {
      const value = source[name];
      if (typeof value === "string" && value) vars[name] = value;
    }
    this.envVars = vars;
  }
}
