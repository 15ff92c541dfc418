//! Configuration, read once per isolate from vars and secrets.
//!
//! Pure: the runtime hands in a lookup function, so validation is tested
//! natively. Every tunable has its default here and nowhere else: the
//! integers (most of them) in one table, [`ints`], with their bounds; the
//! rest in [`defaults`] and the parsers of their own types. [`table`] lists
//! every variable (type, default, secret or not, meaning) for the README,
//! and `tests/configuration.rs` holds this parser to it. A bad value names
//! the variable and what was expected.

use crate::crypto::Keyring;
use std::fmt;

/// Which set of behaviours is switched on. Development unlocks conveniences
/// that must never exist in production (for example minting tokens).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// Log verbosity, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// A secret value. Its `Debug` shows only that it is set, never the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("set")
    }
}

#[derive(Clone, PartialEq)]
pub struct Config {
    pub environment: Environment,
    pub log_level: LogLevel,
    /// Token keys and claim rules (`JWT_*`).
    pub jwt: crate::auth::config::JwtConfig,
    /// Keys the pseudonymous user ids in logs.
    pub pseudonym_key: Secret,
    /// The deployment's own origins (`PUBLIC_ORIGINS`). When set, a request
    /// for any other Host is refused (421 `host_not_allowed`): a
    /// DNS-rebinding page cannot pass as the deployment. When empty, the
    /// request URL's origin is the own origin, which on Cloudflare is a
    /// hostname routed to this Worker.
    pub public_origins: Vec<String>,
    /// Browser origins allowed to call the API and open sockets.
    pub origins: crate::origins::Origins,
    /// `Strict-Transport-Security` max-age in seconds; 0 sends none.
    pub hsts_max_age: u64,
    /// Lifetime of a WebSocket ticket, in seconds.
    pub ticket_ttl_seconds: u64,
    /// Sockets one user may hold open in one session.
    pub max_sockets_per_user: usize,
    /// The period of the `HTTP_RATE_LIMITER` binding (10 or 60 s), sent as
    /// `Retry-After` when it refuses a request.
    pub http_rate_period_s: u64,
    /// Role (in the token's `roles`) that makes a caller an admin.
    pub admin_role: String,
    /// Bearer token that may read `/metrics` (besides admins); optional.
    pub metrics_token: Option<Secret>,
    /// The product backend's static credential for `/v1/service/*`.
    pub service_token: Option<Secret>,
    /// Role (in the token's `roles`) that passes `/v1/service/*`.
    pub service_role: String,
    /// Keys for encryption at rest; required in every environment.
    pub keyring: Keyring,
    /// Largest WebSocket frame accepted, in bytes; larger closes with 1009.
    pub max_frame_bytes: usize,
    /// Longest message text, in characters.
    pub max_message_chars: usize,
    /// Live sockets one session accepts before refusing new ones.
    pub max_sockets_per_session: usize,
    /// Least time between two `typing` frames relayed for one socket.
    pub typing_throttle_ms: u64,
    /// Messages one user may send per minute in a session (0: no limit),
    /// and how many may come in a burst.
    pub rate_messages_per_minute: u32,
    pub rate_messages_burst: u32,
    /// The per-user budget of every other mutating frame (edit, delete,
    /// react, read); 0 per minute means no limit.
    pub rate_actions_per_minute: u32,
    pub rate_actions_burst: u32,
    /// Distinct reactions one user may put on one message.
    pub max_reactions_per_user: u32,
    /// Earlier texts kept per edited message; older ones are dropped.
    pub max_edit_history: u32,
    /// The longest a change waits in a session's outbox before the flush
    /// that writes it to D1.
    pub replication_interval_ms: u32,
    /// Replication lag past which `/readyz` reports `replication` degraded.
    pub replication_lag_ready_s: u32,
    /// How long each `/readyz` dependency check may take.
    pub readyz_timeout_ms: u32,
    /// Days the audit trail keeps an entry; 0 keeps every entry.
    pub audit_retention_days: u32,
    /// Sessions one user may create per UTC day.
    pub max_sessions_per_user_per_day: u32,
    /// The D1 databases that hold sessions' records (`D1_SHARDS`).
    pub shards: crate::shards::Shards,
    /// Unspent, unexpired tickets one user may hold at once.
    pub max_tickets_per_user: u32,
    /// Members (besides the owner) one session may have.
    pub max_members_per_session: u32,
    /// The support desk's timers and policy.
    pub desk: Desk,
    /// Webhook delivery (`crate::webhooks`).
    pub webhooks: Webhooks,
    /// Link previews (`crate::preview`); None when `LINK_PREVIEWS` is off.
    pub previews: Option<Previews>,
    /// The search index's key (`crate::search`); None when
    /// `SEARCH_KEY_ID` is unset.
    pub search: Option<crate::search::IndexKey>,
    /// What uploads may be (`crate::attachment`).
    pub attachments: crate::attachment::Policy,
    /// Anonymous visitors (`crate::auth::visitor`); None unless
    /// `ALLOW_VISITORS=on`.
    pub visitors: Option<crate::auth::visitor::Visitors>,
    /// The pre-send filter (`crate::moderation::filter`); None when off.
    pub filter: Option<crate::moderation::filter::Filter>,
    /// The AI assistant; None when `LLM_PROVIDERS` is unset.
    pub assistant: Option<crate::llm::config::Assistant>,
}

