/**
 * r2_files: files in an R2 bucket, one table per `extract.tables` entry (a glob of files, or a Cloudflare Logpush
 * job whose table is its `name`, else its dataset). What the schema cannot say is checked as
 * dlt_platform/source_types/r2_files/definition.py checks it: table names are unique, and a table that merges has
 * a primary key. Not partitioned; the bucket is reached with the platform's R2 credentials, so no host to check.
 */
import type { FieldError } from "../errors";
import type { SourceDefinition } from "../validation";
import type { SourceType } from "./types";

interface FileTable {
  type: "files" | "logpush";
  name?: string | null;
  dataset?: string;
  primary_key?: unknown;
  write_disposition?: string | null;
}

function tablesOf(definition: SourceDefinition): FileTable[] {
  return (definition.extract as { tables: FileTable[] }).tables;
}

/** A table's name: its own, else (a Logpush job) its dataset's. */
function tableName(table: FileTable): string {
  return table.name ?? table.dataset ?? "";
}

/** Problems of a definition that passed the schema (so its shape is known). */
export function r2FilesProblems(definition: SourceDefinition): FieldError[] {
  const tables = tablesOf(definition);
  const names = tables.map(tableName);
  const duplicates = names.flatMap((name, index) =>
    names.slice(0, index).includes(name) ? [`${index}: duplicate table name '${name}'`] : [],
  );
  if (duplicates.length) return [{ field: "extract.tables", message: duplicates.join("; ") }];
  // As in Python, the first table that merges without a key is named (the check stops there).
  const fallback = definition.destination?.write_disposition ?? "replace";
  const index = tables.findIndex((table) => (table.write_disposition ?? fallback) === "merge" && (table.primary_key ?? null) === null);
  if (index < 0) return [];
  return [{ field: "extract", message: `tables.${index}: table '${names[index]}' merges but has no primary_key` }];
}

export const r2Files: SourceType = {
  /** One [dataset, table] key per table: an r2_files source has no destination.table. */
  tableKeys: (definition) => tablesOf(definition).map((table) => [definition.destination.dataset, tableName(table)]),
  tableField(definition, key) {
    const tables = tablesOf(definition);
    const index = tables.findIndex((table) => tableName(table) === key[1]);
    return `extract.tables.${index}.${tables[index]?.name == null && tables[index]?.type === "logpush" ? "dataset" : "name"}`;
  },
  partitions: () => null,
  problems: r2FilesProblems,
  hostProblems: () => [],
  receivesDeliveries: false,
};
