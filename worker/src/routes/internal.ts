/** Internal API for Dagster (bearer DLT_INTERNAL_TOKEN). */
import { Hono } from "hono";
import { requireInternal } from "../auth";
import type { AppEnv } from "../env";
import { notFound, validationFailed } from "../errors";
import { parseInternalRun, parseLoadErrorReport, parseStatusUpdate } from "../bodies";
import { background, jsonBody } from "../http";
import { kvNamespace, readKvPage } from "../kv";
import { replaceLoadErrors, sourceVersions } from "../load_errors";
import { ALERTING, applyStatus, findRun, getSource, listDefinitions, registerDagsterRun } from "../ledger";
import { nowIso } from "../ids";
import { oweLoadJobAlert, recordLoadJobs, sourceLoadJobs, utcDay } from "../load_jobs";
import { deliverNotifications } from "../notify";

export const internal = new Hono<AppEnv>();

internal.get("/internal/sources", requireInternal, async (c) =>
  c.json({ sources: await listDefinitions(c.env.DB), versions: await sourceVersions(c.env.DB) }),
);

/** The code location reports the definitions it could not build (the whole set; [] clears). */
internal.post("/internal/sources/load-errors", requireInternal, jsonBody(parseLoadErrorReport), async (c) => {
  const errors = c.req.valid("json");
  await replaceLoadErrors(c.env.DB, errors);
  return c.json({ recorded: errors.length });
});

internal.post("/internal/runs", requireInternal, jsonBody(parseInternalRun), async (c) => {
  const body = c.req.valid("json");
  const { run, created } = await registerDagsterRun(c.env.DB, {
    source_id: body.source_id,
    trigger: body.trigger,
    status: body.status,
    partition: body.partition,
    dagster_run_id: body.dagster_run_id,
    at: body.at,
    message: `registered by Dagster (${body.trigger})`,
  });
  if (created && ALERTING.has(run.status)) background(c, deliverNotifications(c.env, { runId: run.run_id }));
  return c.json({ run_id: run.run_id, created });
});

internal.post("/internal/runs/:run_id/status", requireInternal, jsonBody(parseStatusUpdate), async (c) => {
  const runId = c.req.param("run_id");
  const update = c.req.valid("json");
  if (!(await findRun(c.env.DB, runId))) throw notFound(`run ${runId}`);
  const { load_jobs: loadJobs, ...change } = update;
  const { run, applied } = await applyStatus(c.env.DB, runId, {
    ...change,
    ...(loadJobs ? { data: { load_jobs: loadJobs.tables } } : {}),
  });
  // Counted only when the status applied: a repeated report adds nothing.
  const warnings = applied && loadJobs ? await recordLoadJobs(c.env.DB, run, loadJobs, update.at ?? nowIso()) : [];
  await oweLoadJobAlert(c.env.DB, runId, run.status, warnings);
  if (applied && (ALERTING.has(run.status) || update.alert || warnings.length)) {
    background(c, deliverNotifications(c.env, { runId }));
  }
  return c.json({ run_id: run.run_id, status: run.status, applied });
});

/** A source's tables and their load jobs today (UTC), every source's into each: webhook sensors space runs by it. */
internal.get("/internal/sources/:source_id/load-jobs", requireInternal, async (c) => {
  const source = await getSource(c.env.DB, c.req.param("source_id"));
  const day = utcDay(nowIso());
  return c.json({ source_id: source.source_id, day, tables: await sourceLoadJobs(c.env.DB, source.source_id, day) });
});

internal.get("/internal/kv/:namespace_title/page", requireInternal, async (c) => {
  const ns = kvNamespace(c.env, c.req.param("namespace_title"));
  const { cursor, prefix, limit } = c.req.query();
  const size = limit === undefined || limit === "" ? 1000 : Number(limit);
  if (!Number.isInteger(size) || size < 1 || size > 1000) {
    throw validationFailed([{ field: "limit", message: "must be 1..1000" }]);
  }
  return c.json(await readKvPage(ns, { cursor: cursor || undefined, prefix: prefix || undefined, limit: size }));
});
