//! Assistant configuration: the provider chain, prompt, limits and timeouts.
//! Pure; read by `Config::from_lookup`.

use super::price::{PriceTable, Tokens, Usd};
use super::providers::Endpoint;
use super::Kind;
use crate::config::{ints, invalid, ConfigError, Int, Secret};

/// One provider in the fallback chain.
#[derive(Clone, PartialEq, Eq)]
pub struct Provider {
    pub endpoint: Endpoint,
    pub api_key: Option<Secret>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("kind", &self.endpoint.kind)
            .field("base_url", &self.endpoint.base_url)
            .field("model", &self.endpoint.model)
            .field(
                "api_key",
                &if self.api_key.is_some() {
                    "set"
                } else {
                    "unset"
                },
            )
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assistant {
    /// Tried in order: a provider that fails before its first token hands
    /// over to the next.
    pub chain: Vec<Provider>,
    /// Each vendor as the variables set it up (`OPENAI_*`, …), in the chain
    /// or not: what a profile's provider leaves out.
    pub vendors: Vec<Provider>,
    pub name: String,
    pub system_prompt: String,
    pub prompt_token_budget: u64,
    pub connect_timeout_ms: u64,
    pub first_token_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    /// Retries per provider before its first token (so attempts = 1 + this).
    pub max_retries: u32,
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    /// Tokens (in + out) one user may spend per UTC day; 0 means no limit.
    pub daily_token_budget: u64,
    /// Money one user may spend per UTC day; None means no limit.
    pub daily_cost_budget: Option<Usd>,
    /// What each model costs (`LLM_PRICES`).
    pub prices: PriceTable,
    /// Images in users' messages are sent to the models (`LLM_VISION`):
    /// every model in the chain must take them, or the turn fails there.
    pub vision: bool,
    /// The profile this is (`crate::llm::profile`): `DEFAULT_PROFILE` for
    /// the configuration's own.
    pub profile: String,
    /// What the profile may spend per UTC day, all its users together.
    pub profile_budget: Budget,
    /// The functions the model may call (`crate::llm::tools`); none in the
    /// configuration-only setup.
    pub tools: Vec<super::tools::Tool>,
    /// How long a call that needs approval waits for a person.
    pub approval_timeout_ms: u64,
    /// Users are shown the calls and results (agents always are).
    pub show_tools: bool,
    /// Signs HTTP tools' calls (`TOOL_SIGNING_SECRET`, a `whsec_` secret).
    pub tool_secret: Option<Secret>,
}

/// A daily budget in tokens (0: none) and in money (None: none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    pub tokens: u64,
    pub cost: Option<Usd>,
}

impl Budget {
    pub fn limits(&self) -> bool {
        self.tokens > 0 || self.cost.is_some()
    }
}

impl Assistant {
    /// The longest reply any provider in the chain may write.
    pub fn max_output_tokens(&self) -> u32 {
        self.chain
            .iter()
            .map(|p| p.endpoint.max_output_tokens)
            .max()
            .unwrap_or(0)
    }

    /// What `tokens` cost at `p`'s prices; None when its model has none.
    pub fn cost(&self, p: &Provider, tokens: Tokens) -> Option<Usd> {
        let e = &p.endpoint;
        self.prices
            .get(e.kind, &e.model)
            .map(|price| price.cost(tokens))
    }

    /// The most a reply to a prompt of `prompt_tokens` can cost on any
    /// provider of the chain: what a budget in money reserves.
    pub fn most_cost(&self, prompt_tokens: u64) -> Usd {
        self.chain
            .iter()
            .filter_map(|p| {
                let most = Tokens {
                    input: prompt_tokens,
                    cached: 0,
                    output: p.endpoint.max_output_tokens as u64,
                };
                self.cost(p, most)
            })
            .max()
            .unwrap_or_default()
    }
}

pub mod defaults {
    pub const NAME: &str = "Assistant";
    pub const SYSTEM_PROMPT: &str = "You are a helpful, concise support assistant.";
    pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
    pub const OPENAI_MODEL: &str = "gpt-4o-mini";
    pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
    pub const ANTHROPIC_MODEL: &str = "claude-3-5-haiku-latest";
    pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com";
    pub const GEMINI_MODEL: &str = "gemini-2.0-flash";
    pub const WORKERS_AI_MODEL: &str = "@cf/meta/llama-3.1-8b-instruct";
    pub const VISION: &str = "off";
}

/// A vendor's variables (base URL, key, model) and their defaults (base
/// URL, model); Workers AI has only a model.
struct Vars {
    base: &'static str,
    key: &'static str,
    model: &'static str,
}

fn vars(kind: Kind) -> Vars {
    let (base, key, model) = match kind {
        Kind::Openai => ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL"),
        Kind::Anthropic => ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_MODEL"),
        Kind::Gemini => ("GEMINI_BASE_URL", "GEMINI_API_KEY", "GEMINI_MODEL"),
        Kind::WorkersAi => ("", "", "WORKERS_AI_MODEL"),
    };
    Vars { base, key, model }
}

/// A vendor's default base URL (empty for Workers AI) and model.
pub fn vendor_default(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Openai => (defaults::OPENAI_BASE_URL, defaults::OPENAI_MODEL),
        Kind::Anthropic => (defaults::ANTHROPIC_BASE_URL, defaults::ANTHROPIC_MODEL),
        Kind::Gemini => (defaults::GEMINI_BASE_URL, defaults::GEMINI_MODEL),
        Kind::WorkersAi => ("", defaults::WORKERS_AI_MODEL),
    }
}

