/**
 * d1: tables of a D1 database (or named SELECT queries over it), one warehouse table each. What the schema cannot
 * say is checked as dlt_platform/source_types/d1/definition.py checks it: at least one table or query, each
 * warehouse table named once, and a table with a cursor does not replace.
 */
import type { D1Extract, D1Query, D1Table } from "../definitions";
import type { FieldError } from "../errors";
import type { SourceDefinition } from "../validation";
import type { SourceType } from "./types";

type D1Item = D1Table | D1Query;

/** dlt's snake_case of a SQLite name (letters, digits, '_'): the warehouse table of a D1 table. */
export function snakeCase(name: string): string {
  let text = name.replace(/([^_])([A-Z][a-z]+)/g, "$1_$2").replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
  const stripped = text.replace(/_+$/, "");
  text = stripped + "x".repeat(text.length - stripped.length);
  return text.replace(/__+/g, "_");
}

function items(definition: SourceDefinition): { kind: "tables" | "queries"; index: number; item: D1Item }[] {
  const extract = definition.extract as unknown as D1Extract;
  return [
    ...(extract.tables ?? []).map((item, index) => ({ kind: "tables" as const, index, item })),
    ...(extract.queries ?? []).map((item, index) => ({ kind: "queries" as const, index, item })),
  ];
}

/** A D1 table's warehouse table is dlt's form of its name; a query's is its name as given. */
function tableName(kind: "tables" | "queries", item: D1Item): string {
  return kind === "tables" ? snakeCase(item.name) : item.name;
}

export const d1: SourceType = {
  tableKeys: (definition) => items(definition).map(({ kind, item }) => [definition.destination.dataset, tableName(kind, item)]),
  tableField(definition, key) {
    const found = items(definition).find(({ kind, item }) => tableName(kind, item) === key[1]);
    return found ? `extract.${found.kind}.${found.index}.name` : "extract.tables";
  },
  partitions: () => null,
  problems(definition): FieldError[] {
    const all = items(definition);
    const names = all.map(({ kind, item }) => (kind === "tables" ? item.name.toLowerCase() : item.name));
    const twice = [...new Set(names.filter((name, index) => names.indexOf(name) !== index))].sort();
    if (twice.length) {
      return [{ field: "extract.queries", message: `tables and queries must name distinct tables: ${twice.join(", ")} twice` }];
    }
    if (!all.length) return [{ field: "extract.queries", message: "give at least one table or query" }];
    const rowidQuery = all.find(({ kind, item }) => kind === "queries" && item.cursor === "rowid");
    if (rowidQuery) {
      return [{ field: `extract.queries.${rowidQuery.index}.cursor`, message: "a query has no rowid: name one of its columns" }];
    }
    const fallback = definition.destination?.write_disposition ?? "replace";
    const replacing = all.find(({ item }) => item.cursor != null && (item.write_disposition ?? fallback) === "replace");
    if (!replacing) return [];
    return [
      {
        field: "extract",
        message:
          `${replacing.kind}.${replacing.index}: table '${replacing.item.name}' has a cursor but replaces: an incremental ` +
          "run reads only new rows, so give write_disposition merge or append",
      },
    ];
  },
  hostProblems: () => [],
  receivesDeliveries: false,
};
