/** Consumers of dlt-jobs-v2 (launch runs in Dagster) and dlt-jobs-v2-dlq (dead-letter them). */
import { launchRun, terminateRun } from "./dagster";
import { type Env, type JobMessage, numberVar } from "./env";
import { applyStatus, claimForLaunch, findRun, findSource, recordDuplicateDelivery, recordLaunchFailure } from "./ledger";
import { SourceNotLoadable, waitUntilLoaded } from "./source_loading";

export const DLQ_NAME = "dlt-jobs-v2-dlq";

/** Growing delay between launch attempts: base, 2x base, 4x base ... at most 10 minutes (base 30 s by default;
 * the local stack sets LAUNCH_RETRY_BASE_SECONDS low so a dead Dagster dead-letters in seconds). */
export function retryDelaySeconds(attempts: number, baseSeconds = 30): number {
  return Math.min(baseSeconds * 2 ** Math.max(0, attempts - 1), 600);
}

function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, " ").slice(0, 1000);
}

function runIdOf(message: Message<unknown>): string | null {
  const body = message.body as Partial<JobMessage> | null;
  return body && typeof body.run_id === "string" ? body.run_id : null;
}

/** Launches one run; ack when done or nothing to do, retry() when Dagster failed. */
export async function launchMessage(env: Env, message: Message<unknown>): Promise<void> {
  const runId = runIdOf(message);
  if (!runId) {
    console.warn("queue message without run_id acked");
    message.ack();
    return;
  }
  // Past queued (or held by another delivery): at-least-once delivery must not launch twice.
  const run = await claimForLaunch(env.DB, runId);
  if (!run) {
    await recordDuplicateDelivery(env.DB, runId, message.attempts);
    message.ack();
    return;
  }
  const source = await findSource(env.DB, run.source_id);
  if (!source) {
    await applyStatus(env.DB, runId, { status: "failed", message: `source ${run.source_id} does not exist` });
    message.ack();
    return;
  }
  if (source.retired_at) {
    // Dagster no longer has a retired source: waiting for it to load would hold the consumer and retry for nothing.
    await applyStatus(env.DB, runId, {
      status: "canceled",
      message: `canceled: source ${run.source_id} was retired (${source.retired_at}) before the run launched`,
      data: { reason: "source_retired" },
    });
    message.ack();
    return;
  }
  let dagsterRunId: string;
  try {
    await waitUntilLoaded(env, source);
    dagsterRunId = await launchRun(env, run, source.definition);
  } catch (err) {
    if (err instanceof SourceNotLoadable) {
      await applyStatus(env.DB, runId, { status: "failed", message: err.message, data: { load_error: err.loadError } });
      message.ack();
      return;
    }
    const delaySeconds = retryDelaySeconds(message.attempts, numberVar(env, "LAUNCH_RETRY_BASE_SECONDS"));
    await recordLaunchFailure(env.DB, runId, errorText(err), delaySeconds);
    message.retry({ delaySeconds });
    return;
  }
  const { applied } = await applyStatus(env.DB, runId, {
    status: "launched",
    dagster_run_id: dagsterRunId,
    message: "launched in Dagster",
  });
  if (!applied) {
    // Canceled while launching: stop what was just started.
    const current = await findRun(env.DB, runId);
    if (current?.status === "canceled") {
      await terminateRun(env, dagsterRunId).catch((err) => console.warn(`terminate after cancel: ${errorText(err)}`));
    }
  }
  message.ack();
}

/** After max_retries the message lands here: the run is dead-lettered with its last error. */
export async function deadLetterMessage(env: Env, message: Message<unknown>): Promise<void> {
  const runId = runIdOf(message);
  if (!runId) {
    message.ack();
    return;
  }
  const run = await findRun(env.DB, runId);
  if (run && (run.status === "queued" || run.status === "launching")) {
    const lastError = run.last_error ?? "no launch error recorded";
    await applyStatus(env.DB, runId, {
      status: "dead_lettered",
      message: `dead-lettered after ${run.launch_attempts} launch attempt(s): ${lastError}`,
      data: { last_error: lastError, attempts: run.launch_attempts },
    });
  }
  message.ack();
}

/** Each message on its own: a throw out of queue() would retry the whole batch, acked messages too. */
export async function handleBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const handler = batch.queue === DLQ_NAME ? deadLetterMessage : launchMessage;
  for (const message of batch.messages) {
    try {
      await handler(env, message);
    } catch (err) {
      const delaySeconds = retryDelaySeconds(message.attempts, numberVar(env, "LAUNCH_RETRY_BASE_SECONDS"));
      console.error(`queue ${batch.queue}: message ${message.id} failed: ${errorText(err)}`);
      message.retry({ delaySeconds });
    }
  }
}
