//! Message rows as both stores hold them, and the daily assistant budget.
//!
//! The session object's log (`session/log.rs`) is the system of record for
//! messages; D1 holds the replicated copy (`replica.rs`). Both keep the
//! same row, sealed the same way, so `MessageRow` reads either. The daily
//! budget spans every session of a user, so it lives in D1 only.

use super::{num, opt_num, stmt, text};
use crate::crypto::{aad, Field, Keyring};
use crate::error::AppError;
use crate::ids::{ClientId, MessageId};
use crate::llm::price::Usd;
use crate::protocol::{Author, AuthorKind, MessageView, TurnMeta};
use serde::Deserialize;
use worker::{D1Database, SqlStorageValue as V};

/// A send waiting to be committed.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: MessageId,
    pub client_id: ClientId,
    pub author: Author,
    pub text: String,
    pub reply_to: Option<u64>,
    pub created_at: i64,
    /// For an assistant reply: what it cost, and whom to charge for it
    /// (boxed: users' messages, the many, carry none).
    pub turn: Option<Box<(TurnMeta, Charge)>>,
    /// Set when the message is a poll.
    pub poll: Option<crate::poll::PollSpec>,
    /// Attachment ids to claim (`crate::attachment`).
    pub attachments: Vec<String>,
    /// The people it mentions (`crate::mention`).
    pub mentions: Vec<crate::protocol::UserRef>,
}

/// A stored message row, as both the session log and D1 hold it.
#[derive(Deserialize, Debug, Clone)]
pub struct MessageRow {
    pub seq: i64,
    pub id: String,
    pub client_id: Option<String>,
    pub author_id: String,
    pub author_name: String,
    pub author_kind: String,
    pub body: String,
    pub reply_to: Option<i64>,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub deleted_at: Option<i64>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub ttft_ms: Option<i64>,
    pub latency_ms: Option<i64>,
    pub finish_reason: Option<String>,
    pub incomplete: i64,
    pub tokens_cached: Option<i64>,
    /// Nano-dollars (`crate::llm::price::Usd`); NULL: the model had no price.
    pub cost_nanos: Option<i64>,
    /// When the reply was answered again (`regenerate`).
    pub superseded_at: Option<i64>,
    /// The assistant profile a reply was written under (NULL before
    /// profiles: the default).
    pub profile: Option<String>,
}

impl MessageRow {
    /// Opens the body; a body that fails to open yields an empty text and
    /// the reason in `unreadable`, never an error for the whole page.
    pub fn into_view(self, keys: &Keyring, session_id: &str) -> MessageView {
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
        let profile = self.profile;
        let turn = self.provider.map(|provider| TurnMeta {
            profile: profile.unwrap_or_else(|| crate::llm::DEFAULT_PROFILE.to_string()),
            provider,
            model: self.model.unwrap_or_default(),
            tokens_in: n(self.tokens_in),
            tokens_out: n(self.tokens_out),
            ttft_ms: n(self.ttft_ms),
            latency_ms: n(self.latency_ms),
            finish_reason: self.finish_reason.unwrap_or_default(),
            incomplete: self.incomplete != 0,
            tokens_cached: n(self.tokens_cached),
            cost_usd: self.cost_nanos.map(|c| Usd(c.max(0) as u64)),
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
            superseded: self.superseded_at.is_some(),
            removed: None,
            unreadable,
            turn,
            reactions: Vec::new(),
            poll: None,
            attachments: Vec::new(),
            mentions: Vec::new(),
            tool: None,
        }
    }
}

impl MessageRow {
    /// The row's values in `COLUMNS` order, for the session log.
    pub fn values(&self) -> Vec<V> {
        let t = |s: &Option<String>| s.clone().map_or(V::Null, V::String);
        let n = |n: Option<i64>| n.map_or(V::Null, V::Integer);
        vec![
            V::Integer(self.seq),
            V::String(self.id.clone()),
            t(&self.client_id),
            V::String(self.author_id.clone()),
            V::String(self.author_name.clone()),
            V::String(self.author_kind.clone()),
            V::String(self.body.clone()),
            n(self.reply_to),
            V::Integer(self.created_at),
            n(self.edited_at),
            n(self.deleted_at),
            t(&self.provider),
            t(&self.model),
            n(self.tokens_in),
            n(self.tokens_out),
            n(self.ttft_ms),
            n(self.latency_ms),
            t(&self.finish_reason),
            V::Integer(self.incomplete),
            n(self.tokens_cached),
            n(self.cost_nanos),
            n(self.superseded_at),
            t(&self.profile),
        ]
    }

