//! Messages, their edits, reactions and read positions.
//!
//! Sequence numbers come from D1 itself: each insert takes
//! `sessions.last_seq + 1` and the `messages_seq` trigger bumps `last_seq` in
//! the same transaction. A whole group of sends is one batch (one round trip,
//! one transaction), so seqs are strictly increasing and gap-free, and nothing
//! about them lives in the Durable Object's memory.

use super::{changes, num, opt_num, stmt, text};
use crate::crypto::{aad, Field, Keyring};
use crate::error::AppError;
use crate::protocol::{Author, AuthorKind, MessageView, ReactionSummary, ReadPosition, TurnMeta};
use serde::Deserialize;
use worker::{D1Database, D1PreparedStatement};

/// A send waiting to be committed.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: String,
    pub client_id: String,
    pub author: Author,
    pub text: String,
    pub reply_to: Option<u64>,
    pub created_at: i64,
    /// For an assistant reply: what it cost, and whom to charge for it.
    pub turn: Option<(TurnMeta, Charge)>,
}

/// The stored message for a send; `duplicate` when its client id was
/// already stored (a retry), in which case `view` is the original.
#[derive(Debug, Clone)]
pub struct Committed {
    pub view: MessageView,
    pub duplicate: bool,
}

#[derive(Deserialize)]
struct MessageRow {
    seq: i64,
    id: String,
    client_id: Option<String>,
    author_id: String,
    author_name: String,
    author_kind: String,
    body: String,
    reply_to: Option<i64>,
    created_at: i64,
    edited_at: Option<i64>,
    deleted_at: Option<i64>,
    provider: Option<String>,
    model: Option<String>,
    tokens_in: Option<i64>,
    tokens_out: Option<i64>,
    ttft_ms: Option<i64>,
    latency_ms: Option<i64>,
    finish_reason: Option<String>,
    incomplete: i64,
}

impl MessageRow {
    /// Opens the body; a body that fails to open yields an empty text and
    /// the reason in `unreadable`, never an error for the whole page.
    fn into_view(self, keys: &Keyring, session_id: &str) -> MessageView {
        let deleted = self.deleted_at.is_some();
        let (text, unreadable) = if deleted {
            (String::new(), None)
        } else {
            match keys.open(
                &aad(Field::MessageBody, session_id, Some(&self.id)),
                &self.body,
            ) {
                Ok(t) => (t, None),
                Err(e) => (String::new(), Some(e.code().to_string())),
            }
        };
        let n = |v: Option<i64>| v.unwrap_or(0).max(0) as u64;
        let turn = self.provider.map(|provider| TurnMeta {
            provider,
            model: self.model.unwrap_or_default(),
            tokens_in: n(self.tokens_in),
            tokens_out: n(self.tokens_out),
            ttft_ms: n(self.ttft_ms),
            latency_ms: n(self.latency_ms),
            finish_reason: self.finish_reason.unwrap_or_default(),
            incomplete: self.incomplete != 0,
        });
        MessageView {
            seq: self.seq as u64,
            id: self.id,
            client_id: self.client_id,
            author: Author {
                id: self.author_id,
                name: self.author_name,
                kind: AuthorKind::parse(&self.author_kind).unwrap_or(AuthorKind::System),
            },
            text,
            reply_to: self.reply_to.map(|r| r as u64),
            created_at: self.created_at,
            edited_at: self.edited_at,
            deleted,
            unreadable,
            turn,
            reactions: Vec::new(),
        }
    }
}

const COLUMNS: &str = "seq, id, client_id, author_id, author_name, author_kind, body, reply_to, created_at, edited_at, deleted_at,
    provider, model, tokens_in, tokens_out, ttft_ms, latency_ms, finish_reason, incomplete";

