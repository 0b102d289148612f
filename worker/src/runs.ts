/** Starting, retrying and canceling runs: shared by the operator API and the admin page. */
import { DagsterError, terminateRun } from "./dagster";
import { positiveNumberVar, type Env } from "./env";
import { ApiError, conflict, validationFailed } from "./errors";
import { applyStatus, createQueuedRun, getRun, getSource, sourceRetired, TERMINAL, type RunRow } from "./ledger";
import { partitionProblem } from "./partitions";
import type { RunRequest, Trigger } from "./validation";

export interface StartRun {
  source_id: string;
  trigger: Trigger;
  request: RunRequest;
  idempotency_key?: string | null;
  retry_of?: string | null;
}

/**
 * Creates a queued run (or finds the idempotent one) and sends `{run_id}` to the queue. The partition must be
 * one of the source's, and the source may hold at most MAX_PENDING_RUNS_PER_SOURCE pending runs (429 beyond).
 */
export async function startRun(env: Env, start: StartRun): Promise<{ run: RunRow; created: boolean }> {
  const source = await getSource(env.DB, start.source_id);
  if (source.retired_at) throw sourceRetired(start.source_id);
  if (!source.enabled) throw new ApiError(409, "source_disabled", `source ${start.source_id} is disabled`);
  if (start.request.partition !== undefined) {
    const problem = partitionProblem(source.definition, start.request.partition);
    if (problem) throw validationFailed([{ field: "partition", message: problem }], "run request is not valid");
  }
  const result = await createQueuedRun(env.DB, {
    source_id: start.source_id,
    trigger: start.trigger,
    request: start.request,
    partition: start.request.partition ?? null,
    idempotency_key: start.idempotency_key,
    retry_of: start.retry_of,
    message: start.retry_of ? `queued as a retry of ${start.retry_of}` : `queued (${start.trigger})`,
    max_pending: Math.max(1, Math.floor(positiveNumberVar(env.MAX_PENDING_RUNS_PER_SOURCE, 3))),
  });
  // A failed send leaves the run queued; the cron re-sends queued runs after QUEUED_RESEND_MINUTES.
  if (result.created) {
    try {
      await env.JOBS.send({ run_id: result.run.run_id });
    } catch (err) {
      console.error(`queue send for ${result.run.run_id} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return result;
}

/** A new run with the old one's request, naming it in retry_of. Only finished runs are retried. */
export async function retryRun(env: Env, runId: string, idempotencyKey?: string | null) {
  const old = await getRun(env.DB, runId);
  if (!TERMINAL.has(old.status)) throw conflict(`run ${runId} is ${old.status}; only finished runs can be retried`);
  return startRun(env, {
    source_id: old.source_id,
    trigger: "retry",
    request: JSON.parse(old.request) as RunRequest,
    idempotency_key: idempotencyKey,
    retry_of: old.run_id,
  });
}

/** Cancels a run: a launched/running one is terminated in Dagster first; a queued one is just marked. */
export async function cancelRun(env: Env, runId: string, actor: string) {
  const run = await getRun(env.DB, runId);
  if (TERMINAL.has(run.status)) throw conflict(`run ${runId} is already ${run.status}`);
  if (run.dagster_run_id && (run.status === "launched" || run.status === "running")) {
    try {
      await terminateRun(env, run.dagster_run_id);
    } catch (err) {
      const reason = err instanceof DagsterError ? err.message : "Dagster call failed";
      throw new ApiError(502, "dagster_unavailable", `could not terminate the Dagster run: ${reason}`);
    }
  }
  const { run: updated, applied } = await applyStatus(env.DB, runId, {
    status: "canceled",
    message: `canceled by ${actor}`,
  });
  if (!applied) throw conflict(`run ${runId} is already ${updated.status}`);
  return updated;
}
