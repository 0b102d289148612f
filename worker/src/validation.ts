import { Validator, type OutputUnit } from "@cfworker/json-schema";
// The one schema the Python model generates; the Worker and Python validate with the same file.
import sourceSchema from "../../config/source.schema.json";
import { RUN_STATUSES, TRIGGERS, type RunStatus, type Trigger } from "./contract";
import { cronProblem } from "./cron";
import { validationFailed, type FieldError } from "./errors";
import { restApiProblems } from "./rest_api";

// Defined once in dlt_platform/contract.py; re-exported where the Worker's modules have always found them.
export { RUN_STATUSES, TRIGGERS, type RunStatus, type Trigger };

export interface SourceDefinition {
  source_id: string;
  source_type: "cloudflare_kv" | "webhook" | "rest_api";
  enabled?: boolean;
  schedule?: string | null;
  // rest_api sources have no destination.table: their tables are their resources (rest_api.ts tableKeys).
  destination: { type?: string; dataset: string; table: string; write_disposition?: string };
  extract: { [key: string]: unknown };
  [key: string]: unknown;
}

/** The fields a run request may carry (POST /sources/:id/runs); they reach Dagster as op config. */
export interface RunRequest {
  limit?: number;
  keys?: string[];
  partition?: string;
  full_refresh?: boolean;
}

const definitionValidator = new Validator(sourceSchema as never, "2020-12", false);

const WRAPPER_KEYWORDS = new Set([
  "properties",
  "$ref",
  "allOf",
  "items",
  "prefixItems",
  "additionalProperties",
  "propertyNames",
  "if",
]);

type SchemaNode = Record<string, unknown>;

/** The schema object at a JSON pointer; "$ref" steps (keyword locations pass through them) jump to the target. */
function schemaAt(pointer: string): SchemaNode | undefined {
  let node = sourceSchema as unknown as SchemaNode | undefined;
  for (const raw of pointer.replace(/^#\/?/, "").split("/").filter(Boolean)) {
    const part = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    node = part === "$ref" && typeof node?.$ref === "string" ? schemaAt(node.$ref) : (node?.[part] as SchemaNode);
  }
  return node;
}

/** The schema object holding the keyword at `keywordLocation` ("#/properties/extract/$ref/then/required"). */
function schemaNodeAt(keywordLocation: string): SchemaNode | undefined {
  return schemaAt(keywordLocation.slice(0, keywordLocation.lastIndexOf("/")));
}

// Keywords whose failure an "x-message" words (length and count limits keep the validator's own message).
const WORDED_KEYWORDS = new Set(["pattern", "required", "type", "const"]);

/** Patterns and cross-field rules carry their message in the schema ("x-message"), as Python words it. */
function customMessage(unit: OutputUnit): string | undefined {
  if (!WORDED_KEYWORDS.has(unit.keyword)) return undefined;
  const message = schemaNodeAt(unit.keywordLocation)?.["x-message"];
  return typeof message === "string" ? message : undefined;
}

/** "#/destination/table" -> "destination.table"; "#" -> "" */
function fieldPath(instanceLocation: string): string {
  return instanceLocation
    .replace(/^#\/?/, "")
    .split("/")
    .filter(Boolean)
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
    .join(".");
}

function join(parent: string, child: string): string {
  return parent ? `${parent}.${child}` : child;
}

/** Turns the validator's nested output into one message per offending field. */
function toFieldErrors(units: OutputUnit[]): FieldError[] {
  const leaves: { field: string; message: string; nullBranch: boolean }[] = [];
  for (const unit of units) {
    const field = fieldPath(unit.instanceLocation);
    if (WRAPPER_KEYWORDS.has(unit.keyword)) continue;
    const custom = customMessage(unit);
    if (custom) {
      const missing = unit.keyword === "required" ? /"([^"]+)"/.exec(unit.error)?.[1] : undefined;
      leaves.push({ field: missing ? join(field, missing) : field, message: custom, nullBranch: false });
      continue;
    }
    if (unit.keyword === "false") {
      leaves.push({ field, message: "unknown field", nullBranch: false });
      continue;
    }
    if (unit.keyword === "required") {
      const missing = /"([^"]+)"/.exec(unit.error)?.[1];
      leaves.push({ field: missing ? join(field, missing) : field, message: "required", nullBranch: false });
      continue;
    }
    const nullBranch = unit.keyword === "type" && /Expected "null"/.test(unit.error);
    leaves.push({ field, message: unit.error.replace(/\.$/, ""), nullBranch });
  }
  // A nullable field that fails its real branch also fails "is null" and the anyOf itself: keep the real reason.
  const specific = leaves.filter(
    (leaf) =>
      !(leaf.nullBranch || leaf.message.startsWith("Instance does not match any subschemas")) ||
      !leaves.some(
        (other) =>
          other !== leaf &&
          !other.nullBranch &&
          !other.message.startsWith("Instance does not match any subschemas") &&
          (other.field === leaf.field || other.field.startsWith(leaf.field + ".")),
      ),
  );
  const byField = new Map<string, string[]>();
  for (const leaf of specific) {
    const messages = byField.get(leaf.field) ?? [];
    if (!messages.includes(leaf.message)) messages.push(leaf.message);
    byField.set(leaf.field, messages);
  }
  return [...byField].map(([field, messages]) => ({ field: field || "(root)", message: messages.join("; ") }));
}