/// Link previews: how long a fetch may take, how much of a page is read,
/// and the origins exempt from the address rules (development only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Previews {
    pub timeout_ms: u32,
    pub max_bytes: u32,
    pub allow: Vec<String>,
}

/// The support desk's settings (`crate::desk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desk {
    /// How long a wait lasts before the user is told nobody is free.
    pub escalation_timeout_ms: i64,
    /// Inactivity after which a session closes; 0: never.
    pub idle_close_ms: i64,
    /// Whether the assistant answers while a session waits.
    pub assistant_while_waiting: bool,
}

/// Webhook delivery settings (`crate::webhooks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Webhooks {
    /// The wait before the first retry; each later one doubles it.
    pub retry_base_s: u32,
    /// The longest wait between two attempts.
    pub retry_max_s: u32,
    /// Attempts of one delivery before it goes to the dead-letter queue.
    pub max_attempts: u32,
    /// How long one attempt may take, response included.
    pub timeout_ms: u32,
    /// Whether endpoints may use plain http (local receivers in
    /// development and tests); https only otherwise.
    pub allow_http: bool,
}

/// One invalid variable: its name and what was expected of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: expected {}", self.variable, self.expected)
    }
}

impl std::error::Error for ConfigError {}

/// Defaults of the variables that are not integers (those are in
/// [`ints`]). [`table`] shows them in the README.
pub mod defaults {
    pub const ENVIRONMENT: &str = "production";
    pub const LOG_LEVEL: &str = "info";
    pub const ASSISTANT_WHILE_WAITING: &str = "on";
    pub const WEBHOOK_ALLOW_HTTP: &str = "off";
    pub const LINK_PREVIEWS: &str = "off";
    /// Images, PDF and plain text; never HTML or SVG, which a browser
    /// would run as a page.
    pub const ATTACHMENT_TYPES: &str =
        "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain";
    pub const ADMIN_ROLE: &str = "admin";
    pub const SERVICE_ROLE: &str = "service";
}

// One line a variable reads best; rustfmt would break them over four.
#[rustfmt::skip]
pub mod ints;
pub mod table;

pub use ints::Int;

impl Config {
    /// Builds the configuration from a lookup of variable names to values
    /// (`None` when unset). Empty strings count as unset. (Long: a statement
    /// per variable that is not an integer, and the struct it fills. Split
    /// into helpers it cost 0.23 KiB of the bundle budget.)
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        // Every integer is checked first, in one pass over the table, so
        // the reads below cannot fail (and need no error paths).
        for int in ints::ALL {
            int.read(&get)?;
        }
        let num = |v: &Int| {
            debug_assert!(ints::ALL.contains(v), "{} is not in ints::ALL", v.name);
            v.read(&get).unwrap_or(v.default)
        };

