-- Deployment-wide mutes and bans (src/moderation.rs), in the home shard
-- only. Each is also handed to the objects of the user's sessions, which
-- enforce it as they do a session's own; new sessions of the user and
-- sessions they are added to get it then. `until`: unix ms, NULL for none.
CREATE TABLE sanctions (
  user_id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('mute', 'ban')),
  until INTEGER,
  reason TEXT NOT NULL,
  by_id TEXT NOT NULL,
  by_name TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (user_id, kind)
);
CREATE INDEX sanctions_at ON sanctions (at DESC);
