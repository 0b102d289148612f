/**
 * config/run_status_cases.json against the ledger's status machine, both the rule and the ledger's writer;
 * dlt_platform_tests/orchestration/test_run_status_cases.py runs the same cases against the Python stand-in of
 * the ledger, so the halves cannot drift apart.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import cases from "../../config/run_status_cases.json";
import { RUN_STATUSES, type RunStatus } from "../src/contract";
import { applyStatus, canTransition, insertRun } from "../src/ledger";
import { uniqueId } from "./helpers";

const allowed = cases.allowed as Record<string, string[]>;
const pairs = RUN_STATUSES.flatMap((from) => RUN_STATUSES.map((to) => [from, to] as [RunStatus, RunStatus]));

describe("run status cases", () => {
  it("name every status of the contract, and only those", () => {
    expect(Object.keys(allowed)).toEqual([...RUN_STATUSES]);
    for (const targets of Object.values(allowed)) for (const to of targets) expect(RUN_STATUSES).toContain(to);
  });

  it.each(pairs)("%s -> %s: canTransition agrees with the cases file", (from, to) => {
    expect(canTransition(from, to)).toBe(allowed[from].includes(to));
  });

  it("the ledger applies exactly the allowed changes to a stored run", async () => {
    const outcomes: string[] = [];
    for (const [from, to] of pairs) {
      const run = await insertRun(env.DB, { source_id: uniqueId(), trigger: "api", status: from });
      const { run: after, applied } = await applyStatus(env.DB, run!.run_id, { status: to });
      outcomes.push(`${from} -> ${to}: ${applied ? "applied" : "refused"}, now ${after.status}`);
    }
    expect(outcomes).toEqual(
      pairs.map(([from, to]) =>
        allowed[from].includes(to) ? `${from} -> ${to}: applied, now ${to}` : `${from} -> ${to}: refused, now ${from}`,
      ),
    );
  });
});
