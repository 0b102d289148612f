/**
 * One source per destination table. Two definitions loading one warehouse table would fight over it (Dagster
 * keeps the first by source_id and fails the other), so a create or an update that would load a table another
 * source (enabled or not, not retired) already loads is refused, naming the owner. Tables are compared as the
 * warehouse names them: dlt's snake_case naming convention turns `OrderItems` and `order_items` into one table.
 */
import { ApiError } from "../errors";
import { sourceTypeOf, tableKeys } from "../source_types";
import type { SourceDefinition } from "../validation";
import type { SqlCondition } from "./versions";

/**
 * dlt's default naming convention (snake_case) applied to a dataset or table identifier, as
 * dlt.common.normalizers.naming.snake_case normalizes names of the identifier pattern [A-Za-z_][A-Za-z0-9_]*.
 */
export function warehouseName(identifier: string): string {
  let name = identifier
    .replace(/[^a-zA-Z\d_]+/g, "_")
    .replace(/([^_])([A-Z][a-z]+)/g, "$1_$2")
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toLowerCase();
  if (/^\d/.test(name)) name = `_${name}`;
  const stripped = name.replace(/_+$/, "");
  name = stripped + "x".repeat(name.length - stripped.length);
  return name.replace(/__+/g, "_");
}

function warehouseTable(key: string[]): string {
  return key.map(warehouseName).join(".");
}

/**
 * Where the set of sources stands: any create, edit, enable, disable or retirement moves it (the count and the
 * versions only grow), so a write conditioned on the value a check read lands only if nothing changed between.
 */
const SOURCES_STAMP = "(SELECT COUNT(*) || ':' || COALESCE(SUM(version), 0) FROM sources)";

/**
 * Refuses (409 `destination_taken`, naming the field and the owner's source_id) a definition that would load a
 * table another live source loads. Returns the condition the write must carry so the check still holds when it
 * lands; null when `previous` (the definition being replaced) already loaded the same tables, so edits that
 * keep their tables, enable and disable are never refused.
 */
export async function claimDestination(
  db: D1Database,
  definition: SourceDefinition,
  previous?: SourceDefinition,
): Promise<SqlCondition | null> {
  const wanted = tableKeys(definition);
  if (previous) {
    const had = new Set(tableKeys(previous).map(warehouseTable));
    if (wanted.every((key) => had.has(warehouseTable(key)))) return null;
  }
  const [stamp, others] = await db.batch<{ stamp?: string; source_id?: string; definition?: string }>([
    db.prepare(`SELECT ${SOURCES_STAMP} AS stamp`),
    db
      .prepare("SELECT source_id, definition FROM sources WHERE retired_at IS NULL AND source_id != ? ORDER BY source_id")
      .bind(definition.source_id),
  ]);
  const owners = new Map<string, string>();
  for (const row of others.results) {
    for (const key of tableKeys(JSON.parse(row.definition as string))) {
      const table = warehouseTable(key);
      if (!owners.has(table)) owners.set(table, row.source_id as string);
    }
  }
  for (const key of wanted) {
    const owner = owners.get(warehouseTable(key));
    if (owner) {
      const field = sourceTypeOf(definition).tableField(definition, key);
      const message = `table ${key.join(".")} is already loaded by source ${owner}`;
      throw new ApiError(409, "destination_taken", `${field}: ${message}`, [{ field, message }]);
    }
  }
  return { sql: `${SOURCES_STAMP} = ?`, params: [stamp.results[0].stamp] };
}
