/**
 * A run launches only once Dagster has loaded the definition version it was requested against: a source just
 * created or changed is otherwise unknown (or stale) in Dagster and its launch would fail. Creating or changing
 * a source already asks Dagster to reload; the launch waits for that reload (bounded), and asks again itself if
 * it has not arrived after a short grace, instead of failing and retrying.
 */
import { DagsterError, loadedSourceVersion, reloadLocation } from "./dagster";
import { type Env, numberVar } from "./env";
import { findLoadError, type LoadError } from "./load_errors";
import type { SourceRecord } from "./ledger";
import { tableKeys } from "./source_types";

/** Time after a source change for the reload it started (a new code server process: seconds in the container,
 * up to half a minute on a busy laptop) before a launch asks for one itself. */
const MAX_GRACE_MS = 30_000;
const POLL_MS = 500;

/** Dagster could not build this definition (reported by the code location): waiting cannot help. */
export class SourceNotLoadable extends Error {
  constructor(
    readonly sourceId: string,
    readonly loadError: LoadError,
  ) {
    super(`Dagster could not load the definition of ${sourceId}: ${loadError.message}`);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function isLoaded(env: Env, source: SourceRecord): Promise<boolean> {
  // Every table of a source carries its version; the first one answers for all of them.
  const version = await loadedSourceVersion(env, tableKeys(source.definition)[0]);
  // 0: Dagster reads definitions from a file and labels no versions; the asset being there is all it can say.
  return version !== null && (version === 0 || version >= source.version);
}

/**
 * Returns once Dagster has `source` at its current version; throws SourceNotLoadable when the code location
 * reported it cannot build it, DagsterError when it is still not there after LOAD_WAIT_SECONDS.
 */
export async function waitUntilLoaded(env: Env, source: SourceRecord): Promise<void> {
  const waitMs = numberVar(env, "LOAD_WAIT_SECONDS") * 1000;
  const deadline = Date.now() + waitMs;
  // Counted from the change: a run requested long after it (the reload was lost) asks for a reload at once.
  const graceEnd = Math.min(Date.parse(source.updated_at) || 0, Date.now()) + Math.min(MAX_GRACE_MS, waitMs / 3);
  let reloading = false;
  for (;;) {
    const loadError = await findLoadError(env.DB, source.source_id, source.version);
    if (loadError) throw new SourceNotLoadable(source.source_id, loadError);
    if (await isLoaded(env, source)) return;
    if (Date.now() >= deadline) {
      throw new DagsterError(
        `Dagster has not loaded version ${source.version} of ${source.source_id} after ${waitMs / 1000} s`,
      );
    }
    if (!reloading && Date.now() >= graceEnd) {
      reloading = true;
      // Not awaited: it answers once its own code server has loaded, while the reload the change started may
      // land first; polling sees whichever does. It logs its own failures.
      void reloadLocation(env);
    }
    await sleep(POLL_MS);
  }
}
