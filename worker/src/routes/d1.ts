/**
 * Internal API (bearer DLT_INTERNAL_TOKEN) over the Worker's D1 bindings, for d1 sources with `transport: worker`
 * (dlt_platform/source_types/d1/client.py D1WorkerClient). Read-only: the SELECTs are built by d1.ts from names it
 * checks; no SQL is taken from the caller.
 */
import { Hono } from "hono";
import { requireInternal } from "../auth";
import { checkedPage, d1Bindings, d1Database, readPage, tableInfo, userTables } from "../d1";
import type { AppEnv } from "../env";
import { jsonBody } from "../http";

export const d1Routes = new Hono<AppEnv>();

d1Routes.get("/internal/d1", requireInternal, (c) => c.json({ databases: d1Bindings(c.env) }));

d1Routes.get("/internal/d1/:binding/tables", requireInternal, async (c) => {
  const tables = await userTables(d1Database(c.env, c.req.param("binding")));
  return c.json({ tables: tables.map(({ name }) => ({ name })) });
});

d1Routes.get("/internal/d1/:binding/tables/:table", requireInternal, async (c) =>
  c.json(await tableInfo(d1Database(c.env, c.req.param("binding")), c.req.param("table"))),
);

d1Routes.post("/internal/d1/:binding/page", requireInternal, jsonBody((body) => (typeof body === "object" && body !== null ? body : {})), async (c) => {
  const db = d1Database(c.env, c.req.param("binding"));
  const body = c.req.valid("json") as { table?: unknown };
  const info = await tableInfo(db, typeof body.table === "string" ? body.table : "");
  return c.json(await readPage(db, checkedPage(body, info)));
});