/// Stores a group of sends in one transaction. One entry per input, in
/// order: `None` when the session no longer exists.
pub async fn commit(
    db: &D1Database,
    keys: &Keyring,
    session_id: &str,
    batch: &[NewMessage],
) -> Result<Vec<Option<Committed>>, AppError> {
    let insert = "INSERT INTO messages (session_id, seq, id, client_id, author_id, author_name, author_kind, body, reply_to, created_at,
                              provider, model, tokens_in, tokens_out, ttft_ms, latency_ms, finish_reason, incomplete)
        SELECT ?1, s.last_seq + 1, ?2, ?3, ?4, ?5, ?6, ?7,
               (SELECT r.seq FROM messages r WHERE r.session_id = ?1 AND r.seq = ?8), ?9,
               ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17
          FROM sessions s
         WHERE s.id = ?1
           AND NOT EXISTS (SELECT 1 FROM messages WHERE session_id = ?1 AND client_id = ?3 AND author_kind = ?6 AND author_id = ?4)";
    let select = format!("SELECT {COLUMNS} FROM messages WHERE session_id = ?1 AND client_id = ?2 AND author_kind = ?3 AND author_id = ?4");
    let mut stmts: Vec<D1PreparedStatement> = Vec::with_capacity(batch.len() * 2);
    let mut usage: Vec<D1PreparedStatement> = Vec::new();
    for m in batch {
        let t = m.turn.as_ref().map(|(t, _)| t);
        let meta_text =
            |f: fn(&TurnMeta) -> &str| t.map(|t| text(f(t))).unwrap_or(wasm_bindgen::JsValue::NULL);
        let meta_num = |f: fn(&TurnMeta) -> u64| {
            t.map(|t| num(f(t) as i64))
                .unwrap_or(wasm_bindgen::JsValue::NULL)
        };
        stmts.push(stmt(
            db,
            insert,
            &[
                text(session_id),
                text(&m.id),
                text(&m.client_id),
                text(&m.author.id),
                text(&m.author.name),
                text(m.author.kind.as_str()),
                text(&keys.seal(&aad(Field::MessageBody, session_id, Some(&m.id)), &m.text)),
                opt_num(m.reply_to),
                num(m.created_at),
                meta_text(|t| &t.provider),
                meta_text(|t| &t.model),
                meta_num(|t| t.tokens_in),
                meta_num(|t| t.tokens_out),
                meta_num(|t| t.ttft_ms),
                meta_num(|t| t.latency_ms),
                meta_text(|t| &t.finish_reason),
                num(t.is_some_and(|t| t.incomplete) as i64),
            ],
        )?);
        if let Some((t, charge)) = &m.turn {
            usage.extend(usage_statements(db, session_id, charge, t)?);
        }
        stmts.push(stmt(
            db,
            &select,
            &[
                text(session_id),
                text(&m.client_id),
                text(m.author.kind.as_str()),
                text(&m.author.id),
            ],
        )?);
    }
    stmts.extend(usage);
    let results = db.batch(stmts).await.map_err(AppError::internal)?;
    let mut out = Vec::with_capacity(batch.len());
    for (m, pair) in batch.iter().zip(results[..batch.len() * 2].chunks(2)) {
        let row = super::results::<MessageRow>(&pair[1])?.into_iter().next();
        out.push(row.map(|r| {
            let duplicate = r.id != m.id;
            Committed {
                view: r.into_view(keys, session_id),
                duplicate,
            }
        }));
    }
    Ok(out)
}

/// Which slice of history to read.
#[derive(Debug, Clone, Copy)]
pub enum Page {
    /// The `limit` messages just below `before` (all of history when None),
    /// returned oldest first.
    Before { before: Option<u64>, limit: u32 },
    /// The `limit` messages just above `after`, oldest first.
    After { after: u64, limit: u32 },
}

