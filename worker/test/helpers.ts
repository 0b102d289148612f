/** Test helpers: call the Worker in-process with a recording queue and a scripted Dagster double. */
import { createExecutionContext, createMessageBatch, env, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { vi } from "vitest";
import { app } from "../src/app";
import worker from "../src/index";
import type { Env, JobMessage } from "../src/env";

export const OPERATOR = "test-operator-token";
export const INTERNAL = "test-internal-token";

/** A queue producer that records what the Worker sends. */
export function recordingQueue() {
  const sent: JobMessage[] = [];
  const queue = {
    sent,
    async send(body: JobMessage) {
      sent.push(body);
    },
    async sendBatch(messages: Iterable<{ body: JobMessage }>) {
      for (const message of messages) sent.push(message.body);
    },
  };
  return queue;
}

export function testEnv(overrides: Partial<Env> = {}) {
  const jobs = recordingQueue();
  const testEnv = { ...env, JOBS: jobs as unknown as Env["JOBS"], ...overrides } as Env;
  return { env: testEnv, jobs };
}

export async function call(
  e: Env,
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
) {
  const headers = new Headers(options.headers);
  const token = options.token === undefined ? OPERATOR : options.token;
  if (token) headers.set("Authorization", `Bearer ${token}`);
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
  }
  const ctx = createExecutionContext();
  const response = await app.fetch(new Request(`https://orchestrator.test${path}`, { method, headers, body }), e, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

export async function json<T = any>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

let counter = 0;
export function uniqueId(prefix = "src"): string {
  counter += 1;
  return `${prefix}_${Date.now().toString(36)}_${counter}`;
}

export function definition(sourceId: string, overrides: Record<string, unknown> = {}) {
  return {
    source_id: sourceId,
    source_type: "cloudflare_kv",
    enabled: true,
    description: "test source",
    schedule: "0 * * * *",
    destination: { type: "bigquery", dataset: "source_cloudflare", table: `${sourceId}_t`, write_disposition: "replace" },
    extract: { namespace_id: "NS_ID", namespace_title: "ORDERS_KV", prefix: null, transport: "worker" },
    staging: { raw_snapshot: false },
    ...overrides,
  };
}

/** The extract of an incremental (partitioned) source: daily or hourly windows from `start`. */
export function incrementalExtract(step: "day" | "hour" = "day", start = "2026-01-01") {
  return {
    namespace_id: "NS_ID",
    namespace_title: "LEADS_KV",
    prefix: null,
    transport: "worker",
    incremental: { enabled: true, key_prefix: "lead:{date:%Y%m%d}", step, lookback: 3, start },
  };
}

export async function createSource(e: Env, sourceId = uniqueId(), overrides: Record<string, unknown> = {}) {
  const response = await call(e, "POST", "/sources", { body: definition(sourceId, overrides) });
  if (response.status !== 201) throw new Error(`create failed: ${response.status} ${await response.text()}`);
  return sourceId;
}

export interface GraphqlCall {
  url: string;
  query: string;
  variables: Record<string, any>;
}

/** What Dagster answers when it has loaded an asset from a file (no source version label). */
export const UNVERSIONED_ASSET = { assetNodeOrError: { __typename: "AssetNode", metadataEntries: [] } };

/**
 * Replaces fetch with a Dagster GraphQL double. `answer` gets each parsed request and returns the GraphQL
 * `data` (or a Response / thrown error to simulate failures). Non-GraphQL requests fail the test.
 * The launch's "is the source loaded" queries go to `assetNode` (default: loaded) and are recorded in
 * `assetQueries`, apart from `calls`.
 */
export function dagsterDouble(
  answer: (call: GraphqlCall) => unknown,
  options: { assetNode?: (call: GraphqlCall) => unknown } = {},
) {
  const calls: GraphqlCall[] = [];
  const assetQueries: GraphqlCall[] = [];
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input as RequestInfo, init);
    if (request.url !== "http://dagster.test/dagster/graphql" || request.method !== "POST") {
      throw new Error(`unexpected request ${request.method} ${request.url}`);
    }
    if (request.headers.get("content-type") !== "application/json") throw new Error("GraphQL without JSON content type");
    const payload = (await request.json()) as { query: string; variables: Record<string, any> };
    const call = { url: request.url, query: payload.query, variables: payload.variables };
    const isAssetQuery = payload.query.includes("query AssetSourceVersion");
    (isAssetQuery ? assetQueries : calls).push(call);
    const result = isAssetQuery ? await (options.assetNode ?? (() => UNVERSIONED_ASSET))(call) : await answer(call);
    if (result instanceof Response) return result;
    return Response.json({ data: result });
  });
  return { calls, assetQueries, spy };
}

export interface MessageState {
  acked: boolean;
  retried: boolean;
  delaySeconds: number | undefined;
}
const messageStates = new Map<string, MessageState>();
/** What createMessageBatch takes: a message as the runtime delivers it, without ack() and retry(). */
type DeliveredMessage = Parameters<typeof createMessageBatch>[1][number];
/** getQueueResult's answer (FetcherQueueResult, which only the experimental workers-types declare). */
interface QueueResult {
  outcome: string;
  ackAll: boolean;
  retryBatch: { retry: boolean };
  explicitAcks: string[];
  retryMessages: { msgId: string }[];
}

/** A queue message for deliverBatch, and its state, filled in from the batch's result once it is delivered. */
export function queueMessage(body: unknown, attempts = 1) {
  const state: MessageState = { acked: false, retried: false, delaySeconds: undefined };
  const message: DeliveredMessage = {
    id: `msg-${Math.random().toString(36).slice(2)}`,
    timestamp: new Date(),
    body,
    attempts,
  };
  messageStates.set(message.id, state);
  return { message, state };
}

/**
 * Hands `messages` to the Worker's queue handler as the runtime would (cloudflare:test's createMessageBatch), waits
 * for everything it left running (getQueueResult settles the waitUntil()ed work, e.g. alert delivery), and records
 * each message's ack or retry in its state.
 */
export async function deliverBatch(queue: string, messages: DeliveredMessage[], e: Env) {
  const batch = createMessageBatch(queue, messages);
  // getQueueResult reports which messages were retried but not the delay asked for: that is read off the calls.
  const delays = new Map<string, number | undefined>();
  for (const message of batch.messages) {
    const retry = message.retry.bind(message);
    message.retry = (options?: QueueRetryOptions) => {
      delays.set(message.id, options?.delaySeconds);
      retry(options);
    };
  }
  const ctx = createExecutionContext();
  await worker.queue(batch, e, ctx);
  const result: QueueResult = await getQueueResult(batch, ctx);
  for (const message of messages) {
    const state = messageStates.get(message.id);
    if (!state) continue;
    state.acked = result.ackAll || result.explicitAcks.includes(message.id);
    state.retried = result.retryBatch.retry || result.retryMessages.some((retried) => retried.msgId === message.id);
    state.delaySeconds = delays.get(message.id);
  }
  return result;
}

/** A run as Dagster's run mirror registers it (POST /internal/runs): its ledger id and its Dagster run id. */
export async function registeredRun(
  e: Env,
  sourceId: string,
  status: "launched" | "running" = "running",
  trigger: "schedule" | "api" = "schedule",
) {
  const dagsterRunId = uniqueId("dg");
  const { run_id } = await json(
    await call(e, "POST", "/internal/runs", {
      token: INTERNAL,
      body: { dagster_run_id: dagsterRunId, source_id: sourceId, trigger, status },
    }),
  );
  return { runId: run_id as string, dagsterRunId };
}
