/**
 * The JSON bodies of the API other than source definitions, one JSON Schema each (validated by json_schema.ts,
 * the engine that validates definitions with the schema Python generates), and what the routes read from them.
 * Each body is written once, as its schema: its TypeScript type is derived from it (json-schema-to-ts FromSchema).
 * Routes take them through `jsonBody(parse...)` (http.ts); the schemas are exported for the OpenAPI document and
 * the MCP tools (openapi.ts, mcp.ts), which describe the bodies with these very objects.
 */
import type { FromSchema } from "json-schema-to-ts";
import { RUN_STATUSES, TRIGGERS, type RunStatus } from "./contract";
import { validationFailed, type FieldError } from "./errors";
import { schemaCheck } from "./json_schema";

/** Largest `limit` a run may ask for: far above any namespace here, far below what JSON numbers allow. */
export const MAX_RUN_LIMIT = 10_000_000;
const MAX_KEYS = 10_000;
const MAX_REQUEST_BYTES = 1_500_000; // a D1 row holds 2 MB
const MAX_LOAD_ERRORS = 1000;
const MAX_LOAD_ERROR_CHARS = 4000;

const isoTime = {
  type: ["string", "null"],
  pattern: "^\\d{4}-\\d{2}-\\d{2}T",
  "x-message": "must be an ISO-8601 time",
} as const;
const statusOf = { enum: RUN_STATUSES, "x-message": `must be one of ${RUN_STATUSES.join(", ")}` } as const;

/** The fields a schema names, without the index signature an open object schema (internal bodies) adds. */
type Known<T> = { [K in keyof T as string extends K ? never : K]: T[K] };
/** `T` with null (JSON's "not given") read as absent. */
type NullAsAbsent<T> = { [K in keyof T]: Exclude<T[K], null> };

/** Validates `body` with `check`; 400 naming every offending field. */
function validated<T>(check: (value: unknown) => FieldError[], body: unknown, what: string): T {
  const errors = check(body);
  if (errors.length) throw validationFailed(errors, `${what} is not valid`);
  return body as T;
}

/** An ISO time in its canonical UTC form (the schema checked the shape; the date itself is checked here). */
function canonicalTime(value: string | null | undefined, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw validationFailed([{ field, message: "must be an ISO-8601 time" }]);
  return new Date(ms).toISOString();
}

// --- POST /sources/:id/runs -----------------------------------------------------------------

/** The fields a run request may carry; they reach Dagster as op config. */
export type RunRequest = FromSchema<typeof RUN_REQUEST_SCHEMA>;

const keysMessage = `must be 1..${MAX_KEYS} non-empty strings of at most 512 characters`;
export const RUN_REQUEST_SCHEMA = {
  type: "object",
  additionalProperties: false,
  properties: {
    limit: {
      type: "integer",
      minimum: 1,
      maximum: MAX_RUN_LIMIT,
      "x-message": `must be an integer from 1 to ${MAX_RUN_LIMIT}`,
    },
    keys: {
      type: "array",
      minItems: 1,
      maxItems: MAX_KEYS,
      items: { type: "string", minLength: 1, maxLength: 512, "x-message": keysMessage },
      "x-message": keysMessage,
    },
    partition: { type: "string", minLength: 1, maxLength: 256, "x-message": "must be a non-empty string" },
    full_refresh: { type: "boolean", "x-message": "must be a boolean" },
  },
} as const;
const checkRunRequest = schemaCheck(RUN_REQUEST_SCHEMA);

/** The optional body of POST /sources/:id/runs (none is {}). */
export function parseRunRequest(body: unknown): RunRequest {
  if (body === undefined || body === null) return {};
  const request = validated<RunRequest>(checkRunRequest, body, "run request");
  if (JSON.stringify(request).length > MAX_REQUEST_BYTES) {
    throw validationFailed([{ field: "keys", message: "request is too large" }]);
  }
  return request;
}

