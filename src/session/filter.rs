//! The pre-send filter, the object's side (`crate::moderation::filter`):
//! screening a user's `send`, noting each decision in the log, and
//! writing the decisions to the home shard (`filter_log`; a flagged
//! message also becomes a report in the moderation queue).

use super::sockets::send_to;
use super::Core;
use crate::config::{Config, LogLevel};
use crate::error::{AppError, SocketError};
use crate::moderation::filter::{self, Action, Check, Decision, Outcome, Source, Verdict};
use crate::protocol::AuthorKind;
use crate::runtime::log;
use crate::store::{messages::NewMessage, now_ms};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use worker::WebSocket;

/// How long the model may take before a message goes through unjudged.
const MODEL_TIMEOUT_MS: u64 = 5_000;

/// What the filter said of a send on its way to the commit.
enum Pending {
    /// Flag it once stored (the word list matched `detail`).
    Flag(String),
    /// Ask this model once stored.
    Ask(String),
}

/// Sends screened and on their way to the commit, by message id.
#[derive(Default)]
pub struct Screening(RefCell<HashMap<String, Pending>>);

impl Core {
    /// Screens a user's send; gives whether it goes on. A blocked one is
    /// answered here (`message_blocked`) and its decision noted.
    pub(super) async fn screen(&self, ws: &WebSocket, msg: &NewMessage, config: &Config) -> bool {
        // Agents and admins are the moderators; the filter is for users.
        let user = msg.author.kind == AuthorKind::User;
        let Some(f) = config.filter.as_ref().filter(|_| user) else {
            return true;
        };
        let id = msg.id.as_str().to_string();
        let found = match (&f.check, f.action) {
            (Check::Words(list), _) => list.find(&msg.text).map(|t| (Source::Words, t)),
            // Blocking by model: its round trip before the commit.
            (Check::Ai { model }, Action::Block) => self
                .classify(model, &msg.text)
                .await
                .map(|c| (Source::Ai, c)),
            (Check::Ai { model }, Action::Flag) => {
                (self.screening.0.borrow_mut()).insert(id, Pending::Ask(model.clone()));
                return true;
            }
        };
        let Some((source, detail)) = found else {
            return true;
        };
        if f.action == Action::Flag {
            self.screening
                .0
                .borrow_mut()
                .insert(id, Pending::Flag(detail));
            return true;
        }
        self.decide(Decision {
            id: filter::new_decision_id(),
            at: now_ms(),
            session_id: self.session_id(),
            user_id: msg.author.id.clone(),
            source,
            action: Outcome::Blocked,
            detail,
            seq: None,
            message_id: None,
        });
        send_to(
            ws,
            &SocketError::MessageBlocked.frame(Some(msg.client_id.as_str())),
        );
        false
    }

    /// After a group's commit: flags the stored messages the word list
    /// matched, and asks the model about the others it is to judge (after
    /// the ack, in the background). `stored` is (id, seq, author, text)
    /// of each message the group stored; the rest are forgotten.
    pub(super) fn screened(&self, batch: &[&str], stored: &[(&str, u64, &str, &str)]) {
        let mut pending = self.screening.0.borrow_mut();
        if pending.is_empty() {
            return;
        }
        for id in batch {
            let Some(p) = pending.remove(*id) else {
                continue;
            };
            let Some(&(_, seq, author, text)) = stored.iter().find(|s| s.0 == *id) else {
                continue;
            };
            let decision = |source, detail| Decision {
                id: filter::new_decision_id(),
                at: now_ms(),
                session_id: self.session_id(),
                user_id: author.to_string(),
                source,
                action: Outcome::Flagged,
                detail,
                seq: Some(seq),
                message_id: Some(id.to_string()),
            };
            match p {
                Pending::Flag(detail) => self.decide(decision(Source::Words, detail)),
                Pending::Ask(model) => {
                    let Some(core) = self.me.upgrade() else {
                        continue;
                    };
                    let (text, made) = (text.to_string(), decision(Source::Ai, String::new()));
                    self.state.wait_until(async move {
                        if let Some(categories) = core.classify(&model, &text).await {
                            core.decide(Decision {
                                detail: categories,
                                ..made
                            });
                        }
                    });
                }
            }
        }
    }

    /// The model's categories when it finds the text unsafe; None when it
    /// finds it safe, or cannot say (logged, and the message goes on).
    async fn classify(&self, model: &str, text: &str) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Output {
            response: String,
        }
        // A plain object for the binding (see `attempt.rs`).
        #[derive(serde::Serialize)]
        struct Inputs {
            messages: Vec<Msg>,
        }
        #[derive(serde::Serialize)]
        struct Msg {
            role: &'static str,
            content: String,
        }
        let inputs = Inputs {
            messages: vec![Msg {
                role: "user",
                content: text.to_string(),
            }],
        };
        let ai = self.env.ai(crate::bindings::AI).ok();
        let asked = match ai {
            Some(ai) => {
                crate::runtime::timeout(MODEL_TIMEOUT_MS, ai.run::<_, Output>(model, inputs)).await
            }
            None => None,
        };
        let verdict = match asked {
            Some(Ok(out)) => filter::verdict(&out.response),
            _ => None,
        };
        match verdict {
            Some(Verdict::Unsafe(categories)) => Some(categories.join(",")),
            Some(Verdict::Safe) => None,
            None => {
                self.log_error(
                    "moderation_filter_failed",
                    &AppError::internal("the moderation model gave no verdict"),
                );
                None
            }
        }
    }

    /// Keeps a decision for the home shard and logs it.
    fn decide(&self, d: Decision) {
        let user = crate::runtime::config(&self.env)
            .map(|c| crate::auth::user_hash(c.pseudonym_key.expose().as_bytes(), &d.user_id))
            .unwrap_or_default();
        log(
            LogLevel::Warn,
            "moderation_filter",
            [
                ("session", Value::from(d.session_id.as_str())),
                ("user", Value::from(user)),
                ("source", Value::from(d.source.as_str())),
                ("action", Value::from(d.action.as_str())),
                ("seq", d.seq.map_or(Value::Null, Value::from)),
            ],
        );
        if let Err(e) = self.log.note_decision(&d) {
            return self.log_error("filter_record_failed", &e);
        }
        self.alarm_soon(now_ms());
    }

    /// Writes kept decisions to the home shard; gives when to try again
    /// if that failed (None: nothing is left).
    pub(super) async fn send_decisions(&self) -> Option<i64> {
        let pending = match self.log.pending_decisions(100) {
            Ok(p) if !p.is_empty() => p,
            Ok(_) => return None,
            Err(e) => {
                self.log_error("filter_record_failed", &e);
                return None;
            }
        };
        let sent = match self.d1_home() {
            Ok(home) => crate::store::moderation::record(&home, &pending).await,
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => {
                let ids: Vec<String> = pending.into_iter().map(|d| d.id).collect();
                if let Err(e) = self.log.drop_decisions(&ids) {
                    self.log_error("filter_record_failed", &e);
                }
                // A full page: more may wait.
                (ids.len() == 100).then(now_ms)
            }
            Err(e) => {
                self.log_error("filter_log_failed", &e);
                Some(now_ms() + 5_000)
            }
        }
    }
}
