/**
 * Seeds wrangler dev's local KV namespaces in one process: `node worker/scripts/seed_kv.mjs PERSIST_DIR
 * BINDING=FILE...`, each FILE a JSON array of {key, value, metadata?} as `wrangler kv bulk put` reads it.
 * `wrangler kv bulk put --local` starts the local runtime once per namespace and took 24 s of CPU for the sample
 * namespaces; this starts it once (wrangler's public getPlatformProxy, on the same persisted state wrangler dev
 * reads with --persist-to PERSIST_DIR) and writes through the bindings.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { getPlatformProxy } from "wrangler";

const [persistTo, ...namespaces] = process.argv.slice(2);
if (!persistTo || namespaces.length === 0) {
  console.error("usage: seed_kv.mjs PERSIST_DIR BINDING=FILE...");
  process.exit(2);
}
// A write through the platform proxy can lose its socket when the machine is busy (seen in CI: undici's "fetch
// failed", cause "other side closed", on one of 200 writes in flight); a put of the same key and value is
// idempotent, so it is sent again, at most ATTEMPTS times in all.
const ATTEMPTS = 4;
async function put(store, entry) {
  const options = entry.metadata === undefined ? {} : { metadata: entry.metadata };
  for (let attempt = 1; ; attempt++) {
    try {
      return await store.put(entry.key, entry.value, options);
    } catch (error) {
      if (attempt >= ATTEMPTS || !(error instanceof TypeError && error.message === "fetch failed")) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

// wrangler dev --persist-to DIR keeps its state under DIR/v3; getPlatformProxy takes that folder itself.
const { env, dispose } = await getPlatformProxy({ persist: { path: join(persistTo, "v3") } });
try {
  for (const namespace of namespaces) {
    const [binding, file] = namespace.split("=", 2);
    const store = env[binding];
    if (!store || typeof store.put !== "function") throw new Error(`${binding}: no KV binding of that name in wrangler.toml`);
    const entries = JSON.parse(readFileSync(file, "utf8"));
    const BATCH = 200; // writes in flight at once
    for (let start = 0; start < entries.length; start += BATCH) {
      await Promise.all(entries.slice(start, start + BATCH).map((entry) => put(store, entry)));
    }
    console.log(`${binding}: ${entries.length} entries`);
  }
} finally {
  await dispose();
}