// --- PUT /sources/:id -----------------------------------------------------------------------

/** The envelope of an edit; its definition is checked against config/source.schema.json by the route. */
export type SourceUpdate = FromSchema<typeof SOURCE_UPDATE_SCHEMA>;

export const SOURCE_UPDATE_SCHEMA = {
  type: "object",
  required: ["version", "definition"],
  additionalProperties: false,
  properties: {
    version: { type: "integer", minimum: 1, "x-message": "must be the integer version being edited" },
    definition: { type: "object", "x-message": "must be the source definition (an object)" },
  },
} as const;
const checkSourceUpdate = schemaCheck(SOURCE_UPDATE_SCHEMA);

export function parseSourceUpdate(body: unknown): SourceUpdate {
  return validated<SourceUpdate>(checkSourceUpdate, body, "source update");
}

// --- POST /internal/runs --------------------------------------------------------------------

/** A run Dagster started itself (or saw first), registered by the code location: the body, defaults applied. */
export type InternalRunBody = Required<Omit<Known<FromSchema<typeof INTERNAL_RUN_SCHEMA>>, "at">> & { at?: string };

// Internal bodies accept fields they do not know: the code location may be newer than the Worker.
export const INTERNAL_RUN_SCHEMA = {
  type: "object",
  required: ["dagster_run_id", "source_id", "trigger"],
  properties: {
    dagster_run_id: { type: "string", minLength: 1, "x-message": "required string" },
    source_id: { type: "string", minLength: 1, "x-message": "required string" },
    trigger: { enum: TRIGGERS, "x-message": `must be one of ${TRIGGERS.join(", ")}` },
    partition: { type: ["string", "null"], "x-message": "must be a string or null" },
    status: statusOf,
    at: isoTime,
  },
} as const;
const checkInternalRun = schemaCheck(INTERNAL_RUN_SCHEMA);

export function parseInternalRun(body: unknown): InternalRunBody {
  const run = validated<Known<FromSchema<typeof INTERNAL_RUN_SCHEMA>>>(checkInternalRun, body, "run registration");
  return {
    dagster_run_id: run.dagster_run_id,
    source_id: run.source_id,
    trigger: run.trigger,
    partition: run.partition ?? null,
    status: run.status ?? "launched",
    at: canonicalTime(run.at, "at"),
  };
}

// --- POST /internal/runs/:id/status ---------------------------------------------------------

/** A status Dagster reports for a run (the ledger's status machine decides whether it applies); nulls are absent. */
export type StatusUpdate = NullAsAbsent<Known<FromSchema<typeof STATUS_UPDATE_SCHEMA>>>;

const tablesMessage = "must map table names to integer row counts";
const loadJobsMessage = "must map table names to integer load-job counts";
export const STATUS_UPDATE_SCHEMA = {
  type: "object",
  required: ["status"],
  properties: {
    status: statusOf,
    dagster_run_id: { type: "string", minLength: 1, "x-message": "must be a non-empty string" },
    message: { type: ["string", "null"], "x-message": "must be a string" },
    rows_loaded: { type: ["integer", "null"], minimum: 0, "x-message": "must be an integer >= 0" },
    tables: {
      type: ["object", "null"],
      additionalProperties: { type: "integer", minimum: 0, "x-message": tablesMessage },
      "x-message": tablesMessage,
    },
    at: isoTime,
    // An alert for a run that did not fail but needs a look (it set a load package aside); `message` says why.
    alert: { type: ["boolean", "null"], "x-message": "must be true or false" },
    // The load jobs the run made per table, with its final status (load_jobs.ts: BigQuery's load-job quota).
    load_jobs: {
      type: ["object", "null"],
      required: ["destination", "dataset", "budget", "tables"],
      properties: {
        destination: { type: "string", minLength: 1, "x-message": "required string" },
        dataset: { type: "string", minLength: 1, "x-message": "required string" },
        budget: { type: "integer", minimum: 1, "x-message": "must be an integer >= 1" },
        tables: {
          type: "object",
          additionalProperties: { type: "integer", minimum: 0, "x-message": loadJobsMessage },
          "x-message": loadJobsMessage,
        },
      },
      "x-message": "must be {destination, dataset, budget, tables}",
    },
  },
} as const;
const checkStatusUpdate = schemaCheck(STATUS_UPDATE_SCHEMA);

