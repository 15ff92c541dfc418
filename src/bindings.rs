//! Every binding the Worker uses, by the name `wrangler.toml` gives it: the
//! one place these names are spelled in code. Pure. `tests/configuration.rs`
//! checks that each environment of `wrangler.toml` declares each of them.

/// The session objects' namespace (class `SESSION_CLASS`).
pub const SESSIONS: &str = "SESSIONS";
/// The Durable Object class behind `SESSIONS` (`src/session/mod.rs`).
pub const SESSION_CLASS: &str = "ChatSession";
/// The desk object's namespace (class `DESK_CLASS`): the agents' live
/// inbox (`src/inbox.rs`).
pub const DESK: &str = "DESK";
/// The Durable Object class behind `DESK`.
pub const DESK_CLASS: &str = "SupportDesk";
/// The per-user objects' namespace (class `USER_CLASS`): where a user's
/// mentions find them (`src/hub.rs`).
pub const USERS: &str = "USERS";
/// The Durable Object class behind `USERS`.
pub const USER_CLASS: &str = "UserHub";
/// The home D1 shard, and the only one unless `D1_SHARDS` says otherwise.
pub const HOME_D1: &str = "DB";
/// Tickets and the JWKS cache.
pub const KV: &str = "KV";
/// Attachments' sealed bytes (`crate::attachment`), an R2 bucket.
pub const FILES: &str = "FILES";
/// Workers AI, for the `workers_ai` provider.
pub const AI: &str = "AI";
/// Static Assets: the web client, JS library and admin console.
pub const ASSETS: &str = "ASSETS";
/// Cloudflare's Rate Limiting binding for the per-IP HTTP limit.
pub const HTTP_RATE_LIMITER: &str = "HTTP_RATE_LIMITER";
/// The webhook queue's producer (`crate::webhooks`): session objects send
/// events to it; the Worker's queue handler consumes it. Optional: without
/// it no events are produced.
pub const WEBHOOKS: &str = "WEBHOOKS";
/// The dead-letter queue's producer: deliveries that ran out of attempts
/// go there (the consumer sends them), and so do messages the consumer
/// itself failed on `max_retries` times (the queue sends them).
pub const WEBHOOKS_DLQ: &str = "WEBHOOKS_DLQ";
