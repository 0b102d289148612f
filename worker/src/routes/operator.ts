/** Operator API (bearer DLT_OPERATOR_TOKEN; reads also DLT_READONLY_TOKEN, roles.ts). */
import { Hono } from "hono";
import { reloadLocation } from "../dagster";
import type { AppEnv } from "../env";
import { ApiError, validationFailed } from "../errors";
import { decodeCursor, encodeCursor } from "../cursor";
import { actorOf, background, idempotencyKey, jsonBody } from "../http";
import {
  createSource,
  getRun,
  getSource,
  listEvents,
  listRuns,
  listSources,
  listVersions,
  retireSource,
  runView,
  setSourceEnabled,
  updateSource,
  type RunListPosition,
} from "../ledger";
import { withLoadErrors } from "../load_errors";
import { assertHostsAllowed } from "../source_types";
import { requireReader, requireWriter } from "../roles";
import { cancelRun, retryRun, startRun } from "../runs";
import { parseRunRequest, parseSourceUpdate } from "../bodies";
import { assertDefinition, definitionErrors, RUN_STATUSES, type RunStatus, type SourceDefinition } from "../validation";

export const operator = new Hono<AppEnv>();

operator.get("/sources", requireReader, async (c) => {
  const flag = c.req.query("include_retired");
  if (flag !== undefined && !["0", "1", "true", "false"].includes(flag)) {
    throw validationFailed([{ field: "include_retired", message: "must be 1 or 0" }]);
  }
  const includeRetired = flag === "1" || flag === "true";
  return c.json({ sources: await withLoadErrors(c.env.DB, await listSources(c.env.DB, { includeRetired })) });
});

operator.post("/sources", requireWriter, jsonBody(assertDefinition), async (c) => {
  const definition = c.req.valid("json");
  assertHostsAllowed(definition, c.env, c.req.url);
  const source = await createSource(c.env.DB, definition, actorOf(c));
  background(c, reloadLocation(c.env));
  return c.json(source, 201);
});

/**
 * The full check of a definition, as POST /sources makes it (schema, schedule, rest_api rules, hosts), storing
 * nothing: 200 with the problems by field. Open to the read-only token. No route takes POST at
 * /sources/{source_id}, so this path never stands for a source named "validate".
 */
operator.post("/sources/validate", requireReader, jsonBody((body) => ({ definition: body })), async (c) => {
  const { definition } = c.req.valid("json");
  const problems = definitionErrors(definition);
  if (!problems.length) {
    try {
      assertHostsAllowed(definition as SourceDefinition, c.env, c.req.url);
    } catch (err) {
      if (!(err instanceof ApiError && err.fields)) throw err;
      problems.push(...err.fields);
    }
  }
  return c.json({ valid: problems.length === 0, problems });
});

operator.get("/sources/:source_id", requireReader, async (c) => {
  const [source] = await withLoadErrors(c.env.DB, [await getSource(c.env.DB, c.req.param("source_id"))]);
  return c.json(source);
});

operator.put("/sources/:source_id", requireWriter, jsonBody(parseSourceUpdate), async (c) => {
  const sourceId = c.req.param("source_id");
  const body = c.req.valid("json");
  const definition = assertDefinition(body.definition);
  if (definition.source_id !== sourceId) {
    throw validationFailed([{ field: "source_id", message: `must equal the path's source_id (${sourceId})` }]);
  }
  assertHostsAllowed(definition, c.env, c.req.url);
  const source = await updateSource(c.env.DB, sourceId, body.version, definition, actorOf(c));
  background(c, reloadLocation(c.env));
  return c.json(source);
});

for (const [action, enabled] of [
  ["enable", true],
  ["disable", false],
] as const) {
  operator.post(`/sources/:source_id/${action}`, requireWriter, async (c) => {
    const { source, changed } = await setSourceEnabled(c.env.DB, c.req.param("source_id"), enabled, actorOf(c));
    if (changed) background(c, reloadLocation(c.env));
    return c.json(source);
  });
}

/** Retires a source: disabled for good, gone from Dagster's definitions, its versions and runs kept. */
operator.delete("/sources/:source_id", requireWriter, async (c) => {
  const { source, changed } = await retireSource(c.env.DB, c.req.param("source_id"), actorOf(c));
  if (changed) background(c, reloadLocation(c.env));
  return c.json(source);
});

operator.get("/sources/:source_id/versions", requireReader, async (c) =>
  c.json({ versions: await listVersions(c.env.DB, c.req.param("source_id")) }),
);

operator.post("/sources/:source_id/runs", requireWriter, jsonBody(parseRunRequest, { optional: true }), async (c) => {
  const request = c.req.valid("json");
  const { run } = await startRun(c.env, {
    source_id: c.req.param("source_id"),
    trigger: "api",
    request,
    idempotency_key: idempotencyKey(c),
  });
  return c.json({ run_id: run.run_id, status: run.status }, 202);
});

/** A /runs cursor: the [created_at, run_id] of the last run of the previous page. */
function isRunPosition(value: unknown): value is [string, string] {
  return Array.isArray(value) && value.length === 2 && value.every((part) => typeof part === "string");
}

function readRunCursor(cursor: string | undefined): RunListPosition | undefined {
  if (!cursor) return undefined;
  const [created_at, run_id] = decodeCursor(cursor, isRunPosition);
  return { created_at, run_id };
}

operator.get("/runs", requireReader, async (c) => {
  const { source_id, status, limit, cursor } = c.req.query();
  const fields = [];
  if (status !== undefined && !RUN_STATUSES.includes(status as RunStatus)) {
    fields.push({ field: "status", message: `must be one of ${RUN_STATUSES.join(", ")}` });
  }
  const size = limit === undefined ? 50 : Number(limit);
  if (!Number.isInteger(size) || size < 1 || size > 200) fields.push({ field: "limit", message: "must be 1..200" });
  if (fields.length) throw validationFailed(fields);
  const page = await listRuns(c.env.DB, {
    source_id: source_id || undefined,
    status: (status as RunStatus) || undefined,
    limit: size,
    cursor: readRunCursor(cursor),
  });
  return c.json({
    runs: page.runs.map(runView),
    next_cursor: page.next ? encodeCursor([page.next.created_at, page.next.run_id]) : null,
  });
});

operator.get("/runs/:run_id", requireReader, async (c) => {
  const run = await getRun(c.env.DB, c.req.param("run_id"));
  return c.json({ ...runView(run), events: await listEvents(c.env.DB, run.run_id) });
});

operator.post("/runs/:run_id/retry", requireWriter, async (c) => {
  const { run } = await retryRun(c.env, c.req.param("run_id"), idempotencyKey(c));
  return c.json({ run_id: run.run_id, status: run.status, retry_of: run.retry_of }, 202);
});

operator.post("/runs/:run_id/cancel", requireWriter, async (c) => {
  const { run, dagster } = await cancelRun(c.env, c.req.param("run_id"), actorOf(c));
  return c.json({ ...runView(run), dagster });
});
