import { env as bindings } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { signIn } from "./admin_helpers";
import { call, INTERNAL, json, testEnv, uniqueId } from "./helpers";
import type { Env } from "../src/env";
import { pageSql, type PageQuery } from "../src/d1";
import pageCases from "../../dlt_platform/source_types/d1/page_cases.json";

const asDagster = { token: INTERNAL };
// A second name for the test database: the Worker serves any D1 binding it has, by binding name.
const { env } = testEnv({ APP_DB: bindings.DB } as unknown as Partial<Env>);

beforeAll(async () => {
  await bindings.DB.exec("DROP TABLE IF EXISTS d1_users");
  await bindings.DB.exec("DROP TABLE IF EXISTS d1_pairs");
  await bindings.DB.exec(
    "CREATE TABLE d1_users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, avatar BLOB, extra, updated_at TEXT)",
  );
  await bindings.DB.exec("CREATE TABLE d1_pairs (a TEXT, b TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID");
  const insert = bindings.DB.prepare("INSERT INTO d1_users VALUES (?, ?, ?, ?, ?)");
  await bindings.DB.batch(
    Array.from({ length: 25 }, (_, i) =>
      insert.bind(i + 1, `u${i + 1}@example.com`, new Uint8Array([i, 255]), new Uint8Array([7]), `2026-01-${String((i % 5) + 1).padStart(2, "0")}`),
    ),
  );
});

const page = (overrides: Record<string, unknown> = {}) => ({
  table: "d1_users",
  columns: ["id", "email", "avatar", "extra", "updated_at"],
  key: ["updated_at", "id"],
  cursor: "updated_at",
  hex_columns: ["avatar"],
  rowid: false,
  limit: 10,
  since: null,
  after: null,
  ...overrides,
});

