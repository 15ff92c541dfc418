-- Server identities cannot be taken: exactly-once sends are keyed by the
-- author's kind as well as id, so a user whose token `sub` is "assistant"
-- shares no idempotency key (or authorship) with the assistant's replies.
DROP INDEX messages_client_id;
CREATE UNIQUE INDEX messages_client_id ON messages (session_id, client_id, author_kind, author_id)
  WHERE client_id IS NOT NULL;
