-- The AI assistant: what each assistant message cost, and running totals
-- per session and per user per UTC day (the daily token budget).

ALTER TABLE messages ADD COLUMN provider TEXT;
ALTER TABLE messages ADD COLUMN model TEXT;
ALTER TABLE messages ADD COLUMN tokens_in INTEGER;
ALTER TABLE messages ADD COLUMN tokens_out INTEGER;
ALTER TABLE messages ADD COLUMN ttft_ms INTEGER;
ALTER TABLE messages ADD COLUMN latency_ms INTEGER;
-- The provider's reason ('stop', 'length', 'end_turn', ...) or Confab's
-- own for an incomplete reply: 'stopped' (a member stopped it) or 'error'.
ALTER TABLE messages ADD COLUMN finish_reason TEXT;
ALTER TABLE messages ADD COLUMN incomplete INTEGER NOT NULL DEFAULT 0;

ALTER TABLE sessions ADD COLUMN tokens_in INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN tokens_out INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN turns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN latency_ms_total INTEGER NOT NULL DEFAULT 0;

CREATE TABLE usage_daily (
  user_id    TEXT NOT NULL,
  day        TEXT NOT NULL, -- YYYY-MM-DD, UTC
  tokens_in  INTEGER NOT NULL DEFAULT 0,
  tokens_out INTEGER NOT NULL DEFAULT 0,
  turns      INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, day)
) WITHOUT ROWID;
