/**
 * What the schema's cron pattern cannot say about a schedule, in the rules Dagster applies: ranges run upwards,
 * and a schedule may not name only the 30th or 31st of February. The pattern (generated from dlt_platform/cron.py)
 * checks the syntax first; cron-parser reads the fields. config/definition_cases.json holds this function to
 * Python's `cron_problem`.
 */
import { CronExpressionParser, type CronFieldCollection } from "cron-parser";

function fieldsOf(expression: string): CronFieldCollection {
  return CronExpressionParser.parse(expression, { tz: "UTC" }).fields;
}

const FIELD_NAMES = ["minute", "hour", "day", "month", "weekday"] as const;

/** `part` as field `index` of an expression that is otherwise all `*`: each field read on its own. */
function alone(index: number, part: string): string {
  return FIELD_NAMES.map((_, i) => (i === index ? part : "*")).join(" ");
}

/** Why one field does not parse, naming the list item at fault (cron-parser's own message names its numbers). */
function fieldProblem(index: number, part: string): string | null {
  try {
    fieldsOf(alone(index, part));
    return null;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const item = part.split(",").find((candidate) => {
      try {
        fieldsOf(alone(index, candidate));
        return false;
      } catch {
        return true;
      }
    });
    const range = item?.split("/")[0];
    if (range && /^Invalid range/.test(message)) return `range ${range} runs backwards`;
    return `${FIELD_NAMES[index]} field: ${message}`;
  }
}

/** Why a schedule that matches the schema's cron pattern is still not one, or null. */
export function cronProblem(expression: string): string | null {
  const parts = expression.split(/ +/);
  if (parts.length !== 5) return "expected five fields (minute hour day month weekday)";
  for (const [index, part] of parts.entries()) {
    const problem = fieldProblem(index, part);
    if (problem) return problem;
  }
  // The whole expression is not parsed: cron-parser refuses any day no month in it has, Dagster only this one case.
  const days = fieldsOf(alone(2, parts[2])).dayOfMonth.values;
  const months = fieldsOf(alone(3, parts[3])).month.values;
  if (months.length === 1 && months[0] === 2 && days.length === 1 && (days[0] === 30 || days[0] === 31)) {
    return "February has no 30th or 31st";
  }
  return null;
}

/** How many times a valid schedule fires on a day it fires at all: its minutes times its hours (Python's
 * `runs_per_day`; the day, month and weekday fields only choose the days). */
export function runsPerDay(expression: string): number {
  const [minutes, hours] = expression.split(/ +/);
  // Each field on its own: cron-parser refuses a whole expression naming a day no month has (0 0 30,31 2 *).
  return fieldsOf(alone(0, minutes)).minute.values.length * fieldsOf(alone(1, hours)).hour.values.length;
}