/// A page of messages with their reactions, plus the session's last seq, in
/// one round trip.
pub async fn page(
    db: &D1Database,
    keys: &Keyring,
    session_id: &str,
    page: Page,
) -> Result<(Vec<MessageView>, u64), AppError> {
    // The reaction query covers exactly the seq range of the message query.
    let (window, bound, limit) = match page {
        Page::Before { before, limit } => (
            "SELECT seq FROM messages WHERE session_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
            before.unwrap_or(i64::MAX as u64).min(9_007_199_254_740_991),
            limit,
        ),
        Page::After { after, limit } => (
            "SELECT seq FROM messages WHERE session_id = ?1 AND seq > ?2 ORDER BY seq ASC LIMIT ?3",
            after,
            limit,
        ),
    };
    let messages = format!(
        "SELECT {COLUMNS} FROM messages WHERE session_id = ?1 AND seq IN ({window}) ORDER BY seq ASC"
    );
    let reactions = format!(
        "SELECT seq, emoji, user_id FROM reactions WHERE session_id = ?1 AND seq IN ({window}) ORDER BY seq, emoji, created_at, user_id"
    );
    let args = [text(session_id), num(bound as i64), num(limit)];
    let results = db
        .batch(vec![
            stmt(db, &messages, &args)?,
            stmt(db, &reactions, &args)?,
            stmt(
                db,
                "SELECT last_seq FROM sessions WHERE id = ?1",
                &[text(session_id)],
            )?,
        ])
        .await
        .map_err(AppError::internal)?;
    let mut views: Vec<MessageView> = super::results::<MessageRow>(&results[0])?
        .into_iter()
        .map(|r| r.into_view(keys, session_id))
        .collect();

    #[derive(Deserialize)]
    struct ReactionRow {
        seq: i64,
        emoji: String,
        user_id: String,
    }
    for r in super::results::<ReactionRow>(&results[1])? {
        if let Some(v) = views.iter_mut().find(|v| v.seq == r.seq as u64) {
            match v.reactions.iter_mut().find(|s| s.emoji == r.emoji) {
                Some(s) => s.users.push(r.user_id),
                None => v.reactions.push(ReactionSummary {
                    emoji: r.emoji,
                    users: vec![r.user_id],
                }),
            }
        }
    }

    #[derive(Deserialize)]
    struct LastSeq {
        last_seq: i64,
    }
    let last_seq = super::results::<LastSeq>(&results[2])?
        .first()
        .map(|r| r.last_seq.max(0) as u64)
        .unwrap_or(0);
    Ok((views, last_seq))
}

/// What an author-only change found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Done,
    NotFound,
    Forbidden,
    Deleted,
}

/// Who may change a message: its author, matched by kind as well as id,
/// so no token subject can pass for the assistant, the system or an agent.
#[derive(Debug, Clone, Copy)]
pub struct AuthorKey<'a> {
    pub id: &'a str,
    pub kind: AuthorKind,
}

#[derive(Deserialize)]
struct OwnerRow {
    author_id: String,
    author_kind: String,
    deleted_at: Option<i64>,
}

impl OwnerRow {
    fn owned_by(&self, who: AuthorKey<'_>) -> bool {
        self.author_id == who.id && self.author_kind == who.kind.as_str()
    }
}

fn classify(changed: bool, row: Option<&OwnerRow>, who: AuthorKey<'_>) -> Change {
    match row {
        _ if changed => Change::Done,
        None => Change::NotFound,
        Some(r) if !r.owned_by(who) => Change::Forbidden,
        Some(r) if r.deleted_at.is_some() => Change::Deleted,
        Some(_) => Change::NotFound,
    }
}

const OWNER: &str =
    "SELECT author_id, author_kind, deleted_at FROM messages WHERE session_id = ?1 AND seq = ?2";
/// The author's own live message: ?1 session, ?2 seq, ?3 author id, ?4 kind.
const OWN: &str =
    "session_id = ?1 AND seq = ?2 AND author_id = ?3 AND author_kind = ?4 AND deleted_at IS NULL";

/// The arguments `OWN` names: session, seq, author id and kind.
fn own_args(session_id: &str, seq: u64, who: AuthorKey<'_>) -> Vec<wasm_bindgen::JsValue> {
    vec![
        text(session_id),
        num(seq as i64),
        text(who.id),
        text(who.kind.as_str()),
    ]
}