        let environment = match get("ENVIRONMENT")
            .as_deref()
            .unwrap_or(defaults::ENVIRONMENT)
        {
            "development" => Environment::Development,
            "production" => Environment::Production,
            _ => return Err(invalid("ENVIRONMENT", "one of: development, production")),
        };
        let log_level = match get("LOG_LEVEL").as_deref().unwrap_or(defaults::LOG_LEVEL) {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => return Err(invalid("LOG_LEVEL", "one of: debug, info, warn, error")),
        };
        let assistant_while_waiting = match get("ASSISTANT_WHILE_WAITING")
            .as_deref()
            .unwrap_or(defaults::ASSISTANT_WHILE_WAITING)
        {
            "on" => true,
            "off" => false,
            _ => return Err(invalid("ASSISTANT_WHILE_WAITING", "one of: on, off")),
        };
        let webhook_allow_http = match get("WEBHOOK_ALLOW_HTTP")
            .as_deref()
            .unwrap_or(defaults::WEBHOOK_ALLOW_HTTP)
        {
            "on" => true,
            "off" => false,
            _ => return Err(invalid("WEBHOOK_ALLOW_HTTP", "one of: on, off")),
        };
        let development = environment == Environment::Development;
        let previews = match get("LINK_PREVIEWS")
            .as_deref()
            .unwrap_or(defaults::LINK_PREVIEWS)
        {
            "on" => true,
            "off" => false,
            _ => return Err(invalid("LINK_PREVIEWS", "one of: on, off")),
        };
        let preview_allow: Vec<String> = get("LINK_PREVIEW_ALLOW_ORIGINS")
            .map(|v| v.split(',').map(|o| o.trim().to_string()).collect())
            .unwrap_or_default();
        // Reaching private addresses is for a local stand-in site only.
        if !preview_allow.is_empty() && !development {
            return Err(invalid(
                "LINK_PREVIEW_ALLOW_ORIGINS",
                "unset outside ENVIRONMENT=development",
            ));
        }
        let attachment_types = crate::attachment::Policy::parse_types(
            get("ATTACHMENT_TYPES")
                .as_deref()
                .unwrap_or(defaults::ATTACHMENT_TYPES),
        )
        .map_err(|t| {
            let known = crate::attachment::Kind::ALL.map(|k| k.mime()).join(", ");
            invalid("ATTACHMENT_TYPES", format!("a list of: {known} (not {t})"))
        })?;
        let jwt = crate::auth::config::from_lookup(&get, &num, development)?;
        let metrics_token = match get("METRICS_TOKEN") {
            Some(t) if t.len() < 16 => {
                return Err(invalid("METRICS_TOKEN", "at least 16 characters, or unset"))
            }
            t => t.map(Secret),
        };
        let service_token = match get("SERVICE_TOKEN") {
            Some(t) if t.len() < 32 => {
                return Err(invalid("SERVICE_TOKEN", "at least 32 characters, or unset"))
            }
            t => t.map(Secret),
        };
        let service_role =
            get("SERVICE_ROLE").unwrap_or_else(|| defaults::SERVICE_ROLE.to_string());
        let admin_role = get("ADMIN_ROLE").unwrap_or_else(|| defaults::ADMIN_ROLE.to_string());
        // No silent plaintext: without keys Confab does not serve chat at all.
        let keyring = match (get("ENCRYPTION_KEYS"), get("ENCRYPTION_ACTIVE_KEY_ID")) {
            (None, _) => {
                return Err(invalid(
                    "ENCRYPTION_KEYS",
                    "a keyring `id:base64,...` (it is unset)",
                ))
            }
            (Some(_), None) => {
                return Err(invalid(
                    "ENCRYPTION_ACTIVE_KEY_ID",
                    "the id of the active key (it is unset)",
                ))
            }
            (Some(keys), Some(active)) => {
                Keyring::parse(&keys, &active).map_err(|e| ConfigError {
                    variable: e.variable,
                    expected: e.expected,
                })?
            }
        };
        let search = match get("SEARCH_KEY_ID") {
            None => None,
            Some(id) => Some(crate::search::IndexKey(
                keyring
                    .derive_key(&id, crate::search::KEY_LABEL)
                    .ok_or_else(|| {
                        invalid(
                            "SEARCH_KEY_ID",
                            "the id of one of the keys in ENCRYPTION_KEYS",
                        )
                    })?,
            )),
        };
        let shards = crate::shards::Shards::parse(get("D1_SHARDS").as_deref()).map_err(|e| {
            invalid(
                "D1_SHARDS",
                format!("D1 binding names, comma-separated ({e})"),
            )
        })?;
        let assistant = crate::llm::config::from_lookup(&get, &num)?;
        let public_origins = crate::origins::parse_public(get("PUBLIC_ORIGINS").as_deref())
            .map_err(|e| invalid("PUBLIC_ORIGINS", e))?;
        let origins =
            crate::origins::Origins::parse(get("ALLOWED_ORIGINS").as_deref(), development)
                .map_err(|e| invalid("ALLOWED_ORIGINS", e))?;
        let http_rate_period_s = match get("HTTP_RATE_LIMIT_PERIOD_SECONDS").as_deref() {
            None | Some("60") => 60,
            Some("10") => 10,
            Some(_) => {
                return Err(invalid(
                    "HTTP_RATE_LIMIT_PERIOD_SECONDS",
                    "10 or 60 (the period of the HTTP_RATE_LIMITER binding)",
                ))
            }
        };
        // Log pseudonyms stay stable across key rotations only with a key of
        // their own; otherwise derive one from what is configured.
        let pseudonym_key = match (get("LOG_PSEUDONYM_KEY"), &jwt.hs256_secret) {
            (Some(k), _) => Secret::new(k),
            (None, Some(s)) => s.clone(),
            (None, None) => Secret::new(keyring.derive_label("confab/log-pseudonym")),
        };

