-- Assistant profiles (issue 18): named setups of the assistant (provider
-- chain, prompt, temperature, output limit, daily budget, who may choose
-- them), managed through /v1/admin/profiles. Kept in the home shard.

CREATE TABLE assistant_profiles (
  name       TEXT PRIMARY KEY,
  -- JSON (crate::llm::profile::Profile); each provider's api_key sealed
  -- (field profile.api_key, keyed by name and place in the chain).
  spec       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- What each profile spent and reserved per UTC day, all its users
-- together: its daily budget is checked against this (home shard).
CREATE TABLE profile_daily (
  profile        TEXT NOT NULL,
  day            TEXT NOT NULL,
  tokens         INTEGER NOT NULL DEFAULT 0,
  cost_nanos     INTEGER NOT NULL DEFAULT 0,
  reserved       INTEGER NOT NULL DEFAULT 0,
  reserved_nanos INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (profile, day)
) WITHOUT ROWID;

-- The profile a session's assistant runs under (NULL: the default), and
-- the one each assistant reply was written under.
ALTER TABLE sessions ADD COLUMN profile TEXT;
ALTER TABLE messages ADD COLUMN profile TEXT;