/** Validates a source definition against config/source.schema.json; returns the offending fields. */
export function definitionErrors(definition: unknown): FieldError[] {
  const result = definitionValidator.validate(definition);
  const errors = result.valid ? [] : toFieldErrors(result.errors);
  // The pattern was checked by the schema; what a pattern cannot say is checked as Python does.
  const schedule = (definition as { schedule?: unknown } | null)?.schedule;
  const problem = typeof schedule === "string" && !errors.some((e) => e.field === "schedule") && cronProblem(schedule);
  if (problem) {
    errors.push({ field: "schedule", message: `'${schedule}' is not a valid five-field cron expression: ${problem}` });
  }
  if (result.valid && (definition as { source_type?: unknown }).source_type === "rest_api") {
    errors.push(...restApiProblems(definition as Parameters<typeof restApiProblems>[0]));
  }
  return errors;
}

export function assertDefinition(definition: unknown): SourceDefinition {
  const errors = definitionErrors(definition);
  if (errors.length) throw validationFailed(errors, "source definition is not valid");
  return definition as SourceDefinition;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const RUN_REQUEST_FIELDS = new Set(["limit", "keys", "partition", "full_refresh"]);
const MAX_KEYS = 10_000;
/** Largest `limit` a run may ask for: far above any namespace here, far below what JSON numbers allow. */
export const MAX_RUN_LIMIT = 10_000_000;
const MAX_REQUEST_BYTES = 1_500_000; // a D1 row holds 2 MB

/** Validates the optional body of POST /sources/:id/runs. */
export function parseRunRequest(body: unknown): RunRequest {
  if (body === undefined || body === null) return {};
  if (!isPlainObject(body)) throw validationFailed([{ field: "(root)", message: "must be a JSON object" }]);
  const fields: FieldError[] = [];
  for (const key of Object.keys(body)) {
    if (!RUN_REQUEST_FIELDS.has(key)) fields.push({ field: key, message: "unknown field" });
  }
  const request: RunRequest = {};
  if (body.limit !== undefined) {
    if (!Number.isSafeInteger(body.limit) || (body.limit as number) < 1 || (body.limit as number) > MAX_RUN_LIMIT) {
      fields.push({ field: "limit", message: `must be an integer from 1 to ${MAX_RUN_LIMIT}` });
    } else request.limit = body.limit as number;
  }
  if (body.keys !== undefined) {
    const keys = body.keys;
    if (
      !Array.isArray(keys) ||
      keys.length < 1 ||
      keys.length > MAX_KEYS ||
      !keys.every((k) => typeof k === "string" && k.length >= 1 && k.length <= 512)
    ) {
      fields.push({ field: "keys", message: `must be 1..${MAX_KEYS} non-empty strings of at most 512 characters` });
    } else request.keys = keys as string[];
  }
  if (body.partition !== undefined) {
    if (typeof body.partition !== "string" || body.partition.length < 1 || body.partition.length > 256) {
      fields.push({ field: "partition", message: "must be a non-empty string" });
    } else request.partition = body.partition;
  }
  if (body.full_refresh !== undefined) {
    if (typeof body.full_refresh !== "boolean") fields.push({ field: "full_refresh", message: "must be a boolean" });
    else request.full_refresh = body.full_refresh;
  }
  if (fields.length) throw validationFailed(fields, "run request is not valid");
  if (JSON.stringify(request).length > MAX_REQUEST_BYTES) {
    throw validationFailed([{ field: "keys", message: "request is too large" }]);
  }
  return request;
}

/** Parses an ISO-8601 time into its canonical UTC form, or reports the field. */
export function isoTime(value: unknown, field: string, fields: FieldError[]): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}T/.test(value)) {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) return new Date(ms).toISOString();
  }
  fields.push({ field, message: "must be an ISO-8601 time" });
  return undefined;
}