        // Visitor tokens and credentials stay valid across key rotations
        // only with a key of their own.
        let visitors = crate::auth::visitor::Visitors::from_lookup(&get, &num, || {
            keyring.derive_label("confab/visitor")
        })?;

        Ok(Config {
            environment,
            log_level,
            jwt,
            pseudonym_key,
            public_origins,
            origins,
            hsts_max_age: num(&ints::HSTS_MAX_AGE) as u64,
            ticket_ttl_seconds: num(&ints::WS_TICKET_TTL_SECONDS) as u64,
            max_sockets_per_user: num(&ints::MAX_SOCKETS_PER_USER),
            http_rate_period_s,
            admin_role,
            metrics_token,
            service_token,
            service_role,
            keyring,
            max_frame_bytes: num(&ints::MAX_FRAME_BYTES),
            max_message_chars: num(&ints::MAX_MESSAGE_CHARS),
            max_sockets_per_session: num(&ints::MAX_SOCKETS_PER_SESSION),
            typing_throttle_ms: num(&ints::TYPING_THROTTLE_MS) as u64,
            rate_messages_per_minute: num(&ints::RATE_MESSAGES_PER_MINUTE) as u32,
            rate_messages_burst: num(&ints::RATE_MESSAGES_BURST) as u32,
            rate_actions_per_minute: num(&ints::RATE_ACTIONS_PER_MINUTE) as u32,
            rate_actions_burst: num(&ints::RATE_ACTIONS_BURST) as u32,
            max_reactions_per_user: num(&ints::MAX_REACTIONS_PER_USER) as u32,
            max_edit_history: num(&ints::MAX_EDIT_HISTORY) as u32,
            replication_interval_ms: num(&ints::REPLICATION_INTERVAL_MS) as u32,
            replication_lag_ready_s: num(&ints::REPLICATION_LAG_READY_SECONDS) as u32,
            readyz_timeout_ms: num(&ints::READYZ_TIMEOUT_MS) as u32,
            audit_retention_days: num(&ints::AUDIT_RETENTION_DAYS) as u32,
            max_sessions_per_user_per_day: num(&ints::MAX_SESSIONS_PER_USER_PER_DAY) as u32,
            shards,
            max_tickets_per_user: num(&ints::MAX_TICKETS_PER_USER) as u32,
            max_members_per_session: num(&ints::MAX_MEMBERS_PER_SESSION) as u32,
            desk: Desk {
                escalation_timeout_ms: num(&ints::ESCALATION_TIMEOUT_SECONDS) as i64 * 1000,
                idle_close_ms: num(&ints::SESSION_IDLE_CLOSE_MINUTES) as i64 * 60_000,
                assistant_while_waiting,
            },
            webhooks: Webhooks {
                retry_base_s: num(&ints::WEBHOOK_RETRY_BASE_SECONDS) as u32,
                retry_max_s: num(&ints::WEBHOOK_RETRY_MAX_SECONDS) as u32,
                max_attempts: num(&ints::WEBHOOK_MAX_ATTEMPTS) as u32,
                timeout_ms: num(&ints::WEBHOOK_TIMEOUT_MS) as u32,
                allow_http: webhook_allow_http,
            },
            previews: previews.then(|| Previews {
                timeout_ms: num(&ints::LINK_PREVIEW_TIMEOUT_MS) as u32,
                max_bytes: num(&ints::LINK_PREVIEW_MAX_BYTES) as u32,
                allow: preview_allow,
            }),
            search,
            attachments: crate::attachment::Policy {
                max_bytes: num(&ints::ATTACHMENT_MAX_BYTES) as u64,
                types: attachment_types,
            },
            visitors,
            filter: crate::moderation::filter::Filter::from_lookup(get)?,
            assistant,
        })
    }

    pub fn is_development(&self) -> bool {
        self.environment == Environment::Development
    }
}

