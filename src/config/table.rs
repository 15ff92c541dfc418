//! Every variable Confab reads, one entry each: name, type, default, bounds,
//! whether it is a secret, and what it means. The README's configuration
//! tables are rendered from it ([`markdown`]), and `tests/configuration.rs`
//! holds the parser to it: the names it asks for are exactly these, each
//! stated default is what it uses when the variable is unset, each choice
//! is accepted and anything else refused, and no secret shows in `{:?}` or
//! sits in `wrangler.toml`.
//!
//! The runtime never reads this table: its texts would cost the bundle
//! several KiB. The parser reads the integers through [`super::ints`] (the
//! bounds here are those) and the other defaults through the `defaults`
//! modules this table names.

use super::ints::{self, Int};
use crate::auth::config::defaults as auth;
use crate::llm::config::defaults as llm;

/// One variable.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    pub name: &'static str,
    pub kind: Kind,
    pub default: WhenUnset,
    /// Set with `wrangler secret put`, never in `wrangler.toml`; shown only
    /// as `set` in logs and debug output.
    pub secret: bool,
    pub section: Section,
    /// What it does, for the README (Markdown).
    pub meaning: &'static str,
}

/// The values a variable takes.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// An integer within the bounds of its [`Int`].
    Int(Int),
    /// Exactly one of these.
    OneOf(&'static [&'static str]),
    Text,
    /// An http(s) URL (`JWT_JWKS_URL`: https only).
    Url,
    /// A comma-separated list.
    List,
    Json,
    /// `id:base64,id:base64`.
    Keyring,
}

