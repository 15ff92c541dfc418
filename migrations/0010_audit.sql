-- The admin audit trail (src/audit.rs): every request an admin or the
-- product's backend made on a route of theirs, in the home shard only.
-- Read through GET /v1/admin/audit, newest first, by action or actor.
--
-- `action` is the route's name in the table (admin.claim, …), `target` the
-- session or webhook endpoint its path names, `level` admin or service.
CREATE TABLE audit_log (
  id TEXT PRIMARY KEY,
  at INTEGER NOT NULL,
  actor_id TEXT NOT NULL,
  level TEXT NOT NULL CHECK (level IN ('admin', 'service')),
  action TEXT NOT NULL,
  method TEXT NOT NULL,
  target TEXT,
  status INTEGER NOT NULL,
  request_id TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_actor ON audit_log (actor_id, at DESC, id DESC);
CREATE INDEX audit_log_action ON audit_log (action, at DESC, id DESC);
