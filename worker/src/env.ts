import type { DagsterContainer } from "./container";

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
  /** Secrets. */
  DLT_OPERATOR_TOKEN?: string;
  DLT_INTERNAL_TOKEN?: string;
  /** When non-empty, Dagster is reached at this URL instead of the container. */
  DAGSTER_URL?: string;
  STUCK_RUN_MINUTES?: string;
  QUEUED_RESEND_MINUTES?: string;
  /** First delay between launch retries, in seconds (default 30). */
  LAUNCH_RETRY_BASE_SECONDS?: string;
  /** How long a launch waits for Dagster to load a new or changed source, in seconds (default 90). */
  LOAD_WAIT_SECONDS?: string;
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
