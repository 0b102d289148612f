/** Source definitions: validated by config/source.schema.json, the schema Python generates (the shared contract). */
import sourceSchema from "../../config/source.schema.json";
import { RUN_STATUSES, TRIGGERS, type RunStatus, type Trigger } from "./contract";
import { BIGQUERY_LOAD_JOBS_PER_TABLE_PER_DAY, DEFAULT_LOAD_JOB_BUDGET } from "./contract";
import { cronProblem, runsPerDay } from "./cron";
import type { SourceDefinition as GeneratedDefinition } from "./definitions";
import { validationFailed, type FieldError } from "./errors";
import { schemaCheck } from "./json_schema";
import { sourceTypeOf } from "./source_types";

// Defined once in dlt_platform/contract.py; re-exported where the Worker's modules have always found them.
export { RUN_STATUSES, TRIGGERS, type RunStatus, type Trigger };
// The other request bodies are declared in bodies.ts; re-exported where modules have found them so far.
export {
  MAX_RUN_LIMIT,
  parseInternalRun,
  parseRunRequest,
  parseStatusUpdate,
  type InternalRunBody,
  type RunRequest,
  type StatusUpdate,
} from "./bodies";

export interface SourceDefinition {
  source_id: string;
  source_type: GeneratedDefinition["source_type"];
  enabled?: boolean;
  schedule?: string | null;
  // rest_api sources have no destination.table: their tables are their resources (source_types/rest_api.ts).
  destination: { type?: string; dataset: string; table: string; write_disposition?: string; load_job_budget?: number | null };
  extract: { [key: string]: unknown };
  [key: string]: unknown;
}

// The generated schema words patterns and cross-field rules in "x-message" as Python does; length and count
// limits keep the validator's own message.
const checkDefinition = schemaCheck(sourceSchema, { wordedKeywords: new Set(["pattern", "required", "type", "const"]) });

/** Validates a source definition against config/source.schema.json; returns the offending fields. */
export function definitionErrors(definition: unknown): FieldError[] {
  const errors = checkDefinition(definition);
  const schemaValid = errors.length === 0;
  // The pattern was checked by the schema; what a pattern cannot say is checked as Python does.
  const schedule = (definition as { schedule?: unknown } | null)?.schedule;
  const problem = typeof schedule === "string" && !errors.some((e) => e.field === "schedule") && cronProblem(schedule);
  if (problem) {
    errors.push({ field: "schedule", message: `'${schedule}' is not a valid five-field cron expression: ${problem}` });
  }
  if (schemaValid) {
    const budgetProblem = problem ? null : scheduleBudgetProblem(definition as SourceDefinition);
    if (budgetProblem) errors.push({ field: "schedule", message: budgetProblem });
    errors.push(...sourceTypeOf(definition as SourceDefinition).problems(definition as SourceDefinition));
  }
  return errors;
}

/**
 * Why a BigQuery source's schedule alone would spend more than its daily load-job budget per table (each run makes
 * at least one load job per table), or null; Python's `schedule_budget_problem` says the same.
 */
export function scheduleBudgetProblem(definition: SourceDefinition): string | null {
  const { schedule, destination } = definition;
  if (!schedule || (destination.type ?? "bigquery") !== "bigquery") return null;
  const budget = destination.load_job_budget ?? DEFAULT_LOAD_JOB_BUDGET;
  const runs = runsPerDay(schedule);
  if (runs <= budget) return null;
  return (
    `source ${definition.source_id} would run ${runs} times a day ('${schedule}'), over its budget of ${budget} ` +
    `load jobs per table per day (destination.load_job_budget, at most BigQuery's quota of ${BIGQUERY_LOAD_JOBS_PER_TABLE_PER_DAY})`
  );
}

export function assertDefinition(definition: unknown): SourceDefinition {
  const errors = definitionErrors(definition);
  if (errors.length) throw validationFailed(errors, "source definition is not valid");
  return definition as SourceDefinition;
}
