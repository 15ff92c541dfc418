//! Re-encryption of stored values to the active key, in bounded, resumable
//! batches. Rows already on the active key are skipped by the queries, so a
//! run can be interrupted and started again at any point (with or without
//! its cursor) and still finishes with every readable row on the active key.

use super::{num, stmt, text};
use crate::crypto::{aad, Field, Keyring};
use crate::error::AppError;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

/// Where a run stands: `objects:<id>`, `sessions:<id>`, `messages:<session id>:<seq>`,
/// `edits:<id>`, each the last row looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// Session logs in the session objects, by session id (the object
    /// re-seals its own rows; replication carries them to D1).
    Objects(String),
    Sessions(String),
    Messages(String, i64),
    Edits(i64),
}

impl Cursor {
    pub fn encode(&self) -> String {
        match self {
            Cursor::Objects(id) => format!("objects:{id}"),
            Cursor::Sessions(id) => format!("sessions:{id}"),
            Cursor::Messages(s, seq) => format!("messages:{s}:{seq}"),
            Cursor::Edits(id) => format!("edits:{id}"),
        }
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let (phase, rest) = s.split_once(':')?;
        match phase {
            "objects" => Some(Cursor::Objects(rest.to_string())),
            "sessions" => Some(Cursor::Sessions(rest.to_string())),
            "messages" => {
                let (sid, seq) = rest.rsplit_once(':')?;
                Some(Cursor::Messages(sid.to_string(), seq.parse().ok()?))
            }
            "edits" => Some(Cursor::Edits(rest.parse().ok()?)),
            _ => None,
        }
    }
}

/// A position in a rotation: the phase cursor and, in the D1 phases, the
/// shard (its index in `D1_SHARDS`) being worked through. Written
/// `<index>/<cursor>`; the home shard's has no prefix, as before shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    pub shard: usize,
    pub cursor: Cursor,
}

impl At {
    pub fn encode(&self) -> String {
        match self.shard {
            0 => self.cursor.encode(),
            i => format!("{i}/{}", self.cursor.encode()),
        }
    }

    pub fn decode(s: &str) -> Option<At> {
        let (shard, rest) = match s.split_once('/') {
            Some((i, rest)) if i.bytes().all(|b| b.is_ascii_digit()) => (i.parse().ok()?, rest),
            _ => (0, s),
        };
        let cursor = Cursor::decode(rest)?;
        // The objects phase spans every shard; it has no index.
        (shard == 0 || !matches!(cursor, Cursor::Objects(_))).then_some(At { shard, cursor })
    }
}

#[derive(Serialize, Debug, Default)]
pub struct Report {
    pub active_key: String,
    pub rotated: usize,
    /// Rows that could not be opened with any known key; left as they are.
    pub unreadable: Vec<UnreadableRow>,
    pub next_cursor: Option<String>,
    pub done: bool,
}

#[derive(Serialize, Debug)]
pub struct UnreadableRow {
    pub table: &'static str,
    pub key: String,
    pub code: &'static str,
}

/// Session ids after `after`, in order, at most `limit`, from every shard:
/// the objects phase of a rotation visits each session's object in this
/// order.
pub async fn session_ids(
    dbs: &[D1Database],
    after: &str,
    limit: u32,
) -> Result<Vec<String>, AppError> {
    let pages = super::each(dbs, |db| session_ids_in(db, after, limit)).await?;
    Ok(crate::shards::merge(pages, limit as usize, Ord::cmp))
}

async fn session_ids_in(db: &D1Database, after: &str, limit: u32) -> Result<Vec<String>, AppError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
    }
    let rows: Vec<Row> = super::rows(stmt(
        db,
        "SELECT id FROM sessions WHERE id > ?1 ORDER BY id LIMIT ?2",
        &[text(after), num(limit as i64)],
    )?)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Rotates up to `limit` rows of one shard (`db`, at index `shard`)
