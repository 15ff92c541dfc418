//! Mentions in the session log (`crate::mention`): the names the session
//! has seen its people by, and the people each message mentions.

use super::{int, s, Log};
use crate::error::AppError;
use crate::mention::Person;
use crate::protocol::{MessageView, UserRef};
use serde::Deserialize;
use std::collections::HashMap;

pub const SCHEMA: &str = "
-- The name each person was last seen by on a socket here.
CREATE TABLE IF NOT EXISTS people (user_id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mentions (
  seq INTEGER NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (seq, user_id));
";

#[derive(Deserialize)]
struct Named {
    user_id: String,
    name: String,
}

impl Log {
    fn names(&self) -> Result<HashMap<String, String>, AppError> {
        if let Some(n) = self.names.borrow().as_ref() {
            return Ok(n.clone());
        }
        let rows = self.all::<Named>("SELECT user_id, name FROM people", vec![])?;
        let names: HashMap<String, String> =
            rows.into_iter().map(|r| (r.user_id, r.name)).collect();
        *self.names.borrow_mut() = Some(names.clone());
        Ok(names)
    }

    /// Notes the name `user` goes by (written only when it changed).
    pub fn seen(&self, user: &UserRef) -> Result<(), AppError> {
        if self.names()?.get(&user.id) == Some(&user.name) {
            return Ok(());
        }
        self.exec(
            "INSERT OR REPLACE INTO people (user_id, name) VALUES (?, ?)",
            vec![s(&user.id), s(&user.name)],
        )?;
        if let Some(n) = self.names.borrow_mut().as_mut() {
            n.insert(user.id.clone(), user.name.clone());
        }
        Ok(())
    }

    /// Who may be mentioned: the owner, the members and the assignee,
    /// by the names seen (their ids when none).
    pub fn mentionable(&self) -> Result<Vec<Person>, AppError> {
        let meta = self.live()?;
        let names = self.names()?;
        let mut ids = vec![meta.owner_id.clone()];
        ids.extend(self.members()?);
        if let Some(a) = self.desk(&meta)?.view().assignee {
            ids.push(a.id);
        }
        ids.dedup();
        Ok(ids
            .into_iter()
            .map(|id| Person {
                name: names.get(&id).cloned().unwrap_or_else(|| id.clone()),
                id,
            })
            .collect())
    }

    /// Stores the people message `seq` mentions (in its append's block).
    pub(super) fn store_mentions(&self, seq: i64, who: &[UserRef]) -> Result<(), AppError> {
        for u in who {
            self.exec(
                "INSERT OR IGNORE INTO mentions (seq, user_id, name) VALUES (?, ?, ?)",
                vec![int(seq), s(&u.id), s(&u.name)],
            )?;
        }
        Ok(())
    }

    /// Gives each message of a page (in seq order) its mentions.
    pub(super) fn attach_mentions(&self, views: &mut [MessageView]) -> Result<(), AppError> {
        let (Some(first), Some(last)) = (views.first(), views.last()) else {
            return Ok(());
        };
        #[derive(Deserialize)]
        struct Row {
            seq: i64,
            user_id: String,
            name: String,
        }
        let rows = self.all::<Row>(
            "SELECT seq, user_id, name FROM mentions WHERE seq BETWEEN ? AND ? ORDER BY rowid",
            vec![int(first.seq), int(last.seq)],
        )?;
        for r in rows {
            if let Some(v) = views
                .iter_mut()
                .find(|v| v.seq == r.seq as u64 && !v.deleted)
            {
                v.mentions.push(UserRef {
                    id: r.user_id,
                    name: r.name,
                });
            }
        }
        Ok(())
    }
}