export interface InternalRunBody {
  dagster_run_id: string;
  source_id: string;
  trigger: Trigger;
  partition: string | null;
  status: RunStatus;
  at?: string;
}

export function parseInternalRun(body: unknown): InternalRunBody {
  if (!isPlainObject(body)) throw validationFailed([{ field: "(root)", message: "must be a JSON object" }]);
  const fields: FieldError[] = [];
  const str = (key: string) => typeof body[key] === "string" && (body[key] as string).length > 0;
  if (!str("dagster_run_id")) fields.push({ field: "dagster_run_id", message: "required string" });
  if (!str("source_id")) fields.push({ field: "source_id", message: "required string" });
  if (!TRIGGERS.includes(body.trigger as Trigger)) {
    fields.push({ field: "trigger", message: `must be one of ${TRIGGERS.join(", ")}` });
  }
  if (body.partition !== undefined && body.partition !== null && typeof body.partition !== "string") {
    fields.push({ field: "partition", message: "must be a string or null" });
  }
  const status = body.status ?? "launched";
  if (!RUN_STATUSES.includes(status as RunStatus)) {
    fields.push({ field: "status", message: `must be one of ${RUN_STATUSES.join(", ")}` });
  }
  const at = isoTime(body.at, "at", fields);
  if (fields.length) throw validationFailed(fields);
  return {
    dagster_run_id: body.dagster_run_id as string,
    source_id: body.source_id as string,
    trigger: body.trigger as Trigger,
    partition: (body.partition as string | undefined) ?? null,
    status: status as RunStatus,
    at,
  };
}

export interface StatusUpdate {
  status: RunStatus;
  dagster_run_id?: string;
  at?: string;
  message?: string;
  rows_loaded?: number;
  tables?: Record<string, number>;
}

export function parseStatusUpdate(body: unknown): StatusUpdate {
  if (!isPlainObject(body)) throw validationFailed([{ field: "(root)", message: "must be a JSON object" }]);
  const fields: FieldError[] = [];
  if (!RUN_STATUSES.includes(body.status as RunStatus)) {
    fields.push({ field: "status", message: `must be one of ${RUN_STATUSES.join(", ")}` });
  }
  if (body.dagster_run_id !== undefined && (typeof body.dagster_run_id !== "string" || !body.dagster_run_id)) {
    fields.push({ field: "dagster_run_id", message: "must be a non-empty string" });
  }
  if (body.message !== undefined && body.message !== null && typeof body.message !== "string") {
    fields.push({ field: "message", message: "must be a string" });
  }
  if (body.rows_loaded !== undefined && body.rows_loaded !== null) {
    if (!Number.isInteger(body.rows_loaded) || (body.rows_loaded as number) < 0) {
      fields.push({ field: "rows_loaded", message: "must be an integer >= 0" });
    }
  }
  if (body.tables !== undefined && body.tables !== null) {
    if (!isPlainObject(body.tables) || !Object.values(body.tables).every((n) => Number.isInteger(n) && (n as number) >= 0)) {
      fields.push({ field: "tables", message: "must map table names to integer row counts" });
    }
  }
  const at = isoTime(body.at, "at", fields);
  if (fields.length) throw validationFailed(fields);
  return {
    status: body.status as RunStatus,
    dagster_run_id: body.dagster_run_id as string | undefined,
    at,
    message: (body.message as string | null | undefined) ?? undefined,
    rows_loaded: (body.rows_loaded as number | null | undefined) ?? undefined,
    tables: (body.tables as Record<string, number> | null | undefined) ?? undefined,
  };
}
