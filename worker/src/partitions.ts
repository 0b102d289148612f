/**
 * The Dagster partitions of a source, as dlt_platform/orchestration/assets.py defines them: an incremental
 * source has one partition per window from `extract.incremental.start` (UTC), daily keys `YYYY-MM-DD` or
 * hourly keys `YYYY-MM-DD-HH:00`, up to and including the window in progress (end_offset=1). Other sources have
 * none.
 */
import { sourceTypeOf } from "./source_types";
import type { SourceDefinition } from "./validation";

const DAY_KEY = /^(\d{4})-(\d{2})-(\d{2})$/;
const HOUR_KEY = /^(\d{4})-(\d{2})-(\d{2})-(\d{2}):00$/;

/** Start (ms, UTC) of the window a key names, or null when the key is not a real date in the step's format. */
function windowStart(key: string, step: "day" | "hour"): number | null {
  const match = (step === "hour" ? HOUR_KEY : DAY_KEY).exec(key);
  if (!match) return null;
  const [year, month, day, hour] = match.slice(1).map(Number);
  const ms = Date.UTC(year, month - 1, day, hour || 0);
  const back = new Date(ms);
  // Date.UTC rolls 2026-02-30 over into March: a key that does not round-trip is not a date.
  if (back.getUTCFullYear() !== year || back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day) return null;
  if (step === "hour" && hour > 23) return null;
  return ms;
}

/** Why `key` is not a partition of the source at `nowMs`, or null when it is one. */
export function partitionProblem(definition: SourceDefinition, key: string, nowMs = Date.now()): string | null {
  const incremental = sourceTypeOf(definition).partitions(definition);
  if (!incremental) return `source ${definition.source_id} has no partitions (it is not incremental)`;
  const step = incremental.step ?? "day";
  const format = step === "hour" ? "YYYY-MM-DD-HH:00" : "YYYY-MM-DD";
  const start = windowStart(key, step);
  if (start === null) return `must be a ${step === "hour" ? "hourly" : "daily"} partition key ${format} (UTC)`;
  const first = Date.parse(`${incremental.start}T00:00:00Z`);
  if (start < first) return `must not be before the source's first partition (${incremental.start})`;
  if (start > nowMs) return "must not be in the future";
  return null;
}
