//! Search over encrypted history through a blind index. Pure: words, their
//! keyed hashes, queries, cursors and snippets, tested natively.
//!
//! D1 never holds a message's words, only `term(word)`: HMAC-SHA256 under
//! the index key (derived from the keyring entry `SEARCH_KEY_ID`, its own
//! purpose, never a sealing key), cut to 128 bits. A query's words are
//! hashed the same way and matched exactly. What the index reveals to
//! someone who reads D1 without the key: how many distinct words each
//! message has, and which messages share a word (equal words give equal
//! hashes), so the frequency of a term can be counted. It does not reveal
//! any word, its length or its position, nor anything of a message that
//! is deleted (its terms go with it). Words are lowercased runs of letters
//! and digits: no stemming, no prefixes, and a script written without
//! spaces is matched on whole runs.

use crate::error::AppError;

/// Shortest and longest word indexed (in chars); longer words are cut.
pub const MIN_WORD_CHARS: usize = 2;
pub const MAX_WORD_CHARS: usize = 64;
/// Most distinct terms indexed per message (the first ones).
pub const MAX_TERMS_PER_MESSAGE: usize = 256;
/// Most words in a query, and its longest text.
pub const MAX_QUERY_WORDS: usize = 8;
pub const MAX_QUERY_CHARS: usize = 256;
/// The context a snippet shows around its first hit (in chars).
const SNIPPET_BEFORE: usize = 60;
const SNIPPET_CHARS: usize = 200;

/// The index key (32 bytes), derived from the keyring.
#[derive(Clone, PartialEq, Eq)]
pub struct IndexKey(pub [u8; 32]);

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexKey(..)")
    }
}

/// The label the index key is derived under.
pub const KEY_LABEL: &str = "confab/search-index";

impl IndexKey {
    /// A normalized word's term: 32 hex digits.
    pub fn term(&self, word: &str) -> String {
        let mac = crate::crypto::hmac_sha256(&self.0, word.as_bytes());
        mac[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The distinct terms of a message's text.
    pub fn terms(&self, text: &str) -> Vec<String> {
        words(text)
            .into_iter()
            .take(MAX_TERMS_PER_MESSAGE)
            .map(|w| self.term(&w))
            .collect()
    }
}

/// The byte spans of a text's words (runs of letters and digits).
fn spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        while chars.next_if(|(_, c)| !c.is_alphanumeric()).is_some() {}
        let (start, _) = *chars.peek()?;
        let mut end = start;
        while let Some((i, c)) = chars.next_if(|(_, c)| c.is_alphanumeric()) {
            end = i + c.len_utf8();
        }
        Some((start, end))
    })
}

/// A word as indexed: lowercased and cut to `MAX_WORD_CHARS`; None when
/// too short to index.
fn normalize(word: &str) -> Option<String> {
    let w: String = word.to_lowercase().chars().take(MAX_WORD_CHARS).collect();
    (w.chars().count() >= MIN_WORD_CHARS).then_some(w)
}

/// A text's distinct normalized words, in first-seen order.
pub fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (a, b) in spans(text) {
        if let Some(w) = normalize(&text[a..b]) {
            if !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

fn bad(code: &'static str, message: &str) -> AppError {
    AppError::bad_request(code, message)
}

/// A search's words (every one must match), after checking the query.
pub fn query_words(q: &str) -> Result<Vec<String>, AppError> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(bad("query_too_long", "q is at most 256 characters"));
    }
    let w = words(q);
    if w.is_empty() {
        return Err(bad(
            "invalid_query",
            "q needs a word of at least 2 letters or digits",
        ));
    }
    if w.len() > MAX_QUERY_WORDS {
        return Err(bad("query_too_long", "q has at most 8 words"));
    }
    Ok(w)
}

/// Where a page of results ends: the last result's time, session and seq.
/// Results are newest first, ties broken by session id then seq, both
/// descending, so pages neither repeat nor skip across D1 shards.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub created_at: i64,
    pub session: String,
    pub seq: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.created_at, self.seq, self.session)
    }

    pub fn decode(s: &str) -> Result<Cursor, AppError> {
        let invalid = || bad("invalid_cursor", "cursor is not one this API issued");
        let mut parts = s.splitn(3, '.');
        let (Some(at), Some(seq), Some(session)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        Ok(Cursor {
            created_at: at.parse().map_err(|_| invalid())?,
            seq: seq.parse().map_err(|_| invalid())?,
            session: Some(session)
                .filter(|s| crate::ids::is_valid_session_id(s))
                .ok_or_else(invalid)?
                .to_string(),
        })
    }
}

/// A piece of a snippet: text, and whether it is a word the query matched.
/// Clients render pieces as text (never as markup), marking the hits.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Piece {
    pub text: String,
    pub hit: bool,
}

/// The part of `text` around its first matched word, in pieces; "…" marks
/// text cut at either end. No hit (a hash collision, or an edit racing the
/// index): the text's start.
pub fn snippet(text: &str, query: &[String]) -> Vec<Piece> {
    let hits: Vec<(usize, usize)> = spans(text)
        .filter(|&(a, b)| normalize(&text[a..b]).is_some_and(|w| query.contains(&w)))
        .collect();
    let first = hits.first().map_or(0, |h| h.0);
    let start = back_chars(text, first, SNIPPET_BEFORE);
    let end = text[start..]
        .char_indices()
        .nth(SNIPPET_CHARS)
        .map_or(text.len(), |(i, _)| start + i);
    let mut out = Vec::new();
    let mut push = |text: String, hit: bool| {
        if text.is_empty() {
            return;
        }
        match out.last_mut() {
            Some(Piece { text: t, hit: h }) if *h == hit => t.push_str(&text),
            _ => out.push(Piece { text, hit }),
        }
    };
    if start > 0 {
        push("…".into(), false);
    }
    let mut at = start;
    for &(a, b) in hits.iter().filter(|&&(a, b)| a >= start && b <= end) {
        push(text[at..a].to_string(), false);
        push(text[a..b].to_string(), true);
        at = b;
    }
    push(text[at..end].to_string(), false);
    if end < text.len() {
        push("…".into(), false);
    }
    out
}

/// The byte index `n` chars before `at` (or 0), moved forward to the start
/// of a word so a snippet does not open mid-word.
fn back_chars(text: &str, at: usize, n: usize) -> usize {
    let Some((start, _)) = text[..at].char_indices().rev().nth(n.saturating_sub(1)) else {
        return 0;
    };
    if start == 0 {
        return 0;
    }
    text[start..at]
        .char_indices()
        .find(|(_, c)| c.is_whitespace())
        .map_or(start, |(i, c)| start + i + c.len_utf8())
}

#[cfg(test)]
mod tests;