/// starting after `cursor` (the phases after the objects phase, which
/// `api::admin` runs, as it moves from shard to shard): session fields,
/// then message bodies, then edit history. (Long, and one async fn on
/// purpose: split into a function per phase it cost 1.0-1.7 KiB of the
/// 400 KiB bundle budget.)
pub async fn reencrypt(
    db: &D1Database,
    shard: usize,
    keys: &Keyring,
    cursor: Option<Cursor>,
    limit: u32,
) -> Result<Report, AppError> {
    let prefix = keys.active_prefix();
    let plen = num(prefix.len() as i64);
    let mut report = Report {
        active_key: keys.active_id().to_string(),
        ..Default::default()
    };
    let mut updates: Vec<D1PreparedStatement> = Vec::new();
    let mut budget = limit as usize;
    let mut cursor = match cursor {
        None | Some(Cursor::Objects(_)) => Cursor::Sessions(String::new()),
        Some(c) => c,
    };

    if let Cursor::Sessions(after) = &cursor {
        #[derive(Deserialize)]
        struct Row {
            id: String,
            title: Option<String>,
            contact_name: Option<String>,
            contact_email: Option<String>,
        }
        let rows: Vec<Row> = super::rows(stmt(
            db,
            "SELECT id, title, contact_name, contact_email FROM sessions
              WHERE id > ?1 AND ((title IS NOT NULL AND substr(title, 1, ?2) != ?3)
                 OR (contact_name IS NOT NULL AND substr(contact_name, 1, ?2) != ?3)
                 OR (contact_email IS NOT NULL AND substr(contact_email, 1, ?2) != ?3))
              ORDER BY id LIMIT ?4",
            &[text(after), plen.clone(), text(&prefix), num(budget as i64)],
        )?)
        .await?;
        let full = rows.len() == budget;
        for r in rows {
            budget -= 1;
            let mut fields: Vec<JsValue> = Vec::new();
            let mut ok = true;
            for (field, value) in [
                (Field::SessionTitle, &r.title),
                (Field::ContactName, &r.contact_name),
                (Field::ContactEmail, &r.contact_email),
            ] {
                match value {
                    None => fields.push(JsValue::NULL),
                    Some(v) if v.starts_with(&prefix) => fields.push(text(v)),
                    Some(v) => match keys.rotate(&aad(field, &r.id, None), v) {
                        Ok(n) => fields.push(text(&n)),
                        Err(e) => {
                            ok = false;
                            report.unreadable.push(UnreadableRow {
                                table: "sessions",
                                key: r.id.clone(),
                                code: e.code(),
                            });
                            break;
                        }
                    },
                }
            }
            if ok {
                fields.push(text(&r.id));
                updates.push(stmt(
                    db,
                    "UPDATE sessions SET title = ?1, contact_name = ?2, contact_email = ?3 WHERE id = ?4",
                    &fields,
                )?);
                report.rotated += 1;
            }
            cursor = Cursor::Sessions(r.id);
        }
        if !full {
            cursor = Cursor::Messages(String::new(), 0);
        }
    }

    if let (Cursor::Messages(after_session, after_seq), true) = (&cursor, budget > 0) {
        #[derive(Deserialize)]
        struct Row {
            session_id: String,
            seq: i64,
            id: String,
            body: String,
        }
        let rows: Vec<Row> = super::rows(stmt(
            db,
            "SELECT session_id, seq, id, body FROM messages
              WHERE (session_id, seq) > (?1, ?2) AND deleted_at IS NULL AND substr(body, 1, ?3) != ?4
              ORDER BY session_id, seq LIMIT ?5",
            &[text(after_session), num(*after_seq), plen.clone(), text(&prefix), num(budget as i64)],
        )?).await?;
        let full = rows.len() == budget;
        for r in rows {
            budget -= 1;
            match keys.rotate(
                &aad(Field::MessageBody, &r.session_id, Some(&r.id)),
                &r.body,
            ) {
                Ok(n) => {
                    // Guarded on the old value: a concurrent edit wins.
                    updates.push(stmt(
                        db,
                        "UPDATE messages SET body = ?1 WHERE session_id = ?2 AND seq = ?3 AND body = ?4",
                        &[text(&n), text(&r.session_id), num(r.seq), text(&r.body)],
                    )?);
                    report.rotated += 1;
                }
                Err(e) => report.unreadable.push(UnreadableRow {
                    table: "messages",
                    key: format!("{}:{}", r.session_id, r.seq),
                    code: e.code(),
                }),
            }
            cursor = Cursor::Messages(r.session_id, r.seq);
        }
        if !full {
            cursor = Cursor::Edits(0);
        }
    }

    let mut done = false;
    if let (Cursor::Edits(after), true) = (&cursor, budget > 0) {
        #[derive(Deserialize)]
        struct Row {
            id: i64,
            session_id: String,
            message_id: String,
            body: String,
        }
        let rows: Vec<Row> = super::rows(stmt(
            db,
            "SELECT e.id, e.session_id, m.id AS message_id, e.body FROM message_edits e
               JOIN messages m ON m.session_id = e.session_id AND m.seq = e.seq
              WHERE e.id > ?1 AND substr(e.body, 1, ?2) != ?3
              ORDER BY e.id LIMIT ?4",
            &[num(*after), plen, text(&prefix), num(budget as i64)],
        )?)
        .await?;
        done = rows.len() < budget;
        for r in rows {
            match keys.rotate(
                &aad(Field::MessageBody, &r.session_id, Some(&r.message_id)),
                &r.body,
            ) {
                Ok(n) => {
                    updates.push(stmt(
                        db,
                        "UPDATE message_edits SET body = ?1 WHERE id = ?2 AND body = ?3",
                        &[text(&n), num(r.id), text(&r.body)],
                    )?);
                    report.rotated += 1;
                }
                Err(e) => report.unreadable.push(UnreadableRow {
                    table: "message_edits",
                    key: r.id.to_string(),
                    code: e.code(),
                }),
            }
            cursor = Cursor::Edits(r.id);
        }
    }

    if !updates.is_empty() {
        db.batch(updates).await.map_err(AppError::internal)?;
    }
    report.done = done;
    report.next_cursor = (!done).then(|| At { shard, cursor }.encode());
    Ok(report)
}
