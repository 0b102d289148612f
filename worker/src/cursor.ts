/** Opaque page cursors (GET /runs, the internal KV pages, webhook delivery pages): a JSON value in base64url, no padding. */
import { decodeBase64Url, encodeBase64Url } from "hono/utils/encode";
import { validationFailed } from "./errors";

export function encodeCursor(value: unknown): string {
  return encodeBase64Url(new TextEncoder().encode(JSON.stringify(value)).buffer).replace(/=+$/, "");
}

/** The value a cursor carries, if `accept` takes it; otherwise 400 naming the query field it came in. */
export function decodeCursor<T>(cursor: string, accept: (value: unknown) => value is T, field = "cursor"): T {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(decodeBase64Url(cursor)));
  } catch {
    value = undefined;
  }
  if (value === undefined || !accept(value)) {
    throw validationFailed([{ field, message: "not a cursor this endpoint returned" }]);
  }
  return value;
}
