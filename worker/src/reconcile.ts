/** Cron: wake the container and reconcile the ledger with Dagster, the queue and the clock. */
import { dagsterRunStatus, requestTermination, wakeContainer, type DagsterRunState } from "./dagster";
import { numberVar, type Env } from "./env";
import { addEvent, applyStatus, inFlightRuns, staleRuns, type InFlightRun } from "./ledger";
import { deliverNotifications } from "./notify";

export interface ReconcileReport {
  woke_container: boolean;
  /** Launched and running runs Dagster was asked about. */
  checked: number;
  /** Of those, runs whose status changed (Dagster's answer or a limit). */
  updated: number;
  /** Of those, runs failed because they were past their limit. */
  stuck: number;
  resent: number;
  notified: number;
  errors: number;
}

/** How long a run may stay in flight before the cron fails it (Dagster's run monitoring should act first). */
export interface RunLimits {
  staleAfterSeconds: number;
  maxRuntimeSeconds: number;
}

export function runLimits(env: Env): RunLimits {
  return {
    staleAfterSeconds: numberVar(env, "RUN_STALE_AFTER_SECONDS"),
    maxRuntimeSeconds: numberVar(env, "RUN_MAX_RUNTIME_SECONDS"),
  };
}

function minutesAgo(minutes: number, nowMs: number): string {
  return new Date(nowMs - minutes * 60_000).toISOString();
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Why a run is past its limit, or null: launched counts from its launch, running from its start. */
export function overdue(run: InFlightRun, limits: RunLimits, nowMs: number) {
  const launched = run.status === "launched";
  const since = launched ? run.status_since : (run.started_at ?? run.status_since);
  const ageSeconds = Math.floor((nowMs - Date.parse(since)) / 1000);
  const limit = launched ? limits.staleAfterSeconds : limits.maxRuntimeSeconds;
  if (!(ageSeconds > limit)) return null;
  return launched
    ? { reason: "stale", variable: "RUN_STALE_AFTER_SECONDS", limit, ageSeconds, what: "launched but not started" }
    : { reason: "max_runtime", variable: "RUN_MAX_RUNTIME_SECONDS", limit, ageSeconds, what: "running" };
}

/** One in-flight run: take Dagster's status when it moved on, then fail it if it is past its limit. */
async function reconcileRun(env: Env, run: InFlightRun, limits: RunLimits, nowMs: number, report: ReconcileReport) {
  let dagster: DagsterRunState | null = null;
  if (run.dagster_run_id) {
    try {
      dagster = await dagsterRunStatus(env, run.dagster_run_id);
    } catch (err) {
      report.errors += 1;
      console.error(`reconcile ${run.run_id}: ${errorText(err)}`);
    }
  }
  if (dagster && dagster.status !== run.status) {
    const { run: updated, applied } = await applyStatus(env.DB, run.run_id, {
      status: dagster.status,
      message: `reconciled from Dagster (${dagster.dagster_status})`,
    });
    if (applied) report.updated += 1;
    // Ended, or launched -> running (the runtime limit counts from now on).
    if (updated.status !== run.status) return;
  }

  const late = overdue(run, limits, nowMs);
  if (!late) return;
  const dagsterSays = dagster
    ? `Dagster says ${dagster.dagster_status}`
    : run.dagster_run_id
      ? "Dagster did not answer or does not know the run"
      : "no Dagster run";
  const { applied } = await applyStatus(env.DB, run.run_id, {
    status: "failed",
    message: `stuck: ${late.what} for ${late.ageSeconds} s, past ${late.variable}=${late.limit}; ${dagsterSays}`,
    data: {
      reason: late.reason,
      limit_seconds: late.limit,
      age_seconds: late.ageSeconds,
      dagster_status: dagster?.dagster_status ?? null,
    },
  });
  if (!applied) return;
  report.updated += 1;
  report.stuck += 1;
  // The ledger is settled first; then Dagster, so its own queue stops waiting behind a run whose process is gone.
  if (run.dagster_run_id && dagster) {
    try {
      const result = await requestTermination(env, run.dagster_run_id, "MARK_AS_CANCELED_IMMEDIATELY");
      if (result.outcome === "terminated") await addEvent(env.DB, run.run_id, "marked canceled in Dagster");
      else console.warn(`reconcile ${run.run_id}: Dagster did not mark the run canceled (${result.outcome}: ${result.message})`);
    } catch (err) {
      report.errors += 1;
      console.error(`reconcile ${run.run_id}: marking the Dagster run canceled failed: ${errorText(err)}`);
    }
  }
}

export async function reconcile(env: Env, nowMs = Date.now()): Promise<ReconcileReport> {
  const report: ReconcileReport = {
    woke_container: false,
    checked: 0,
    updated: 0,
    stuck: 0,
    resent: 0,
    notified: 0,
    errors: 0,
  };
  if (!(env.DAGSTER_URL ?? "").trim()) {
    try {
      await wakeContainer(env);
      report.woke_container = true;
    } catch (err) {
      report.errors += 1;
      console.error(`waking the Dagster container failed: ${errorText(err)}`);
    }
  }

  // Every launched or running run: Dagster's status reports may have been lost, or Dagster may have lost the run.
  const limits = runLimits(env);
  for (const run of await inFlightRuns(env.DB)) {
    report.checked += 1;
    try {
      await reconcileRun(env, run, limits, nowMs, report);
    } catch (err) {
      report.errors += 1;
      console.error(`reconcile ${run.run_id}: ${errorText(err)}`);
    }
  }

  // Queued runs whose message was lost, and launches interrupted mid-way, go back on the queue.
  const stuckBefore = minutesAgo(numberVar(env, "STUCK_RUN_MINUTES"), nowMs);
  const queuedBefore = minutesAgo(numberVar(env, "QUEUED_RESEND_MINUTES"), nowMs);
  const resend = [
    ...(await staleRuns(env.DB, ["queued"], queuedBefore)),
    ...(await staleRuns(env.DB, ["launching"], stuckBefore)),
  ];
  if (resend.length) {
    try {
      await env.JOBS.sendBatch(resend.map((run) => ({ body: { run_id: run.run_id } })));
      for (const run of resend) await addEvent(env.DB, run.run_id, "re-sent to the queue by reconciliation");
      report.resent = resend.length;
    } catch (err) {
      report.errors += 1;
      console.error(`re-sending runs failed: ${errorText(err)}`);
    }
  }

  // Alerts of this pass, and earlier ones whose delivery failed.
  const delivery = await deliverNotifications(env, { nowMs });
  report.notified = delivery.sent;
  report.errors += delivery.failed;
  return report;
}
