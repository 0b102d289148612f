import type { DagsterContainer, RunnerContainer } from "./container";

/** Body of a message on the dlt-jobs-v2 queue: the run lives in D1, the message only names it. */
export interface JobMessage {
  run_id: string;
}

/** Bindings, vars and secrets of the dlt-orchestrator Worker (see wrangler.toml). */
export interface Env {
  DB: D1Database;
  JOBS: Queue<JobMessage>;
  RAW_STAGING: R2Bucket;
  ORDERS_KV: KVNamespace;
  LEADS_KV: KVNamespace;
  VENDOR_KV: KVNamespace;
  DAGSTER: DurableObjectNamespace<DagsterContainer>;
  /** Run containers, one instance per Dagster run (routes/run_containers.ts); unused when RUN_CONTAINER_HOST_URL is set. */
  RUNNER?: DurableObjectNamespace<RunnerContainer>;
  /** When non-empty, run containers are processes of the local run-container host at this URL instead of RUNNER. */
  RUN_CONTAINER_HOST_URL?: string;
  /** Seconds a stopped run container gets between SIGTERM and SIGKILL (default 10, at most 25). */
  RUN_CONTAINER_STOP_GRACE_SECONDS?: string;
  /** Secrets. */
  DLT_OPERATOR_TOKEN?: string;
  DLT_INTERNAL_TOKEN?: string;
  /** Optional: a bearer token that may list and read (operator API, /mcp, admin page) but not change anything. */
  DLT_READONLY_TOKEN?: string;
  /** Signs admin session cookies and their CSRF tokens; rotating it signs every operator out. */
  ADMIN_SESSION_KEY?: string;
  /** When non-empty, Dagster is reached at this URL instead of the container. */
  DAGSTER_URL?: string;
  /** Secret: Slack-compatible incoming webhook that gets one alert per failed or dead-lettered run. */
  ALERT_WEBHOOK_URL?: string;
  /**
   * Secret: the Worker's own URL (https://...). The container gets it (Dagster reads definitions and reports runs
   * there) and alerts link to it; without it alerts carry no links.
   */
  DLT_ORCHESTRATOR_URL?: string;
  /** Launching runs older than this (minutes) are re-sent to the queue. */
  STUCK_RUN_MINUTES?: string;
  QUEUED_RESEND_MINUTES?: string;
  /** A run still launched (not started) this many seconds after its launch is failed by the cron (default 900). */
  RUN_STALE_AFTER_SECONDS?: string;
  /** A run still running this many seconds after it started is failed by the cron (default 21600). */
  RUN_MAX_RUNTIME_SECONDS?: string;
  /** First delay between launch retries, in seconds (default 30). */
  LAUNCH_RETRY_BASE_SECONDS?: string;
  /**
   * Hosts rest_api definitions may name as base_url although they are loopback, private, link-local or the Worker's
   * own (comma-separated host or host:port; the local stack's sample API). Dagster reads the same variable.
   */
  DLT_PLATFORM_ALLOW_PRIVATE_HOSTS?: string;
  /** Names of Worker secrets the Dagster container receives for rest_api definitions ({"env": NAME}). */
  SOURCE_SECRETS?: string;
  /** Secret: JSON of the secrets rest_api sources may use and their hosts; forwarded, with each secret it names. */
  DLT_SOURCE_SECRETS?: string;
  /** Runs of one source that may wait (queued, launching, launched) before new requests get 429 (default 3). */
  MAX_PENDING_RUNS_PER_SOURCE?: string;
  /** Days finished runs (with their events) and loaded webhook deliveries are kept (default 90; 0 keeps all). */
  RETENTION_DAYS?: string;
  /** Batches of 100 rows per kind the cron deletes at most (default 10). */
  RETENTION_BATCHES?: string;
  /** Largest request body, in KB (default 256); larger ones get 413. */
  MAX_BODY_KB?: string;
  /** How long a launch waits for Dagster to load a new or changed source, in seconds (default 90). */
  LOAD_WAIT_SECONDS?: string;
  /**
   * Webhook sources whose delivery id is not signed (github, ids from a header): hours during which the same body
   * under another id is a duplicate (default 720, 30 days; 0 turns it off). See docs/webhooks.md.
   */
  WEBHOOK_REPLAY_WINDOW_HOURS?: string;
  // Webhook signing secrets carry the names webhook definitions give them (extract.signature.secret_names); the
  // intake reads them as env[name] (routes/hooks.ts).
}

export type AppEnv = { Bindings: Env };

/** A positive number from a string var (minutes or seconds), or the fallback. */
export function positiveNumberVar(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

type WorkerEnv = Env;
declare global {
  // Libraries typed against Cloudflare.Env (cloudflare:test, @cloudflare/containers) see this Worker's bindings.
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
  }
}
