//! Assistant profiles: named setups of the assistant that a session is
//! created with, and that an agent may switch it to. Pure: what the admin
//! API accepts, who may choose a profile, and the `Assistant` a turn runs
//! with under one.
//!
//! A profile sets the provider chain (each provider's model, base URL and
//! API key), the assistant's name and system prompt, the temperature, the
//! longest reply and a daily budget of its own (all its users together).
//! Whatever it leaves out is the deployment's (`LLM_*`, `ASSISTANT_*`,
//! and each vendor's `*_BASE_URL`, `*_API_KEY`, `*_MODEL`, whether
//! `LLM_PROVIDERS` lists it or not): a provider without a key of its own
//! uses the deployment's key for that vendor, so most profiles need no
//! secret at all. The configuration-only
//! setup is the profile `default`, which always exists and is not stored.
//!
//! Profiles live in D1's home shard (`assistant_profiles`); API keys are
//! sealed there (`crypto::Field::ProfileKey`) and never shown again.
//!
//! **Tools.** A profile offers the model functions (`tools`): HTTP tools,
//! a POST of the call to the product's backend signed as webhooks are
//! (`TOOL_SIGNING_SECRET`, Standard Webhooks headers), answered within a
//! timeout and a size cap; and the built-ins `escalate_to_human` and
//! `end_conversation`. One marked `needs_approval` is made only once an
//! agent approves the call (`crate::llm::driver::round`).

use super::config::{is_base_url, vendor_default, Assistant, Budget, Provider};
use super::price::Usd;
use super::providers::{Endpoint, Temperature};
use super::tools::{Builtin, Tool, ToolKind, ToolSpec};
use super::{Kind, DEFAULT_PROFILE};
use crate::config::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most profiles a deployment keeps.
pub const MAX_PROFILES: usize = 100;
/// Longest profile name: lowercase letters, digits, `-` and `_`.
pub const MAX_NAME_CHARS: usize = 40;
/// Most providers in one profile's chain.
pub const MAX_CHAIN: usize = 4;
/// Longest system prompt (the API's body limit is 16 KiB).
pub const MAX_PROMPT_CHARS: usize = 8_000;
/// Longest assistant name, description, model name, base URL and key.
pub const MAX_ASSISTANT_NAME_CHARS: usize = 80;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
const MAX_MODEL_CHARS: usize = 200;
const MAX_URL_CHARS: usize = 2_048;
const MAX_KEY_CHARS: usize = 1_024;
/// Most roles a profile names, and the longest role.
pub const MAX_ROLES: usize = 16;
const MAX_ROLE_CHARS: usize = 64;
/// The longest reply a profile may allow, in tokens.
pub const MAX_OUTPUT_TOKENS: u32 = 100_000;
/// Anthropic takes temperatures up to 1 (the others up to 2).
const ANTHROPIC_MAX_TEMPERATURE: f64 = 1.0;
/// Most functions a profile offers (one reply may call up to
/// `tools::MAX_CALLS`).
pub const MAX_TOOLS: usize = 16;
/// Longest function name (OpenAI's limit; letters, digits, `_`, `-`).
const MAX_TOOL_NAME_CHARS: usize = 64;
const MAX_TOOL_DESCRIPTION_CHARS: usize = 1_024;
/// An HTTP tool's wait for its answer, unless it says otherwise, and the
/// longest it may say.
pub const DEFAULT_TOOL_TIMEOUT_MS: u32 = 10_000;
pub const MAX_TOOL_TIMEOUT_MS: u32 = 30_000;

/// What a profile's settings are checked against: the deployment's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deployment {
    /// `LLM_PRICES` prices something (a budget in money needs prices).
    pub priced: bool,
    /// Plain-http tool URLs are allowed (`WEBHOOK_ALLOW_HTTP`).
    pub allow_http: bool,
    /// `TOOL_SIGNING_SECRET` is set (HTTP tools need it).
    pub signs_tools: bool,
}

/// A function a profile offers: an HTTP tool (`name`, `description`,
/// `parameters`, `url`, `timeout_ms`?) or a built-in (`builtin` alone).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ToolDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A JSON Schema of the arguments: an object schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<Builtin>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_approval: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
}

