-- D1 shards (src/shards.rs): sessions' rows are spread over several D1
-- databases, each with this same schema. Per-user figures that must hold
-- exactly across shards live in the home shard (the first in D1_SHARDS):
-- the daily token budget (usage_daily, as before) and the daily session
-- cap (below). The tables exist in every shard and stay empty elsewhere.

-- Sessions created per owner per UTC day (day_start: unix ms of 00:00),
-- counted where the cap is checked, in one conditional upsert.
CREATE TABLE session_quota (
  owner_id  TEXT NOT NULL,
  day_start INTEGER NOT NULL,
  created   INTEGER NOT NULL,
  PRIMARY KEY (owner_id, day_start)
) WITHOUT ROWID;

-- Today's counts so far, so the cap holds across this migration.
INSERT INTO session_quota (owner_id, day_start, created)
  SELECT owner_id, created_at - created_at % 86400000, count(*)
    FROM sessions
   WHERE created_at >= (CAST(strftime('%s', 'now') AS INTEGER) - 86400) * 1000
   GROUP BY owner_id, created_at - created_at % 86400000;

-- Assistant replies whose usage was added to usage_daily, so a repeated
-- flush (from any shard's session) settles each reply once.
CREATE TABLE usage_settled (
  session_id TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  settled_at INTEGER NOT NULL,
  PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
