/**
 * The one validator of request bodies: JSON Schema (draft 2020-12, @cfworker/json-schema), its output turned into
 * one message per offending field. Definitions use the schema Python generates (config/source.schema.json), the
 * other bodies the schemas in bodies.ts.
 */
import { Validator, type OutputUnit, type Schema } from "@cfworker/json-schema";
import type { FieldError } from "./errors";

const WRAPPER_KEYWORDS = new Set([
  "properties",
  "$ref",
  "allOf",
  "items",
  "prefixItems",
  "additionalProperties",
  "propertyNames",
  "if",
]);

type SchemaNode = Record<string, unknown>;

/** The schema object at a JSON pointer; "$ref" steps (keyword locations pass through them) jump to the target. */
function schemaAt(root: SchemaNode, pointer: string): SchemaNode | undefined {
  let node: SchemaNode | undefined = root;
  for (const raw of pointer.replace(/^#\/?/, "").split("/").filter(Boolean)) {
    const part = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    node = part === "$ref" && typeof node?.$ref === "string" ? schemaAt(root, node.$ref) : (node?.[part] as SchemaNode);
  }
  return node;
}

/** "#/destination/table" -> "destination.table"; "#" -> "" */
function fieldPath(instanceLocation: string): string {
  return instanceLocation
    .replace(/^#\/?/, "")
    .split("/")
    .filter(Boolean)
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
    .join(".");
}

function join(parent: string, child: string): string {
  return parent ? `${parent}.${child}` : child;
}

export interface SchemaOptions {
  /**
   * Keywords whose failure the schema node's "x-message" words; the others keep the validator's message. All
   * keywords when not given.
   */
  wordedKeywords?: ReadonlySet<string>;
}

/** A check of values against `schema`: the offending fields, [] when the value is valid. */
export function schemaCheck(schema: object, options: SchemaOptions = {}): (value: unknown) => FieldError[] {
  const root = schema as SchemaNode;
  const validator = new Validator(schema as Schema, "2020-12", false);

  /** Patterns and cross-field rules carry their message in the schema ("x-message"). */
  function customMessage(unit: OutputUnit): string | undefined {
    if (options.wordedKeywords && !options.wordedKeywords.has(unit.keyword)) return undefined;
    const holder = schemaAt(root, unit.keywordLocation.slice(0, unit.keywordLocation.lastIndexOf("/")));
    const message = holder?.["x-message"];
    return typeof message === "string" ? message : undefined;
  }

  /** Turns the validator's nested output into one message per offending field. */
  function toFieldErrors(units: OutputUnit[]): FieldError[] {
    const leaves: { field: string; message: string; nullBranch: boolean }[] = [];
    for (const unit of units) {
      const field = fieldPath(unit.instanceLocation);
      if (WRAPPER_KEYWORDS.has(unit.keyword)) continue;
      const missing = unit.keyword === "required" ? /"([^"]+)"/.exec(unit.error)?.[1] : undefined;
      const custom = customMessage(unit);
      if (custom) {
        leaves.push({ field: missing ? join(field, missing) : field, message: custom, nullBranch: false });
      } else if (unit.keyword === "false") {
        leaves.push({ field, message: "unknown field", nullBranch: false });
      } else if (unit.keyword === "required") {
        leaves.push({ field: missing ? join(field, missing) : field, message: "required", nullBranch: false });
      } else {
        const nullBranch = unit.keyword === "type" && /Expected "null"/.test(unit.error);
        leaves.push({ field, message: unit.error.replace(/\.$/, ""), nullBranch });
      }
    }
    // A nullable field that fails its real branch also fails "is null" and the anyOf itself: keep the real reason.
    const generic = (leaf: (typeof leaves)[number]) =>
      leaf.nullBranch || leaf.message.startsWith("Instance does not match any subschemas");
    const specific = leaves.filter(
      (leaf) =>
        !generic(leaf) ||
        !leaves.some(
          (other) =>
            other !== leaf && !generic(other) && (other.field === leaf.field || other.field.startsWith(leaf.field + ".")),
        ),
    );
    const byField = new Map<string, string[]>();
    for (const leaf of specific) {
      const messages = byField.get(leaf.field) ?? [];
      if (!messages.includes(leaf.message)) messages.push(leaf.message);
      byField.set(leaf.field, messages);
    }
    return [...byField].map(([field, messages]) => ({ field: field || "(root)", message: messages.join("; ") }));
  }

  return (value) => {
    const result = validator.validate(value);
    return result.valid ? [] : toFieldErrors(result.errors);
  };
}
