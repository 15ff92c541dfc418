//! The search index in D1 (`crate::search`): its rows, written by the
//! replication flush (`terms`, from `replica.rs`), and its reads: messages
//! holding every term of a query, newest first, in the sessions the caller
//! may read. Each D1 shard answers one page and the pages are merged, as
//! the session listings are.

use super::messages::MessageRow;
use super::{num, stmt, text};
use crate::crypto::{aad, Field, Keyring};
use crate::error::AppError;
use crate::search::{snippet, Cursor, IndexKey, Piece};
use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{D1Database, D1PreparedStatement};

/// What a flush needs to index messages for search (`crate::search`): the
/// keyring that opens their bodies and the index key. None: search is off.
#[derive(Clone, Copy)]
pub struct Indexer<'a> {
    pub keys: &'a Keyring,
    pub key: &'a IndexKey,
}

/// Most (term, seq) pairs in one statement's JSON parameter (about 45
/// bytes each, so well under `APPEND_JSON_BYTES`).
const TERMS_PER_STATEMENT: usize = 8192;

/// The search index's rows for these messages: their old terms go, and
/// each live message's words go in as keyed hashes. A body that does not
/// open is left out of the index (it is `unreadable` everywhere else too).
/// Terms are written only beside their message's row, so an erase that
/// raced the flush leaves none.
pub fn terms<'r>(
    db: &D1Database,
    ix: Indexer,
    session: &str,
    rows: impl Iterator<Item = &'r MessageRow>,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let mut seqs = Vec::new();
    let mut pairs = Vec::new();
    for r in rows {
        seqs.push(r.seq);
        if r.deleted_at.is_some() {
            continue;
        }
        if let Ok(text) = ix
            .keys
            .open(&aad(Field::MessageBody, session, Some(&r.id)), &r.body)
        {
            pairs.extend(ix.key.terms(&text).into_iter().map(|t| json!([t, r.seq])));
        }
    }
    if seqs.is_empty() {
        return Ok(vec![]);
    }
    let mut out = vec![stmt(
        db,
        "DELETE FROM search_terms WHERE session_id = ?1 AND seq IN (SELECT value FROM json_each(?2))",
        &[text(session), text(&json!(seqs).to_string())],
    )?];
    for chunk in pairs.chunks(TERMS_PER_STATEMENT) {
        out.push(stmt(
            db,
            "INSERT INTO search_terms (term, session_id, seq)
             SELECT json_extract(value, '$[0]'), ?1, json_extract(value, '$[1]') FROM json_each(?2)
              WHERE EXISTS (SELECT 1 FROM messages WHERE session_id = ?1 AND seq = json_extract(value, '$[1]'))
             ON CONFLICT DO NOTHING",
            &[text(session), text(&serde_json::Value::from(chunk.to_vec()).to_string())],
        )?);
    }
    Ok(out)
}

#[derive(Deserialize)]
struct Row {
    session_id: String,
    seq: i64,
    id: String,
    author_id: String,
    author_name: String,
    author_kind: String,
    body: String,
    created_at: i64,
    title: Option<String>,
}

impl Row {
    fn order(&self) -> (i64, &str, i64) {
        (self.created_at, &self.session_id, self.seq)
    }
}

/// One result: where the message is, who wrote it, and its snippet.
#[derive(Serialize)]
pub struct Hit {
    pub session_id: String,
    pub session_title: Option<String>,
    pub seq: i64,
    pub message_id: String,
    pub author: serde_json::Value,
    pub created_at: i64,
    pub snippet: Vec<Piece>,
}

/// A page of results and the cursor after it (None: the last page).
pub struct Found {
    pub hits: Vec<Hit>,
    pub next: Option<Cursor>,
}

/// The messages holding every one of `terms` (distinct), newest first: in
/// every session when `user` is None (an admin), else in those `user` owns
/// or is a member of. Deleted messages are never found.
pub async fn find(
    dbs: &[D1Database],
    keys: &Keyring,
    (terms, words): (&[String], &[String]),
    user: Option<&str>,
    (after, limit): (Option<&Cursor>, usize),
) -> Result<Found, AppError> {
    let terms_json = serde_json::to_string(terms).map_err(AppError::internal)?;
    let pages = super::each(dbs, |db| {
        find_in(db, &terms_json, terms.len(), user, after, limit + 1)
    })
    .await?;
    let mut rows = crate::shards::merge(pages, limit + 1, |a, b| b.order().cmp(&a.order()));
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = more.then(|| {
        let last = rows.last().expect("a full page has a last row");
        Cursor {
            created_at: last.created_at,
            session: last.session_id.clone(),
            seq: last.seq,
        }
    });
    // Bodies are opened only for the rows the merge keeps.
    let hits = rows.into_iter().map(|r| hit(keys, words, r)).collect();
    Ok(Found { hits, next })
}

fn hit(keys: &Keyring, words: &[String], r: Row) -> Hit {
    let text = keys
        .open(
            &aad(Field::MessageBody, &r.session_id, Some(&r.id)),
            &r.body,
        )
        .unwrap_or_default();
    let title = r.title.and_then(|t| {
        keys.open(&aad(Field::SessionTitle, &r.session_id, None), &t)
            .ok()
    });
    Hit {
        snippet: snippet(&text, words),
        session_title: title,
        author: serde_json::json!({"id": r.author_id, "name": r.author_name, "kind": r.author_kind}),
        seq: r.seq,
        message_id: r.id,
        created_at: r.created_at,
        session_id: r.session_id,
    }
}

async fn find_in(
    db: &D1Database,
    terms: &str,
    n: usize,
    user: Option<&str>,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<Vec<Row>, AppError> {
    // The postings of each term (the primary key's range scans), grouped
    // to the messages that hold them all, then the caller's sessions.
    let sql = "SELECT m.session_id, m.seq, m.id, m.author_id, m.author_name, m.author_kind,
                      m.body, m.created_at, s.title
                 FROM search_terms t
                 JOIN messages m ON m.session_id = t.session_id AND m.seq = t.seq
                 JOIN sessions s ON s.id = t.session_id
                WHERE t.term IN (SELECT value FROM json_each(?1))
                  AND m.deleted_at IS NULL
                  AND (?2 IS NULL OR s.owner_id = ?2
                       OR s.id IN (SELECT session_id FROM session_members WHERE user_id = ?2))
                  AND (?3 IS NULL OR (m.created_at, m.session_id, m.seq) < (?3, ?4, ?5))
                GROUP BY t.session_id, t.seq
               HAVING count(*) = ?6
                ORDER BY m.created_at DESC, m.session_id DESC, m.seq DESC
                LIMIT ?7";
    let null = wasm_bindgen::JsValue::NULL;
    let (at, session, seq) = match after {
        Some(c) => (num(c.created_at), text(&c.session), num(c.seq)),
        None => (null.clone(), null.clone(), null.clone()),
    };
    let user = user.map_or(null, text);
    let args = [
        text(terms),
        user,
        at,
        session,
        seq,
        num(n as i64),
        num(limit as i64),
    ];
    super::rows(stmt(db, sql, &args)?).await
}
