-- The support desk (src/desk.rs): a session's status is now its place in
-- the desk's lifecycle (open, waiting, assigned, resolved, closed), written
-- by the session object's flush like the rest of the row.
--
-- `status` had a CHECK allowing 'active', 'idle' and 'closed', which no
-- code ever changed from 'active'. SQLite cannot alter a CHECK, and
-- rebuilding `sessions` would cascade-delete every message through the
-- foreign keys (D1 runs ON DELETE CASCADE even with deferred foreign
-- keys), so the column is replaced in place: a new column with the new
-- CHECK takes the old one's values, the old one is dropped, and the new
-- one takes its name. The index on it goes and comes back around that.
ALTER TABLE sessions ADD COLUMN desk_status TEXT NOT NULL DEFAULT 'open'
  CHECK (desk_status IN ('open', 'waiting', 'assigned', 'resolved', 'closed'));
UPDATE sessions SET desk_status = CASE
  WHEN status = 'closed' THEN 'closed'
  WHEN mode = 'human' THEN 'assigned'
  ELSE 'open' END;
DROP INDEX sessions_mode_status;
ALTER TABLE sessions DROP COLUMN status;
ALTER TABLE sessions RENAME COLUMN desk_status TO status;
CREATE INDEX sessions_mode_status ON sessions (mode, status);

-- Who has the session, and the inbox's times (unix ms). waiting_since is 0
-- for a session that never waited, so it can key the listing's pages.
ALTER TABLE sessions ADD COLUMN assignee_id TEXT;
ALTER TABLE sessions ADD COLUMN assignee_name TEXT;
ALTER TABLE sessions ADD COLUMN waiting_since INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN first_agent_reply_at INTEGER;
ALTER TABLE sessions ADD COLUMN resolved_at INTEGER;
-- The queue, oldest wait first: `?status=waiting&sort=waiting&order=asc`.
CREATE INDEX sessions_waiting ON sessions (status, waiting_since, id);
CREATE INDEX sessions_waiting_any ON sessions (waiting_since, id);
CREATE INDEX sessions_assignee ON sessions (assignee_id, updated_at);
