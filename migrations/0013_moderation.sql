-- The moderation queue (src/moderation.rs): members' reports of messages,
-- in the home shard only, one per message and reporter. A report stays
-- 'open' until a moderator removes the message ('removed') or dismisses
-- the reports on it ('dismissed'). Read through GET /v1/admin/reports,
-- grouped by message, oldest first.
CREATE TABLE reports (
  id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  message_id TEXT NOT NULL,
  author_id TEXT NOT NULL,
  reporter_id TEXT NOT NULL,
  reason TEXT NOT NULL CHECK (reason IN ('spam', 'harassment', 'abuse', 'other')),
  status TEXT NOT NULL CHECK (status IN ('open', 'removed', 'dismissed')),
  created_at INTEGER NOT NULL,
  resolved_at INTEGER,
  resolved_by TEXT
);
CREATE UNIQUE INDEX reports_once ON reports (session_id, seq, reporter_id);
CREATE INDEX reports_open ON reports (status, session_id, seq);
