/** config/definition_cases.json through the Worker's validator; dlt_platform_tests/test_definition_cases.py runs
 * the same cases through the Python model, so a case one side accepts and the other refuses fails the build. */
import { describe, expect, it } from "vitest";
import document from "../../config/definition_cases.json";
import { definitionErrors } from "../src/validation";

interface Case {
  name: string;
  set?: Record<string, unknown>;
  delete?: string[];
  valid: boolean;
  field?: string;
  says?: string;
}

/** {"$repeat": s, "times": n} -> s repeated n times; {"$concat": [...]} -> the joined parts. */
function expand(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(expand);
  if (value && typeof value === "object") {
    const object = value as Record<string, unknown>;
    const keys = Object.keys(object).sort().join(",");
    if (keys === "$repeat,times") return (object.$repeat as string).repeat(object.times as number);
    if (keys === "$concat") return (object.$concat as unknown[]).map(expand).join("");
    return Object.fromEntries(Object.entries(object).map(([key, item]) => [key, expand(item)]));
  }
  return value;
}

function build(testCase: Case): Record<string, unknown> {
  const definition = structuredClone(document.base) as Record<string, any>;
  for (const path of testCase.delete ?? []) {
    const parts = path.split(".");
    const last = parts.pop() as string;
    let target = definition;
    for (const part of parts) target = target[part];
    delete target[last];
  }
  for (const [path, value] of Object.entries(testCase.set ?? {})) {
    const parts = path.split(".");
    const last = parts.pop() as string;
    let target = definition;
    for (const part of parts) target = target[part] ??= {};
    target[last] = expand(value);
  }
  return definition;
}

describe("shared definition cases", () => {
  for (const testCase of document.cases as Case[]) {
    it(testCase.name, () => {
      const errors = definitionErrors(build(testCase));
      if (testCase.valid) {
        expect(errors).toEqual([]);
        return;
      }
      const field = testCase.field as string;
      const named = errors.filter((e) => e.field === field || e.field.startsWith(`${field}.`));
      expect(named.length, JSON.stringify(errors)).toBeGreaterThan(0);
      expect(named.map((e) => e.message).join(" "), JSON.stringify(errors)).toContain(testCase.says ?? "");
    });
  }
});