/// Replaces the text of the author's own message, keeping the old text in
/// the edit history, of which only the newest `keep` entries stay. Two
/// round trips: the message id (part of the AAD) is read first.
#[allow(clippy::too_many_arguments)]
pub async fn edit(
    db: &D1Database,
    keys: &Keyring,
    session_id: &str,
    seq: u64,
    who: AuthorKey<'_>,
    body: &str,
    now: i64,
    keep: u32,
) -> Result<Change, AppError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        author_id: String,
        author_kind: String,
        deleted_at: Option<i64>,
    }
    let row: Option<Row> = stmt(
        db,
        "SELECT id, author_id, author_kind, deleted_at FROM messages WHERE session_id = ?1 AND seq = ?2",
        &[text(session_id), num(seq as i64)],
    )?
    .first(None)
    .await
    .map_err(AppError::internal)?;
    let Some(row) = row else {
        return Ok(Change::NotFound);
    };
    let owner = OwnerRow {
        author_id: row.author_id,
        author_kind: row.author_kind,
        deleted_at: row.deleted_at,
    };
    if !owner.owned_by(who) || owner.deleted_at.is_some() {
        return Ok(classify(false, Some(&owner), who));
    }
    let sealed = keys.seal(&aad(Field::MessageBody, session_id, Some(&row.id)), body);
    // The guard repeats the checks, so a concurrent delete wins cleanly.
    let mut args = own_args(session_id, seq, who);
    args.extend([num(now), text(&sealed), num(keep as i64)]);
    let results = db
        .batch(vec![
            stmt(
                db,
                &format!("INSERT INTO message_edits (session_id, seq, edited_at, body) SELECT session_id, seq, ?5, body FROM messages WHERE {OWN}"),
                &args[..5],
            )?,
            stmt(db, &format!("UPDATE messages SET body = ?6, edited_at = ?5 WHERE {OWN}"), &args[..6])?,
            // The history is bounded: only the newest `keep` earlier texts stay.
            stmt(
                db,
                "DELETE FROM message_edits WHERE session_id = ?1 AND seq = ?2 AND id NOT IN
                   (SELECT id FROM message_edits WHERE session_id = ?1 AND seq = ?2 ORDER BY id DESC LIMIT ?3)",
                &[text(session_id), num(seq as i64), num(keep as i64)],
            )?,
            stmt(db, OWNER, &args[..2])?,
        ])
        .await
        .map_err(AppError::internal)?;
    let row = super::results::<OwnerRow>(&results[3])?.into_iter().next();
    Ok(classify(changes(&results[1]) > 0, row.as_ref(), who))
}

/// Tombstones the author's own message: the text, its edit history and its
/// reactions are erased; the seq stays so history has no holes.
pub async fn delete(
    db: &D1Database,
    session_id: &str,
    seq: u64,
    who: AuthorKey<'_>,
    now: i64,
) -> Result<Change, AppError> {
    let owned = format!("EXISTS (SELECT 1 FROM messages WHERE {OWN})");
    let mut args = own_args(session_id, seq, who);
    args.push(num(now));
    let results = db
        .batch(vec![
            stmt(
                db,
                &format!(
                    "DELETE FROM message_edits WHERE session_id = ?1 AND seq = ?2 AND {owned}"
                ),
                &args[..4],
            )?,
            stmt(
                db,
                &format!("DELETE FROM reactions WHERE session_id = ?1 AND seq = ?2 AND {owned}"),
                &args[..4],
            )?,
            stmt(
                db,
                &format!("UPDATE messages SET body = '', deleted_at = ?5 WHERE {OWN}"),
                &args,
            )?,
            stmt(db, OWNER, &args[..2])?,
        ])
        .await
        .map_err(AppError::internal)?;
    let row = super::results::<OwnerRow>(&results[3])?.into_iter().next();
    Ok(classify(changes(&results[2]) > 0, row.as_ref(), who))
}

/// What a reaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reacted {
    Changed,
    /// Already so: nothing to tell anyone.
    Unchanged,
    /// No such message, or it was deleted.
    Missing,
    /// The user already has `cap` distinct reactions on the message.
    TooMany,
}

