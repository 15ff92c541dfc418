-- Server identities cannot be taken: exactly-once sends are keyed by the
-- author's kind as well as id, so a user whose token `sub` is "assistant"
-- shares no idempotency key (or authorship) with the assistant's replies.
DROP INDEX messages_client_id;
CREATE UNIQUE INDEX messages_client_id ON messages (session_id, client_id, author_kind, author_id)
  WHERE client_id IS NOT NULL;

-- The daily assistant budget is reserved, not just checked: a turn adds its
-- estimate here (one conditional statement) before it starts, and its
-- commit swaps the estimate for the tokens actually spent. Concurrent
-- turns therefore see each other and cannot overshoot the budget by more
-- than one reply's estimate.
ALTER TABLE usage_daily ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0;

-- Sessions a user created today, counted on every create (the daily cap).
CREATE INDEX sessions_owner_created ON sessions (owner_id, created_at);
