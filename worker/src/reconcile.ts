/** Cron: wake the container and reconcile the ledger with Dagster and the queue. */
import { dagsterRunStatus, wakeContainer } from "./dagster";
import { positiveNumberVar, type Env } from "./env";
import { addEvent, applyStatus, staleRuns } from "./ledger";

export interface ReconcileReport {
  woke_container: boolean;
  checked: number;
  updated: number;
  resent: number;
  errors: number;
}

function minutesAgo(minutes: number, nowMs: number): string {
  return new Date(nowMs - minutes * 60_000).toISOString();
}

export async function reconcile(env: Env, nowMs = Date.now()): Promise<ReconcileReport> {
  const report: ReconcileReport = { woke_container: false, checked: 0, updated: 0, resent: 0, errors: 0 };
  if (!(env.DAGSTER_URL ?? "").trim()) {
    try {
      await wakeContainer(env);
      report.woke_container = true;
    } catch (err) {
      report.errors += 1;
      console.error(`waking the Dagster container failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  const stuckBefore = minutesAgo(positiveNumberVar(env.STUCK_RUN_MINUTES, 15), nowMs);
  // Launched or running runs that heard nothing lately: ask Dagster where they are.
  for (const run of await staleRuns(env.DB, ["launched", "running"], stuckBefore)) {
    if (!run.dagster_run_id) continue;
    report.checked += 1;
    try {
      const status = await dagsterRunStatus(env, run.dagster_run_id);
      if (!status) continue;
      const { applied } = await applyStatus(env.DB, run.run_id, {
        status,
        message: `reconciled from Dagster (${status})`,
      });
      if (applied) report.updated += 1;
    } catch (err) {
      report.errors += 1;
      console.error(`reconcile ${run.run_id}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  // Queued runs whose message was lost, and launches interrupted mid-way, go back on the queue.
  const queuedBefore = minutesAgo(positiveNumberVar(env.QUEUED_RESEND_MINUTES, 10), nowMs);
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
      console.error(`re-sending runs failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return report;
}
