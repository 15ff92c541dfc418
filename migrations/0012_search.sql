-- The search index (src/search.rs): one row per distinct word of each live
-- message, the word only as a keyed hash (`term`, 32 hex digits), never in
-- the clear. Written by each session's replication flush from the sealed
-- bodies it replicates; an edit replaces a message's rows, a deletion
-- removes them.
CREATE TABLE search_terms (
  term       TEXT NOT NULL,
  session_id TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  PRIMARY KEY (term, session_id, seq),
  FOREIGN KEY (session_id, seq) REFERENCES messages (session_id, seq) ON DELETE CASCADE
) WITHOUT ROWID;

-- A message's rows, for replacing them and for the cascade.
CREATE INDEX search_terms_message ON search_terms (session_id, seq);
