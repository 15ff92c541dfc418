-- Metrics that are right whichever isolate serves the scrape: counters
-- kept in D1, bumped by triggers in the same transaction as the rows they
-- count (so they can never drift from the data), or by the session object
-- for events that store no row. Gauges (sessions by mode and status) are
-- computed from D1 at scrape time. See docs/api.md, GET /metrics.

CREATE TABLE metrics (
  name   TEXT NOT NULL,
  labels TEXT NOT NULL, -- Prometheus label set, canonical order, values escaped
  value  REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (name, labels)
) WITHOUT ROWID;

CREATE INDEX sessions_mode_status ON sessions (mode, status);

-- Histogram bucket bounds (seconds, and the same in ms for comparisons);
-- keep in step with BUCKETS in src/metrics.rs.
CREATE TABLE metric_buckets (
  le TEXT PRIMARY KEY,
  ms INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO metric_buckets (le, ms) VALUES ('0.1', 100);
INSERT INTO metric_buckets (le, ms) VALUES ('0.25', 250);
INSERT INTO metric_buckets (le, ms) VALUES ('0.5', 500);
INSERT INTO metric_buckets (le, ms) VALUES ('1', 1000);
INSERT INTO metric_buckets (le, ms) VALUES ('2.5', 2500);
INSERT INTO metric_buckets (le, ms) VALUES ('5', 5000);
INSERT INTO metric_buckets (le, ms) VALUES ('10', 10000);
INSERT INTO metric_buckets (le, ms) VALUES ('30', 30000);
INSERT INTO metric_buckets (le, ms) VALUES ('60', 60000);
INSERT INTO metric_buckets (le, ms) VALUES ('+Inf', 9000000000000000000);

CREATE TRIGGER metrics_messages AFTER INSERT ON messages
BEGIN
  INSERT INTO metrics (name, labels, value) VALUES ('confab_messages_total', 'kind="' || NEW.author_kind || '"', 1)
  ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value;
END;

CREATE TRIGGER metrics_turns AFTER INSERT ON messages WHEN NEW.provider IS NOT NULL
BEGIN
  INSERT INTO metrics (name, labels, value)
  VALUES ('confab_llm_turns_total',
          'provider="' || NEW.provider || '",model="' || replace(replace(NEW.model, '\', '\\'), '"', '\"') || '"' || ',outcome="' || (CASE WHEN NEW.incomplete THEN NEW.finish_reason ELSE 'ok' END) || '"', 1)
  ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value;
  INSERT INTO metrics (name, labels, value) VALUES ('confab_llm_tokens_total', 'provider="' || NEW.provider || '",model="' || replace(replace(NEW.model, '\', '\\'), '"', '\"') || '"' || ',direction="in"', NEW.tokens_in)
  ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value;
  INSERT INTO metrics (name, labels, value) VALUES ('confab_llm_tokens_total', 'provider="' || NEW.provider || '",model="' || replace(replace(NEW.model, '\', '\\'), '"', '\"') || '"' || ',direction="out"', NEW.tokens_out)
  ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value;
  INSERT INTO metrics (name, labels, value)
    SELECT 'confab_llm_ttft_seconds_bucket', 'provider="' || NEW.provider || '",model="' || replace(replace(NEW.model, '\', '\\'), '"', '\"') || '"' || ',le="' || b.le || '"', 1
      FROM metric_buckets b
     WHERE NEW.ttft_ms <= b.ms
  ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value;
  INSERT INTO metrics (name, labels, value) VALUES ('confab_llm_ttft_seconds_sum', 'provider="' || NEW.provider || '",model="' || replace(replace(NEW.model, '\', '\\'), '"', '\"') || '"', NEW.ttft_ms / 1000.0)
  ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value;
  INSERT INTO metrics (name, labels, value) VALUES ('confab_llm_ttft_seconds_count', 'provider="' || NEW.provider || '",model="' || replace(replace(NEW.model, '\', '\\'), '"', '\"') || '"', 1)
  ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value;
  INSERT INTO metrics (name, labels, value)
    SELECT 'confab_llm_turn_duration_seconds_bucket', 'provider="' || NEW.provider || '",model="' || replace(replace(NEW.model, '\', '\\'), '"', '\"') || '"' || ',le="' || b.le || '"', 1
      FROM metric_buckets b
     WHERE NEW.latency_ms <= b.ms
  ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value;
  INSERT INTO metrics (name, labels, value) VALUES ('confab_llm_turn_duration_seconds_sum', 'provider="' || NEW.provider || '",model="' || replace(replace(NEW.model, '\', '\\'), '"', '\"') || '"', NEW.latency_ms / 1000.0)
  ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value;
  INSERT INTO metrics (name, labels, value) VALUES ('confab_llm_turn_duration_seconds_count', 'provider="' || NEW.provider || '",model="' || replace(replace(NEW.model, '\', '\\'), '"', '\"') || '"', 1)
  ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value;
END;
