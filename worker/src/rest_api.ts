/**
 * What the schema cannot say about a rest_api definition, checked as dlt_platform/config.py checks it: resource
 * names are unique, a child resource's parent (a `resolve` param or `{resources.<parent>.<field>}`) is another
 * resource of the source, and a resource that merges has a primary key. Also the tables a source loads, which
 * are its assets in Dagster.
 */
import type { FieldError } from "./errors";

interface Endpoint {
  path?: unknown;
  params?: Record<string, unknown> | null;
  incremental?: { start_param?: string | null; initial_value?: unknown } | null;
}
interface Resource {
  name: string;
  endpoint?: Endpoint;
  primary_key?: unknown;
  write_disposition?: string | null;
  selected?: boolean;
}
interface RestExtract {
  resources: Resource[];
  resource_defaults?: { primary_key?: unknown; write_disposition?: string | null } | null;
}

const PARENT_REFERENCE = /\{resources\.([^.{}]+)\.[^{}]+\}/g;

function parentReferences(resource: Resource): string[] {
  const params = resource.endpoint?.params ?? {};
  const names: string[] = [];
  for (const value of Object.values(params)) {
    const param = value as { type?: unknown; resource?: unknown } | null;
    if (param && typeof param === "object" && param.type === "resolve" && typeof param.resource === "string") {
      names.push(param.resource);
    }
  }
  const texts = [resource.endpoint?.path, ...Object.values(params)].filter((v): v is string => typeof v === "string");
  for (const text of texts) for (const match of text.matchAll(PARENT_REFERENCE)) names.push(match[1]);
  return [...new Set(names)];
}

/** Problems of a definition that passed the schema (so its shape is known). */
export function restApiProblems(definition: {
  destination?: { write_disposition?: string };
  extract: RestExtract;
}): FieldError[] {
  const { resources, resource_defaults: defaults } = definition.extract;
  const names = resources.map((resource) => resource.name);
  const parents: string[] = [];
  resources.forEach((resource, index) => {
    if (names.slice(0, index).includes(resource.name)) parents.push(`${index}: duplicate resource name '${resource.name}'`);
    for (const parent of parentReferences(resource)) {
      if (!names.includes(parent) || parent === resource.name) {
        parents.push(
          `${index}: resource '${resource.name}' refers to missing parent resource '${parent}' ` +
            `(resources: ${names.join(", ")})`,
        );
      }
    }
    const incremental = resource.endpoint?.incremental;
    const isChild = parentReferences(resource).length > 0;
    if (isChild && incremental && (incremental.start_param == null || incremental.initial_value == null)) {
      parents.push(
        `${index}: child resource '${resource.name}' keeps a cursor per parent: its incremental needs start_param ` +
          "and initial_value",
      );
    }
  });
  if (parents.length) return [{ field: "extract.resources", message: parents.join("; ") }];
  // As in Python, the first resource that merges without a key is named (the check stops there).
  const fallback = definition.destination?.write_disposition ?? "replace";
  const index = resources.findIndex(
    (resource) =>
      (resource.write_disposition ?? defaults?.write_disposition ?? fallback) === "merge" &&
      (resource.primary_key ?? defaults?.primary_key ?? null) === null,
  );
  if (index < 0) return [];
  return [{ field: "extract", message: `resources.${index}: resource '${resources[index].name}' merges but has no primary_key` }];
}

/** The [dataset, table] asset keys of a source: one per loaded resource of a rest_api source, else its table. */
export function tableKeys(definition: {
  source_type: string;
  destination: { dataset: string; table?: string };
  extract: unknown;
}): string[][] {
  const { dataset, table } = definition.destination;
  if (definition.source_type !== "rest_api") return [[dataset, table as string]];
  return (definition.extract as RestExtract).resources
    .filter((resource) => resource.selected !== false)
    .map((resource) => [dataset, resource.name]);
}
