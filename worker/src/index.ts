/** dlt-orchestrator: operator API, internal API for Dagster, admin page, queue consumers, cron. */
import { app } from "./app";
import type { Env } from "./env";
import { handleBatch } from "./queue";
import { reconcile } from "./reconcile";

// The main module may only export handlers and classes.
export { DagsterContainer } from "./container";

export default {
  fetch: app.fetch,
  async queue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
    await handleBatch(batch, env);
  },
  async scheduled(_controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    ctx.waitUntil(reconcile(env).then((report) => console.log(`reconcile: ${JSON.stringify(report)}`)));
  },
} satisfies ExportedHandler<Env, unknown>;
