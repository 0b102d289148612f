/** Body of a message on the dlt-jobs-v2 queue: the run lives in D1, the message only names it. */
export interface JobMessage {
  run_id: string;
}

/**
 * Bindings, vars and secrets of the dlt-orchestrator Worker. wrangler.toml owns the bindings and the [vars] (their
 * values and what they mean): `npm run types` (wrangler types) generates them into worker-configuration.d.ts as
 * Cloudflare.Env, and `npm run typecheck` fails while that file is stale. Secrets, which wrangler.toml does not
 * hold, are declared below.
 */
export type Env = Cloudflare.Env;

declare global {
  namespace Cloudflare {
    // Libraries typed against Cloudflare.Env (cloudflare:test, @cloudflare/containers) see these too.
    interface Env {
      /** Secrets (`wrangler secret put NAME`; the table in docs/deploy.md). */
      DLT_OPERATOR_TOKEN?: string;
      DLT_INTERNAL_TOKEN?: string;
      /** Optional: a bearer token that may list and read (operator API, /mcp, admin page) but not change anything. */
      DLT_READONLY_TOKEN?: string;
      /** Signs admin session cookies and their CSRF tokens; rotating it signs every operator out. */
      ADMIN_SESSION_KEY?: string;
      /** Slack-compatible incoming webhook that gets one alert per failed or dead-lettered run. */
      ALERT_WEBHOOK_URL?: string;
      /**
       * The Worker's own URL (https://...). The container gets it (Dagster reads definitions and reports runs
       * there) and alerts link to it; without it alerts carry no links.
       */
      DLT_ORCHESTRATOR_URL?: string;
      /**
       * Hosts rest_api definitions may name as base_url although they are loopback, private, link-local or the
       * Worker's own (comma-separated host or host:port; the local stack's sample API). Dagster reads it too.
       */
      DLT_PLATFORM_ALLOW_PRIVATE_HOSTS?: string;
      /** JSON of the secrets rest_api sources may use and their hosts; forwarded, with each secret it names. */
      DLT_SOURCE_SECRETS?: string;
      // Webhook signing secrets carry the names webhook definitions give them (extract.signature.secret_names);
      // the intake reads them as env[name] (routes/hooks.ts).
    }
  }
}

/** The [vars] of wrangler.toml (the generated, always-present strings; secrets are optional). */
type Var = { [Name in keyof Env]-?: Env[Name] extends string ? Name : never }[keyof Env];

/**
 * A number from wrangler.toml's [vars] (their one owner: no fallback here). `min`: the smallest value allowed
 * (default: above 0). A missing or bad value is an error naming the variable.
 */
export function numberVar(env: Env, name: Var, { min }: { min?: number } = {}): number {
  const text = String(env[name] ?? "").trim();
  const value = Number(text);
  const ok = text !== "" && Number.isFinite(value) && (min === undefined ? value > 0 : value >= min);
  if (!ok) {
    const wanted = min === undefined ? "a number above 0" : `a number of at least ${min}`;
    throw new Error(`${name} must be ${wanted} (wrangler.toml [vars]), not ${JSON.stringify(env[name] ?? null)}`);
  }
  return value;
}

export type AppEnv = { Bindings: Env };

