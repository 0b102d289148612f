/**
 * Reads the D1 databases the Worker binds for d1 sources with `transport: worker` (dlt_platform/source_types/d1/):
 * their user tables, a table's declared columns, and keyset pages of a table. The caller never sends SQL: it names
 * a table and columns, which are checked against the table's own declaration, and the SELECT is built here, as
 * dlt_platform/source_types/d1/client.py `page_sql` builds it for the REST API. Only D1 bindings are reachable (a
 * name that is not one is 404), and only their user tables (never sqlite_* or D1's own _cf_*).
 */
import { ApiError, validationFailed, type FieldError } from "./errors";
import type { Env } from "./env";

/** The rowid of a table read by rowid, as a column of its rows (client.py ROWID_COLUMN). */
export const ROWID_COLUMN = "_d1_rowid";
/** Rows one page may ask for: a page stays well inside the Worker's memory and D1's 50 MB result limit. */
export const MAX_PAGE_ROWS = 5000;
const MAX_KEY_COLUMNS = 9;
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const TABLES_SQL =
  "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' " +
  "AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name";

function isD1Database(value: unknown): value is D1Database {
  const candidate = value as Partial<D1Database> | null;
  return (
    typeof candidate === "object" &&
    candidate !== null &&
    typeof candidate.prepare === "function" &&
    typeof candidate.batch === "function" &&
    typeof candidate.exec === "function"
  );
}

/** The names of the Worker's D1 bindings. */
export function d1Bindings(env: Env): string[] {
  return Object.entries(env as unknown as Record<string, unknown>)
    .filter(([, value]) => isD1Database(value))
    .map(([name]) => name)
    .sort();
}

/** The D1 binding named `binding`; 404 for any other name. */
export function d1Database(env: Env, binding: string): D1Database {
  const value = NAME.test(binding) ? (env as unknown as Record<string, unknown>)[binding] : undefined;
  if (!isD1Database(value)) throw new ApiError(404, "unknown_database", `no D1 database is bound as ${binding}`);
  return value;
}

export interface D1Column {
  name: string;
  type: string;
  pk: number;
  notnull: boolean;
}

export interface D1TableInfo {
  name: string;
  columns: D1Column[];
  has_rowid: boolean;
}

export async function userTables(db: D1Database): Promise<{ name: string; sql: string | null }[]> {
  const { results } = await db.prepare(TABLES_SQL).all<{ name: string; sql: string | null }>();
  return results;
}

/** A user table's declared columns (PRAGMA table_info); 404 when the database has no such user table. */
export async function tableInfo(db: D1Database, table: string): Promise<D1TableInfo> {
  const found = NAME.test(table) ? (await userTables(db)).find((t) => t.name === table) : undefined;
  if (!found) throw new ApiError(404, "unknown_table", `no such table: ${table}`);
  const { results } = await db
    .prepare(`PRAGMA table_info(${quoted(table)})`)
    .all<{ name: string; type: string | null; pk: number; notnull: number }>();
  return {
    name: table,
    columns: results.map((c) => ({ name: c.name, type: c.type ?? "", pk: Number(c.pk), notnull: Boolean(c.notnull) })),
    has_rowid: !/without\s+rowid/i.test(found.sql ?? ""),
  };
}