/// What applies when a variable is unset.
#[derive(Debug, Clone, Copy)]
pub enum WhenUnset {
    /// Nothing: the feature it configures is off or derived elsewhere.
    Unset,
    /// This value; setting it changes nothing (the test checks so).
    Is(&'static str),
    /// A default that depends on other settings, in words.
    Said(&'static str),
}

/// Which README table lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Service,
    Assistant,
}

const fn var(name: &'static str, kind: Kind, default: WhenUnset, meaning: &'static str) -> Var {
    Var {
        name,
        kind,
        default,
        secret: false,
        section: Section::Service,
        meaning,
    }
}

const fn int(int: Int, meaning: &'static str) -> Var {
    var(int.name, Kind::Int(int), WhenUnset::Unset, meaning)
}

const fn secret(v: Var) -> Var {
    Var { secret: true, ..v }
}

const fn assistant(v: Var) -> Var {
    Var {
        section: Section::Assistant,
        ..v
    }
}

use Kind::{Json, Keyring, List, OneOf, Text, Url};
use WhenUnset::{Is, Said, Unset};

/// Every variable, in the README's order. (One entry a line or two, which
/// rustfmt would spread over five.)
#[rustfmt::skip]
pub const VARS: &[Var] = &[
    var("ENVIRONMENT", OneOf(&["development", "production"]), Is(super::defaults::ENVIRONMENT),
        "`make dev` sets `development`, which enables `POST /v1/dev/token`."),
    var("LOG_LEVEL", OneOf(&["debug", "info", "warn", "error"]), Is(super::defaults::LOG_LEVEL),
        "Logs are JSON lines."),
    secret(var("JWT_HS256_SECRET", Text, Said("unset (development: a built-in development key)"),
        "HMAC key for HS256 bearer tokens, at least 32 bytes. Production needs it, `JWT_JWKS` or `JWT_JWKS_URL`.")),
    var("JWT_JWKS", Json, Unset, "An inline JWKS (`{\"keys\":[…]}`) of RS256/ES256/EdDSA public keys."),
    var("JWT_JWKS_URL", Url, Unset,
        "Your identity provider's JWKS endpoint (https). See docs/api.md for caching and rotation."),
    int(ints::JWT_JWKS_CACHE_SECONDS, "How long a fetched JWKS is used."),
    int(ints::JWT_JWKS_REFETCH_MIN_SECONDS, "The least time between fetches forced by unknown `kid`s."),
    var("JWT_ISSUER", Text, Unset, "When set, tokens must carry this `iss`."),
    var("JWT_AUDIENCE", Text, Unset, "When set, tokens must include this `aud`."),
    var("JWT_ROLES_CLAIM", Text, Is(auth::ROLES_CLAIM),
        "Where roles are: a claim name or a dotted path (`realm_access.roles`)."),
    int(ints::JWT_LEEWAY_SECONDS, "Clock skew tolerated on `exp`/`nbf`/`iat`."),
    var("ADMIN_ROLE", Text, Is(super::defaults::ADMIN_ROLE),
        "The role (from `JWT_ROLES_CLAIM`) that makes its holder an admin."),
    secret(var("LOG_PSEUDONYM_KEY", Text, Said("`JWT_HS256_SECRET`, else derived from the encryption keys"),
        "Keys the user pseudonyms in logs.")),
    var("PUBLIC_ORIGINS", List, Unset,
        "The deployment's own origins (`https://chat.example.com`, exact). When set, a request for any other Host gets `421 host_not_allowed` (DNS rebinding). When unset, the request URL's origin counts (on Cloudflare, a hostname routed to the Worker). The local runtime sets its loopback address."),
    var("ALLOWED_ORIGINS", List, Unset,
        "Browser origins allowed besides the deployment's own; `https://*.example.com` wildcards. Development also allows localhost. The same list is the chat page's `frame-ancestors` and the parents it takes a token message from."),
    int(ints::HSTS_MAX_AGE,
        "`Strict-Transport-Security` max-age in seconds; 0 sends none. `wrangler.toml` sets a year for production."),
    int(ints::WS_TICKET_TTL_SECONDS, "Lifetime of a WebSocket ticket."),
    int(ints::MAX_TICKETS_PER_USER,
        "Unspent WebSocket tickets one user may hold; one more gets `429 ticket_quota_exceeded`."),
    int(ints::MAX_SOCKETS_PER_USER, "Sockets one user may hold in one session; one more gets close 4029."),
    int(ints::MAX_SOCKETS_PER_SESSION,
        "Live sockets one session accepts; the next gets `session_full` and close 1013."),
    var("HTTP_RATE_LIMIT_PERIOD_SECONDS", OneOf(&["10", "60"]), Is("60"),
        "The period of the `HTTP_RATE_LIMITER` binding, sent as `Retry-After`. The limit itself is the binding's `simple.limit` in `wrangler.toml` (600)."),
    secret(var("ENCRYPTION_KEYS", Keyring, Unset,
        "Keyring for encryption at rest: `id:base64,id:base64`, each a 32-byte key in standard base64, ids of 1-16 characters of `A-Z a-z 0-9 _ -`. Required in every environment; `make dev` writes a local one to `.dev.vars`.")),
    var("ENCRYPTION_ACTIVE_KEY_ID", Text, Unset,
        "The key that seals new values; must be one of `ENCRYPTION_KEYS`. Required; `wrangler.toml` sets `k1`."),
    var("SEARCH_KEY_ID", Text, Unset,
        "The key in `ENCRYPTION_KEYS` the search index's own key is derived from (never used to seal); must be one of them. Keep it in the keyring while search is wanted: another key means an index that matches nothing written before. Unset: search is off and `GET /v1/search` answers 404. `wrangler.toml` sets `k1`."),
    secret(var("SERVICE_TOKEN", Text, Unset,
        "A bearer token (32+ characters) for the product backend's server-side API, `/v1/service/*`; unset, only tokens with `SERVICE_ROLE` pass.")),
    var("SERVICE_ROLE", Text, Is(super::defaults::SERVICE_ROLE),
        "The role (from `JWT_ROLES_CLAIM`) that passes `/v1/service/*`, as `SERVICE_TOKEN` does."),
    secret(var("METRICS_TOKEN", Text, Unset,
        "A bearer token (16+ characters) that may read `/metrics`; admins always may.")),
    int(ints::MAX_FRAME_BYTES, "Largest WebSocket frame accepted; a larger one closes with 1009."),
    int(ints::MAX_MESSAGE_CHARS, "Longest message text, in characters."),
    int(ints::RATE_MESSAGES_PER_MINUTE,
        "Messages one user may send per minute in a session; `0` means no limit. Past it, the send gets `rate_limited` with `retry_after_ms`, and the socket stays open. Kept in the session object's storage, so hibernation does not refill it."),
    int(ints::RATE_MESSAGES_BURST, "How many of those may come at once."),
    int(ints::RATE_ACTIONS_PER_MINUTE,
        "The same for every other frame that writes: edit, delete, react, read, takeover, release."),
    int(ints::RATE_ACTIONS_BURST, "How many of those may come at once."),
    int(ints::MAX_REACTIONS_PER_USER,
        "Different reactions one user may hold on one message; one more gets `too_many_reactions`."),
    int(ints::MAX_EDIT_HISTORY, "Earlier texts kept per edited message; older ones are dropped."),
    int(ints::MAX_SESSIONS_PER_USER_PER_DAY,
        "Sessions one user may create per UTC day; one more gets `429 session_quota_exceeded`."),
    int(ints::MAX_MEMBERS_PER_SESSION,
        "Members one session may have besides its owner; one more gets `400 too_many_members`."),
    int(ints::TYPING_THROTTLE_MS, "Least time between two relayed `typing` frames of one socket."),
    int(ints::ESCALATION_TIMEOUT_SECONDS,
        "How long a session waits for an agent to claim it before the user is told, in the transcript, that nobody is free (the session stays in the queue)."),
    var("ASSISTANT_WHILE_WAITING", OneOf(&["on", "off"]), Is(super::defaults::ASSISTANT_WHILE_WAITING),
        "Whether the assistant keeps answering while a session waits for an agent. With `off` it pauses until the wait times out."),
    int(ints::SESSION_IDLE_CLOSE_MINUTES,
        "Minutes without activity after which a session is closed (read-only for good); `0` never closes one."),
    int(ints::WEBHOOK_RETRY_BASE_SECONDS,
        "The wait before a failed webhook delivery's first retry; each later retry waits twice as long as the one before."),
    int(ints::WEBHOOK_RETRY_MAX_SECONDS,
        "The longest wait between two attempts of one webhook delivery."),
    int(ints::WEBHOOK_MAX_ATTEMPTS,
        "Attempts of one webhook delivery before it goes to the dead-letter queue and is logged `dead` (the default, with the default waits, retries for about 10 hours)."),
    int(ints::WEBHOOK_TIMEOUT_MS,
        "How long one webhook attempt may take, response included; a slower receiver's attempt fails (`timeout`) and is retried."),
    var("WEBHOOK_ALLOW_HTTP", OneOf(&["on", "off"]), Is(super::defaults::WEBHOOK_ALLOW_HTTP),
        "Whether webhook endpoints may use plain `http` URLs (a local receiver in development); `https` only when `off`."),
    var("LINK_PREVIEWS", OneOf(&["on", "off"]), Is(super::defaults::LINK_PREVIEWS),
        "Whether `GET /v1/previews` fetches link previews (title, description, image) for signed-in users; `off` answers 404."),
    int(ints::LINK_PREVIEW_TIMEOUT_MS, "How long one link preview may take, redirects and reading included; a slower site gets `504 preview_timeout`."),
    int(ints::LINK_PREVIEW_MAX_BYTES, "How much of a page a link preview reads; the rest is not fetched."),
    var("LINK_PREVIEW_ALLOW_ORIGINS", List, Unset,
        "Development only (an error elsewhere): origins link previews may fetch despite the address rules, for a local stand-in site."),
    int(ints::ATTACHMENT_MAX_BYTES, "Largest attachment accepted, in bytes; a larger upload gets `413 attachment_too_large`. The Worker holds one in memory while it seals it."),
    var("ATTACHMENT_TYPES", List, Is(super::defaults::ATTACHMENT_TYPES),
        "The attachment types accepted, from those Confab recognises by their bytes: `image/png`, `image/jpeg`, `image/gif`, `image/webp`, `application/pdf`, `text/plain`."),
    var("MODERATION_FILTER", OneOf(&["off", "words", "ai"]), Is("off"),
        "The pre-send filter: every user's message is checked against `MODERATION_WORDS` (`words`), or by `MODERATION_AI_MODEL` through the `AI` binding (`ai`); see \"Moderation\" below."),
    var("MODERATION_WORDS", List, Unset,
        "With `MODERATION_FILTER=words`: words and phrases (at most 1000, each up to 8 words) matched whole, without regard to case."),
    var("MODERATION_ACTION", OneOf(&["flag", "block"]), Is("flag"),
        "What a match does: `flag` stores the message and reports it to the moderation queue; `block` refuses it (`message_blocked`) and stores nothing."),
    var("MODERATION_AI_MODEL", Text, Is(crate::moderation::filter::AI_MODEL),
        "With `MODERATION_FILTER=ai`: a Workers AI model that answers as Llama Guard does (`safe`, or `unsafe` and its categories)."),
    var("ALLOW_VISITORS", OneOf(&["on", "off"]), Is("off"),
        "Whether `POST /v1/visitors` gives people without an account a visitor identity (the embeddable widget's anonymous users; docs/client.md, \"Visitors\"). `off` answers 404."),
    int(ints::VISITORS_PER_IP_PER_DAY, "New visitors one client address may make per UTC day; one more gets `429 visitor_quota`. Returning visitors do not count."),
    int(ints::VISITOR_TOKEN_TTL_SECONDS, "How long a visitor's token lasts; the widget renews it with the visitor's credential."),
    int(ints::VISITOR_REMEMBER_DAYS, "How long a returning visitor is recognised (the credential the widget keeps)."),
    secret(var("VISITOR_KEY", Text, Said("derived from the first of `ENCRYPTION_KEYS`"),
        "Signs visitor tokens and credentials, at least 32 bytes. Set it so that visitors stay recognised when the encryption keys change.")),
    var("TURNSTILE_SITE_KEY", Text, Unset, "Cloudflare Turnstile's site key: with it (and the secret) a new visitor must pass a Turnstile challenge."),
    secret(var("TURNSTILE_SECRET_KEY", Text, Unset, "Turnstile's secret key, sent to siteverify with each new visitor's answer.")),
    var("TURNSTILE_VERIFY_URL", Url, Is(crate::auth::visitor::TURNSTILE_VERIFY_URL),
        "Turnstile's siteverify endpoint (a local stand-in in tests)."),
    var("D1_SHARDS", List, Is(crate::bindings::HOME_D1),
        "The D1 bindings that hold sessions, home shard first (\"D1 shards\" below). Locally `DB,DB_SHARD_1,DB_SHARD_2`."),
    int(ints::REPLICATION_INTERVAL_MS,
        "The longest a change waits in its session's outbox before the flush that writes it to D1."),
    int(ints::REPLICATION_LAG_READY_SECONDS, "Replication lag past which `/readyz` reports `degraded`."),
    int(ints::AUDIT_RETENTION_DAYS, "Days the admin audit trail (`GET /v1/admin/audit`) keeps an entry; older ones are deleted as new ones are written. `0` keeps every entry."),
    int(ints::READYZ_TIMEOUT_MS, "How long each `/readyz` dependency check (D1, KV, replication, the rate limiter) may take before it is reported as `timeout`."),
    // The assistant: read only when `LLM_PROVIDERS` is set.
    assistant(var("LLM_PROVIDERS", List, Said("unset (no assistant)"),
        "The fallback chain, e.g. `anthropic,openai`. Each of `openai` (any OpenAI-compatible server), `anthropic`, `gemini` or `workers_ai`. The vendors' variables below also serve assistant profiles (\"Assistant profiles\"), whether listed here or not.")),
    assistant(var("OPENAI_BASE_URL", Url, Is(llm::OPENAI_BASE_URL),
        "OpenAI-compatible Chat Completions. Point it at vLLM, Ollama or llama.cpp server for self-hosted models.")),
    assistant(var("OPENAI_MODEL", Text, Is(llm::OPENAI_MODEL), "The model asked for.")),
    assistant(secret(var("OPENAI_API_KEY", Text, Unset, "May stay unset for self-hosted servers."))),
    assistant(var("ANTHROPIC_BASE_URL", Url, Is(llm::ANTHROPIC_BASE_URL), "Anthropic Messages.")),
    assistant(var("ANTHROPIC_MODEL", Text, Is(llm::ANTHROPIC_MODEL), "The model asked for.")),
    assistant(secret(var("ANTHROPIC_API_KEY", Text, Unset, "Sent as `x-api-key`."))),
    assistant(var("GEMINI_BASE_URL", Url, Is(llm::GEMINI_BASE_URL), "Gemini `streamGenerateContent` (SSE).")),
    assistant(var("GEMINI_MODEL", Text, Is(llm::GEMINI_MODEL), "The model asked for.")),
    assistant(secret(var("GEMINI_API_KEY", Text, Unset, "Sent as `x-goog-api-key`."))),
    assistant(var("WORKERS_AI_MODEL", Text, Is(llm::WORKERS_AI_MODEL), "Workers AI, through the `AI` binding.")),
    assistant(var("ASSISTANT_NAME", Text, Is(llm::NAME), "The assistant's display name.")),
    assistant(var("LLM_VISION", OneOf(&["on", "off"]), Is(llm::VISION),
        "Whether images in users' messages go to the models (the newest question's first, at most 4, each up to 5 MiB; not to `workers_ai`). Turn it on only when every model in the chain takes images.")),
    assistant(var("ASSISTANT_SYSTEM_PROMPT", Text, Is(llm::SYSTEM_PROMPT), "The system prompt.")),
    assistant(int(ints::PROMPT_TOKEN_BUDGET,
        "Estimated tokens of prompt (system prompt plus recent history) per turn.")),
    assistant(int(ints::LLM_MAX_OUTPUT_TOKENS, "The reply length limit sent to the provider.")),
    assistant(int(ints::LLM_CONNECT_TIMEOUT_MS, "Time to response headers.")),
    assistant(int(ints::LLM_FIRST_TOKEN_TIMEOUT_MS, "Time to the first token, from the start of the attempt.")),
    assistant(int(ints::LLM_IDLE_TIMEOUT_MS, "Time between chunks.")),
    assistant(int(ints::LLM_MAX_RETRIES,
        "Retries per provider before its first token (429, 5xx, network errors, timeouts), before moving to the next.")),
    assistant(int(ints::LLM_BACKOFF_BASE_MS, "Exponential backoff with full jitter: the first wait.")),
    assistant(int(ints::LLM_BACKOFF_CAP_MS, "The longest wait. A longer `Retry-After` wins.")),
    assistant(int(ints::DAILY_TOKEN_BUDGET,
        "Tokens (in + out) one user's messages may spend per UTC day; `0` means no limit.")),
    assistant(var("LLM_PRICES", Json, Unset,
        "What each model costs, in US dollars per million tokens: a JSON array of `{\"provider\", \"model\", \"input\", \"output\", \"cached_input\"?}` (`model` may be `*` for the provider's other models; `cached_input` defaults to `input`). Replies of models it prices record their cost (\"The cost ledger\" below); others record none.")),
    assistant(var("DAILY_COST_BUDGET_USD", Text, Said("unset (no limit)"),
        "Money (US dollars) one user's messages may spend on the assistant per UTC day, reserved before each turn as tokens are; needs `LLM_PRICES`.")),
    assistant(secret(var("TOOL_SIGNING_SECRET", Text, Unset,
        "The `whsec_` secret that signs assistant profiles' HTTP tool calls (Standard Webhooks headers, as webhooks are); HTTP tools need it."))),
    assistant(int(ints::TOOL_APPROVAL_TIMEOUT_MS,
        "How long a tool call marked `needs_approval` waits for an agent; then it is refused as rejected.")),
];

/// The README table of one section, rendered from [`VARS`].
pub fn markdown(section: Section) -> String {
    let mut out =
        String::from("| Variable | Type | Default | Meaning |\n| --- | --- | --- | --- |\n");
    for v in VARS.iter().filter(|v| v.section == section) {
        let name = if v.secret {
            format!("`{}` (secret)", v.name)
        } else {
            format!("`{}`", v.name)
        };
        let kind = match v.kind {
            Kind::Int(i) if i.max == usize::MAX => format!("integer, at least {}", i.min),
            Kind::Int(i) => format!("integer, {} to {}", i.min, i.max),
            Kind::OneOf(choices) => {
                let quoted: Vec<String> = choices.iter().map(|c| format!("`{c}`")).collect();
                match quoted.len() {
                    2 => quoted.join(" or "),
                    _ => format!("one of {}", quoted.join(", ")),
                }
            }
            Kind::Text => "text".into(),
            Kind::Url => "URL".into(),
            Kind::List => "comma-separated list".into(),
            Kind::Json => "JSON".into(),
            Kind::Keyring => "keyring".into(),
        };
        let default = match (v.kind, v.default) {
            (Kind::Int(i), _) => format!("`{}`", i.default),
            (_, WhenUnset::Unset) => "unset".into(),
            (_, WhenUnset::Is(value)) => format!("`{value}`"),
            (_, WhenUnset::Said(words)) => words.into(),
        };
        out.push_str(&format!(
            "| {name} | {kind} | {default} | {} |\n",
            v.meaning
        ));
    }
    out
}
