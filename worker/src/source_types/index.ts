/**
 * The source types the Worker knows, keyed by `source_type` (the names config/source.schema.json allows). What
 * differs per type lives in its module; a new type is one module and one line here.
 */
import { validationFailed } from "../errors";
import type { SourceDefinition } from "../validation";
import { cloudflareKv } from "./cloudflare_kv";
import { d1 } from "./d1";
import { r2Files } from "./r2_files";
import { restApi } from "./rest_api";
import type { SourceType } from "./types";
import { webhook } from "./webhook";

export const SOURCE_TYPES: Readonly<Record<SourceDefinition["source_type"], SourceType>> = {
  cloudflare_kv: cloudflareKv,
  webhook,
  rest_api: restApi,
  d1,
  r2_files: r2Files,
};

/** The type module of a stored or schema-valid definition; an unknown type is an error naming it. */
export function sourceTypeOf(definition: { source_type?: unknown }): SourceType {
  const name = definition.source_type;
  const type = typeof name === "string" && Object.hasOwn(SOURCE_TYPES, name) ? SOURCE_TYPES[name as keyof typeof SOURCE_TYPES] : undefined;
  if (!type) throw new Error(`source_type ${JSON.stringify(name)} is not one of ${Object.keys(SOURCE_TYPES).join(", ")}`);
  return type;
}

/** The [dataset, table] asset keys of a source (see SourceType.tableKeys). */
export function tableKeys(definition: SourceDefinition): string[][] {
  return sourceTypeOf(definition).tableKeys(definition);
}

/** Whether a definition's type receives deliveries at /hooks/:source_id; false for anything not a definition. */
export function receivesDeliveries(definition: { source_type?: unknown } | null | undefined): boolean {
  const name = definition?.source_type;
  return typeof name === "string" && Object.hasOwn(SOURCE_TYPES, name) && SOURCE_TYPES[name as keyof typeof SOURCE_TYPES].receivesDeliveries;
}

/** The types that receive deliveries, for SQL over stored definitions (`source_type IN (...)`). */
export const DELIVERY_SOURCE_TYPES: readonly string[] = Object.entries(SOURCE_TYPES)
  .filter(([, type]) => type.receivesDeliveries)
  .map(([name]) => name);

/**
 * Refuses (400 naming the field) a definition the operator API is about to store when it names a host it may not
 * reach (SourceType.hostProblems). `requestUrl`: the request's URL, one of the Worker's own hosts.
 */
export function assertHostsAllowed(
  definition: SourceDefinition,
  env: { DLT_PLATFORM_ALLOW_PRIVATE_HOSTS?: string; DLT_ORCHESTRATOR_URL?: string },
  requestUrl: string,
): void {
  const problems = sourceTypeOf(definition).hostProblems(definition, env.DLT_PLATFORM_ALLOW_PRIVATE_HOSTS, [
    requestUrl,
    env.DLT_ORCHESTRATOR_URL,
  ]);
  if (problems.length) throw validationFailed(problems, "source definition is not valid");
}
