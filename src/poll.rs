//! Polls: a message that asks its text as a question with 2-10 options,
//! single or multiple choice, anonymous or not, open until an optional
//! closing time.
//!
//! What is pure lives here: the shape a `send` asks for (`PollSpec`) and
//! its rules, the rules of a ballot, and the tally every socket is shown.
//! The session log stores the poll (options sealed like the text) and one
//! row per (user, choice); a vote replaces the user's whole ballot, so a
//! user counts once however often they vote or resend.

use crate::protocol::FrameError;
use serde::{Deserialize, Serialize};

/// Fewest and most options a poll may have.
pub const MIN_OPTIONS: usize = 2;
pub const MAX_OPTIONS: usize = 10;
/// Longest option, in characters.
pub const MAX_OPTION_CHARS: usize = 100;
/// Longest a poll may stay open: 30 days.
pub const MAX_OPEN_MS: i64 = 30 * 24 * 3600 * 1000;

/// A poll as a `send` asks for it (`poll` beside the question in `text`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PollSpec {
    pub options: Vec<String>,
    /// Voters may pick several options (else at most one).
    #[serde(default)]
    pub multiple: bool,
    /// Tallies show counts only, never who voted what.
    #[serde(default)]
    pub anonymous: bool,
    /// When voting ends (unix ms); none: open while the session lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closes_at: Option<i64>,
}

impl PollSpec {
    /// The rules that need no clock: 2-10 distinct, non-empty options of
    /// at most 100 characters each.
    pub fn check(&self) -> Result<(), FrameError> {
        let n = self.options.len();
        if !(MIN_OPTIONS..=MAX_OPTIONS).contains(&n) {
            return Err(invalid(format!(
                "a poll has {MIN_OPTIONS}-{MAX_OPTIONS} options, not {n}"
            )));
        }
        for (i, o) in self.options.iter().enumerate() {
            let chars = o.chars().count();
            if o.trim().is_empty() || chars > MAX_OPTION_CHARS || o.chars().any(char::is_control) {
                return Err(invalid(format!(
                    "option {i} must be 1-{MAX_OPTION_CHARS} characters, not blank, without control characters"
                )));
            }
            if self.options[..i].iter().any(|p| p.trim() == o.trim()) {
                return Err(invalid(format!("option {i} repeats an earlier option")));
            }
        }
        Ok(())
    }

    /// The closing time, if any, must be after `now` and at most
    /// `MAX_OPEN_MS` later.
    pub fn check_closing(&self, now: i64) -> Result<(), FrameError> {
        match self.closes_at {
            Some(at) if at <= now => Err(invalid("closes_at is in the past".into())),
            Some(at) if at - now > MAX_OPEN_MS => Err(invalid(
                "a poll closes at most 30 days after it opens".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Whether voting has ended at `now`.
    pub fn closed_at(&self, now: i64) -> bool {
        self.closes_at.is_some_and(|at| now >= at)
    }

    /// Checks a ballot against the poll: every choice names an option,
    /// once, and a single-choice poll takes at most one. An empty ballot
    /// withdraws the user's vote.
    pub fn check_ballot(&self, choices: &[u32], now: i64) -> Result<(), Refusal> {
        if self.closed_at(now) {
            return Err(Refusal::Closed);
        }
        if !self.multiple && choices.len() > 1 {
            return Err(Refusal::OneChoice);
        }
        let n = self.options.len() as u32;
        if let Some(&c) = choices.iter().find(|&&c| c >= n) {
            return Err(Refusal::NoSuchOption(c));
        }
        if (1..choices.len()).any(|i| choices[..i].contains(&choices[i])) {
            return Err(Refusal::Repeated);
        }
        Ok(())
    }
}

fn invalid(message: String) -> FrameError {
    FrameError::new("invalid_poll", message)
}

/// Why a vote was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The message is not a poll.
    NotAPoll,
    Closed,
    OneChoice,
    NoSuchOption(u32),
    Repeated,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::NotAPoll => "not_a_poll",
            Refusal::Closed => "poll_closed",
            Refusal::OneChoice | Refusal::NoSuchOption(_) | Refusal::Repeated => "invalid_choice",
        }
    }

    pub fn message(self) -> String {
        match self {
            Refusal::NotAPoll => "that message is not a poll".into(),
            Refusal::Closed => "the poll is closed".into(),
            Refusal::OneChoice => "this poll takes one choice".into(),
            Refusal::NoSuchOption(c) => format!("the poll has no option {c}"),
            Refusal::Repeated => "a choice is repeated".into(),
        }
    }
}

/// Where a poll stands: votes per option, how many users voted, and (not
/// anonymous) who voted for each option. `mine` is the reader's own
/// ballot, in frames and pages addressed to one reader only.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub counts: Vec<u32>,
    pub voters: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub users: Option<Vec<Vec<String>>>,
    pub closed: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mine: Option<Vec<u32>>,
}

