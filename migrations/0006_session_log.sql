-- The edge-local session log: each session object's own SQLite storage is
-- the system of record, and D1 is its replicated copy, written by the
-- object's outbox flush with idempotent upserts (src/store/replica.rs).

-- Seqs are assigned by the object now, and the flush writes the session's
-- message count as an absolute value; the trigger only keeps last_seq and
-- updated_at from ever moving back.
DROP TRIGGER messages_seq;
CREATE TRIGGER messages_seq AFTER INSERT ON messages
BEGIN
  UPDATE sessions
     SET last_seq = max(last_seq, NEW.seq),
         updated_at = max(updated_at, NEW.created_at)
   WHERE id = NEW.session_id;
END;

-- Each session object's replication state as of its last successful
-- flush: changes not yet in D1, and when the oldest of them was made.
CREATE TABLE replication (
  session_id TEXT PRIMARY KEY,
  pending    INTEGER NOT NULL,
  oldest_at  INTEGER,
  flushed_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Counters kept by each session object (sockets opened and closed, rate
-- limiting), written as absolute values so a repeated flush cannot count
-- twice. /metrics adds them to the global `metrics` table; erasing a
-- session folds its rows into `metrics` first, so no counter goes back.
CREATE TABLE session_metrics (
  session_id TEXT NOT NULL,
  name       TEXT NOT NULL,
  labels     TEXT NOT NULL,
  value      REAL NOT NULL,
  PRIMARY KEY (session_id, name, labels)
) WITHOUT ROWID;
