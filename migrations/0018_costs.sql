-- The cost ledger (issue 18): what each assistant reply cost in money, at
-- the prices of LLM_PRICES, and running totals per session, per user per
-- UTC day (budgets in money) and per day, user, profile and model (the
-- admin usage report). Amounts are nano-dollars, so sums are exact.

ALTER TABLE messages ADD COLUMN tokens_cached INTEGER;
-- NULL: the reply's model had no price (unknown, not free).
ALTER TABLE messages ADD COLUMN cost_nanos INTEGER;

ALTER TABLE sessions ADD COLUMN cost_nanos INTEGER NOT NULL DEFAULT 0;

ALTER TABLE usage_daily ADD COLUMN cost_nanos INTEGER NOT NULL DEFAULT 0;
-- What running turns reserved against DAILY_COST_BUDGET_USD.
ALTER TABLE usage_daily ADD COLUMN reserved_nanos INTEGER NOT NULL DEFAULT 0;

-- Kept in the home shard, settled once per reply with usage_daily.
CREATE TABLE usage_ledger (
  day           TEXT NOT NULL, -- YYYY-MM-DD, UTC
  user_id       TEXT NOT NULL,
  profile       TEXT NOT NULL,
  provider      TEXT NOT NULL,
  model         TEXT NOT NULL,
  turns         INTEGER NOT NULL DEFAULT 0,
  tokens_in     INTEGER NOT NULL DEFAULT 0,
  tokens_out    INTEGER NOT NULL DEFAULT 0,
  tokens_cached INTEGER NOT NULL DEFAULT 0,
  cost_nanos    INTEGER NOT NULL DEFAULT 0,
  -- Turns whose model had no price (their cost is not in cost_nanos).
  unpriced      INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (day, user_id, profile, provider, model)
) WITHOUT ROWID;
CREATE INDEX usage_ledger_user ON usage_ledger (user_id, day);

CREATE TRIGGER metrics_cost AFTER INSERT ON messages WHEN NEW.cost_nanos IS NOT NULL
BEGIN
  INSERT INTO metrics (name, labels, value) VALUES ('confab_llm_cost_total', 'provider="' || NEW.provider || '",model="' || replace(replace(NEW.model, '\', '\\'), '"', '\"') || '"', NEW.cost_nanos / 1e9)
  ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value;
END;
