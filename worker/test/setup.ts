import { applyD1Migrations, env, type D1Migration } from "cloudflare:test";
import { afterEach, beforeEach, vi } from "vitest";

// Every test file starts from the real schema.
const { TEST_MIGRATIONS } = env as unknown as { TEST_MIGRATIONS: D1Migration[] };
await applyD1Migrations(env.DB, TEST_MIGRATIONS);

// No test reaches the network: by default Dagster answers the best-effort reload and nothing else.
// Tests that talk to Dagster install their own double (helpers.dagsterDouble).
beforeEach(() => {
  vi.spyOn(globalThis, "fetch").mockImplementation(async () =>
    Response.json({ data: { reloadRepositoryLocation: { __typename: "WorkspaceLocationEntry" } } }),
  );
});
afterEach(() => {
  vi.restoreAllMocks();
});
