//! Mentions: `@name` in a message's text, resolved when it is sent to the
//! people who may read the session, and stored with the message. Pure.
//!
//! - **Who can be mentioned.** The session's owner, its members and the
//!   agent it is assigned to: only people who may read the message, so
//!   the `mention` frame (which carries an excerpt) tells nobody anything
//!   they could not read. A handle names a person whose user id it is, or
//!   whose display name it is with the spaces left out, or whose first
//!   name it is when no one else here has that first name; case does not
//!   matter. Names are those the session has seen on its sockets.
//! - **What is stored.** The message carries `mentions`: each person it
//!   named, `{id, name}`, at most [`MAX_MENTIONS`], never its author.
//!   Edits do not change them.
//! - **Where it goes.** Each person mentioned gets a `mention` frame on
//!   their sockets in their *other* sessions (in this one they get the
//!   message itself), through their per-user object (`crate::hub`), which
//!   knows which sessions they have sockets in. Someone who blocked the
//!   author is not told.

use crate::protocol::UserRef;

/// The most people one message mentions; further handles are text.
pub const MAX_MENTIONS: usize = 10;
/// The longest handle read after an `@`.
pub const MAX_HANDLE_CHARS: usize = 64;
/// How much of the message a `mention` frame carries.
pub const EXCERPT_CHARS: usize = 140;

fn handle_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '|')
}

/// The handles of a text: an `@` at its start or after anything but a
/// letter or digit (so `ann@example.com` is none), then letters, digits,
/// `.`, `_`, `-` or `|` (ids like `auth0|123`), without a trailing `.` or
/// `-`. Lowercased, distinct, in order.
pub fn handles(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        let starts = c == '@' && prev.is_none_or(|p| !p.is_alphanumeric());
        prev = Some(c);
        if !starts {
            continue;
        }
        let rest = &text[i + 1..];
        let len: usize = rest
            .chars()
            .take_while(|c| handle_char(*c))
            .take(MAX_HANDLE_CHARS)
            .map(char::len_utf8)
            .sum();
        let h = rest[..len].trim_end_matches(['.', '-']).to_lowercase();
        if !h.is_empty() && !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

/// Someone who may be mentioned: their id and the name the session knows
/// them by (their id when it knows none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub name: String,
}

fn squashed(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

fn first_name(name: &str) -> String {
    name.split_whitespace().next().unwrap_or("").to_lowercase()
}

/// The people `handles` name among `people` (see the module doc), the
/// author left out, in the order named, at most [`MAX_MENTIONS`].
pub fn resolve(handles: &[String], people: &[Person], author: &str) -> Vec<UserRef> {
    let mut out: Vec<UserRef> = Vec::new();
    for h in handles {
        let by_id = people.iter().find(|p| p.id.to_lowercase() == *h);
        let by_name = || people.iter().find(|p| squashed(&p.name) == *h);
        let by_first = || {
            let mut same = people.iter().filter(|p| first_name(&p.name) == *h);
            match (same.next(), same.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            }
        };
        let Some(p) = by_id.or_else(by_name).or_else(by_first) else {
            continue;
        };
        if p.id != author && !out.iter().any(|u| u.id == p.id) {
            out.push(UserRef {
                id: p.id.clone(),
                name: p.name.clone(),
            });
        }
        if out.len() == MAX_MENTIONS {
            break;
        }
    }
    out
}

/// The start of a message, for a `mention` frame: at most
/// [`EXCERPT_CHARS`] characters, `…` when cut.
pub fn excerpt(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[cfg(test)]
mod tests;
