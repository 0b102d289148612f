/** Why a webhook request is refused: one code per cause, each with its HTTP status (docs/webhooks.md lists them). */
import type { ContentfulStatusCode } from "hono/utils/http-status";

export const REFUSAL_STATUS = {
  unknown_source: 404,
  not_a_webhook_source: 404,
  source_disabled: 404,
  unsupported_content_type: 415,
  body_too_large: 413,
  missing_header: 400,
  missing_delivery_id: 400,
  body_not_utf8: 400,
  delivery_id_not_utf8: 400,
  bad_signature: 401,
  bad_timestamp: 401,
  stale_timestamp: 401,
  future_timestamp: 401,
  // The definition names a secret the Worker does not have: the sender should retry once it is set.
  secret_not_configured: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type RefusalReason = keyof typeof REFUSAL_STATUS;

export const REFUSAL_REASONS = Object.keys(REFUSAL_STATUS) as RefusalReason[];

/** A refused delivery: nothing is stored, the refusal is counted, the sender gets one line. */
export class Refusal {
  constructor(
    readonly reason: RefusalReason,
    readonly message: string,
  ) {}

  get status(): ContentfulStatusCode {
    return REFUSAL_STATUS[this.reason];
  }

  body() {
    return { error: this.message.replace(/\s+/g, " ").trim().slice(0, 300), reason: this.reason };
  }
}
