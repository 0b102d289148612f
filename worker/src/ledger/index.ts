/**
 * The D1 ledger: sources and their versions, runs and their events. One module per concern; the ledger's whole
 * API is re-exported here, so callers import from "./ledger".
 */
export { ALERTING, canTransition, IN_FLIGHT, PENDING, TERMINAL } from "./status_machine";
export {
  createSource,
  findSource,
  getSource,
  listDefinitions,
  listSources,
  retireSource,
  setSourceEnabled,
  sourceRetired,
  updateSource,
  type SourceRecord,
} from "./sources";
export { listVersions, type SourceChange } from "./versions";
export {
  findRun,
  findRunByDagsterId,
  getRun,
  insertRun,
  listEvents,
  listRuns,
  registerDagsterRun,
  type NewRun,
  type RunEvent,
  type RunListFilter,
  type RunListPosition,
  type RunRow,
} from "./runs";
export { runView } from "./run_view";
export { createQueuedRun, findRunByIdempotencyKey, PENDING_RETRY_AFTER_SECONDS } from "./idempotency";
export { addEvent, applyStatus, type StatusChange } from "./run_status";
export {
  claimForLaunch,
  DUPLICATE_DELIVERY_MESSAGE,
  recordDuplicateDelivery,
  recordLaunchFailure,
} from "./launch_lease";
export { inFlightRuns, staleRuns, type InFlightRun } from "./reconciliation";
