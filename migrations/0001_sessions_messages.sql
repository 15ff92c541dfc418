-- Confab's first schema: chat sessions and their ordered message history.
-- D1 is the system of record; the session Durable Object assigns `seq`.

CREATE TABLE sessions (
  id            TEXT PRIMARY KEY,
  owner_id      TEXT NOT NULL,
  title         TEXT,
  -- 'assistant' (the AI answers) or 'human' (an agent has taken over).
  mode          TEXT NOT NULL DEFAULT 'assistant' CHECK (mode IN ('assistant', 'human')),
  status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'idle', 'closed')),
  last_seq      INTEGER NOT NULL DEFAULT 0,
  message_count INTEGER NOT NULL DEFAULT 0,
  created_at    INTEGER NOT NULL, -- unix milliseconds
  updated_at    INTEGER NOT NULL
);

-- "My sessions, newest activity first" with a keyset cursor on (updated_at, id).
CREATE INDEX sessions_owner_updated ON sessions (owner_id, updated_at DESC, id DESC);

CREATE TABLE messages (
  session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  id          TEXT NOT NULL,
  -- The sender's idempotency key: a retried send finds its original row.
  client_id   TEXT,
  author_id   TEXT NOT NULL,
  author_name TEXT NOT NULL,
  author_kind TEXT NOT NULL CHECK (author_kind IN ('user', 'assistant', 'agent', 'system')),
  body        TEXT NOT NULL,
  reply_to    INTEGER,
  created_at  INTEGER NOT NULL,
  edited_at   INTEGER,
  deleted_at  INTEGER,
  PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;

-- Exactly-once sends: one row per (session, author, client id).
CREATE UNIQUE INDEX messages_client_id ON messages (session_id, author_id, client_id)
  WHERE client_id IS NOT NULL;
CREATE UNIQUE INDEX messages_id ON messages (id);
