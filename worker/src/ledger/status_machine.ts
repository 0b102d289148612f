/** The run status machine: which status may follow which, and the groups other modules ask about. */
import { TERMINAL_STATUSES, type RunStatus } from "../contract";

const RANK: Record<RunStatus, number> = {
  queued: 0,
  launching: 1,
  launched: 2,
  running: 3,
  succeeded: 4,
  failed: 4,
  canceled: 4,
  dead_lettered: 4,
};

export const TERMINAL: ReadonlySet<RunStatus> = new Set(TERMINAL_STATUSES);

/** Endings operators are alerted about (see notify.ts); the alert is owed in the same batch as the change. */
export const ALERTING: ReadonlySet<RunStatus> = new Set(["failed", "dead_lettered"]);

/** Runs that wait for Dagster to start them: the backlog MAX_PENDING_RUNS_PER_SOURCE bounds. */
export const PENDING: readonly RunStatus[] = ["queued", "launching", "launched"];

/** Runs not yet finished: a source holding any cannot be retired, and no run is queued for a retired source. */
export const IN_FLIGHT: readonly RunStatus[] = ["queued", "launching", "launched", "running"];

/** SQL list of `statuses`, for `status IN (...)` (the names are the contract's fixed identifiers). */
export function statusList(statuses: readonly RunStatus[]): string {
  return statuses.map((status) => `'${status}'`).join(", ");
}

/** Forward only; dead_lettered only from queued|launching; canceled from any non-terminal status. */
export function canTransition(from: RunStatus, to: RunStatus): boolean {
  if (TERMINAL.has(from)) return false;
  if (to === "dead_lettered") return from === "queued" || from === "launching";
  return RANK[to] > RANK[from];
}
