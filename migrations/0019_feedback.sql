-- Feedback and regenerate (issue 18): users' ratings of the assistant's
-- replies, and replies answered again (kept, marked superseded).

-- When the reply was answered again; NULL while it is the current one.
ALTER TABLE messages ADD COLUMN superseded_at INTEGER;

-- One rating per reply and user, replaced whole by each flush that
-- carries the reply's ratings. The reason is sealed as in the session log.
CREATE TABLE message_ratings (
  session_id TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  user_id    TEXT NOT NULL,
  rating     TEXT NOT NULL, -- 'up' or 'down'
  reason     TEXT,
  at         INTEGER NOT NULL,
  PRIMARY KEY (session_id, seq, user_id)
) WITHOUT ROWID;