impl Tally {
    /// Counts `votes`, (user id, choice) rows in user order, as `reader`
    /// sees them (None: a frame for everyone).
    pub fn count(
        spec: &PollSpec,
        votes: &[(String, u32)],
        now: i64,
        reader: Option<&str>,
    ) -> Tally {
        let n = spec.options.len();
        let mut counts = vec![0u32; n];
        let mut users = vec![Vec::new(); n];
        let mut voters = 0u32;
        let mut last: Option<&str> = None;
        for (user, choice) in votes {
            let Some(count) = counts.get_mut(*choice as usize) else {
                continue;
            };
            *count += 1;
            users[*choice as usize].push(user.clone());
            if last != Some(user.as_str()) {
                voters += 1;
                last = Some(user);
            }
        }
        let mine = reader.map(|r| {
            votes
                .iter()
                .filter(|(u, _)| u == r)
                .map(|(_, c)| *c)
                .collect()
        });
        Tally {
            counts,
            voters,
            users: (!spec.anonymous).then_some(users),
            closed: spec.closed_at(now),
            mine,
        }
    }
}

/// A poll as history and `message` frames show it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PollView {
    pub options: Vec<String>,
    pub multiple: bool,
    pub anonymous: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub closes_at: Option<i64>,
    pub tally: Tally,
}

impl PollView {
    pub fn new(spec: PollSpec, tally: Tally) -> PollView {
        PollView {
            options: spec.options,
            multiple: spec.multiple,
            anonymous: spec.anonymous,
            closes_at: spec.closes_at,
            tally,
        }
    }

    /// The poll as one line of the assistant's prompt: the question, then
    /// each option with its votes (counts only, never who).
    pub fn describe(&self, question: &str) -> String {
        let options: Vec<String> = (self.options.iter().zip(&self.tally.counts))
            .map(|(o, n)| format!("{o} ({n})"))
            .collect();
        let state = if self.tally.closed { "closed" } else { "open" };
        format!("{question} [poll, {state}: {}]", options.join(" | "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(n: usize) -> PollSpec {
        PollSpec {
            options: (0..n).map(|i| format!("option {i}")).collect(),
            multiple: false,
            anonymous: false,
            closes_at: None,
        }
    }

    #[test]
    fn a_poll_has_two_to_ten_distinct_options() {
        for n in [0, 1, 11] {
            let e = spec(n).check().unwrap_err();
            assert_eq!(e.code, "invalid_poll");
            assert!(e.message.contains(&format!("not {n}")), "{}", e.message);
        }
        assert!(spec(2).check().is_ok());
        assert!(spec(10).check().is_ok());
        let mut s = spec(3);
        s.options[2] = " option 0 ".into();
        assert!(s.check().unwrap_err().message.contains("repeats"));
        s.options[2] = "  ".into();
        assert!(s.check().unwrap_err().message.contains("option 2"));
        s.options[2] = "x".repeat(MAX_OPTION_CHARS + 1);
        assert!(s.check().is_err());
        s.options[2] = "x".repeat(MAX_OPTION_CHARS);
        assert!(s.check().is_ok());
    }

    #[test]
    fn closing_time_is_in_the_future_within_thirty_days() {
        let mut s = spec(2);
        assert!(s.check_closing(1000).is_ok());
        s.closes_at = Some(1000);
        assert!(s.check_closing(1000).is_err());
        s.closes_at = Some(1000 + MAX_OPEN_MS);
        assert!(s.check_closing(1000).is_ok());
        s.closes_at = Some(1001 + MAX_OPEN_MS);
        assert!(s.check_closing(1000).is_err());
        assert!(!s.closed_at(1000 + MAX_OPEN_MS));
        assert!(s.closed_at(1001 + MAX_OPEN_MS));
    }

    #[test]
    fn ballots_follow_the_poll() {
        let mut s = spec(3);
        assert_eq!(s.check_ballot(&[0, 1], 0), Err(Refusal::OneChoice));
        assert_eq!(s.check_ballot(&[3], 0), Err(Refusal::NoSuchOption(3)));
        assert_eq!(s.check_ballot(&[2], 0), Ok(()));
        assert_eq!(s.check_ballot(&[], 0), Ok(()));
        s.multiple = true;
        assert_eq!(s.check_ballot(&[0, 2, 1], 0), Ok(()));
        assert_eq!(s.check_ballot(&[0, 2, 0], 0), Err(Refusal::Repeated));
        s.closes_at = Some(10);
        assert_eq!(s.check_ballot(&[0], 10), Err(Refusal::Closed));
        assert_eq!(Refusal::Closed.code(), "poll_closed");
    }

    #[test]
    fn the_tally_counts_users_once_and_hides_them_when_anonymous() {
        let mut s = spec(3);
        s.multiple = true;
        let votes = vec![
            ("ann".to_string(), 0),
            ("ann".to_string(), 2),
            ("bob".to_string(), 2),
        ];
        let t = Tally::count(&s, &votes, 0, Some("ann"));
        assert_eq!(t.counts, vec![1, 0, 2]);
        assert_eq!(t.voters, 2);
        assert_eq!(t.mine, Some(vec![0, 2]));
        let users = t.users.unwrap();
        assert_eq!(users[2], vec!["ann".to_string(), "bob".to_string()]);
        s.anonymous = true;
        let t = Tally::count(&s, &votes, 0, None);
        assert_eq!((t.users, t.mine), (None, None));
        let json = serde_json::to_string(&Tally::count(&s, &votes, 0, None)).unwrap();
        assert!(!json.contains("ann"), "{json}");
        let view = PollView::new(s.clone(), Tally::count(&s, &votes, 0, None));
        assert_eq!(
            view.describe("Which?"),
            "Which? [poll, open: option 0 (1) | option 1 (0) | option 2 (2)]"
        );
    }
}
