//! Every integer variable, one line each: name, default, min, max. The
//! parser checks them all first ([`Int::read`]); [`super::table`] lists them
//! with the other variables for the README.

use super::{invalid, ConfigError};

/// An integer variable: its name, default and bounds, defined once. The
/// parser reads it with [`Int::read`]; `tests/configuration.rs` checks the
/// README's table and `wrangler.toml` against [`ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int {
    pub name: &'static str,
    pub default: usize,
    pub min: usize,
    pub max: usize,
}

impl Int {
    /// Its value: the default when unset (or empty), else an integer in
    /// [min, max].
    pub fn read(&self, get: &dyn Fn(&str) -> Option<String>) -> Result<usize, ConfigError> {
        let Some(raw) = get(self.name) else {
            return Ok(self.default);
        };
        match raw.trim().parse::<usize>() {
            Ok(v) if (self.min..=self.max).contains(&v) => Ok(v),
            _ => Err(invalid(
                self.name,
                format!("an integer from {} to {}", self.min, self.max),
            )),
        }
    }
}

const fn int(name: &'static str, default: usize, min: usize, max: usize) -> Int {
    Int { name, default, min, max }
}

pub const HSTS_MAX_AGE: Int = int("HSTS_MAX_AGE", 0, 0, 63_072_000);
pub const WS_TICKET_TTL_SECONDS: Int = int("WS_TICKET_TTL_SECONDS", 30, 1, 60);
pub const MAX_SOCKETS_PER_USER: Int = int("MAX_SOCKETS_PER_USER", 16, 1, 32_768);
pub const MAX_FRAME_BYTES: Int = int("MAX_FRAME_BYTES", 64 * 1024, 256, 1024 * 1024);
pub const MAX_MESSAGE_CHARS: Int = int("MAX_MESSAGE_CHARS", 4000, 1, 100_000);
pub const MAX_SOCKETS_PER_SESSION: Int = int("MAX_SOCKETS_PER_SESSION", 256, 1, 32_768);
pub const TYPING_THROTTLE_MS: Int = int("TYPING_THROTTLE_MS", 2000, 0, 60_000);
pub const RATE_MESSAGES_PER_MINUTE: Int = int("RATE_MESSAGES_PER_MINUTE", 60, 0, 100_000);
pub const RATE_MESSAGES_BURST: Int = int("RATE_MESSAGES_BURST", 20, 1, 100_000);
pub const RATE_ACTIONS_PER_MINUTE: Int = int("RATE_ACTIONS_PER_MINUTE", 120, 0, 100_000);
pub const RATE_ACTIONS_BURST: Int = int("RATE_ACTIONS_BURST", 30, 1, 100_000);
pub const MAX_REACTIONS_PER_USER: Int = int("MAX_REACTIONS_PER_USER", 8, 1, 100);
pub const MAX_EDIT_HISTORY: Int = int("MAX_EDIT_HISTORY", 20, 0, 1000);
pub const REPLICATION_INTERVAL_MS: Int = int("REPLICATION_INTERVAL_MS", 1000, 50, 60_000);
pub const REPLICATION_LAG_READY_SECONDS: Int = int("REPLICATION_LAG_READY_SECONDS", 30, 1, 86_400);
pub const READYZ_TIMEOUT_MS: Int = int("READYZ_TIMEOUT_MS", 2000, 50, 30_000);
pub const AUDIT_RETENTION_DAYS: Int = int("AUDIT_RETENTION_DAYS", 400, 0, 3650);
pub const MAX_SESSIONS_PER_USER_PER_DAY: Int = int("MAX_SESSIONS_PER_USER_PER_DAY", 100, 1, 1_000_000);
pub const MAX_TICKETS_PER_USER: Int = int("MAX_TICKETS_PER_USER", 20, 1, 1000);
// Visitors (`crate::auth::visitor`).
pub const VISITORS_PER_IP_PER_DAY: Int = int("VISITORS_PER_IP_PER_DAY", 20, 1, 100_000);
pub const VISITOR_TOKEN_TTL_SECONDS: Int = int("VISITOR_TOKEN_TTL_SECONDS", 3600, 60, 86_400);
pub const VISITOR_REMEMBER_DAYS: Int = int("VISITOR_REMEMBER_DAYS", 30, 1, 365);
pub const MAX_MEMBERS_PER_SESSION: Int = int("MAX_MEMBERS_PER_SESSION", 100, 1, 10_000);
// The support desk (`crate::desk`).
pub const ESCALATION_TIMEOUT_SECONDS: Int = int("ESCALATION_TIMEOUT_SECONDS", 300, 1, 86_400);
pub const SESSION_IDLE_CLOSE_MINUTES: Int = int("SESSION_IDLE_CLOSE_MINUTES", 10_080, 0, 525_600);
// Webhooks (`crate::webhooks`). Queues delay a message at most 12 hours.
pub const WEBHOOK_RETRY_BASE_SECONDS: Int = int("WEBHOOK_RETRY_BASE_SECONDS", 5, 1, 3600);
pub const WEBHOOK_RETRY_MAX_SECONDS: Int = int("WEBHOOK_RETRY_MAX_SECONDS", 3600, 1, 43_200);
pub const WEBHOOK_MAX_ATTEMPTS: Int = int("WEBHOOK_MAX_ATTEMPTS", 20, 1, 100);
pub const WEBHOOK_TIMEOUT_MS: Int = int("WEBHOOK_TIMEOUT_MS", 10_000, 500, 30_000);
// Link previews (`crate::preview`).
pub const LINK_PREVIEW_TIMEOUT_MS: Int = int("LINK_PREVIEW_TIMEOUT_MS", 3000, 100, 10_000);
pub const LINK_PREVIEW_MAX_BYTES: Int = int("LINK_PREVIEW_MAX_BYTES", 262_144, 4096, 2_097_152);
// Attachments (`crate::attachment`): a file is held in memory to be sealed.
pub const ATTACHMENT_MAX_BYTES: Int = int("ATTACHMENT_MAX_BYTES", 10_485_760, 1024, 26_214_400);
// Tokens (`auth::config`).
pub const JWT_JWKS_CACHE_SECONDS: Int = int("JWT_JWKS_CACHE_SECONDS", 600, 1, 86_400);
pub const JWT_JWKS_REFETCH_MIN_SECONDS: Int = int("JWT_JWKS_REFETCH_MIN_SECONDS", 60, 1, 3600);
pub const JWT_LEEWAY_SECONDS: Int = int("JWT_LEEWAY_SECONDS", 30, 0, 600);
// The assistant (`llm::config`).
pub const LLM_MAX_OUTPUT_TOKENS: Int = int("LLM_MAX_OUTPUT_TOKENS", 512, 1, 32_768);
pub const PROMPT_TOKEN_BUDGET: Int = int("PROMPT_TOKEN_BUDGET", 4000, 100, 1_000_000);
pub const LLM_CONNECT_TIMEOUT_MS: Int = int("LLM_CONNECT_TIMEOUT_MS", 10_000, 100, 120_000);
pub const LLM_FIRST_TOKEN_TIMEOUT_MS: Int = int("LLM_FIRST_TOKEN_TIMEOUT_MS", 30_000, 100, 300_000);
pub const LLM_IDLE_TIMEOUT_MS: Int = int("LLM_IDLE_TIMEOUT_MS", 20_000, 100, 300_000);
pub const LLM_MAX_RETRIES: Int = int("LLM_MAX_RETRIES", 2, 0, 10);
pub const LLM_BACKOFF_BASE_MS: Int = int("LLM_BACKOFF_BASE_MS", 250, 0, 60_000);
pub const LLM_BACKOFF_CAP_MS: Int = int("LLM_BACKOFF_CAP_MS", 4000, 0, 120_000);
pub const DAILY_TOKEN_BUDGET: Int = int("DAILY_TOKEN_BUDGET", 200_000, 0, usize::MAX);
pub const TOOL_APPROVAL_TIMEOUT_MS: Int = int("TOOL_APPROVAL_TIMEOUT_MS", 120_000, 1_000, 600_000);

