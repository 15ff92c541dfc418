-- Who blocked whom (src/moderation.rs), in the home shard only. A user's
-- blocks apply in every session they own or belong to: the Worker hands
-- them to those sessions' objects, which hide the blocked users'
-- messages from the blocker, live and in history.
CREATE TABLE blocks (
  blocker_id TEXT NOT NULL,
  blocked_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (blocker_id, blocked_id)
);
