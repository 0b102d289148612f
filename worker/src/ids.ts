import { monotonicFactory } from "ulidx";

// Monotonic: a Worker's clock stands still between I/O, so ids made in one request share a millisecond and
// must still sort in creation order (the run list breaks created_at ties by run_id).
const nextUlid = monotonicFactory();

/** `run_` + a ULID (26 Crockford base32 characters: 10 of millisecond time, 16 random), sortable by creation. */
export function newRunId(): string {
  return `run_${nextUlid()}`;
}

export function nowIso(): string {
  return new Date().toISOString();
}
