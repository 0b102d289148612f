import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export interface FieldError {
  field: string;
  message: string;
}

/** An error the API answers with `{"error": {"code", "message", "fields"?}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly fields?: FieldError[],
    /** Extra response headers (e.g. Retry-After). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export const unauthorized = () => new ApiError(401, "unauthorized", "missing or invalid credentials");
export const notFound = (what: string) => new ApiError(404, "not_found", `${what} not found`);
export const conflict = (message: string) => new ApiError(409, "conflict", message);
export const validationFailed = (fields: FieldError[], message = "request is not valid") =>
  new ApiError(400, "validation_failed", `${message}: ${fields.map((f) => f.field).join(", ")}`, fields);

export function errorBody(code: string, message: string, fields?: FieldError[]) {
  // One line, whatever the cause said.
  const line = message.replace(/\s+/g, " ").trim().slice(0, 500);
  return { error: fields ? { code, message: line, fields } : { code, message: line } };
}

export function errorResponse(c: Context, err: unknown): Response {
  if (err instanceof ApiError) {
    return c.json(errorBody(err.code, err.message, err.fields), err.status, err.headers);
  }
  // Hono's own middleware (bearer auth) answers with a prepared response.
  if (err instanceof HTTPException) return err.getResponse();
  console.error("unhandled error", err instanceof Error ? err.message : String(err));
  return c.json(errorBody("internal_error", "internal error"), 500);
}
