import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const root = fileURLToPath(new URL(".", import.meta.url));
// The compatibility date comes from wrangler.toml so tests run on the runtime the Worker is deployed with.
const wranglerToml = readFileSync(`${root}/wrangler.toml`, "utf8");
const compatibilityDate = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(wranglerToml)?.[1];

// Bindings are declared here rather than read from wrangler.toml: wrangler validates that the container
// image (./Dockerfile) exists, and the tests need neither the container nor a live queue consumer.
export default defineConfig({
  plugins: [
    cloudflareTest(async () => ({
      main: "./worker/src/index.ts",
      miniflare: {
        compatibilityDate,
        compatibilityFlags: ["nodejs_compat"],
        d1Databases: ["DB"],
        kvNamespaces: ["ORDERS_KV", "LEADS_KV", "VENDOR_KV"],
        r2Buckets: ["RAW_STAGING"],
        queueProducers: { JOBS: "dlt-jobs-v2" },
        // The container's Durable Object, played by a double (tests of the container branch unset DAGSTER_URL).
        durableObjects: {
          DAGSTER: { className: "DagsterContainerDouble", scriptName: "dagster-container-double" },
          // Run containers, played by a double of @cloudflare/containers' Container (run_containers.test.ts).
          RUNNER: { className: "RunnerContainerDouble", scriptName: "runner-container-double" },
        },
        workers: [
          {
            name: "dagster-container-double",
            modules: true,
            scriptPath: `${root}/worker/test/dagster-container-double.mjs`,
            compatibilityDate,
            durableObjects: { DAGSTER: "DagsterContainerDouble" },
          },
          {
            name: "runner-container-double",
            modules: true,
            scriptPath: `${root}/worker/test/runner-container-double.mjs`,
            compatibilityDate,
            durableObjects: { RUNNER: "RunnerContainerDouble" },
          },
        ],
        bindings: {
          DLT_OPERATOR_TOKEN: "test-operator-token",
          DLT_INTERNAL_TOKEN: "test-internal-token",
          ADMIN_SESSION_KEY: "test-admin-session-key",
          DAGSTER_URL: "http://dagster.test",
          STUCK_RUN_MINUTES: "15",
          QUEUED_RESEND_MINUTES: "10",
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
    // cron-parser is CommonJS: bundled with esbuild, as wrangler bundles it for the deployed Worker.
    deps: { optimizer: { ssr: { enabled: true, include: ["cron-parser"] } } },
    setupFiles: ["./worker/test/setup.ts"],
    // A loopback webhook receiver for the alert tests.
    globalSetup: ["./worker/test/alert-receiver.global.mjs"],
  },
});
