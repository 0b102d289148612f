/** Dagster GraphQL client: DAGSTER_URL when set (local dev), else the container's Durable Object. */
import { getContainer } from "@cloudflare/containers";
import {
  DAGSTER_TO_LEDGER_STATUS,
  PARTITION_TAG,
  REPOSITORY_LOCATION,
  RUN_ID_TAG,
  SOURCE_ID_TAG,
  SOURCE_VERSION_METADATA,
  TRIGGER_TAG,
} from "./contract";
import type { Env } from "./env";
import type { RunRow } from "./ledger";
import type { RunRequest, RunStatus, SourceDefinition } from "./validation";
import { tableKeys } from "./source_types";

export { REPOSITORY_LOCATION };
const TIMEOUT_MS = 30_000;

export class DagsterError extends Error {}

/** Sends a request to Dagster at `path` (which keeps its /dagster prefix), by URL or through the container. */
export async function dagsterFetch(env: Env, path: string, init: RequestInit | Request): Promise<Response> {
  const base = (env.DAGSTER_URL ?? "").trim().replace(/\/+$/, "");
  if (base) return fetch(new Request(`${base}${path}`, init as RequestInit));
  const stub = getContainer(env.DAGSTER);
  return stub.fetch(new Request(`http://container${path}`, init as RequestInit));
}

