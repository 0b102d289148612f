/** Starting, retrying and canceling runs: shared by the operator API and the admin page. */
import { DAGSTER_FINISHED, DagsterError, requestTermination } from "./dagster";
import { numberVar, type Env } from "./env";
import { ApiError, conflict, validationFailed } from "./errors";
import { applyStatus, createQueuedRun, getRun, getSource, sourceRetired, TERMINAL, type RunRow } from "./ledger";
import { partitionProblem } from "./partitions";
import type { RunRequest, RunStatus, Trigger } from "./validation";

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
    max_pending: Math.max(1, Math.floor(numberVar(env, "MAX_PENDING_RUNS_PER_SOURCE"))),
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

/** What a cancel did in Dagster: nothing to do there, terminated, unknown to Dagster, or force-marked canceled. */
export type DagsterCancel = "not_launched" | "terminated" | "not_found" | "marked_canceled" | "already_canceled";

interface Stopped {
  dagster: DagsterCancel;
  dagster_status: string | null;
  /** Set when Dagster had already finished the run: the ledger records that ending instead. */
  ended?: RunStatus;
}

/**
 * Stops a run in Dagster. A run whose process is gone cannot be terminated (TerminateRunFailure, or a PythonError
 * when the code server that started it is gone too): unless it has already finished there, it is then marked
 * canceled in Dagster (MARK_AS_CANCELED_IMMEDIATELY) so it stops holding its source's place in Dagster's queue.
 * Throws DagsterError when Dagster cannot be asked, or refuses both.
 */
async function stopInDagster(env: Env, dagsterRunId: string): Promise<Stopped> {
  const first = await requestTermination(env, dagsterRunId, "SAFE_TERMINATE");
  if (first.outcome !== "refused") return { dagster: first.outcome, dagster_status: first.dagster_status };
  let refusal = first;
  if (!(refusal.dagster_status && DAGSTER_FINISHED[refusal.dagster_status])) {
    const forced = await requestTermination(env, dagsterRunId, "MARK_AS_CANCELED_IMMEDIATELY");
    if (forced.outcome !== "refused") return { dagster: "marked_canceled", dagster_status: first.dagster_status };
    refusal = forced;
  }
  const ended = refusal.dagster_status ? DAGSTER_FINISHED[refusal.dagster_status] : undefined;
  if (!ended) throw new DagsterError(refusal.message ?? "termination refused");
  return { dagster: "already_canceled", dagster_status: refusal.dagster_status, ended };
}

/**
 * Cancels a run: a launched/running one is stopped in Dagster first (see stopInDagster); a queued or launching
 * one is just marked (the launch consumer terminates what it launched for a canceled run). A run Dagster had
 * already finished keeps Dagster's ending: 409 when that is not `canceled`.
 */
export async function cancelRun(env: Env, runId: string, actor: string): Promise<{ run: RunRow; dagster: DagsterCancel }> {
  const run = await getRun(env.DB, runId);
  if (TERMINAL.has(run.status)) throw conflict(`run ${runId} is already ${run.status}`);
  let stopped: Stopped = { dagster: "not_launched", dagster_status: null };
  if (run.dagster_run_id && (run.status === "launched" || run.status === "running")) {
    try {
      stopped = await stopInDagster(env, run.dagster_run_id);
    } catch (err) {
      const reason = err instanceof DagsterError ? err.message : "Dagster call failed";
      throw new ApiError(502, "dagster_unavailable", `could not terminate the Dagster run: ${reason}`);
    }
  }
  const data = { dagster: stopped.dagster, ...(stopped.dagster_status ? { dagster_status: stopped.dagster_status } : {}) };
  if (stopped.ended && stopped.ended !== "canceled") {
    const { run: updated } = await applyStatus(env.DB, runId, {
      status: stopped.ended,
      message: `cancel by ${actor} came too late: Dagster had already ended the run (${stopped.dagster_status})`,
      data,
    });
    throw conflict(`run ${runId} already ${stopped.ended} in Dagster; the ledger now says ${updated.status}`);
  }
  const how: Record<DagsterCancel, string> = {
    not_launched: "",
    terminated: "; terminated in Dagster",
    not_found: "; Dagster does not know the run",
    marked_canceled: `; Dagster could not terminate it (${stopped.dagster_status ?? "unknown status"}), marked canceled there`,
    already_canceled: "; already canceled in Dagster",
  };
  const { run: updated, applied } = await applyStatus(env.DB, runId, {
    status: "canceled",
    message: `canceled by ${actor}${how[stopped.dagster]}`,
    data,
  });
  if (!applied) throw conflict(`run ${runId} is already ${updated.status}`);
  return { run: updated, dagster: stopped.dagster };
}
