// Stands in for the DagsterContainer Durable Object (no container runtime here): a real Durable Object reached
// through the DAGSTER namespace binding, as getContainer() reaches the container. It answers the GraphQL a launch
// sends as Dagster does, echoes any other request, and lists what it received at /dagster/__double/seen.
const GRAPHQL_ANSWERS = [
  ["launchRun(", (id) => ({ launchRun: { __typename: "LaunchRunSuccess", run: { runId: `dg-container-${id}`, status: "QUEUED" } } })],
  ["assetNodeOrError(", () => ({ assetNodeOrError: { __typename: "AssetNode", metadataEntries: [] } })],
  ["reloadRepositoryLocation(", () => ({ reloadRepositoryLocation: { __typename: "WorkspaceLocationEntry" } })],
];

export class DagsterContainerDouble {
  constructor(state) {
    this.id = state.id.toString();
    this.seen = [];
  }

  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/dagster/__double/seen") return Response.json(this.seen);
    const body = request.method === "GET" || request.method === "HEAD" ? "" : await request.text();
    const seen = {
      object: this.id,
      method: request.method,
      url: request.url,
      authorization: request.headers.get("Authorization"),
      cookie: request.headers.get("Cookie"),
      body,
    };
    this.seen.push(seen);
    if (url.pathname === "/dagster/graphql" && request.method === "POST") {
      const answer = GRAPHQL_ANSWERS.find(([marker]) => body.includes(marker));
      if (answer) return Response.json({ data: answer[1](this.id.slice(0, 8)) });
      return Response.json({ errors: [{ message: "the container double does not answer this query" }] });
    }
    return Response.json(seen);
  }
}

export default {
  fetch() {
    return new Response("only the Durable Object is used", { status: 404 });
  },
};
