#!/usr/bin/env node
/**
 * Accepted webhook deliveries per second against a local Worker (wrangler dev, local D1 and R2).
 *
 *   node worker/bench/hooks.mjs [--count 2000] [--concurrency 32] [--body-bytes 1024]
 *   node worker/bench/hooks.mjs --url http://127.0.0.1:8787 --operator-token ... --secret-name LOCAL_WEBHOOK_SECRET --secret ...
 *
 * Without --url it starts its own `wrangler dev` on a free port with a throw-away state folder (migrated D1, a
 * generated token and signing secret), and stops it at the end. It creates a github-preset webhook source, sends
 * `count` distinct signed deliveries from `concurrency` concurrent senders, then checks that the Worker counts exactly
 * `count` accepted and prints deliveries per second and the latency percentiles.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = fileURLToPath(new URL("../..", import.meta.url));
const { values: args } = parseArgs({
  options: {
    count: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "32" },
    "body-bytes": { type: "string", default: "1024" },
    url: { type: "string" },
    "operator-token": { type: "string" },
    "secret-name": { type: "string", default: "BENCH_WEBHOOK_SECRET" },
    secret: { type: "string" },
  },
});
const count = Number(args.count);
const concurrency = Number(args.concurrency);
const bodyBytes = Number(args["body-bytes"]);

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitHealthy(url, worker, seconds = 120) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (worker?.exitCode !== null && worker?.exitCode !== undefined) throw new Error(`wrangler dev exited (${worker.exitCode})`);
    try {
      const health = await (await fetch(`${url}/health`)).json();
      if (health.d1 === "ok") return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`no healthy Worker at ${url} after ${seconds} s`);
}

/** A wrangler dev of this repository on a free port with its own state; returns how to reach and stop it. */
async function startWorker() {
  const state = mkdtempSync(join(tmpdir(), "hooks-bench-"));
  const wrangler = join(root, "node_modules", ".bin", "wrangler");
  const migrate = spawnSync(wrangler, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", state], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, CI: "1" },
  });
  if (migrate.status !== 0) throw new Error(`d1 migrations failed: ${migrate.stderr || migrate.stdout}`);
  const port = await freePort();
  const token = randomBytes(24).toString("base64url");
  const secret = randomBytes(24).toString("base64url");
  const secretName = args["secret-name"];
  const worker = spawn(
    wrangler,
    [
      "dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", state, "--show-interactive-dev-session=false",
      "--var", `DLT_OPERATOR_TOKEN:${token}`, "--var", `${secretName}:${secret}`,
    ],
    { cwd: root, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, CI: "1" }, detached: true },
  );
  let stderr = "";
  worker.stderr.on("data", (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url, worker);
  } catch (err) {
    process.kill(-worker.pid, "SIGTERM");
    throw new Error(`${err.message}\n${stderr}`);
  }
  const stop = () => {
    try {
      process.kill(-worker.pid, "SIGTERM"); // wrangler and its workerd child
    } catch {
      // already gone
    }
    rmSync(state, { recursive: true, force: true });
  };
  return { url, token, secretName, secret, stop };
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
  const target = args.url
    ? { url: args.url, token: args["operator-token"], secretName: args["secret-name"], secret: args.secret, stop: () => {} }
    : await startWorker();
  if (!target.token || !target.secret) throw new Error("--url needs --operator-token and --secret");
  try {
    const operator = { authorization: `Bearer ${target.token}`, "content-type": "application/json" };
    const sourceId = `bench_hooks_${Date.now().toString(36)}`;
    const created = await fetch(`${target.url}/sources`, {
      method: "POST",
      headers: operator,
      body: JSON.stringify({
        source_id: sourceId,
        source_type: "webhook",
        destination: { type: "bigquery", dataset: "source_webhooks", table: sourceId, write_disposition: "merge" },
        extract: { signature: { preset: "github", secret_names: [target.secretName] } },
      }),
    });
    if (created.status !== 201) throw new Error(`creating the source: ${created.status} ${await created.text()}`);

    const pad = "x".repeat(Math.max(0, bodyBytes - 80));
    const latencies = [];
    const statuses = {};
    let next = 0;
    const started = performance.now();
    async function sender() {
      while (next < count) {
        const i = next++;
        const id = `bench-${i}`;
        const body = JSON.stringify({ action: "opened", number: i, pad });
        const t0 = performance.now();
        const response = await fetch(`${target.url}/hooks/${sourceId}`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-github-delivery": id,
            "x-github-event": "issues",
            "x-hub-signature-256": `sha256=${createHmac("sha256", target.secret).update(body).digest("hex")}`,
          },
          body,
        });
        await response.arrayBuffer();
        latencies.push(performance.now() - t0);
        statuses[response.status] = (statuses[response.status] ?? 0) + 1;
      }
    }
    await Promise.all(Array.from({ length: concurrency }, sender));
    const seconds = (performance.now() - started) / 1000;

    const stats = await (await fetch(`${target.url}/sources/${sourceId}/webhook`, { headers: operator })).json();
    latencies.sort((a, b) => a - b);
    const result = {
      deliveries: count,
      concurrency,
      body_bytes: bodyBytes,
      statuses,
      seconds: Number(seconds.toFixed(2)),
      accepted_per_second: Number((count / seconds).toFixed(1)),
      latency_ms: {
        p50: Number(percentile(latencies, 50).toFixed(1)),
        p95: Number(percentile(latencies, 95).toFixed(1)),
        p99: Number(percentile(latencies, 99).toFixed(1)),
      },
      worker_counts: { accepted: stats.accepted, waiting: stats.waiting, refused_total: stats.refused_total },
    };
    console.log(JSON.stringify(result, null, 2));
    if (statuses[200] !== count || stats.accepted !== count) {
      console.error(`expected ${count} accepted deliveries`);
      process.exitCode = 1;
    }
  } finally {
    target.stop();
  }
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
