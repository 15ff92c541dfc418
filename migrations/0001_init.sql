-- Confab's schema: chat sessions, members, ordered message history,
-- reactions, edit history and read positions. D1 is the system of record.
-- Times are unix milliseconds.

CREATE TABLE sessions (
  id            TEXT PRIMARY KEY,
  owner_id      TEXT NOT NULL,
  title         TEXT,
  contact_name  TEXT,
  contact_email TEXT,
  -- 'assistant' (the AI answers) or 'human' (an agent has taken over).
  mode          TEXT NOT NULL DEFAULT 'assistant' CHECK (mode IN ('assistant', 'human')),
  status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'idle', 'closed')),
  -- Highest seq assigned; bumped by the messages_seq trigger in the same
  -- transaction as the insert, so seqs are gap-free and strictly increasing.
  last_seq      INTEGER NOT NULL DEFAULT 0,
  message_count INTEGER NOT NULL DEFAULT 0,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);

-- "My sessions, newest activity first", keyset cursor on (updated_at, id).
CREATE INDEX sessions_owner_updated ON sessions (owner_id, updated_at DESC, id DESC);

CREATE TABLE session_members (
  session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  user_id    TEXT NOT NULL,
  added_at   INTEGER NOT NULL,
  PRIMARY KEY (session_id, user_id)
) WITHOUT ROWID;

CREATE INDEX session_members_user ON session_members (user_id, session_id);

CREATE TABLE messages (
  session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  seq         INTEGER NOT NULL,
  id          TEXT NOT NULL,
  -- The sender's idempotency key: a retried send finds its original row.
  client_id   TEXT,
  author_id   TEXT NOT NULL,
  author_name TEXT NOT NULL,
  author_kind TEXT NOT NULL CHECK (author_kind IN ('user', 'assistant', 'agent', 'system')),
  -- Empty once deleted (the row stays as a tombstone).
  body        TEXT NOT NULL,
  reply_to    INTEGER,
  created_at  INTEGER NOT NULL,
  edited_at   INTEGER,
  deleted_at  INTEGER,
  PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;

-- Exactly-once sends: one row per (session, client id, author).
CREATE UNIQUE INDEX messages_client_id ON messages (session_id, client_id, author_id)
  WHERE client_id IS NOT NULL;
CREATE UNIQUE INDEX messages_id ON messages (id);

CREATE TRIGGER messages_seq AFTER INSERT ON messages
BEGIN
  UPDATE sessions
     SET last_seq = NEW.seq,
         message_count = message_count + 1,
         updated_at = NEW.created_at
   WHERE id = NEW.session_id;
END;

-- Previous texts of edited messages, oldest first (by id).
CREATE TABLE message_edits (
  id         INTEGER PRIMARY KEY,
  session_id TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  edited_at  INTEGER NOT NULL,
  body       TEXT NOT NULL,
  FOREIGN KEY (session_id, seq) REFERENCES messages (session_id, seq) ON DELETE CASCADE
);

CREATE INDEX message_edits_message ON message_edits (session_id, seq);

CREATE TABLE reactions (
  session_id TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  user_id    TEXT NOT NULL,
  emoji      TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (session_id, seq, emoji, user_id),
  FOREIGN KEY (session_id, seq) REFERENCES messages (session_id, seq) ON DELETE CASCADE
) WITHOUT ROWID;

-- Each user's read position per session.
CREATE TABLE read_positions (
  session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  user_id    TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (session_id, user_id)
) WITHOUT ROWID;
