-- Polls (src/poll.rs): the replicated copy of each session log's polls
-- and votes. Options are sealed like message bodies (AAD field
-- poll.options, bound to the session and message ids); a user's ballot is
-- one row per chosen option.
CREATE TABLE polls (
  session_id TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  options    TEXT NOT NULL,
  multiple   INTEGER NOT NULL,
  anonymous  INTEGER NOT NULL,
  closes_at  INTEGER,
  closed     INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (session_id, seq),
  FOREIGN KEY (session_id, seq) REFERENCES messages (session_id, seq) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE poll_votes (
  session_id TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  user_id    TEXT NOT NULL,
  choice     INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (session_id, seq, user_id, choice),
  FOREIGN KEY (session_id, seq) REFERENCES messages (session_id, seq) ON DELETE CASCADE
) WITHOUT ROWID;
