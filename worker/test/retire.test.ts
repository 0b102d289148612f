/** DELETE /sources/:id retires a source: disabled, hidden from Dagster and the default listing, history kept. */
import { describe, expect, it } from "vitest";
import { call, createSource, dagsterDouble, definition, INTERNAL, json, testEnv } from "./helpers";

describe("DELETE /sources/:id", () => {
  it("retires a source: a 'retire' version, gone from Dagster's listing, runs kept, new runs refused", async () => {
    const { env, jobs } = testEnv();
    const id = await createSource(env);
    const { run_id } = await json(await call(env, "POST", `/sources/${id}/runs`));
    await call(env, "POST", `/internal/runs/${run_id}/status`, { token: INTERNAL, body: { status: "succeeded" } });
    const dagster = dagsterDouble(() => ({ reloadRepositoryLocation: { __typename: "WorkspaceLocationEntry" } }));

    const response = await call(env, "DELETE", `/sources/${id}`, { headers: { "X-Actor": "alice" } });
    expect(response.status).toBe(200);
    const retired = await json(response);
    expect(retired).toMatchObject({ source_id: id, version: 2, enabled: false, updated_by: "alice" });
    expect(new Date(retired.retired_at).toISOString()).toBe(retired.retired_at);
    expect(dagster.calls.map((c) => c.variables)).toEqual([{ name: "dlt_platform" }]);

    const versions = (await json(await call(env, "GET", `/sources/${id}/versions`))).versions;
    expect(versions.map((v: any) => [v.version, v.change, v.changed_by, v.definition.enabled])).toEqual([
      [2, "retire", "alice", false],
      [1, "create", "operator", true],
    ]);
    const internal = await json(await call(env, "GET", "/internal/sources", { token: INTERNAL }));
    expect(internal.sources.map((s: any) => s.source_id)).not.toContain(id);
    expect((await json(await call(env, "GET", "/sources"))).sources.map((s: any) => s.source_id)).not.toContain(id);
    const all = (await json(await call(env, "GET", "/sources?include_retired=1"))).sources;
    expect(all.find((s: any) => s.source_id === id)).toMatchObject({ retired_at: retired.retired_at });
    expect((await json(await call(env, "GET", `/sources/${id}`))).retired_at).toBe(retired.retired_at);
    const runs = (await json(await call(env, "GET", `/runs?source_id=${id}`))).runs;
    expect(runs.map((r: any) => [r.run_id, r.status])).toEqual([[run_id, "succeeded"]]);

    for (const [method, path, body] of [
      ["POST", `/sources/${id}/runs`, undefined],
      ["POST", `/runs/${run_id}/retry`, undefined],
      ["POST", `/sources/${id}/enable`, undefined],
      ["PUT", `/sources/${id}`, { version: 2, definition: definition(id) }],
    ] as const) {
      const refused = await call(env, method, path, { body });
      expect(refused.status, `${method} ${path}`).toBe(409);
      expect((await json(refused)).error.code, `${method} ${path}`).toBe("source_retired");
    }
    expect(jobs.sent).toHaveLength(1);

    // Retiring again changes nothing.
    const again = await json(await call(env, "DELETE", `/sources/${id}`));
    expect(again).toMatchObject({ version: 2, retired_at: retired.retired_at });
  });

  it("refuses to retire a source with runs in flight, and answers 404 for an unknown one", async () => {
    const { env } = testEnv();
    const id = await createSource(env);
    const { run_id } = await json(await call(env, "POST", `/sources/${id}/runs`));
    const busy = await call(env, "DELETE", `/sources/${id}`);
    expect(busy.status).toBe(409);
    const error = (await json(busy)).error;
    expect(error.code).toBe("source_busy");
    expect(error.message).toContain(run_id);
    expect((await json(await call(env, "GET", `/sources/${id}`))).retired_at).toBeNull();
    await call(env, "POST", `/runs/${run_id}/cancel`);
    expect((await call(env, "DELETE", `/sources/${id}`)).status).toBe(200);
    expect((await call(env, "DELETE", "/sources/no_such_source")).status).toBe(404);
  });
});
