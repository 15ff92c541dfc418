//! The pre-send filter (`MODERATION_FILTER`). Pure.
//!
//! Every user's `send` is checked, either against a word list
//! (`MODERATION_WORDS`: words and phrases, matched whole and without
//! regard to case) or by a Workers AI moderation model (`MODERATION_AI_MODEL`,
//! Llama Guard by default, through the `AI` binding). A match is
//! `flag`ged (the message is stored and goes to the moderation queue,
//! reported by the filter) or `block`ed (refused with `message_blocked`,
//! nothing stored), as `MODERATION_ACTION` says.
//!
//! The word list runs in the object, before the commit: no network lies
//! on the way to the ack. The model is a network call: when it flags, it
//! runs after the ack; when it blocks, it must run before the commit, so
//! it adds its round trip to every send (the price of blocking by model).
//! A model that fails or answers something unreadable lets the message
//! through, logged: chat does not stop when the model does.
//!
//! Every decision is logged (`moderation_filter`) and kept in the session
//! log until the next flush writes it to the home shard's `filter_log`,
//! which admins read through `GET /v1/admin/filter`.

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};

/// What a match does.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Stored, and reported to the moderation queue.
    Flag,
    /// Refused before it is stored.
    Block,
}

/// What decided.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Words,
    Ai,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Words => "words",
            Source::Ai => "ai",
        }
    }
}

/// The most phrases a word list may hold, and the longest phrase.
pub const MAX_PHRASES: usize = 1000;
pub const MAX_PHRASE_WORDS: usize = 8;

/// Words and phrases to look for, each as its lowercased words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordList {
    phrases: Vec<Vec<String>>,
}

/// A text's words (runs of letters and digits), lowercased, in order.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl WordList {
    /// A comma-separated list; a phrase is matched as its words in a row.
    pub fn parse(list: &str) -> Result<WordList, String> {
        let phrases: Vec<Vec<String>> = list
            .split(',')
            .map(tokens)
            .filter(|p| !p.is_empty())
            .collect();
        if phrases.is_empty() {
            return Err("at least one word".into());
        }
        if phrases.len() > MAX_PHRASES {
            return Err(format!("at most {MAX_PHRASES} words or phrases"));
        }
        if phrases.iter().any(|p| p.len() > MAX_PHRASE_WORDS) {
            return Err(format!("phrases of at most {MAX_PHRASE_WORDS} words"));
        }
        Ok(WordList { phrases })
    }

    /// The first phrase of the list `text` holds, as the list has it.
    pub fn find(&self, text: &str) -> Option<String> {
        let words = tokens(text);
        self.phrases
            .iter()
            .find(|p| words.windows(p.len()).any(|w| w == p.as_slice()))
            .map(|p| p.join(" "))
    }
}

/// How messages are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Words(WordList),
    /// A Workers AI model that answers as Llama Guard does.
    Ai {
        model: String,
    },
}

/// The filter's settings; None in the configuration when it is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub check: Check,
    pub action: Action,
}

/// The moderation model unless `MODERATION_AI_MODEL` says otherwise.
pub const AI_MODEL: &str = "@cf/meta/llama-guard-3-8b";

impl Filter {
    /// From the `MODERATION_*` variables (empty ones read as unset).
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Filter>, ConfigError> {
        let invalid = |variable, expected: &str| ConfigError {
            variable,
            expected: expected.to_string(),
        };
        let action = match get("MODERATION_ACTION").as_deref().unwrap_or("flag") {
            "flag" => Action::Flag,
            "block" => Action::Block,
            _ => return Err(invalid("MODERATION_ACTION", "one of: flag, block")),
        };
        // Each is read and checked whatever the filter, so a bad value
        // shows before it is switched on.
        let words = get("MODERATION_WORDS")
            .map(|list| WordList::parse(&list).map_err(|e| invalid("MODERATION_WORDS", &e)))
            .transpose()?;
        let model = get("MODERATION_AI_MODEL").unwrap_or_else(|| AI_MODEL.to_string());
        let check = match get("MODERATION_FILTER").as_deref().unwrap_or("off") {
            "off" => return Ok(None),
            "words" => Check::Words(words.ok_or_else(|| {
                invalid(
                    "MODERATION_WORDS",
                    "a list of words, with MODERATION_FILTER=words",
                )
            })?),
            "ai" => Check::Ai { model },
            _ => return Err(invalid("MODERATION_FILTER", "one of: off, words, ai")),
        };
        Ok(Some(Filter { check, action }))
    }
}

/// What a moderation model said of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Safe,
    /// With the hazard categories it named (`S1`, `S10`, …).
    Unsafe(Vec<String>),
}

/// Reads a Llama Guard answer: `safe`, or `unsafe` and a line of
/// comma-separated categories. None for anything else.
pub fn verdict(answer: &str) -> Option<Verdict> {
    let mut lines = answer.trim().lines().map(str::trim);
    match lines.next()? {
        "safe" => Some(Verdict::Safe),
        "unsafe" => {
            let categories = lines
                .next()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|c| {
                    !c.is_empty() && c.len() <= 8 && c.chars().all(|ch| ch.is_ascii_alphanumeric())
                })
                .map(String::from)
                .collect();
            Some(Verdict::Unsafe(categories))
        }
        _ => None,
    }
}

/// One decision of the filter, as kept and shown to admins.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub id: String,
    pub at: i64,
    pub session_id: String,
    pub user_id: String,
    pub source: Source,
    /// `flagged` or `blocked`.
    pub action: Outcome,
    /// The phrase matched, or the model's categories.
    pub detail: String,
    /// The message's seq and id when it was stored (flagged).
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// What the filter did with a message.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Flagged,
    Blocked,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Flagged => "flagged",
            Outcome::Blocked => "blocked",
        }
    }
}

/// A decision id: `fd_` and 24 hex digits.
pub fn new_decision_id() -> String {
    format!("fd_{}", crate::ids::random_hex(12))
}

#[cfg(test)]
mod tests;
