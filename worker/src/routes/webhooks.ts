/**
 * Webhook deliveries for Dagster (bearer DLT_INTERNAL_TOKEN): what waits, pages of documents, marking them loaded.
 * For operators (bearer DLT_OPERATOR_TOKEN or DLT_READONLY_TOKEN): per-source figures.
 */
import { Hono } from "hono";
import { requireInternal } from "../auth";
import type { AppEnv } from "../env";
import { notFound, validationFailed, type FieldError } from "../errors";
import { MAX_DELIVERIES_PER_PAGE, parseLoadedDeliveries } from "../bodies";
import { jsonBody } from "../http";
import { requireReader } from "../roles";
import { findSource, getSource } from "../ledger";
import { receivesDeliveries } from "../source_types";
import { positionOf, deliveryPage, markLoaded, waitingSummary, type DeliveryFilter } from "../webhooks/deliveries";
import { allWebhookStats, webhookStats } from "../webhooks/stats";

export const webhooks = new Hono<AppEnv>();

export const MAX_PAGE = MAX_DELIVERIES_PER_PAGE;

/** A source that is (or was) a webhook source; its deliveries stay readable while it is disabled. */
async function webhookSource(db: D1Database, sourceId: string) {
  const source = await findSource(db, sourceId);
  if (!source || !receivesDeliveries(source.definition)) throw notFound(`webhook source ${sourceId}`);
  return source;
}

webhooks.get("/internal/webhooks/waiting", requireInternal, async (c) =>
  c.json({ sources: await waitingSummary(c.env.DB) }),
);

function parseDeliveryQuery(query: Record<string, string>): DeliveryFilter {
  const fields: FieldError[] = [];
  const { state, hour, after, limit } = query;
  if (state !== undefined && state !== "waiting" && state !== "loaded") {
    fields.push({ field: "state", message: "must be waiting or loaded" });
  }
  if (hour !== undefined && !(/^\d{4}-\d{2}-\d{2}T\d{2}$/.test(hour) && !Number.isNaN(Date.parse(`${hour}:00:00Z`)))) {
    fields.push({ field: "hour", message: "must be a UTC hour YYYY-MM-DDTHH" });
  }
  if (state === undefined && hour === undefined) fields.push({ field: "state", message: "give state=waiting or hour=" });
  const size = limit === undefined || limit === "" ? 500 : Number(limit);
  if (!Number.isInteger(size) || size < 1 || size > MAX_PAGE) fields.push({ field: "limit", message: `must be 1..${MAX_PAGE}` });
  if (fields.length) throw validationFailed(fields);
  return {
    state: state as DeliveryFilter["state"],
    hour,
    after: after ? positionOf(after) : undefined,
    limit: size,
  };
}

webhooks.get("/internal/webhooks/:source_id/deliveries", requireInternal, async (c) => {
  const filter = parseDeliveryQuery(c.req.query());
  const source = await webhookSource(c.env.DB, c.req.param("source_id"));
  const page = await deliveryPage(c.env, source.source_id, filter);
  return c.body(page, 200, { "content-type": "application/json; charset=utf-8" });
});

webhooks.post("/internal/webhooks/:source_id/deliveries/loaded", requireInternal, jsonBody(parseLoadedDeliveries), async (c) => {
  const body = c.req.valid("json");
  const source = await webhookSource(c.env.DB, c.req.param("source_id"));
  return c.json({ marked: await markLoaded(c.env.DB, source.source_id, body.run_id, body.delivery_ids) });
});

webhooks.get("/webhooks", requireReader, async (c) => c.json(await allWebhookStats(c.env.DB)));

webhooks.get("/sources/:source_id/webhook", requireReader, async (c) => {
  const source = await getSource(c.env.DB, c.req.param("source_id"));
  if (!receivesDeliveries(source.definition)) throw notFound(`webhook source ${source.source_id}`);
  return c.json(await webhookStats(c.env.DB, source.source_id, source.enabled));
});
