-- Admin sessions ended on the server at sign-out. A session cookie is signed, not stored, so a copy of it would
-- stay valid until its expiry; a row here refuses it. The key is a SHA-256 digest of the session value (never the
-- value itself); a row is useless once the session would have expired anyway, and is removed then.
CREATE TABLE admin_session_revocations (
  session_digest  TEXT PRIMARY KEY,
  expires_at      INTEGER NOT NULL      -- unix seconds: the session's own expiry
);
