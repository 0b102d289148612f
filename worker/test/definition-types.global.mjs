/**
 * Vitest global setup (Node, outside the Workers runtime, where json-schema-to-typescript runs): hands the tests
 * worker/src/definitions.ts as committed and as config/source.schema.json generates it now (definition_types.test.ts).
 */
import { readFileSync } from "node:fs";
import { definitionTypes, OUTPUT_PATH, SCHEMA_PATH } from "../scripts/definition_types.mjs";

/** @param {import("vitest/node").TestProject} project */
export default async function setup(project) {
  project.provide("definitionTypes", {
    committed: readFileSync(OUTPUT_PATH, "utf8"),
    generated: await definitionTypes(JSON.parse(readFileSync(SCHEMA_PATH, "utf8"))),
  });
}
