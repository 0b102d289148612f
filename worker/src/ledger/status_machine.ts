/**
 * The run status machine: which status may follow which, and the groups other modules ask about. The statuses and
 * their order are the contract's (contract.ts, generated); config/run_status_cases.json lists the transitions this
 * allows, and vitest and pytest hold this rule and the Python stand-in of the ledger to it.
 */
import { RUN_STATUSES, TERMINAL_STATUSES, type RunStatus } from "../contract";

export const TERMINAL: ReadonlySet<RunStatus> = new Set(TERMINAL_STATUSES);

/** How far a run is: the contract lists the statuses in the order a run moves; every final status is as far. */
function rank(status: RunStatus): number {
  return TERMINAL.has(status) ? RUN_STATUSES.length : RUN_STATUSES.indexOf(status);
}

/** Endings operators are alerted about (see notify.ts); the alert is owed in the same batch as the change. */
export const ALERTING: ReadonlySet<RunStatus> = new Set(["failed", "dead_lettered"]);

/** Runs not yet finished: a source holding any cannot be retired, and no run is queued for a retired source. */
export const IN_FLIGHT: readonly RunStatus[] = RUN_STATUSES.filter((status) => !TERMINAL.has(status));

/** Runs that wait for Dagster to start them: the backlog MAX_PENDING_RUNS_PER_SOURCE bounds. */
export const PENDING: readonly RunStatus[] = IN_FLIGHT.slice(0, IN_FLIGHT.indexOf("running"));

/** SQL list of `statuses`, for `status IN (...)` (the names are the contract's fixed identifiers). */
export function statusList(statuses: readonly RunStatus[]): string {
  return statuses.map((status) => `'${status}'`).join(", ");
}

/** Forward only; dead_lettered only from queued|launching; canceled from any non-terminal status. */
export function canTransition(from: RunStatus, to: RunStatus): boolean {
  if (TERMINAL.has(from)) return false;
  if (to === "dead_lettered") return from === "queued" || from === "launching";
  return rank(to) > rank(from);
}