// Hand-written so that secrets added later can never leak through `{:?}`:
// each field is listed deliberately.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("environment", &self.environment)
            .field("log_level", &self.log_level)
            .field("jwt", &self.jwt)
            .field("pseudonym_key", &self.pseudonym_key)
            .field("origins", &self.origins)
            .field("hsts_max_age", &self.hsts_max_age)
            .field("ticket_ttl_seconds", &self.ticket_ttl_seconds)
            .field("max_sockets_per_user", &self.max_sockets_per_user)
            .field("http_rate_period_s", &self.http_rate_period_s)
            .field("admin_role", &self.admin_role)
            .field("metrics_token", &self.metrics_token)
            .field("service_token", &self.service_token)
            .field("service_role", &self.service_role)
            .field("keyring", &self.keyring)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("max_message_chars", &self.max_message_chars)
            .field("max_sockets_per_session", &self.max_sockets_per_session)
            .field("typing_throttle_ms", &self.typing_throttle_ms)
            .field("rate_messages_per_minute", &self.rate_messages_per_minute)
            .field("rate_actions_per_minute", &self.rate_actions_per_minute)
            .field("rate_messages_burst", &self.rate_messages_burst)
            .field("shards", &self.shards)
            .field("desk", &self.desk)
            .field("webhooks", &self.webhooks)
            .field("previews", &self.previews)
            .field("search", &self.search)
            .field("attachments", &self.attachments)
            .field("visitors", &self.visitors)
            .field("assistant", &self.assistant)
            .finish()
    }
}

/// The error for `variable`, saying what was expected of it.
pub(crate) fn invalid(variable: &'static str, expected: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        expected: expected.into(),
    }
}

#[cfg(test)]
mod tests;