export function parseStatusUpdate(body: unknown): StatusUpdate {
  const update = validated<Known<FromSchema<typeof STATUS_UPDATE_SCHEMA>>>(checkStatusUpdate, body, "status update");
  return {
    status: update.status,
    dagster_run_id: update.dagster_run_id ?? undefined,
    at: canonicalTime(update.at, "at"),
    message: update.message ?? undefined,
    rows_loaded: update.rows_loaded ?? undefined,
    tables: update.tables ?? undefined,
    alert: update.alert ?? undefined,
    load_jobs: update.load_jobs ?? undefined,
  };
}

// --- POST /internal/sources/load-errors -----------------------------------------------------

/** One definition the code location could not build (no version: null). */
export type ReportedLoadError = Required<Known<FromSchema<typeof LOAD_ERROR_REPORT_SCHEMA>["errors"][number]>>;

export const LOAD_ERROR_REPORT_SCHEMA = {
  type: "object",
  required: ["errors"],
  properties: {
    errors: {
      type: "array",
      maxItems: MAX_LOAD_ERRORS,
      "x-message": `must be a list of at most ${MAX_LOAD_ERRORS} errors`,
      items: {
        type: "object",
        required: ["source_id", "message"],
        properties: {
          source_id: { type: "string", minLength: 1, "x-message": "required string" },
          version: { type: ["integer", "null"], minimum: 1, "x-message": "must be an integer >= 1 or null" },
          message: { type: "string", minLength: 1, "x-message": "required string" },
        },
      },
    },
  },
} as const;
const checkLoadErrorReport = schemaCheck(LOAD_ERROR_REPORT_SCHEMA);

/** The whole current set of load errors (a report replaces the previous one; [] clears). */
export function parseLoadErrorReport(body: unknown): ReportedLoadError[] {
  const report = validated<FromSchema<typeof LOAD_ERROR_REPORT_SCHEMA>>(checkLoadErrorReport, body, "load error report");
  return report.errors.map((error) => ({
    source_id: error.source_id,
    version: error.version ?? null,
    message: error.message.slice(0, MAX_LOAD_ERROR_CHARS),
  }));
}

// --- POST /internal/webhooks/:source_id/deliveries/loaded -----------------------------------

/** Most delivery ids one request may mark loaded: one page of deliveries. */
export const MAX_DELIVERIES_PER_PAGE = 1000;
const MAX_RUN_ID = 200;

export type LoadedDeliveries = Known<FromSchema<typeof LOADED_DELIVERIES_SCHEMA>>;

export const LOADED_DELIVERIES_SCHEMA = {
  type: "object",
  required: ["run_id", "delivery_ids"],
  properties: {
    run_id: {
      type: "string",
      minLength: 1,
      maxLength: MAX_RUN_ID,
      pattern: "\\S",
      "x-message": `must be the Dagster run id (1..${MAX_RUN_ID} characters)`,
    },
    delivery_ids: {
      type: "array",
      minItems: 1,
      maxItems: MAX_DELIVERIES_PER_PAGE,
      items: { type: "string", minLength: 1 },
      "x-message": `must be 1..${MAX_DELIVERIES_PER_PAGE} delivery ids`,
    },
  },
} as const;
const checkLoadedDeliveries = schemaCheck(LOADED_DELIVERIES_SCHEMA);

export function parseLoadedDeliveries(body: unknown): LoadedDeliveries {
  return validated<LoadedDeliveries>(checkLoadedDeliveries, body, "loaded deliveries");
}