function quoted(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

type Scalar = string | number | null;
const isScalar = (value: unknown): value is Scalar =>
  value === null || typeof value === "string" || (typeof value === "number" && Number.isFinite(value));

/** One page request (client.py PageQuery), as the caller sends it. */
export interface PageQuery {
  table: string;
  columns: string[];
  key: string[];
  limit: number;
  hex_columns: string[];
  rowid: boolean;
  cursor: string | null;
  since: Scalar;
  after: Scalar[] | null;
}

/** The page request if every name in it is one of the table's columns; otherwise 400 naming each bad field. */
export function checkedPage(body: unknown, info: D1TableInfo): PageQuery {
  const page = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const names = new Set(info.columns.map((c) => c.name));
  const problems: FieldError[] = [];
  const strings = (value: unknown): value is string[] => Array.isArray(value) && value.every((v) => typeof v === "string");
  const columns = page.columns;
  if (!strings(columns) || !columns.length || new Set(columns).size !== columns.length) {
    problems.push({ field: "columns", message: "must list the table's columns to read, each once" });
  } else {
    for (const name of columns) if (!names.has(name)) problems.push({ field: "columns", message: `${info.name} has no column ${name}` });
  }
  const rowid = page.rowid ?? false;
  if (typeof rowid !== "boolean") problems.push({ field: "rowid", message: "must be true or false" });
  else if (rowid && !info.has_rowid) problems.push({ field: "rowid", message: `${info.name} is WITHOUT ROWID` });
  const hex = page.hex_columns ?? [];
  if (!strings(hex) || hex.some((name) => !strings(columns) || !columns.includes(name))) {
    problems.push({ field: "hex_columns", message: "must be columns of the page" });
  }
  const key = page.key;
  const keyable = (name: string) => names.has(name) || (rowid === true && name === ROWID_COLUMN);
  if (!strings(key) || !key.length || key.length > MAX_KEY_COLUMNS || !key.every(keyable)) {
    problems.push({ field: "key", message: `must be 1..${MAX_KEY_COLUMNS} columns of the table (or ${ROWID_COLUMN} with rowid)` });
  }
  const cursor = page.cursor ?? null;
  if (cursor !== null && (typeof cursor !== "string" || !strings(key) || !key.includes(cursor))) {
    problems.push({ field: "cursor", message: "must be one of the key's columns" });
  }
  const since = page.since ?? null;
  if (!isScalar(since) || (since !== null && cursor === null)) {
    problems.push({ field: "since", message: "must be a string or number, and needs a cursor" });
  }
  const after = page.after ?? null;
  if (after !== null && (!Array.isArray(after) || !after.every(isScalar) || !strings(key) || after.length !== key.length)) {
    problems.push({ field: "after", message: "must hold one value per key column" });
  }
  const limit = page.limit;
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_ROWS) {
    problems.push({ field: "limit", message: `must be 1..${MAX_PAGE_ROWS}` });
  }
  if (problems.length) throw validationFailed(problems, "page request is not valid");
  return {
    table: info.name,
    columns: columns as string[],
    key: key as string[],
    limit: limit as number,
    hex_columns: hex as string[],
    rowid: rowid as boolean,
    cursor: cursor as string | null,
    since: since as Scalar,
    after: after as Scalar[] | null,
  };
}

/** The SELECT of one page and its parameters (client.py page_sql builds the same for the REST API). */
export function pageSql(page: PageQuery): { sql: string; params: Scalar[] } {
  const select = page.rowid ? [`rowid AS "${ROWID_COLUMN}"`] : [];
  for (const name of page.columns) {
    select.push(
      page.hex_columns.includes(name)
        ? `CASE WHEN ${quoted(name)} IS NULL THEN NULL ELSE hex(${quoted(name)}) END AS ${quoted(name)}`
        : quoted(name),
    );
  }
  const conditions: string[] = [];
  const params: Scalar[] = [];
  if (page.cursor !== null) conditions.push(`${quoted(page.cursor)} IS NOT NULL`);
  if (page.since !== null && page.cursor !== null) {
    conditions.push(`${quoted(page.cursor)} >= ?`);
    params.push(page.since);
  }
  if (page.after !== null) {
    conditions.push(`(${page.key.map(quoted).join(", ")}) > (${page.key.map(() => "?").join(", ")})`);
    params.push(...page.after);
  }
  const where = conditions.length ? ` WHERE ${conditions.join(" AND ")}` : "";
  const inner = `SELECT ${select.join(", ")} FROM ${quoted(page.table)}`;
  params.push(page.limit);
  return { sql: `SELECT * FROM (${inner})${where} ORDER BY ${page.key.map(quoted).join(", ")} LIMIT ?`, params };
}

/** One page: the columns and the rows as arrays (BLOBs not read as hex come as arrays of byte values). */
export async function readPage(db: D1Database, page: PageQuery): Promise<{ columns: string[]; rows: unknown[][] }> {
  const { sql, params } = pageSql(page);
  const [columns, ...rows] = await db
    .prepare(sql)
    .bind(...params)
    .raw({ columnNames: true });
  const names = (columns ?? [...(page.rowid ? [ROWID_COLUMN] : []), ...page.columns]) as string[];
  return {
    columns: names,
    rows: rows.map((row) => row.map((value) => (value instanceof ArrayBuffer ? [...new Uint8Array(value)] : value))),
  };
}
