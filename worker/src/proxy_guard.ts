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
 *   answers; Dagster reads a POST of any other type from the query string).
 * The guard decides on the request Dagster will execute, not on the one that arrived: Starlette routes the
 * percent-decoded path and reads the last of repeated parameters, so the proxy forwards only the canonical
 * request built here (the path decoded once and re-encoded, the parameters as parsed, at most one `query`,
 * redirects handed back to the browser rather than followed at the edge).
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

/** Whether Dagster may answer `path` (decoded) with its GraphQL endpoint; a superset, whatever the case. */
function isGraphqlPath(path: string): boolean {
  return /\/graphql\/*$/i.test(path);
}

function refusedRequest(why: string): ApiError {
  return new ApiError(400, "proxy_request_refused", `refused: ${why}`);
}

/**
 * The path as Dagster will route it: percent-decoded once. Refused when a second decoding would change it again,
 * when it hides a `/`, `\\`, `?` or `#`, or when it does not decode.
 */
export function decodedProxyPath(rawPath: string): string {
  if (/%(2f|5c)/i.test(rawPath)) throw refusedRequest("the /dagster path contains an encoded slash or backslash");
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    throw refusedRequest("the /dagster path has malformed percent-encoding");
  }
  if (decoded.includes("%")) throw refusedRequest("the /dagster path is percent-encoded more than once");
  if (/[\u0000-\u001f\u007f?#\\]/.test(decoded)) {
    throw refusedRequest("the /dagster path contains an encoded ?, #, backslash or control character");
  }
  return decoded;
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

/** What the proxy sends Dagster: the path with its query string, and the request itself. */
export interface ProxyRequest {
  path: string;
  init: RequestInit;
}

/**
 * The request the /dagster/* proxy forwards for `request`, built from what the guard checked; throws a 403 (415
 * for a non-JSON GraphQL POST, 400 for a path or query string Dagster could read otherwise) when it must not
 * go. `dropCookie` (the session cookie) and `Authorization` stay at the edge.
 */
export function canonicalProxyRequest(request: Request, viaBearer: boolean, dropCookie: string): ProxyRequest {
  const url = new URL(request.url);
  const path = decodedProxyPath(url.pathname);
  const params = new URLSearchParams(url.search);
  const documents = params.getAll("query");
  if (documents.length > 1) throw refusedRequest(`${documents.length} query parameters; send at most one`);
  assertAllowed(request, path, documents[0] ?? null, viaBearer);

  const headers = new Headers(request.headers);
  headers.delete("Authorization");
  const cookies = (headers.get("Cookie") ?? "")
    .split(";")
    .map((part) => part.trim())
    .filter((part) => part && !part.startsWith(`${dropCookie}=`));
  if (cookies.length) headers.set("Cookie", cookies.join("; "));
  else headers.delete("Cookie");

  const search = params.toString();
  const encodedPath = path.split("/").map(encodeURIComponent).join("/");
  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  return {
    path: search ? `${encodedPath}?${search}` : encodedPath,
    init: { method: request.method, headers, body: hasBody ? request.body : undefined, redirect: "manual" },
  };
}

function assertAllowed(request: Request, path: string, document: string | null, viaBearer: boolean): void {
  const websocket = (request.headers.get("Upgrade") ?? "").toLowerCase() === "websocket";
  if (SAFE_METHODS.has(request.method) && !websocket) {
    if (isGraphqlPath(path) && document !== null) {
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
  if (!websocket && request.method === "POST" && isGraphqlPath(path)) {
    const mediaType = (request.headers.get("Content-Type") ?? "").split(";")[0].trim().toLowerCase();
    if (mediaType !== "application/json") {
      throw new ApiError(415, "unsupported_media_type", "GraphQL POSTs must have Content-Type: application/json");
    }
  }
}
