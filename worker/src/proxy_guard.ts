/**
 * Cross-site protection of the /dagster/* proxy. The session cookie is SameSite=Strict, but another port or
 * subdomain of the same site is still "same-site", so the cookie alone does not prove the operator's own page
 * sent a request. Dagster accepts GraphQL over GET and any Origin, hence:
 * - GraphQL over GET may only read: a document with a mutation or subscription (or that does not parse) is
 *   refused, whoever sends it;
 * - every other method (POST ...) and every WebSocket needs a same-origin `Origin` (or `Sec-Fetch-Site:
 *   same-origin` when the browser sent no Origin); only a bearer client, which no page can forge, may send
 *   neither;
 * - a GraphQL POST must be JSON (a cross-site form cannot send JSON without a CORS preflight Dagster never
 *   answers).
 * The UI's own pages, assets, queries, mutations and WebSockets meet all of these.
 */
import { Kind, parse } from "graphql";
import { ApiError } from "./errors";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Why a GraphQL document may not run over GET, or null when it only reads. */
export function getDocumentProblem(document: string): string | null {
  let parsed;
  try {
    parsed = parse(document, { noLocation: true });
  } catch {
    return "a GraphQL document sent over GET must parse";
  }
  for (const definition of parsed.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION && definition.operation !== "query") {
      return `a GraphQL ${definition.operation} is accepted only as a JSON POST from this origin`;
    }
  }
  return null;
}

function isGraphqlPath(pathname: string): boolean {
  return /\/graphql\/?$/.test(pathname);
}

function crossSite(why: string): ApiError {
  return new ApiError(403, "cross_site_refused", `refused: ${why}`);
}

/** The browser's word on where the request came from: "same" (our origin), "other", or "unknown" (neither header). */
function requestOrigin(request: Request): "same" | "other" | "unknown" {
  const own = new URL(request.url).origin;
  const origin = request.headers.get("Origin");
  if (origin !== null) return origin === own ? "same" : "other";
  const site = request.headers.get("Sec-Fetch-Site");
  if (site !== null) return site === "same-origin" ? "same" : "other";
  return "unknown";
}

/** Throws a 403 (415 for a non-JSON GraphQL POST) when the proxy must not forward `request`. */
export function assertProxyAllowed(request: Request, viaBearer: boolean): void {
  const url = new URL(request.url);
  const websocket = (request.headers.get("Upgrade") ?? "").toLowerCase() === "websocket";
  if (SAFE_METHODS.has(request.method) && !websocket) {
    const document = url.searchParams.get("query");
    if (isGraphqlPath(url.pathname) && document !== null) {
      const problem = getDocumentProblem(document);
      if (problem) throw crossSite(problem);
    }
    return;
  }
  const origin = requestOrigin(request);
  if (origin === "other") {
    throw crossSite(`${websocket ? "a WebSocket" : `a ${request.method}`} from another origin (${request.headers.get("Origin") ?? `Sec-Fetch-Site: ${request.headers.get("Sec-Fetch-Site")}`}) may not use the signed-in Dagster UI`);
  }
  if (origin === "unknown" && !viaBearer) {
    throw crossSite(`a ${websocket ? "WebSocket" : request.method} with a session cookie needs a same-origin Origin or Sec-Fetch-Site header`);
  }
  if (!websocket && request.method === "POST" && isGraphqlPath(url.pathname)) {
    const mediaType = (request.headers.get("Content-Type") ?? "").split(";")[0].trim().toLowerCase();
    if (mediaType !== "application/json") {
      throw new ApiError(415, "unsupported_media_type", "GraphQL POSTs must have Content-Type: application/json");
    }
  }
}
