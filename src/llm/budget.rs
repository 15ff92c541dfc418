//! Prompt budgeting. Pure.
//!
//! **How tokens are estimated.** Exact counts need each vendor's tokenizer,
//! which is neither small nor shared, so Confab estimates conservatively:
//! every 4 ASCII characters count as one token (English averages a little
//! over 4 per token), and every other character counts as a whole token
//! (CJK and emoji often take one or more each). Each turn adds 4 tokens of
//! framing. The estimate errs high, so a prompt that fits the estimate fits
//! the model.
//!
//! **What goes in.** The system prompt always; then turns from the newest
//! backwards while they fit the budget. The newest turn (the one being
//! answered) is always included, whatever its size: message length is
//! already bounded by `MAX_MESSAGE_CHARS`.

use super::{Prompt, Role, Turn};

/// Framing tokens per turn (role markers, separators).
pub const TURN_OVERHEAD: u64 = 4;
/// What one image is counted as. Vendors charge by its size (OpenAI about
/// 765 tokens for a 1024 px square at high detail, Anthropic about
/// width × height / 750); images are at most 1600 px on their longest side
/// when the chat page sends them, which this covers.
pub const IMAGE_TOKENS: u64 = 1600;

/// A turn's estimated size: its text, images and framing.
fn cost(t: &Turn) -> u64 {
    let calls: u64 = t
        .calls
        .iter()
        .map(|c| estimate(&c.name) + estimate(&c.arguments.to_string()) + TURN_OVERHEAD)
        .sum();
    let result = t.result.as_ref().map_or(0, |r| estimate(&r.content));
    estimate(&t.text) + IMAGE_TOKENS * t.images.len() as u64 + TURN_OVERHEAD + calls + result
}

pub fn estimate(text: &str) -> u64 {
    let (ascii, other) = text.chars().fold((0u64, 0u64), |(a, o), c| {
        if c.is_ascii() {
            (a + 1, o)
        } else {
            (a, o + 1)
        }
    });
    ascii.div_ceil(4) + other
}

/// The system prompt plus as much recent history (oldest first) as fits
/// `budget` tokens.
pub fn fit(system: &str, history: &[Turn], budget: u64) -> Prompt {
    let mut used = estimate(system) + TURN_OVERHEAD;
    let mut keep = 0;
    for (i, t) in history.iter().rev().enumerate() {
        let cost = cost(t);
        if i > 0 && used + cost > budget {
            break;
        }
        used += cost;
        keep += 1;
    }
    // A function's result whose call was trimmed away would be refused
    // by every vendor: the prompt starts after it.
    let mut kept = &history[history.len() - keep..];
    while kept.first().is_some_and(|t| t.role == Role::Tool) {
        kept = &kept[1..];
    }
    Prompt {
        system: system.to_string(),
        turns: kept.to_vec(),
        tools: Vec::new(),
        no_calls: false,
    }
}

/// What a turn may cost at most, by the same estimate: the prompt as sent
/// plus the longest reply allowed. Reserved against the daily budget
/// before the turn starts.
pub fn turn_estimate(prompt: &Prompt, max_output_tokens: u32) -> u64 {
    let input: u64 = prompt.turns.iter().map(cost).sum();
    estimate(&prompt.system) + TURN_OVERHEAD + input + max_output_tokens as u64
}

/// Whom an assistant turn is charged to, and what it reserved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Charge {
    pub user: String,
    /// The UTC day the reservation was made on; settled on the same day.
    pub day: String,
    /// Tokens reserved.
    pub reserved: u64,
    /// Nano-dollars reserved (0 without a budget in money).
    #[serde(default)]
    pub reserved_nanos: u64,
    /// The assistant profile the turn ran under (`crate::llm::profile`);
    /// absent in charges made before profiles: the default.
    #[serde(default = "default_profile")]
    pub profile: String,
    /// Whether the profile's day holds the same reservation (it has a
    /// budget of its own).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub profile_held: bool,
}

fn default_profile() -> String {
    crate::llm::DEFAULT_PROFILE.to_string()
}

impl Charge {
    /// A turn charged to `user` under `profile` that reserved nothing (no
    /// budgets).
    pub fn unreserved(user: &str, profile: &str, now: i64) -> Charge {
        Charge {
            user: user.to_string(),
            day: crate::limits::utc_day(now),
            reserved: 0,
            reserved_nanos: 0,
            profile: profile.to_string(),
            profile_held: false,
        }
    }

