-- The pre-send filter's decisions (src/moderation/filter.rs), in the home
-- shard only: every message it flagged (stored, and reported to the
-- moderation queue by reporter '') or blocked (never stored). Written by
-- the session objects' flush; read through GET /v1/admin/filter.
CREATE TABLE filter_log (
  id TEXT PRIMARY KEY,
  at INTEGER NOT NULL,
  session_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('words', 'ai')),
  action TEXT NOT NULL CHECK (action IN ('flagged', 'blocked')),
  detail TEXT NOT NULL,
  seq INTEGER
);
CREATE INDEX filter_log_at ON filter_log (at DESC, id DESC);
CREATE INDEX filter_log_session ON filter_log (session_id);