    /// The row's values in `COLUMNS` order, for D1.
    pub fn js_values(&self) -> Vec<wasm_bindgen::JsValue> {
        self.values().into_iter().map(Into::into).collect()
    }
}

/// The columns of `MessageRow`, in its order.
pub const COLUMNS: &str = "seq, id, client_id, author_id, author_name, author_kind, body, reply_to, created_at, edited_at, deleted_at,
    provider, model, tokens_in, tokens_out, ttft_ms, latency_ms, finish_reason, incomplete, tokens_cached, cost_nanos, superseded_at, profile";

/// How many columns `COLUMNS` names.
pub const COLUMN_COUNT: usize = 23;

pub use crate::llm::budget::{Charge, Reservation};

/// Reserves a turn's most it can spend of `user`'s daily budgets in one
/// conditional statement: granted while what is spent and reserved today
/// is below each budget, so concurrent turns overshoot one by at most one
/// estimate. `db` is the home shard, where every user's budget is kept, so
/// the check holds across shards; replies settle there too
/// (`replica::usage`).
pub async fn reserve(db: &D1Database, r: &Reservation) -> Result<Option<Charge>, AppError> {
    let (user, today) = (r.user.as_str(), crate::limits::utc_day(r.now));
    let nanos = r.nanos();
    let granted = stmt(
        db,
        "INSERT INTO usage_daily (user_id, day, reserved, reserved_nanos) VALUES (?1, ?2, ?3, ?5)
         ON CONFLICT (user_id, day) DO UPDATE SET reserved = reserved + excluded.reserved,
                reserved_nanos = reserved_nanos + excluded.reserved_nanos
          WHERE (?4 = 0 OR usage_daily.tokens_in + usage_daily.tokens_out + usage_daily.reserved < ?4)
            AND (?6 IS NULL OR usage_daily.cost_nanos + usage_daily.reserved_nanos < ?6)
         RETURNING reserved",
        &[
            text(user),
            text(&today),
            num(r.tokens as i64),
            num(r.token_budget as i64),
            num(nanos as i64),
            opt_num(r.cost_budget.map(Usd::nanos)),
        ],
    )?
    .all()
    .await
    .map_err(AppError::internal)?;
    let granted = !super::results::<serde_json::Value>(&granted)?.is_empty();
    if !granted {
        return Ok(None);
    }
    let mut charge = Charge {
        user: user.to_string(),
        day: today,
        reserved: r.tokens,
        reserved_nanos: nanos,
        profile: r.profile.clone(),
        profile_held: false,
    };
    if r.profile_budget.limits() {
        if !reserve_profile(db, r, &charge).await? {
            // The user's part goes back: the turn does not run.
            release(db, &charge).await?;
            return Ok(None);
        }
        charge.profile_held = true;
    }
    Ok(Some(charge))
}

/// The same reservation of the profile's day, against the profile's
/// budget (spent and reserved by all its users); as for a user's, the
/// day's first reservation is granted whatever its size. Settlement keeps
/// what the profile spent (`store::replica::usage`).
async fn reserve_profile(db: &D1Database, r: &Reservation, c: &Charge) -> Result<bool, AppError> {
    let granted = stmt(
        db,
        "INSERT INTO profile_daily (profile, day, reserved, reserved_nanos) VALUES (?1, ?2, ?3, ?5)
         ON CONFLICT (profile, day) DO UPDATE SET reserved = reserved + excluded.reserved,
                reserved_nanos = reserved_nanos + excluded.reserved_nanos
          WHERE (?4 = 0 OR profile_daily.tokens + profile_daily.reserved < ?4)
            AND (?6 IS NULL OR profile_daily.cost_nanos + profile_daily.reserved_nanos < ?6)
         RETURNING reserved",
        &[
            text(&c.profile),
            text(&c.day),
            num(c.reserved as i64),
            num(r.profile_budget.tokens as i64),
            num(c.reserved_nanos as i64),
            opt_num(r.profile_budget.cost.map(Usd::nanos)),
        ],
    )?
    .all()
    .await
    .map_err(AppError::internal)?;
    Ok(!super::results::<serde_json::Value>(&granted)?.is_empty())
}

/// Gives back a reservation whose turn stored nothing: the user's day's,
/// and the profile's when it held one.
pub async fn release(db: &D1Database, c: &Charge) -> Result<(), AppError> {
    if c.profile_held {
        give_back(db, ("profile_daily", "profile"), &c.profile, c).await?;
    }
    give_back(db, ("usage_daily", "user_id"), &c.user, c).await
}

/// Takes `c`'s reservation off the day of `key` in `table` (keyed by
/// `column`; both constants above, never input).
async fn give_back(
    db: &D1Database,
    (table, column): (&str, &str),
    key: &str,
    c: &Charge,
) -> Result<(), AppError> {
    let sql = format!(
        "UPDATE {table} SET reserved = max(0, reserved - ?3), reserved_nanos = max(0, reserved_nanos - ?4)
          WHERE {column} = ?1 AND day = ?2"
    );
    let args = [
        text(key),
        text(&c.day),
        num(c.reserved as i64),
        num(c.reserved_nanos as i64),
    ];
    stmt(db, &sql, &args)?
        .run()
        .await
        .map_err(AppError::internal)?;
    Ok(())
}
