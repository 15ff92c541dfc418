//! The session's desk state (`crate::desk`): one row beside the session
//! row. Saving it also stores the mode that follows from it and touches the
//! session's outbox row, in the same synchronous block, so D1's copy (the
//! listing, `/metrics`) gets both with the next flush.

use super::{int, s, Log, Meta};
use crate::contract::Mode;
use crate::desk::{Desk, Stage, Status, Times};
use crate::error::AppError;
use crate::protocol::UserRef;
use crate::session::outbox::Outbox;
use serde::Deserialize;
use worker::SqlStorageValue as V;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS desk (
  one INTEGER PRIMARY KEY CHECK (one = 1),
  status TEXT NOT NULL, assignee_id TEXT, assignee_name TEXT,
  -- 1 once the user was told that nobody claimed the current wait
  told INTEGER NOT NULL DEFAULT 0,
  waiting_since INTEGER, first_agent_reply_at INTEGER, resolved_at INTEGER,
  changed_at INTEGER NOT NULL);
";

#[derive(Deserialize)]
struct Row {
    status: String,
    assignee_id: Option<String>,
    assignee_name: Option<String>,
    told: i64,
    waiting_since: Option<i64>,
    first_agent_reply_at: Option<i64>,
    resolved_at: Option<i64>,
    changed_at: i64,
}

impl Row {
    fn into_desk(self) -> Desk {
        let assignee = match (self.assignee_id, self.assignee_name) {
            (Some(id), Some(name)) => Some(UserRef { id, name }),
            _ => None,
        };
        let stage = match Status::parse(&self.status) {
            Some(Status::Waiting) => Stage::Waiting {
                told: self.told != 0,
            },
            Some(Status::Assigned) => Stage::Assigned(assignee),
            Some(Status::Resolved) => Stage::Resolved,
            Some(Status::Closed) => Stage::Closed,
            Some(Status::Open) | None => Stage::Open,
        };
        Desk {
            stage,
            times: Times {
                waiting_since: self.waiting_since,
                first_agent_reply_at: self.first_agent_reply_at,
                resolved_at: self.resolved_at,
            },
            changed_at: self.changed_at,
        }
    }
}

impl Log {
    /// The session's desk state. A log from before the desk has no row: a
    /// session an agent had taken over is assigned (to nobody known),
    /// any other is open.
    pub fn desk(&self, m: &Meta) -> Result<Desk, AppError> {
        if let Some(d) = self.desk.borrow().as_ref() {
            return Ok(d.clone());
        }
        let row = self
            .all::<Row>("SELECT * FROM desk WHERE one = 1", vec![])?
            .into_iter()
            .next();
        let d = match row {
            Some(r) => r.into_desk(),
            None if m.mode() == Mode::Human => Desk {
                stage: Stage::Assigned(None),
                ..Desk::new(m.updated_at)
            },
            None => Desk::new(m.created_at),
        };
        *self.desk.borrow_mut() = Some(d.clone());
        Ok(d)
    }

    /// Stores a new desk state and the mode it implies.
    pub fn save_desk(&self, d: &Desk, now: i64, out: &Outbox) -> Result<(), AppError> {
        let a = d.assignee();
        let told = matches!(d.stage, Stage::Waiting { told: true });
        let opt = |t: Option<i64>| t.map_or(V::Null, int);
        self.exec(
            "INSERT OR REPLACE INTO desk (one, status, assignee_id, assignee_name, told, waiting_since,
               first_agent_reply_at, resolved_at, changed_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                s(d.status().as_str()),
                a.map_or(V::Null, |a| s(&a.id)),
                a.map_or(V::Null, |a| s(&a.name)),
                int(told as i64),
                opt(d.times.waiting_since),
                opt(d.times.first_agent_reply_at),
                opt(d.times.resolved_at),
                int(d.changed_at),
            ],
        )?;
        *self.desk.borrow_mut() = Some(d.clone());
        let mut m = self.live()?;
        let mode = d.mode();
        m.mode = mode.as_str().to_string();
        if mode == Mode::Human {
            m.human_assisted = 1;
        }
        m.updated_at = m.updated_at.max(now);
        // Touches the session's outbox row: D1 gets the desk with it.
        self.save_meta(m, out, now)
    }
}
