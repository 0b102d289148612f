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
      await Promise.all(
        entries.slice(start, start + BATCH).map((entry) =>
          store.put(entry.key, entry.value, entry.metadata === undefined ? {} : { metadata: entry.metadata }),
        ),
      );
    }
    console.log(`${binding}: ${entries.length} entries`);
  }
} finally {
  await dispose();
}
