/**
 * worker/src/definitions.ts is what config/source.schema.json generates now (`npm run definition-types`), so the
 * Worker's types of definitions cannot drift from the schema Python writes.
 */
import { describe, expect, inject, it } from "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    definitionTypes: { committed: string; generated: string };
  }
}

describe("generated definition types", () => {
  it("the committed worker/src/definitions.ts is current with config/source.schema.json", () => {
    const { committed, generated } = inject("definitionTypes");
    expect(committed, "stale: run `npm run definition-types` after `dlt-platform schema`").toBe(generated);
  });
});
