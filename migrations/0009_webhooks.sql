-- Webhooks (src/webhooks/): the endpoints the product registered, and the
-- log of every delivery attempt. Both live in the home shard only.
--
-- `secret` is the endpoint's whsec_ signing secret, sealed with the
-- deployment's keyring (AAD: the endpoint id); the API shows it once, when
-- the endpoint is created or its secret rotated. `events` is `*` or a
-- comma-separated list of event types.
CREATE TABLE webhook_endpoints (
  id TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  events TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  secret TEXT NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

-- One row per attempt. `error` is a stable code (timeout, network_error,
-- secret_unreadable), never a receiver's response body. `next_retry_at` is
-- when a failed attempt is tried again.
CREATE TABLE webhook_deliveries (
  endpoint_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  session_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'failed', 'dead')),
  http_status INTEGER,
  latency_ms INTEGER,
  error TEXT,
  next_retry_at INTEGER,
  at INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, at DESC);
CREATE INDEX webhook_deliveries_at ON webhook_deliveries (at);
