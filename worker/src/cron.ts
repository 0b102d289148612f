/**
 * What a cron pattern cannot say about a schedule: ranges run upwards, and no 30th/31st of February only
 * (Dagster refuses it). The schema's pattern (generated from dlt_platform/cron.py) checks the syntax first; this
 * is the same function as Python's `cron_problem`, held to it by config/definition_cases.json.
 */

const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
// [lowest, highest, names] per field: minute hour day month weekday
const FIELDS: [number, number, string[] | null][] = [
  [0, 59, null],
  [0, 23, null],
  [1, 31, null],
  [1, 12, MONTHS],
  [0, 7, WEEKDAYS],
];

function value(token: string, low: number, names: string[] | null): number {
  if (/^\d+$/.test(token)) return Number(token);
  return (names ?? []).indexOf(token.toUpperCase()) + low;
}

function expand(part: string, low: number, high: number, names: string[] | null): Set<number> {
  const values = new Set<number>();
  for (const item of part.split(",")) {
    const [body, step] = item.split("/");
    let start = low;
    let end = high;
    if (body !== "*") {
      const [first, last] = body.split("-");
      start = value(first, low, names);
      end = last !== undefined ? value(last, low, names) : step !== undefined ? high : start;
    }
    for (let n = start; n <= end; n += Number(step ?? 1)) values.add(n);
  }
  return values;
}

/** Why a schedule that matches the schema's cron pattern is still not one, or null. */
export function cronProblem(expression: string): string | null {
  const parts = expression.split(/ +/);
  if (parts.length !== 5) return "expected five fields (minute hour day month weekday)";
  for (const [index, part] of parts.entries()) {
    const [low, , names] = FIELDS[index];
    for (const item of part.split(",")) {
      const body = item.split("/")[0];
      if (!body.includes("-")) continue;
      const [first, last] = body.split("-");
      if (value(first, low, names) > value(last, low, names)) return `range ${body} runs backwards`;
    }
  }
  const days = expand(parts[2], 1, 31, null);
  const months = expand(parts[3], 1, 12, MONTHS);
  if (months.size === 1 && months.has(2) && days.size === 1 && (days.has(30) || days.has(31))) {
    return "February has no 30th or 31st";
  }
  return null;
}
