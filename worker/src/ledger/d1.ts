/** What every ledger module needs from D1 beyond its API. */

/** A UNIQUE constraint refused the write (a concurrent request got there first). */
export function isUniqueViolation(err: unknown): boolean {
  return err instanceof Error && /UNIQUE constraint failed|SQLITE_CONSTRAINT/i.test(err.message);
}