pub const ALL: &[Int] = &[
    HSTS_MAX_AGE, WS_TICKET_TTL_SECONDS, MAX_SOCKETS_PER_USER, MAX_FRAME_BYTES,
    MAX_MESSAGE_CHARS, MAX_SOCKETS_PER_SESSION, TYPING_THROTTLE_MS,
    RATE_MESSAGES_PER_MINUTE, RATE_MESSAGES_BURST, RATE_ACTIONS_PER_MINUTE,
    RATE_ACTIONS_BURST, MAX_REACTIONS_PER_USER, MAX_EDIT_HISTORY, REPLICATION_INTERVAL_MS,
    REPLICATION_LAG_READY_SECONDS, READYZ_TIMEOUT_MS, AUDIT_RETENTION_DAYS, MAX_SESSIONS_PER_USER_PER_DAY, MAX_TICKETS_PER_USER,
    MAX_MEMBERS_PER_SESSION, VISITORS_PER_IP_PER_DAY, VISITOR_TOKEN_TTL_SECONDS,
    VISITOR_REMEMBER_DAYS, ESCALATION_TIMEOUT_SECONDS, SESSION_IDLE_CLOSE_MINUTES,
    WEBHOOK_RETRY_BASE_SECONDS, WEBHOOK_RETRY_MAX_SECONDS, WEBHOOK_MAX_ATTEMPTS, WEBHOOK_TIMEOUT_MS,
    LINK_PREVIEW_TIMEOUT_MS, LINK_PREVIEW_MAX_BYTES, ATTACHMENT_MAX_BYTES,
    JWT_JWKS_CACHE_SECONDS, JWT_JWKS_REFETCH_MIN_SECONDS,
    JWT_LEEWAY_SECONDS, LLM_MAX_OUTPUT_TOKENS, PROMPT_TOKEN_BUDGET, LLM_CONNECT_TIMEOUT_MS,
    LLM_FIRST_TOKEN_TIMEOUT_MS, LLM_IDLE_TIMEOUT_MS, LLM_MAX_RETRIES, LLM_BACKOFF_BASE_MS,
    LLM_BACKOFF_CAP_MS, DAILY_TOKEN_BUDGET, TOOL_APPROVAL_TIMEOUT_MS,
];
