import { Container } from "@cloudflare/containers";
import type { Env } from "./env";

/** Secrets and settings the Dagster container receives as environment variables, when set on the Worker. */
const FORWARDED_ENV = [
  "DLT_INTERNAL_TOKEN",
  "DLT_WORKER_URL",
  "DAGSTER_PG_URL",
  "CLOUDFLARE_ACCOUNT_ID",
  "CLOUDFLARE_API_TOKEN",
  "R2_ACCESS_KEY_ID",
  "R2_SECRET_ACCESS_KEY",
  "GOOGLE_APPLICATION_CREDENTIALS_JSON",
  "DLT_PLATFORM_DESTINATION",
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