/// Adds or removes a reaction. A user may hold at most `cap` distinct
/// reactions on one message; the cap is checked in the insert itself, so
/// concurrent adds cannot pass it.
#[allow(clippy::too_many_arguments)]
pub async fn react(
    db: &D1Database,
    session_id: &str,
    seq: u64,
    user_id: &str,
    emoji: &str,
    add: bool,
    now: i64,
    cap: u32,
) -> Result<Reacted, AppError> {
    let args = [
        text(session_id),
        num(seq as i64),
        text(user_id),
        text(emoji),
        num(now),
        num(cap as i64),
    ];
    // D1 refuses surplus bindings, so each statement gets exactly its own.
    let change = if add {
        stmt(
            db,
            "INSERT OR IGNORE INTO reactions (session_id, seq, user_id, emoji, created_at)
             SELECT ?1, ?2, ?3, ?4, ?5
              WHERE EXISTS (SELECT 1 FROM messages WHERE session_id = ?1 AND seq = ?2 AND deleted_at IS NULL)
                AND (SELECT count(*) FROM reactions WHERE session_id = ?1 AND seq = ?2 AND user_id = ?3) < ?6",
            &args,
        )?
    } else {
        stmt(
            db,
            "DELETE FROM reactions WHERE session_id = ?1 AND seq = ?2 AND user_id = ?3 AND emoji = ?4",
            &args[..4],
        )?
    };
    let mine = stmt(
        db,
        "SELECT count(*) AS n, sum(emoji = ?4) AS has FROM reactions WHERE session_id = ?1 AND seq = ?2 AND user_id = ?3",
        &args[..4],
    )?;
    let results = db
        .batch(vec![change, stmt(db, OWNER, &args[..2])?, mine])
        .await
        .map_err(AppError::internal)?;
    #[derive(Deserialize)]
    struct Mine {
        n: i64,
        has: Option<i64>,
    }
    let live = super::results::<OwnerRow>(&results[1])?
        .into_iter()
        .next()
        .is_some_and(|r| r.deleted_at.is_none());
    if !live {
        return Ok(Reacted::Missing);
    }
    if changes(&results[0]) > 0 {
        return Ok(Reacted::Changed);
    }
    let mine = super::results::<Mine>(&results[2])?.into_iter().next();
    let has = mine.as_ref().and_then(|m| m.has).unwrap_or(0) > 0;
    Ok(match mine {
        Some(m) if add && !has && m.n >= cap as i64 => Reacted::TooMany,
        _ => Reacted::Unchanged,
    })
}

/// Moves the user's read position forward (never back, never past the last
/// message). Returns the new position when it moved.
pub async fn mark_read(
    db: &D1Database,
    session_id: &str,
    user_id: &str,
    seq: u64,
    now: i64,
) -> Result<Option<u64>, AppError> {
    #[derive(Deserialize)]
    struct Row {
        seq: i64,
    }
    let row: Option<Row> = stmt(
        db,
        "INSERT INTO read_positions (session_id, user_id, seq, updated_at)
         SELECT ?1, ?2, min(?3, s.last_seq), ?4 FROM sessions s WHERE s.id = ?1 AND s.last_seq > 0
         ON CONFLICT (session_id, user_id) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at
          WHERE excluded.seq > read_positions.seq
         RETURNING seq",
        &[text(session_id), text(user_id), num(seq as i64), num(now)],
    )?
    .first(None)
    .await
    .map_err(AppError::internal)?;
    Ok(row.map(|r| r.seq as u64))
}

/// Every user's read position in the session.
pub async fn read_positions(
    db: &D1Database,
    session_id: &str,
) -> Result<Vec<ReadPosition>, AppError> {
    #[derive(Deserialize)]
    struct Row {
        user_id: String,
        seq: i64,
    }
    let rows: Vec<Row> = super::rows(stmt(
        db,
        "SELECT user_id, seq FROM read_positions WHERE session_id = ?1 ORDER BY user_id",
        &[text(session_id)],
    )?)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ReadPosition {
            user_id: r.user_id,
            seq: r.seq as u64,
        })
        .collect())
}

