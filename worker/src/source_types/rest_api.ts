/**
 * rest_api: the resources of a dlt REST API source, one table each. What the schema cannot say about a definition
 * is checked as dlt_platform/config.py checks it: resource names are unique, a child resource's parent (a `resolve`
 * param or `{resources.<parent>.<field>}`) is another resource of the source, and a resource that merges has a
 * primary key. Hosts that are loopback, private or the Worker's own are refused when a definition is stored.
 */
import type { RestApiExtract, RestResource } from "../definitions";
import type { FieldError } from "../errors";
import type { SourceDefinition } from "../validation";
import type { SourceType } from "./types";

const PARENT_REFERENCE = /\{resources\.([^.{}]+)\.[^{}]+\}/g;

function parentReferences(resource: RestResource): string[] {
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
  extract: RestApiExtract;
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

/** [lower-case host, port] of a URL as the WHATWG parser reads it (so 2130706433 and 0x7f.1 are 127.0.0.1). */
function hostOf(url: string): [string, number] | undefined {
  try {
    const parsed = new URL(url);
    const port = parsed.port ? Number(parsed.port) : parsed.protocol === "https:" ? 443 : 80;
    return [parsed.hostname.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, ""), port];
  } catch {
    return undefined;
  }
}

/** `host` (any port) or `host:port` entries, as dlt_platform/source_types/rest_api/hosts.py compares them. */
function entryMatches(entry: string, host: string, port: number): boolean {
  const parsed = hostOf(`http://${entry.trim()}`);
  if (!parsed) return false;
  const explicitPort = /:\d+$/.test(entry.trim());
  return parsed[0] === host && (!explicitPort || parsed[1] === port);
}

const NOT_PUBLIC_V4: [number, number][] = [
  [0x00000000, 8], // 0.0.0.0/8 "this network", the unspecified address
  [0x0a000000, 8], // 10/8
  [0x64400000, 10], // 100.64/10 shared address space
  [0x7f000000, 8], // loopback
  [0xa9fe0000, 16], // 169.254/16 link-local, the cloud metadata service
  [0xac100000, 12], // 172.16/12
  [0xc0a80000, 16], // 192.168/16
];

function notPublicAddress(host: string): boolean {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4) {
    const value = v4.slice(1).reduce((sum, part) => sum * 256 + Number(part), 0);
    return NOT_PUBLIC_V4.some(([base, bits]) => Math.floor(value / 2 ** (32 - bits)) === Math.floor(base / 2 ** (32 - bits)));
  }
  // The schema's base_url pattern admits no IPv6 literal; names other than localhost are resolved by Dagster.
  return host === "localhost" || host.endsWith(".localhost");
}

/**
 * base_url (and an OAuth2 token URL) of a rest_api definition naming a loopback, private, link-local or unspecified
 * address, or the Worker's own host, unless DLT_PLATFORM_ALLOW_PRIVATE_HOSTS lists it: Dagster refuses such hosts
 * when the run starts, resolving names first (hosts.py); this refuses the literal ones when the definition is
 * created. `ownHosts`: the Worker's host names (the request's and DLT_ORCHESTRATOR_URL's).
 */
export function privateHostProblems(
  definition: { extract?: unknown },
  allowed: string | undefined,
  ownHosts: (string | undefined)[],
): FieldError[] {
  const client = (definition.extract as { client?: { base_url?: unknown; auth?: { access_token_url?: unknown } } })
    ?.client;
  const entries = String(allowed ?? "").split(",").filter((entry) => entry.trim());
  const own = new Set(ownHosts.flatMap((url) => (url ? [hostOf(url.includes("://") ? url : `https://${url}`)?.[0]] : [])));
  const problems: FieldError[] = [];
  for (const [field, url] of [
    ["extract.client.base_url", client?.base_url],
    ["extract.client.auth.access_token_url", client?.auth?.access_token_url],
  ] as const) {
    const parsed = typeof url === "string" ? hostOf(url) : undefined;
    if (!parsed || entries.some((entry) => entryMatches(entry, ...parsed))) continue;
    const [host, port] = parsed;
    const where = `${host.includes(":") ? `[${host}]` : host}:${port}`;
    const lift = `unless DLT_PLATFORM_ALLOW_PRIVATE_HOSTS lists ${where}`;
    if (own.has(host)) {
      problems.push({ field, message: `${where} is the orchestrator Worker's own host: sources may not call the platform's API, ${lift}` });
    } else if (notPublicAddress(host)) {
      problems.push({
        field,
        message: `${where} is a loopback, link-local, private or unspecified address: sources may not reach it, ${lift}`,
      });
    }
  }
  return problems;
}

export const restApi: SourceType = {
  /** One [dataset, resource name] key per loaded (selected) resource: a rest_api source has no destination.table. */
  tableKeys(definition: SourceDefinition): string[][] {
    return (definition.extract as unknown as RestApiExtract).resources
      .filter((resource) => resource.selected !== false)
      .map((resource) => [definition.destination.dataset, resource.name]);
  },
  tableField(definition: SourceDefinition, key: string[]): string {
    const resources = (definition.extract as unknown as RestApiExtract).resources;
    return `extract.resources.${resources.findIndex((resource) => resource.name === key[1])}.name`;
  },
  // `extract.partitions`, when present, is always enabled.
  partitions: (definition) => (definition.extract as unknown as RestApiExtract).partitions ?? null,
  problems: (definition) => restApiProblems(definition as unknown as Parameters<typeof restApiProblems>[0]),
  hostProblems: privateHostProblems,
  receivesDeliveries: false,
};
