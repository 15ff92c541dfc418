-- New visitors per client address per UTC day (src/auth/visitor.rs,
-- `VISITORS_PER_IP_PER_DAY`), in the home shard only. The address is kept
-- only as a keyed hash; a key's earlier days are deleted as it counts.
CREATE TABLE visitor_quota (
  ip_hash   TEXT NOT NULL,
  day_start INTEGER NOT NULL,
  created   INTEGER NOT NULL,
  PRIMARY KEY (ip_hash, day_start)
) WITHOUT ROWID;