/// Whether `url` is an http(s) URL a provider may be reached at.
pub fn is_base_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// Reads the assistant settings; `Ok(None)` when `LLM_PROVIDERS` is unset
/// (no assistant: sessions are human-only). (Long: each provider's
/// variables, then the settings shared by the chain.)
pub fn from_lookup(
    get: &dyn Fn(&str) -> Option<String>,
    num: &dyn Fn(&Int) -> usize,
) -> Result<Option<Assistant>, ConfigError> {
    let Some(list) = get("LLM_PROVIDERS") else {
        return Ok(None);
    };
    // Every vendor's settings, listed in the chain or not: profiles use
    // them for what they leave out (`crate::llm::profile`).
    let mut vendors = Vec::new();
    for kind in Kind::ALL {
        let Vars {
            base: base_var,
            key: key_var,
            model: model_var,
        } = vars(kind);
        let (base, model) = vendor_default(kind);
        let base_url = if base_var.is_empty() {
            String::new()
        } else {
            let b = get(base_var).unwrap_or_else(|| base.to_string());
            if !is_base_url(&b) {
                return Err(invalid(base_var, "an http(s) URL"));
            }
            b.trim_end_matches('/').to_string()
        };
        let api_key = if key_var.is_empty() {
            None
        } else {
            get(key_var).map(Secret::new)
        };
        vendors.push(Provider {
            endpoint: Endpoint {
                kind,
                base_url,
                model: get(model_var).unwrap_or_else(|| model.to_string()),
                max_output_tokens: num(&ints::LLM_MAX_OUTPUT_TOKENS) as u32,
                temperature: None,
            },
            api_key,
        });
    }
    let mut chain = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let kind = Kind::parse(name).ok_or_else(|| {
            invalid(
                "LLM_PROVIDERS",
                "a comma-separated list of: openai, anthropic, gemini, workers_ai",
            )
        })?;
        chain.extend(vendors.iter().find(|p| p.endpoint.kind == kind).cloned());
    }
    if chain.is_empty() {
        return Err(invalid(
            "LLM_PROVIDERS",
            "at least one provider, or unset for no assistant",
        ));
    }
    let vision = match get("LLM_VISION").as_deref().unwrap_or(defaults::VISION) {
        "on" => true,
        "off" => false,
        _ => return Err(invalid("LLM_VISION", "one of: on, off")),
    };
    let prices = match get("LLM_PRICES") {
        Some(json) => PriceTable::parse(&json).map_err(|e| invalid("LLM_PRICES", e))?,
        None => PriceTable::default(),
    };
    let daily_cost_budget = match get("DAILY_COST_BUDGET_USD") {
        None => None,
        Some(d) => Some(
            // serde_json's number parser, already linked, not core's.
            serde_json::from_str::<f64>(d.trim())
                .ok()
                .and_then(Usd::from_dollars)
                .ok_or_else(|| {
                    invalid(
                        "DAILY_COST_BUDGET_USD",
                        "an amount of US dollars, e.g. 0.50",
                    )
                })?,
        ),
    };
    let tool_secret = get("TOOL_SIGNING_SECRET").map(Secret::new);
    if (tool_secret.as_ref()).is_some_and(|s| crate::webhooks::secret_key(s.expose()).is_none()) {
        return Err(invalid(
            "TOOL_SIGNING_SECRET",
            "a `whsec_` secret: whsec_ and base64 of its key",
        ));
    }
    if daily_cost_budget.is_some() && prices.is_empty() {
        return Err(invalid(
            "DAILY_COST_BUDGET_USD",
            "`LLM_PRICES` as well (a budget in money needs prices)",
        ));
    }
    Ok(Some(Assistant {
        vendors,
        vision,
        profile: super::DEFAULT_PROFILE.to_string(),
        profile_budget: Budget::default(),
        tools: Vec::new(),
        approval_timeout_ms: num(&ints::TOOL_APPROVAL_TIMEOUT_MS) as u64,
        show_tools: false,
        tool_secret,
        prices,
        daily_cost_budget,
        chain,
        name: get("ASSISTANT_NAME").unwrap_or_else(|| defaults::NAME.to_string()),
        system_prompt: get("ASSISTANT_SYSTEM_PROMPT")
            .unwrap_or_else(|| defaults::SYSTEM_PROMPT.to_string()),
        prompt_token_budget: num(&ints::PROMPT_TOKEN_BUDGET) as u64,
        connect_timeout_ms: num(&ints::LLM_CONNECT_TIMEOUT_MS) as u64,
        first_token_timeout_ms: num(&ints::LLM_FIRST_TOKEN_TIMEOUT_MS) as u64,
        idle_timeout_ms: num(&ints::LLM_IDLE_TIMEOUT_MS) as u64,
        max_retries: num(&ints::LLM_MAX_RETRIES) as u32,
        backoff_base_ms: num(&ints::LLM_BACKOFF_BASE_MS) as u64,
        backoff_cap_ms: num(&ints::LLM_BACKOFF_CAP_MS) as u64,
        daily_token_budget: num(&ints::DAILY_TOKEN_BUDGET) as u64,
    }))
}
