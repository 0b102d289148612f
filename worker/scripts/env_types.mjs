/**
 * Writes worker/src/worker-configuration.d.ts (Cloudflare.Env: the bindings and [vars] of wrangler.toml) with
 * `wrangler types`, from wrangler.toml alone: `--env-file /dev/null` keeps a developer's .dev.vars (secrets, which
 * env.ts declares) out of it. `--check` writes nothing and exits 1 while the committed file differs from a fresh one
 * (`wrangler types --check` would also fail whenever a .dev.vars exists).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const OUTPUT = "worker/src/worker-configuration.d.ts";

function generate(path) {
  const args = ["types", path, "--include-runtime=false", "--strict-vars=false", "--env-file", "/dev/null"];
  execFileSync(`${root}node_modules/.bin/wrangler`, args, { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
}

/** The file without its second line, which names the command (and so the path) that wrote it. */
function body(path) {
  return readFileSync(`${root}${path}`, "utf8").split("\n").toSpliced(1, 1).join("\n");
}

if (process.argv.includes("--check")) {
  // Beside the committed file, so the relative imports it writes are the same.
  const fresh = "worker/src/.worker-configuration.check.d.ts";
  try {
    generate(fresh);
    if (body(fresh) !== body(OUTPUT)) {
      console.error(`${OUTPUT} is stale: run \`npm run types\` after changing wrangler.toml`);
      process.exitCode = 1;
    }
  } finally {
    rmSync(`${root}${fresh}`, { force: true });
  }
} else {
  generate(OUTPUT);
}
