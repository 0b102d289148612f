/** wrangler.toml's [vars] are the one source of the Worker's settings: the code has no fallbacks of its own. */
import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { numberVar } from "../src/env";
import { call, testEnv } from "./helpers";

describe("settings from wrangler.toml [vars]", () => {
  it("reads a number var, and names the variable when it is missing or not a number", () => {
    expect(numberVar({ ...env, STUCK_RUN_MINUTES: " 7 " }, "STUCK_RUN_MINUTES")).toBe(7);
    expect(() => numberVar({ ...env, STUCK_RUN_MINUTES: "soon" }, "STUCK_RUN_MINUTES")).toThrow(
      'STUCK_RUN_MINUTES must be a number above 0 (wrangler.toml [vars]), not "soon"',
    );
    expect(() => numberVar({ ...env, RETENTION_DAYS: undefined as never }, "RETENTION_DAYS", { min: 0 })).toThrow(
      "RETENTION_DAYS must be a number of at least 0 (wrangler.toml [vars]), not null",
    );
    expect(numberVar({ ...env, RETENTION_DAYS: "0" }, "RETENTION_DAYS", { min: 0 })).toBe(0);
  });

  it("a Worker without a var it needs logs the variable's name rather than using a default", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const { env: bare } = testEnv({ MAX_BODY_KB: undefined as never });
    const response = await call(bare, "GET", "/sources");
    expect(response.status).toBe(500);
    expect(logged).toHaveBeenCalledWith(
      "unhandled error",
      "MAX_BODY_KB must be a number above 0 (wrangler.toml [vars]), not null",
    );
  });
});
