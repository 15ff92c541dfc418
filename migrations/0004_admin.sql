-- The admin API: list every session with filters and keyset pagination.
-- Each sort key has an index ending in id, the tiebreaker that makes the
-- keyset cursor stable while rows change.

-- Whether a human agent ever took the session over.
ALTER TABLE sessions ADD COLUMN human_assisted INTEGER NOT NULL DEFAULT 0;
-- Tokens the assistant spent (in + out), kept in step by the trigger below
-- so the listing can sort and page on it with an index.
ALTER TABLE sessions ADD COLUMN tokens_total INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER sessions_tokens_total AFTER UPDATE OF tokens_in, tokens_out ON sessions
BEGIN
  UPDATE sessions SET tokens_total = NEW.tokens_in + NEW.tokens_out WHERE id = NEW.id;
END;

UPDATE sessions SET tokens_total = tokens_in + tokens_out;

CREATE INDEX sessions_updated ON sessions (updated_at, id);
CREATE INDEX sessions_created ON sessions (created_at, id);
CREATE INDEX sessions_messages ON sessions (message_count, id);
CREATE INDEX sessions_tokens ON sessions (tokens_total, id);
