/**
 * What differs between source types on the Worker: one module per type implements this, and index.ts maps each
 * `source_type` to its module. The rest of the Worker asks the map and never compares `source_type` itself, so a
 * new type costs its module and one line in the map (docs/source-types.md, "The Worker side").
 */
import type { FieldError } from "../errors";
import type { SourceDefinition } from "../validation";

/** Time windows a source is partitioned by in Dagster (dlt_platform/orchestration/assets.py). */
export interface PartitionWindows {
  /** First window's date, YYYY-MM-DD (UTC). */
  start: string;
  step?: "day" | "hour";
}

export interface SourceType {
  /** The [dataset, table] asset keys of a definition: the tables it loads, which are its assets in Dagster. */
  tableKeys(definition: SourceDefinition): string[][];
  /** The definition's field naming the table `key` (one of tableKeys), for errors about that table. */
  tableField(definition: SourceDefinition, key: string[]): string;
  /** The definition's partition windows, or null when its runs are not partitioned. */
  partitions(definition: SourceDefinition): PartitionWindows | null;
  /** What the JSON Schema cannot say, for a definition that passed the schema (so its shape is known). */
  problems(definition: SourceDefinition): FieldError[];
  /**
   * Hosts a definition names that it may not reach (loopback, private, the Worker's own), checked when the operator
   * API stores it. `allowed`: DLT_PLATFORM_ALLOW_PRIVATE_HOSTS; `ownHosts`: the Worker's own URLs.
   */
  hostProblems(definition: SourceDefinition, allowed: string | undefined, ownHosts: (string | undefined)[]): FieldError[];
  /** Whether the source receives deliveries at /hooks/:source_id (routes/hooks.ts, webhooks/). */
  receivesDeliveries: boolean;
}

/** The parts most types share: one table named by destination.table, no partitions, no extra checks. */
export const singleTable = {
  tableKeys: (definition: SourceDefinition): string[][] => [[definition.destination.dataset, definition.destination.table]],
  tableField: (): string => "destination.table",
  problems: (): FieldError[] => [],
  hostProblems: (): FieldError[] => [],
};
