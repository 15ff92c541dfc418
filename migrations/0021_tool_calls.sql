-- The assistant's function calls, replicated from each session's log
-- (issue 18): what each call asked for and what it came to. `arguments`
-- and `result` are sealed as in the session log (AAD id `reply/call_id`).
-- Upserted whole by each flush that carries the call; erased with the
-- session.
CREATE TABLE tool_calls (
  session_id TEXT NOT NULL,
  reply      TEXT NOT NULL, -- the id of the assistant reply that asked
  call_id    TEXT NOT NULL,
  name       TEXT NOT NULL,
  arguments  TEXT NOT NULL,
  result     TEXT,
  is_error   INTEGER,
  decision   TEXT, -- 'approved', 'rejected' or 'timed_out' for calls that needed one
  decided_by TEXT,
  at         INTEGER NOT NULL,
  done_at    INTEGER,
  PRIMARY KEY (session_id, reply, call_id)
) WITHOUT ROWID;