export async function graphql<T>(env: Env, query: string, variables: Record<string, unknown>): Promise<T> {
  let response: Response;
  try {
    response = await dagsterFetch(env, "/dagster/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    throw new DagsterError(`Dagster unreachable: ${err instanceof Error ? err.message : String(err)}`);
  }
  let body: { data?: T; errors?: { message: string }[] };
  try {
    body = await response.json();
  } catch {
    if (!response.ok) throw new DagsterError(`Dagster GraphQL answered HTTP ${response.status}`);
    throw new DagsterError("Dagster GraphQL answered with a body that is not JSON");
  }
  // Dagster answers HTTP 500 with a normal GraphQL body when a resolver caught an error and returned it as a
  // result (e.g. terminateRun -> PythonError): that result is Dagster's answer, so it is read like any other.
  if (!response.ok && !body?.data) throw new DagsterError(`Dagster GraphQL answered HTTP ${response.status}`);
  if (body.errors?.length) throw new DagsterError(`GraphQL error: ${body.errors.map((e) => e.message).join("; ")}`);
  if (!body.data) throw new DagsterError("Dagster GraphQL answered without data");
  return body.data;
}

interface ResultUnion {
  __typename: string;
  message?: string;
  errors?: { message: string }[];
}

function describe(result: ResultUnion | null | undefined): string {
  if (!result) return "empty result";
  const detail = result.message ?? result.errors?.map((e) => e.message).join("; ");
  return detail ? `${result.__typename}: ${detail}` : result.__typename;
}

export const LAUNCH_RUN = `mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}`;

/** The executionParams of launchRun for one ledger run (contract in ARCHITECTURE.md / docs/worker.md). */
export function executionParams(run: RunRow, definition: SourceDefinition) {
  const request = JSON.parse(run.request) as RunRequest;
  const config: Record<string, unknown> = {};
  if (request.limit !== undefined) config.limit = request.limit;
  if (request.keys !== undefined) config.keys = request.keys;
  if (request.full_refresh !== undefined) config.full_refresh = request.full_refresh;
  const tags = [
    { key: RUN_ID_TAG, value: run.run_id },
    { key: SOURCE_ID_TAG, value: run.source_id },
    { key: TRIGGER_TAG, value: run.trigger },
  ];
  const partition = run.partition_key ?? request.partition;
  if (partition) tags.push({ key: PARTITION_TAG, value: partition });
  return {
    selector: {
      repositoryLocationName: REPOSITORY_LOCATION,
      repositoryName: "__repository__",
      jobName: "__ASSET_JOB",
      assetSelection: tableKeys(definition).map((path) => ({ path })),
    },
    runConfigData: Object.keys(config).length ? { ops: { [run.source_id]: { config } } } : {},
    executionMetadata: { tags },
  };
}

export async function launchRun(env: Env, run: RunRow, definition: SourceDefinition): Promise<string> {
  const data = await graphql<{ launchRun: ResultUnion & { run?: { runId: string } } }>(env, LAUNCH_RUN, {
    executionParams: executionParams(run, definition),
  });
  const result = data.launchRun;
  if (result?.__typename === "LaunchRunSuccess" && result.run?.runId) return result.run.runId;
  throw new DagsterError(describe(result));
}

export const RUN_STATUS_QUERY = `query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status }
    ... on Error { message }
  }
}`;


/** Dagster statuses of runs that are over (DagsterRun.is_finished); CANCELING is not one of them. */
export const DAGSTER_FINISHED: Readonly<Record<string, RunStatus>> = {
  SUCCESS: "succeeded",
  FAILURE: "failed",
  CANCELED: "canceled",
};

export interface DagsterRunState {
  /** The ledger status it maps to. */
  status: RunStatus;
  /** Dagster's own status (STARTING, STARTED, ...), for events and messages. */
  dagster_status: string;
}

/** Where Dagster has a run, or null when Dagster does not know the run. */
export async function dagsterRunStatus(env: Env, dagsterRunId: string): Promise<DagsterRunState | null> {
  const data = await graphql<{ runOrError: ResultUnion & { status?: string } }>(env, RUN_STATUS_QUERY, {
    runId: dagsterRunId,
  });
  const result = data.runOrError;
  if (result?.__typename === "Run" && result.status) {
    const status = DAGSTER_TO_LEDGER_STATUS[result.status];
    if (!status) throw new DagsterError(`unknown Dagster run status ${result.status}`);
    return { status, dagster_status: result.status };
  }
  if (result?.__typename === "RunNotFoundError") return null;
  throw new DagsterError(describe(result));
}

export const TERMINATE_RUN = `mutation TerminateRun($runId: String!, $terminatePolicy: TerminateRunPolicy) {
  terminateRun(runId: $runId, terminatePolicy: $terminatePolicy) {
    __typename
    ... on TerminateRunSuccess { run { runId status } }
    ... on TerminateRunFailure { message run { runId status } }
    ... on Error { message }
  }
}`;

/**
 * SAFE_TERMINATE stops the run's process and lets the run end itself; MARK_AS_CANCELED_IMMEDIATELY marks it
 * canceled in Dagster whether or not a process could be reached (the way out for a run whose process is gone).
 */
export type TerminatePolicy = "SAFE_TERMINATE" | "MARK_AS_CANCELED_IMMEDIATELY";

export interface TerminateResult {
  outcome: "terminated" | "not_found" | "refused";
  /** Dagster's status of the run when it answered, when it said. */
  dagster_status: string | null;
  message: string | null;
}

/**
 * Asks Dagster to terminate a run. Any answer of Dagster's is a result: a TerminateRunFailure, or an error it
 * raised while trying (a PythonError when the code server that started the run is gone), is `refused`. Only
 * when Dagster cannot be asked (unreachable, HTTP or GraphQL errors) does it throw DagsterError.
 */
export async function requestTermination(
  env: Env,
  dagsterRunId: string,
  terminatePolicy: TerminatePolicy,
): Promise<TerminateResult> {
  const data = await graphql<{ terminateRun: ResultUnion & { run?: { status?: string } | null } }>(env, TERMINATE_RUN, {
    runId: dagsterRunId,
    terminatePolicy,
  });
  const result = data.terminateRun;
  const dagster_status = result?.run?.status ?? null;
  const message = result?.message ?? null;
  if (result?.__typename === "TerminateRunSuccess") return { outcome: "terminated", dagster_status, message };
  if (result?.__typename === "RunNotFoundError") return { outcome: "not_found", dagster_status, message };
  return { outcome: "refused", dagster_status, message: describe(result) };
}

/** Asks Dagster to terminate a run; "not found" counts as done, a refusal throws. */
export async function terminateRun(env: Env, dagsterRunId: string): Promise<void> {
  const result = await requestTermination(env, dagsterRunId, "SAFE_TERMINATE");
  if (result.outcome === "refused") throw new DagsterError(result.message ?? "termination refused");
}

export const RELOAD_LOCATION = `mutation ReloadLocation($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) {
    __typename
    ... on Error { message }
  }
}`;

/** Reloads the code location after a definition changed; best-effort, failures are only logged. */
export async function reloadLocation(env: Env): Promise<boolean> {
  try {
    const data = await graphql<{ reloadRepositoryLocation: ResultUnion }>(env, RELOAD_LOCATION, {
      name: REPOSITORY_LOCATION,
    });
    if (data.reloadRepositoryLocation?.__typename === "WorkspaceLocationEntry") return true;
    console.warn(`reloadRepositoryLocation: ${describe(data.reloadRepositoryLocation)}`);
  } catch (err) {
    console.warn(`reloadRepositoryLocation failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  return false;
}

export const ASSET_SOURCE_VERSION = `query AssetSourceVersion($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode { metadataEntries { label ... on IntMetadataEntry { intValue } } }
    ... on Error { message }
  }
}`;

/**
 * The source version Dagster's loaded code location labels an asset with (SOURCE_VERSION_METADATA): null when
 * Dagster does not have the asset, 0 when it has it without a label (definitions read from a file).
 */
export async function loadedSourceVersion(env: Env, assetPath: string[]): Promise<number | null> {
  const data = await graphql<{
    assetNodeOrError: ResultUnion & { metadataEntries?: { label: string; intValue?: number | null }[] };
  }>(env, ASSET_SOURCE_VERSION, { assetKey: { path: assetPath } });
  const result = data.assetNodeOrError;
  if (result?.__typename === "AssetNotFoundError") return null;
  if (result?.__typename !== "AssetNode") throw new DagsterError(describe(result));
  const entry = result.metadataEntries?.find((e) => e.label === SOURCE_VERSION_METADATA);
  return entry?.intValue ?? 0;
}

/** Starts the container (production cron): the daemon must run for schedules and sensors. */
export async function wakeContainer(env: Env): Promise<void> {
  const stub = getContainer(env.DAGSTER);
  await stub.startAndWaitForPorts();
}