describe("internal D1 reads", () => {
  it("lists the Worker's D1 bindings and reaches nothing else", async () => {
    const listed = await json(await call(env, "GET", "/internal/d1", asDagster));
    expect(listed.databases).toEqual(expect.arrayContaining(["APP_DB", "DB"]));
    expect(listed.databases).not.toContain("ORDERS_KV");
    for (const name of ["ORDERS_KV", "DLT_INTERNAL_TOKEN", "JOBS", "NOPE"]) {
      const response = await call(env, "GET", `/internal/d1/${name}/tables`, asDagster);
      expect(response.status).toBe(404);
      expect((await json(response)).error.message).toBe(`no D1 database is bound as ${name}`);
    }
    expect((await call(env, "GET", "/internal/d1/APP_DB/tables", { token: null })).status).toBe(401);
    expect((await call(env, "GET", "/internal/d1/APP_DB/tables")).status).toBe(401); // the operator token is not enough
  });

  it("lists user tables and a table's declared columns", async () => {
    const { tables } = await json(await call(env, "GET", "/internal/d1/APP_DB/tables", asDagster));
    const names = tables.map((t: { name: string }) => t.name);
    expect(names).toEqual(expect.arrayContaining(["d1_users", "d1_pairs"]));
    expect(names.filter((n: string) => n.startsWith("sqlite_") || n.startsWith("_cf_"))).toEqual([]);
    const users = await json(await call(env, "GET", "/internal/d1/APP_DB/tables/d1_users", asDagster));
    expect(users).toEqual({
      name: "d1_users",
      has_rowid: true,
      columns: [
        { name: "id", type: "INTEGER", pk: 1, notnull: false },
        { name: "email", type: "TEXT", pk: 0, notnull: true },
        { name: "avatar", type: "BLOB", pk: 0, notnull: false },
        { name: "extra", type: "", pk: 0, notnull: false },
        { name: "updated_at", type: "TEXT", pk: 0, notnull: false },
      ],
    });
    const pairs = await json(await call(env, "GET", "/internal/d1/APP_DB/tables/d1_pairs", asDagster));
    expect(pairs.has_rowid).toBe(false);
    const missing = await call(env, "GET", "/internal/d1/APP_DB/tables/sqlite_master", asDagster);
    expect(missing.status).toBe(404);
    expect((await json(missing)).error.message).toBe("no such table: sqlite_master");
  });

  it("reads keyset pages in key order, each row once, from a cursor's lower bound", async () => {
    const seen: unknown[][] = [];
    let after: unknown[] | null = null;
    for (;;) {
      const response = await call(env, "POST", "/internal/d1/APP_DB/page", { ...asDagster, body: page({ after }) });
      expect(response.status).toBe(200);
      const body = await json(response);
      expect(body.columns).toEqual(["id", "email", "avatar", "extra", "updated_at"]);
      seen.push(...body.rows);
      if (body.rows.length < 10) break;
      const last = body.rows.at(-1);
      after = [last[4], last[0]];
    }
    expect(seen.map((row) => row[0]).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    const order = seen.map((row) => `${row[4]}#${String(row[0]).padStart(3, "0")}`);
    expect(order).toEqual([...order].sort());
    expect(seen.find((row) => row[0] === 3)?.slice(2, 4)).toEqual(["02FF", [7]]); // hex BLOB; undeclared one as bytes

    const since = await json(await call(env, "POST", "/internal/d1/APP_DB/page", { ...asDagster, body: page({ since: "2026-01-05", limit: 100 }) }));
    expect(since.rows.map((row: unknown[]) => row[0])).toEqual([5, 10, 15, 20, 25]);
  });

  it("reads a table by rowid", async () => {
    const body = await json(
      await call(env, "POST", "/internal/d1/APP_DB/page", {
        ...asDagster,
        body: page({ columns: ["email"], key: ["_d1_rowid"], cursor: "_d1_rowid", hex_columns: [], rowid: true, since: 24 }),
      }),
    );
    expect(body).toEqual({ columns: ["_d1_rowid", "email"], rows: [[24, "u24@example.com"], [25, "u25@example.com"]] });
  });

  it("refuses names that are not the table's columns, naming each field, and runs no SQL it is sent", async () => {
    const refused = await call(env, "POST", "/internal/d1/APP_DB/page", {
      ...asDagster,
      body: page({
        columns: ['id" FROM d1_users; DROP TABLE d1_users; --'],
        key: ["nope"],
        limit: 5001,
        since: { sql: "1" },
        after: [1, 2],
        hex_columns: ["email"],
      }),
    });
    expect(refused.status).toBe(400);
    const fields = (await json(refused)).error.fields.map((f: { field: string }) => f.field);
    expect(new Set(fields)).toEqual(new Set(["columns", "hex_columns", "key", "cursor", "since", "after", "limit"]));
    const unknown = await call(env, "POST", "/internal/d1/APP_DB/page", { ...asDagster, body: page({ table: "runs; DELETE FROM runs" }) });
    expect(unknown.status).toBe(404);
    const withoutRowid = await call(env, "POST", "/internal/d1/APP_DB/page", {
      ...asDagster,
      body: page({ table: "d1_pairs", columns: ["a"], key: ["_d1_rowid"], cursor: null, hex_columns: [], rowid: true }),
    });
    expect((await json(withoutRowid)).error.fields).toEqual([{ field: "rowid", message: "d1_pairs is WITHOUT ROWID" }]);
    const { rows } = await json(await call(env, "POST", "/internal/d1/APP_DB/page", { ...asDagster, body: page({ limit: 100 }) }));
    expect(rows).toHaveLength(25); // the table is still there
  });
});

describe("page SELECTs", () => {
  // The same cases as dlt_platform_tests/test_d1_pages.py: both transports build the same SELECT for a page.
  for (const { name, page, sql, params } of pageCases.cases) {
    it(`builds ${name} as the REST transport does`, () => {
      expect(pageSql(page as unknown as PageQuery)).toEqual({ sql, params });
    });
  }
});

describe("d1 definitions", () => {
  const d1Definition = (sourceId: string, extract: Record<string, unknown> = {}) => ({
    source_id: sourceId,
    source_type: "d1",
    destination: { type: "bigquery", dataset: "app", write_disposition: "merge" },
    extract: {
      database_id: "6f1c2a3e-8b4d-4e5f-9a7b-2c3d4e5f6a7b",
      database_name: "DB",
      transport: "worker",
      tables: [{ name: "UserEvents", cursor: "rowid", write_disposition: "append" }, { name: "runs", cursor: "updated_at" }],
      ...extract,
    },
  });

  it("are stored through the operator API and shown on the admin page with their tables", async () => {
    const sourceId = uniqueId("d1");
    const created = await call(env, "POST", "/sources", { body: d1Definition(sourceId) });
    expect(created.status).toBe(201);
    const cookie = await signIn(env);
    const page = await (await call(env, "GET", "/admin", { token: null, headers: { Cookie: cookie } })).text();
    // The warehouse tables are dlt's snake_case of the D1 names, as the Python side names them.
    expect(page).toContain("d1 &rarr; app.user_events, app.runs");
  });

  it("are refused naming the field when the Worker could not serve them", async () => {
    const refused = await call(env, "POST", "/sources", {
      body: d1Definition(uniqueId("d1"), { queries: [{ name: "q", sql: "SELECT 1 AS id", primary_key: ["id"] }] }),
    });
    expect(refused.status).toBe(400);
    expect((await json(refused)).error.fields).toEqual([
      { field: "extract.queries", message: "queries need transport rest: the Worker builds its own SELECTs and runs no SQL it is sent" },
    ]);
  });
});
