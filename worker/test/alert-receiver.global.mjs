/**
 * Vitest global setup (runs in Node, outside the Workers runtime; plain JS because the Worker's tsconfig has no
 * Node types): a loopback HTTP server that stands in for a Slack incoming webhook. POST /hooks/<box>?fail=N
 * answers 500 to the first N deliveries of that box, then 200 and keeps the body; GET /boxes/<box> answers
 * {attempts, bodies, content_types}. Tests get its URL with inject("alertReceiverUrl") (see alerts.ts).
 */
import { createServer } from "node:http";

async function bodyOf(request) {
  const chunks = [];
  for await (const chunk of request) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

/** @param {import("vitest/node").TestProject} project */
export default async function setup(project) {
  const boxes = new Map();
  const server = createServer(async (request, response) => {
    const url = new URL(request.url ?? "/", "http://receiver");
    const [, kind, name] = url.pathname.split("/");
    const box = boxes.get(name) ?? { attempts: 0, bodies: [], content_types: [] };
    boxes.set(name, box);
    if (request.method === "POST" && kind === "hooks") {
      const text = await bodyOf(request);
      box.attempts += 1;
      if (box.attempts <= Number(url.searchParams.get("fail") ?? 0)) {
        response.writeHead(500, { "content-type": "text/plain" }).end("receiver told to fail");
        return;
      }
      box.bodies.push(JSON.parse(text));
      box.content_types.push(request.headers["content-type"] ?? null);
      response.writeHead(200, { "content-type": "text/plain" }).end("ok");
      return;
    }
    if (request.method === "GET" && kind === "boxes") {
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(box));
      return;
    }
    response.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  project.provide("alertReceiverUrl", `http://127.0.0.1:${server.address().port}`);
  return () => new Promise((resolve) => server.close(() => resolve(undefined)));
}
