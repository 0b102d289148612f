/** Run containers' start, exit code and stop reason as run events in D1 (shown with the run's other events). */
import { addEvent, findRun } from "./ledger";
import { findRunByDagsterId } from "./ledger/runs";

export type RunContainerEvent = "started" | "exited" | "stop_requested";

/**
 * Records `kind` on the ledger run of `dagsterRunId` (or `ledgerRunId` when given and known). A run Dagster started
 * itself may not be registered yet: nothing is recorded then. An exit is recorded once, whoever sees it first (the
 * container's onStop, or a state query).
 */
export async function addRunContainerEvent(
  db: D1Database,
  dagsterRunId: string,
  ledgerRunId: string | null,
  kind: RunContainerEvent,
  data: Record<string, unknown>,
): Promise<string | null> {
  const run = (ledgerRunId ? await findRun(db, ledgerRunId) : null) ?? (await findRunByDagsterId(db, dagsterRunId));
  if (!run) return null;
  const message =
    kind === "started"
      ? "run container started"
      : kind === "exited"
        ? `run container exited with code ${data.exit_code ?? "unknown"}`
        : `run container stop requested${data.reason ? `: ${String(data.reason)}` : ""}`;
  if (kind === "exited") {
    const seen = await db
      .prepare("SELECT 1 AS seen FROM run_events WHERE run_id = ? AND message LIKE 'run container exited%'")
      .bind(run.run_id)
      .first();
    if (seen) return run.run_id;
  }
  await addEvent(db, run.run_id, message, { container: dagsterRunId, ...data });
  return run.run_id;
}
