/**
 * Writes worker/src/definitions.ts, the TypeScript types of source definitions, from config/source.schema.json
 * (which `dlt-platform schema` generates from the Python models) with json-schema-to-typescript. `--check` writes
 * nothing and exits 1 while the committed file is stale (`npm run typecheck` runs it so).
 * Run `npm run definition-types` after `dlt-platform schema`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { compile } from "json-schema-to-typescript";

const root = fileURLToPath(new URL("../../", import.meta.url));
export const SCHEMA_PATH = `${root}config/source.schema.json`;
export const OUTPUT_PATH = `${root}worker/src/definitions.ts`;

/**
 * `value` without the titles pydantic gives every field: the generator would name a type after each (Dataset, Table,
 * Enabled1, ...); the models keep theirs, so each model is one named interface.
 */
function untitledFields(value, isField = false) {
  if (Array.isArray(value)) return value.map((item) => untitledFields(item));
  if (!value || typeof value !== "object") return value;
  const copy = {};
  for (const [key, item] of Object.entries(value)) {
    if (isField && key === "title") continue;
    if (key === "properties") copy[key] = Object.fromEntries(Object.entries(item).map(([name, field]) => [name, untitledFields(field, true)]));
    else copy[key] = untitledFields(item, isField && ["anyOf", "oneOf", "allOf", "items"].includes(key));
  }
  return copy;
}

/** The generated module for `schema`: one type per definition model, and SourceDefinition, the union of them. */
export async function definitionTypes(schema) {
  // The schema picks a model per source_type with allOf if/then, which the generator does not read: the union of
  // the `then` models is the same set of definitions, spelled as anyOf.
  const models = schema.allOf.map((branch) => branch.then);
  const union = { title: "SourceDefinition", anyOf: models, $defs: untitledFields(schema.$defs) };
  return compile(union, "SourceDefinition", {
    bannerComment:
      "// Generated from config/source.schema.json by `npm run definition-types` (worker/scripts/definition_types.mjs); do not edit.",
    additionalProperties: false,
    // Lengths are checked by the schema at run time; as tuples they would only bloat the types.
    ignoreMinAndMaxItems: true,
    unreachableDefinitions: false,
    strictIndexSignatures: true,
    style: { printWidth: 120 },
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const generated = await definitionTypes(JSON.parse(readFileSync(SCHEMA_PATH, "utf8")));
  if (process.argv.includes("--check")) {
    if (readFileSync(OUTPUT_PATH, "utf8") !== generated) {
      console.error("worker/src/definitions.ts is stale: run `npm run definition-types`");
      process.exit(1);
    }
  } else {
    writeFileSync(OUTPUT_PATH, generated);
  }
}
