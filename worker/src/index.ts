/** dlt-orchestrator: operator API, internal API for Dagster, admin page, queue consumers, cron. */
import { app } from "./app";
import type { Env } from "./env";
import { deliverNotifications } from "./notify";
import { handleBatch } from "./queue";
import { reconcile } from "./reconcile";
import { pruneOld } from "./retention";

// The main module may only export handlers and classes.
export {
  DagsterContainer,
  RunnerBasicContainer,
  RunnerContainer,
  RunnerLiteContainer,
  RunnerStandard2Container,
  RunnerStandard3Container,
  RunnerStandard4Container,
} from "./container";

export default {
  fetch: app.fetch,
  async queue(batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext): Promise<void> {
    await handleBatch(batch, env);
    // Runs the batch failed or dead-lettered: their alerts go out after the ledger writes, off the batch's path.
    ctx.waitUntil(deliverNotifications(env));
  },
  async scheduled(_controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    ctx.waitUntil(reconcile(env).then((report) => console.log(`reconcile: ${JSON.stringify(report)}`)));
    ctx.waitUntil(pruneOld(env).then((report) => report && console.log(`retention: ${JSON.stringify(report)}`)));
  },
} satisfies ExportedHandler<Env, unknown>;