    /// Whether a release has anything to give back.
    pub fn holds(&self) -> bool {
        self.reserved > 0 || self.reserved_nanos > 0
    }
}

/// What a turn asks to reserve of a user's day and, when its profile has
/// a budget, of the profile's day, against which budgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub user: String,
    pub now: i64,
    pub tokens: u64,
    /// 0: no token budget.
    pub token_budget: u64,
    pub cost: crate::llm::price::Usd,
    pub cost_budget: Option<crate::llm::price::Usd>,
    pub profile: String,
    /// The profile's own budget, all its users together.
    pub profile_budget: crate::llm::config::Budget,
}

impl Reservation {
    /// The nano-dollars reserved: the most the turn can cost, when any
    /// budget is in money.
    pub fn nanos(&self) -> u64 {
        let in_money = self.cost_budget.is_some() || self.profile_budget.cost.is_some();
        if in_money {
            self.cost.nanos()
        } else {
            0
        }
    }
}

/// What a turn for `user` reserves before it starts: its prompt as sent
/// plus the longest reply, in tokens and, at the chain's dearest prices,
/// in money. None when no budget applies.
pub fn reservation(
    a: &crate::llm::config::Assistant,
    prompt: &Prompt,
    user: &str,
    now: i64,
) -> Option<Reservation> {
    if a.daily_token_budget == 0 && a.daily_cost_budget.is_none() && !a.profile_budget.limits() {
        return None;
    }
    let prompt_tokens = turn_estimate(prompt, 0);
    Some(Reservation {
        user: user.to_string(),
        now,
        tokens: prompt_tokens + a.max_output_tokens() as u64,
        token_budget: a.daily_token_budget,
        cost: a.most_cost(prompt_tokens),
        cost_budget: a.daily_cost_budget,
        profile: a.profile.clone(),
        profile_budget: a.profile_budget,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Role;

    fn turn(text: &str) -> Turn {
        Turn {
            role: Role::User,
            text: text.into(),
            images: Vec::new(),
            ..Default::default()
        }
    }

    #[test]
    fn estimates() {
        assert_eq!(estimate(""), 0);
        assert_eq!(estimate("abcd"), 1);
        assert_eq!(estimate("abcde"), 2);
        assert_eq!(estimate("日本語"), 3);
        assert_eq!(estimate("hi 👋"), 2);
    }

    #[test]
    fn keeps_the_newest_turns_that_fit() {
        // Each 40-char turn costs 10 + 4 = 14; the system prompt 1 + 4 = 5.
        let history: Vec<Turn> = (0..10)
            .map(|i| turn(&format!("{i}{}", "x".repeat(39))))
            .collect();
        let p = fit("sys.", &history, 5 + 14 * 3);
        assert_eq!(p.turns.len(), 3);
        assert!(p.turns[0].text.starts_with('7') && p.turns[2].text.starts_with('9'));
        assert_eq!(fit("sys.", &history, 5 + 14 * 3 - 1).turns.len(), 2);
        assert_eq!(fit("sys.", &history, 10_000).turns.len(), 10);
    }

    #[test]
    fn a_turn_estimate_covers_prompt_and_longest_reply() {
        let p = fit("sys.", &[turn("abcd"), turn("日本")], 1000);
        // (1 + 4) system, (1 + 4) and (2 + 4) turns, 100 out.
        assert_eq!(turn_estimate(&p, 100), 5 + 5 + 6 + 100);
        // Images count too.
        let mut pictured = turn("abcd");
        pictured.images = vec![
            crate::llm::Image {
                media_type: "image/png",
                base64: "AAAA".into()
            };
            2
        ];
        let p = fit("sys.", &[pictured], 10_000);
        assert_eq!(turn_estimate(&p, 0), 5 + 5 + 2 * IMAGE_TOKENS);
        assert!(
            fit(
                "sys.",
                &[turn("a"), p.turns[0].clone()],
                5 + 5 + 2 * IMAGE_TOKENS
            )
            .turns
            .len()
                == 1
        );
    }

    #[test]
    fn the_newest_turn_is_always_included() {
        let history = vec![turn("old"), turn(&"y".repeat(4000))];
        let p = fit("a long system prompt", &history, 10);
        assert_eq!(p.turns.len(), 1);
        assert_eq!(p.turns[0].text.len(), 4000);
        assert!(fit("s", &[], 10).turns.is_empty());
    }
}
