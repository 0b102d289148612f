const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** `run_` + 26 Crockford base32 chars: 10 of millisecond time, 16 random, so ids sort by creation time. */
export function newRunId(nowMs = Date.now()): string {
  let time = "";
  let t = nowMs;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const random = crypto.getRandomValues(new Uint8Array(16));
  let tail = "";
  for (const byte of random) tail += CROCKFORD[byte % 32];
  return `run_${time}${tail}`;
}

export function nowIso(): string {
  return new Date().toISOString();
}
