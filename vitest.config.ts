import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const root = fileURLToPath(new URL(".", import.meta.url));

// The Worker's bindings, [vars] and compatibility settings come from wrangler.toml, as deployed; what follows
// overrides only what the tests need otherwise.
export default defineConfig({
  plugins: [
    cloudflareTest(async () => ({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        // No live consumer of dlt-jobs-v2: queue tests hand batches to the handler themselves (createMessageBatch,
        // getQueueResult), and runs other tests queue stay queued for them to inspect.
        queueConsumers: undefined,
        // The containers' Durable Objects, played by doubles (tests of the container branch unset DAGSTER_URL;
        // run_containers.test.ts drives the double of @cloudflare/containers' Container).
        durableObjects: {
          DAGSTER: { className: "DagsterContainerDouble", scriptName: "dagster-container-double" },
          RUNNER: { className: "RunnerContainerDouble", scriptName: "runner-container-double" },
          // The runner classes of the other instance types: a double class each, so a test sees which one started.
          RUNNER_LITE: { className: "RunnerLiteContainerDouble", scriptName: "runner-container-double" },
          RUNNER_BASIC: { className: "RunnerBasicContainerDouble", scriptName: "runner-container-double" },
          RUNNER_STANDARD_2: { className: "RunnerStandard2ContainerDouble", scriptName: "runner-container-double" },
          RUNNER_STANDARD_3: { className: "RunnerStandard3ContainerDouble", scriptName: "runner-container-double" },
          RUNNER_STANDARD_4: { className: "RunnerStandard4ContainerDouble", scriptName: "runner-container-double" },
        },
        workers: [
          {
            name: "dagster-container-double",
            modules: true,
            scriptPath: `${root}/worker/test/dagster-container-double.mjs`,
            durableObjects: { DAGSTER: "DagsterContainerDouble" },
          },
          {
            name: "runner-container-double",
            modules: true,
            scriptPath: `${root}/worker/test/runner-container-double.mjs`,
            durableObjects: {
              RUNNER: "RunnerContainerDouble",
              RUNNER_LITE: "RunnerLiteContainerDouble",
              RUNNER_BASIC: "RunnerBasicContainerDouble",
              RUNNER_STANDARD_2: "RunnerStandard2ContainerDouble",
              RUNNER_STANDARD_3: "RunnerStandard3ContainerDouble",
              RUNNER_STANDARD_4: "RunnerStandard4ContainerDouble",
            },
          },
        ],
        bindings: {
          // Secrets (wrangler.toml holds none).
          DLT_OPERATOR_TOKEN: "test-operator-token",
          DLT_INTERNAL_TOKEN: "test-internal-token",
          ADMIN_SESSION_KEY: "test-admin-session-key",
          // Tests reach Dagster at a URL their fetch double answers, not through the container.
          DAGSTER_URL: "http://dagster.test",
          // High so tests that queue many runs of one source are not refused; the limit has its own test.
          MAX_PENDING_RUNS_PER_SOURCE: "100",
          // Webhook signing secrets the webhook tests' definitions name (worker/test/webhook_helpers.ts).
          TEST_GITHUB_HOOK_SECRET: "test-github-hook-secret",
          TEST_STRIPE_HOOK_SECRET: "whsec_test_stripe_hook_secret",
          TEST_SVIX_HOOK_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
          TEST_HMAC_HOOK_SECRET: "test-hmac-hook-secret",
          TEST_MIGRATIONS: await readD1Migrations(`${root}/worker/migrations`),
        },
      },
    })),
  ],
  test: {
    include: ["worker/test/**/*.test.ts"],
    // CI runs vitest beside three pytest lanes on two cores: a test that takes 1 s alone has taken over 5 s
    // (vitest's default limit) there. A hang still fails, after 30 s.
    testTimeout: 30_000,
    // cron-parser is CommonJS: bundled with esbuild, as wrangler bundles it for the deployed Worker.
    deps: { optimizer: { ssr: { enabled: true, include: ["cron-parser"] } } },
    setupFiles: ["./worker/test/setup.ts"],
    // A loopback webhook receiver for the alert tests; the definition types as generated now (Node-only generator).
    globalSetup: ["./worker/test/alert-receiver.global.mjs", "./worker/test/definition-types.global.mjs"],
  },
});