/// The UTC day of a unix-milliseconds time, as `YYYY-MM-DD`.
/// Whom an assistant turn is charged to, and what it reserved.
#[derive(Debug, Clone)]
pub struct Charge {
    pub user: String,
    /// The UTC day the reservation was made on; settled on the same day.
    pub day: String,
    pub reserved: u64,
}

/// Reserves `tokens` of `user`'s daily `budget` in one conditional
/// statement: granted while what is spent and reserved today is below the
/// budget, so concurrent turns overshoot it by at most one estimate.
pub async fn reserve(
    db: &D1Database,
    user: &str,
    now: i64,
    tokens: u64,
    budget: u64,
) -> Result<Option<Charge>, AppError> {
    let today = day(now);
    let granted = stmt(
        db,
        "INSERT INTO usage_daily (user_id, day, reserved) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id, day) DO UPDATE SET reserved = reserved + excluded.reserved
          WHERE usage_daily.tokens_in + usage_daily.tokens_out + usage_daily.reserved < ?4
         RETURNING reserved",
        &[
            text(user),
            text(&today),
            num(tokens as i64),
            num(budget as i64),
        ],
    )?
    .all()
    .await
    .map_err(AppError::internal)?;
    let granted = !super::results::<serde_json::Value>(&granted)?.is_empty();
    Ok(granted.then(|| Charge {
        user: user.to_string(),
        day: today,
        reserved: tokens,
    }))
}

/// Gives back a reservation whose turn stored nothing.
pub async fn release(db: &D1Database, c: &Charge) -> Result<(), AppError> {
    stmt(
        db,
        "UPDATE usage_daily SET reserved = max(0, reserved - ?3) WHERE user_id = ?1 AND day = ?2",
        &[text(&c.user), text(&c.day), num(c.reserved as i64)],
    )?
    .run()
    .await
    .map_err(AppError::internal)?;
    Ok(())
}

pub fn day(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .date_naive()
        .to_string()
}

/// Adds a turn's cost to the session's totals and to the user's day, where
/// it takes the place of the turn's reservation.
fn usage_statements(
    db: &D1Database,
    session_id: &str,
    c: &Charge,
    t: &TurnMeta,
) -> Result<Vec<D1PreparedStatement>, AppError> {
    let (i, o) = (num(t.tokens_in as i64), num(t.tokens_out as i64));
    Ok(vec![
        stmt(
            db,
            "UPDATE sessions SET tokens_in = tokens_in + ?2, tokens_out = tokens_out + ?3, turns = turns + 1,
                    latency_ms_total = latency_ms_total + ?4 WHERE id = ?1",
            &[text(session_id), i.clone(), o.clone(), num(t.latency_ms as i64)],
        )?,
        stmt(
            db,
            "INSERT INTO usage_daily (user_id, day, tokens_in, tokens_out, turns) VALUES (?1, ?2, ?3, ?4, 1)
             ON CONFLICT (user_id, day) DO UPDATE SET tokens_in = tokens_in + excluded.tokens_in,
                    tokens_out = tokens_out + excluded.tokens_out, turns = turns + 1,
                    reserved = max(0, reserved - ?5)",
            &[text(&c.user), text(&c.day), i, o, num(c.reserved as i64)],
        )?,
    ])
}

/// What a turn needs to know before it starts: the session's mode (None if
/// the session is gone). The budget is reserved later (`reserve`), once the
/// prompt, and so the turn's estimate, is known.
pub async fn turn_gate(db: &D1Database, session_id: &str) -> Result<Option<String>, AppError> {
    #[derive(Deserialize)]
    struct Row {
        mode: String,
    }
    let row: Option<Row> = stmt(
        db,
        "SELECT mode FROM sessions WHERE id = ?1",
        &[text(session_id)],
    )?
    .first(None)
    .await
    .map_err(AppError::internal)?;
    Ok(row.map(|r| r.mode))
}