impl ToolDef {
    fn check(&self, d: Deployment) -> Result<(), String> {
        let http = [&self.name, &self.description, &self.url].map(Option::is_some);
        match self.builtin {
            Some(b)
                if http.contains(&true)
                    || self.parameters.is_some()
                    || self.timeout_ms.is_some() =>
            {
                Err(format!(
                    "the built-in {} takes only needs_approval",
                    b.name()
                ))
            }
            Some(_) => Ok(()),
            None => {
                let (Some(name), Some(description), Some(url)) =
                    (&self.name, &self.description, &self.url)
                else {
                    return Err("an HTTP tool needs name, description, parameters and url (or a tool is a builtin)".into());
                };
                let named = (1..=MAX_TOOL_NAME_CHARS).contains(&name.len())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !named {
                    return Err(format!(
                        "a tool name is 1 to {MAX_TOOL_NAME_CHARS} of A-Z a-z 0-9 _ -"
                    ));
                }
                bounded(
                    "a tool's description",
                    description,
                    MAX_TOOL_DESCRIPTION_CHARS,
                )?;
                if !self
                    .parameters
                    .as_ref()
                    .is_some_and(|p| p["type"] == "object")
                {
                    return Err(format!(
                        "tool {name}: parameters must be a JSON Schema of type object"
                    ));
                }
                crate::webhooks::check_url(url, d.allow_http)
                    .map_err(|e| format!("tool {name}: {}", e.message()))?;
                if !d.signs_tools {
                    return Err(
                        "HTTP tools need TOOL_SIGNING_SECRET (their requests are signed)".into(),
                    );
                }
                match self.timeout_ms {
                    Some(t) if t == 0 || t > MAX_TOOL_TIMEOUT_MS => {
                        Err(format!("timeout_ms must be 1 to {MAX_TOOL_TIMEOUT_MS}"))
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    /// The function as the driver and the session object use it.
    pub fn tool(&self) -> Tool {
        let (spec, kind) = match self.builtin {
            Some(b) => (b.spec(), ToolKind::Builtin(b)),
            None => (
                ToolSpec {
                    name: self.name.clone().unwrap_or_default(),
                    description: self.description.clone().unwrap_or_default(),
                    parameters: self.parameters.clone().unwrap_or_default(),
                },
                ToolKind::Http {
                    url: self.url.clone().unwrap_or_default(),
                    timeout_ms: self.timeout_ms.unwrap_or(DEFAULT_TOOL_TIMEOUT_MS),
                },
            ),
        };
        Tool {
            spec,
            needs_approval: self.needs_approval,
            kind,
        }
    }
}

/// Whether `name` may name a profile: 1 to 40 of `a-z`, `0-9`, `-`, `_`,
/// starting with a letter or digit.
pub fn is_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A profile: what `PUT /v1/admin/profiles/{name}` takes (API keys in
/// the clear) and what D1 keeps (API keys sealed). Its name is its key.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub chain: Vec<Link>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<Temperature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Tokens (in + out) the profile's turns may spend per UTC day, all
    /// users together; 0: no limit.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub daily_token_budget: u64,
    /// Money they may spend per UTC day (needs `LLM_PRICES`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_cost_budget_usd: Option<Usd>,
    /// Who may create a session with it: holders of any of these roles
    /// (admins always). Empty: every signed-in user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The functions the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDef>,
    /// Users are shown the calls and their results too (agents always
    /// are).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub show_tools: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One provider of a profile's chain.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub provider: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// In the clear in a request, sealed in storage, never in an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// Where a profile's key is sealed: by profile name and place in its chain.
pub fn key_aad(profile: &str, link: usize) -> String {
    crate::crypto::aad(
        crate::crypto::Field::ProfileKey,
        profile,
        Some(&link.to_string()),
    )
}

fn bounded(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(format!("{field} must be 1 to {max} characters"));
    }
    Ok(())
}

impl Profile {
    /// Checks a profile given to the API against the deployment `d`; the
    /// message says what is wrong.
    pub fn check(&self, d: Deployment) -> Result<(), String> {
        if self.chain.is_empty() || self.chain.len() > MAX_CHAIN {
            return Err(format!("chain must list 1 to {MAX_CHAIN} providers"));
        }
        for l in &self.chain {
            if let Some(m) = &l.model {
                bounded("model", m, MAX_MODEL_CHARS)?;
            }
            if let Some(k) = &l.api_key {
                bounded("api_key", k, MAX_KEY_CHARS)?;
            }
            if let Some(u) = &l.base_url {
                if !is_base_url(u) || u.len() > MAX_URL_CHARS {
                    return Err("base_url must be an http(s) URL".into());
                }
            }
            if l.provider == Kind::WorkersAi && (l.base_url.is_some() || l.api_key.is_some()) {
                return Err(
                    "workers_ai takes a model only (it runs through the AI binding)".into(),
                );
            }
            let hot = self
                .temperature
                .is_some_and(|t| t.value() > ANTHROPIC_MAX_TEMPERATURE);
            if l.provider == Kind::Anthropic && hot {
                return Err("anthropic takes a temperature from 0 to 1".into());
            }
        }
        if let Some(n) = &self.assistant_name {
            bounded("assistant_name", n, MAX_ASSISTANT_NAME_CHARS)?;
        }
        if let Some(p) = &self.system_prompt {
            bounded("system_prompt", p, MAX_PROMPT_CHARS)?;
        }
        if self.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(format!(
                "description must be at most {MAX_DESCRIPTION_CHARS} characters"
            ));
        }
        if self
            .max_output_tokens
            .is_some_and(|n| n == 0 || n > MAX_OUTPUT_TOKENS)
        {
            return Err(format!(
                "max_output_tokens must be 1 to {MAX_OUTPUT_TOKENS}"
            ));
        }
        if self.daily_cost_budget_usd.is_some() && !d.priced {
            return Err(
                "daily_cost_budget_usd needs LLM_PRICES (a budget in money needs prices)".into(),
            );
        }
        if self.roles.len() > MAX_ROLES {
            return Err(format!("roles may name at most {MAX_ROLES}"));
        }
        for r in &self.roles {
            bounded("a role", r, MAX_ROLE_CHARS)?;
        }
        if self.tools.len() > MAX_TOOLS {
            return Err(format!("tools may list at most {MAX_TOOLS}"));
        }
        for (i, t) in self.tools.iter().enumerate() {
            t.check(d)?;
            let name = t.tool().spec.name;
            if self.tools[..i].iter().any(|o| o.tool().spec.name == name) {
                return Err(format!("two tools are named {name}"));
            }
        }
        Ok(())
    }

    /// Whether a caller holding `roles` (an admin: any) may choose it.
    pub fn admits(&self, roles: &[String], admin: bool) -> bool {
        admin || self.roles.is_empty() || self.roles.iter().any(|r| roles.contains(r))
    }

    /// The assistant a turn runs with under profile `name`: the profile's
    /// settings over the deployment's `base`. `keys` are the chain's API
    /// keys, opened (None: the deployment's key for that vendor, if any).
    pub fn assistant(&self, name: &str, base: &Assistant, keys: Vec<Option<Secret>>) -> Assistant {
        let chain = self
            .chain
            .iter()
            .zip(keys.into_iter().chain(std::iter::repeat(None)))
            .map(|(l, key)| {
                // The deployment's settings for this vendor give what the
                // link leaves out.
                let ours = base.vendors.iter().find(|p| p.endpoint.kind == l.provider);
                let (url, model) = vendor_default(l.provider);
                let endpoint = Endpoint {
                    kind: l.provider,
                    base_url: l
                        .base_url
                        .clone()
                        .or_else(|| ours.map(|p| p.endpoint.base_url.clone()))
                        .unwrap_or_else(|| url.to_string())
                        .trim_end_matches('/')
                        .to_string(),
                    model: l
                        .model
                        .clone()
                        .or_else(|| ours.map(|p| p.endpoint.model.clone()))
                        .unwrap_or_else(|| model.to_string()),
                    max_output_tokens: self.max_output_tokens.unwrap_or_else(|| {
                        ours.map_or(base.max_output_tokens(), |p| p.endpoint.max_output_tokens)
                    }),
                    temperature: self.temperature,
                };
                Provider {
                    endpoint,
                    api_key: key.or_else(|| ours.and_then(|p| p.api_key.clone())),
                }
            })
            .collect();
        Assistant {
            chain,
            name: self
                .assistant_name
                .clone()
                .unwrap_or_else(|| base.name.clone()),
            system_prompt: (self.system_prompt.clone())
                .unwrap_or_else(|| base.system_prompt.clone()),
            profile: name.to_string(),
            profile_budget: Budget {
                tokens: self.daily_token_budget,
                cost: self.daily_cost_budget_usd,
            },
            tools: self.tools.iter().map(ToolDef::tool).collect(),
            show_tools: self.show_tools,
            ..base.clone()
        }
    }
}

/// The profile name a session stores: None for the default.
pub fn stored_name(name: &str) -> Option<String> {
    (name != DEFAULT_PROFILE).then(|| name.to_string())
}

#[cfg(test)]
mod tests;
