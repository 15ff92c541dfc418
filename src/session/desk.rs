//! The support desk in the session object: carries out what the pure
//! lifecycle (`crate::desk`) decides. It stores each new state in the log
//! (which replicates it to D1), announces it with a `desk` frame (and a
//! `mode` frame when who answers changes), stops the assistant when an
//! agent takes the session, and keeps the desk's two timers on the
//! object's alarm: the escalation timeout and the idle close.
//!
//! Each new status (or assignee) is also a webhook event (`hooks.rs`),
//! stored with the change. Every change, every new session and every
//! stored message is also told to the desk object (`crate::inbox`), the agents' live inbox: queued
//! here and sent in one call after the event that produced them, so the
//! call never lies between a message and its ack.
//!
//! Changes arrive from sockets (`escalate` from anyone; `claim`,
//! `takeover`, `transfer`, `resolve`, `release` from agents), from the
//! admin API (`Call::Desk`), from new messages (a user's reopens a
//! resolved session, an agent's first is timed) and from the alarm. The
//! object runs one event at a time, so of two claims racing for a
//! session exactly one finds it unassigned.

use super::queue::Job;
use super::sockets::{attachment, send_to, user_tag, Attachment};
use super::Core;
use crate::contract::Mode;
use crate::desk::feed::{Event, Item, Preview, MAX_ITEMS_PER_CALL};
use crate::desk::{Action, Actor, Desk, Refused, View};
use crate::error::{AppError, SocketError};
use crate::ids::{ClientId, MessageId};
use crate::protocol::{Author, AuthorKind, ServerFrame, UserRef};
use crate::store::{messages::NewMessage, now_ms};
use crate::webhooks::{Kind, SessionData};
use worker::WebSocket;

/// The system notice a user gets when nobody claimed their wait in time.
const NOBODY_FREE: &str = "Nobody from the team is free right now. Your request stays in the queue and a person will reply here; meanwhile the assistant can keep helping.";
/// The author of the desk's notices.
const SYSTEM_ID: &str = "system";

fn refusal(r: Refused) -> AppError {
    match r {
        Refused::AlreadyAssigned => AppError::AlreadyAssigned,
        Refused::Closed => AppError::SessionClosed,
        Refused::NotAnAgent => AppError::Forbidden,
    }
}

impl Core {
    pub(super) fn desk(&self) -> Result<Desk, AppError> {
        let m = self.log.live()?;
        self.log.desk(&m)
    }

    /// Carries out `action` by `actor`; gives the state after it.
    pub(super) fn desk_act(&self, action: Action, actor: Actor) -> Result<View, AppError> {
        let before = self.desk()?;
        // A transfer names the agent by id; their name comes from their
        // token, through a socket they hold here, if any.
        let action = match action {
            Action::Transfer { to } => Action::Transfer {
                to: self.agent_named(to),
            },
            a => a,
        };
        let by = match actor {
            Actor::User(u) | Actor::Agent(u) | Actor::Assistant(u) => Some(u),
            Actor::System => None,
        };
        match before.apply(&action, actor, now_ms()).map_err(refusal)? {
            Some(next) => {
                self.desk_changed(&before, &next, by)?;
                Ok(next.view())
            }
            None => Ok(before.view()),
        }
    }

    /// The desk frames of a socket: its kind decides the actor.
    pub(super) fn desk_frame(&self, ws: &WebSocket, me: &Attachment, action: Action) {
        let actor = match me.kind {
            AuthorKind::Agent => Actor::Agent(&me.user),
            _ => Actor::User(&me.user),
        };
        let refused = match self.desk_act(action, actor) {
            Ok(_) => return,
            Err(AppError::Forbidden) => SocketError::NotAnAgent,
            Err(e) => {
                if e.log_detail().is_some() {
                    self.log_error("desk_change_failed", &e);
                }
                SocketError::App(e)
            }
        };
        send_to(ws, &refused.frame(None));
    }

    /// Who agent `to` is: the name their token gave a socket they hold in
    /// this session, else their id.
    fn agent_named(&self, to: UserRef) -> UserRef {
        self.state
            .get_websockets_with_tag(&user_tag(&to.id))
            .iter()
            .filter_map(attachment)
            .find(|a| a.kind == AuthorKind::Agent)
            .map(|a| a.user)
            .unwrap_or(to)
    }

    /// Stores and announces a new state.
    pub(super) fn desk_changed(
        &self,
        before: &Desk,
        next: &Desk,
        by: Option<&UserRef>,
    ) -> Result<(), AppError> {
        for frame in self.desk_store(before, next, by)? {
            self.broadcast_event(&frame);
        }
        Ok(())
    }

    /// Stores a new state and gives the frames that announce it.
    /// Synchronous, so it commits with whatever the caller wrote in the
    /// same block (a message that reopened the session).
    fn desk_store(
        &self,
        before: &Desk,
        next: &Desk,
        by: Option<&UserRef>,
    ) -> Result<Vec<String>, AppError> {
        self.log.save_desk(next, now_ms(), &self.outbox)?;
        self.replicate_soon();
        let mut frames = Vec::with_capacity(2);
        if next.mode() != before.mode() {
            if next.mode() == Mode::Human {
                self.stop_turn();
            }
            let system = UserRef {
                id: SYSTEM_ID.into(),
                name: SYSTEM_ID.into(),
            };
            let frame = ServerFrame::Mode {
                mode: next.mode().as_str(),
                by: by.unwrap_or(&system),
            };
            frames.push(frame.to_json());
        }
        let v = next.view();
        // The product hears of a new status or assignee; a change that
        // moved neither (the wait's notice was given) is not news.
        let was = before.view();
        if let Some(kind) = Kind::of_status(v.status)
            .filter(|_| was.status != v.status || was.assignee != v.assignee)
        {
            let meta = self.log.live()?;
            self.hook(
                kind,
                &SessionData::new(&meta.id, &meta.owner_id, &v, by),
                None,
            );
        }
        self.tell_desk(Event::of(v.status), v.clone(), None);
        let frame = ServerFrame::Desk {
            status: v.status,
            assignee: v.assignee.as_ref(),
            waiting_since: v.waiting_since,
            first_agent_reply_at: v.first_agent_reply_at,
            resolved_at: v.resolved_at,
            by,
        };
        frames.push(frame.to_json());
        if let Some(at) = self.desk_deadline(next) {
            self.alarm_soon(at);
        }
        Ok(frames)
    }

    /// Queues an item for the desk object. The first of a group schedules
    /// one call after the current event; the rest join it.
    pub(super) fn tell_desk(&self, event: Event, view: View, preview: Option<Preview>) {
        let Ok(meta) = self.log.live() else { return };
        let mut item = Item::new(event, &meta.id, &meta.owner_id, view, now_ms());
        item.preview = preview;
        let first = {
            let mut feed = self.feed.borrow_mut();
            feed.push(item);
            feed.len() == 1
        };
        if let Some(core) = self.me.upgrade().filter(|_| first) {
            self.state
                .wait_until(async move { core.flush_feed().await });
        }
    }

    /// A message was stored: the desk gets its preview.
    pub(super) fn tell_desk_message(&self, author: &Author, text: &str) {
        if let Ok(d) = self.desk() {
            self.tell_desk(Event::Message, d.view(), Some(Preview::of(author, text)));
        }
    }

    /// Sends what was queued for the desk. Best effort: a failure is
    /// logged, and the session's next item or the console's next reload
    /// repairs its line.
    async fn flush_feed(&self) {
        let items = std::mem::take(&mut *self.feed.borrow_mut());
        for chunk in items.chunks(MAX_ITEMS_PER_CALL) {
            if let Err(e) = crate::inbox::tell(&self.env, chunk).await {
                self.log_error("desk_feed_failed", &e);
            }
        }
    }

    /// Before a group of messages is stored: none is taken once the
    /// session is closed.
    pub(super) fn desk_admits_writes(&self) -> Result<(), AppError> {
        match self.desk()?.stage {
            crate::desk::Stage::Closed => Err(AppError::SessionClosed),
            _ => Ok(()),
        }
    }

    /// After a group of messages was stored (same synchronous block): a
    /// user's message reopens a resolved session; an agent's first
    /// message is timed. Gives the frames to send after the messages'.
    pub(super) fn desk_after_messages(&self, authors: &[&Author]) -> Vec<String> {
        let mut frames = Vec::new();
        for a in authors {
            let Ok(before) = self.desk() else { break };
            if let Ok(Some(next)) = before.on_message(a.kind, now_ms()) {
                let by = UserRef {
                    id: a.id.clone(),
                    name: a.name.clone(),
                };
                match self.desk_store(&before, &next, Some(&by)) {
                    Ok(f) => frames.extend(f),
                    Err(e) => self.log_error("desk_change_failed", &e),
                }
            }
        }
        frames
    }

    /// Whether the assistant answers a user's message now.
    pub(super) fn assistant_answers(&self) -> Result<bool, AppError> {
        let while_waiting = self.require_config()?.desk.assistant_while_waiting;
        Ok(self.desk()?.assistant_answers(while_waiting))
    }

    /// The next time the desk needs the alarm: the escalation timeout of a
    /// wait, or the idle close.
    pub(super) fn desk_deadline(&self, d: &Desk) -> Option<i64> {
        let c = self.require_config().ok()?.desk;
        let last = self.log.live().ok()?.updated_at;
        [
            d.escalation_due(c.escalation_timeout_ms),
            d.idle_close_due(last, c.idle_close_ms),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The alarm's turn for the desk: tells a user nobody came, closes an
    /// idle session; gives when the desk needs the alarm next.
    pub(super) async fn desk_timers(&self, now: i64) -> Option<i64> {
        let d = self.desk().ok()?;
        let c = self.require_config().ok()?.desk;
        if d.escalation_due(c.escalation_timeout_ms)
            .is_some_and(|t| t <= now)
        {
            if let Some(next) = d.told() {
                match self.desk_changed(&d, &next, None) {
                    Ok(()) => self.post_notice(NOBODY_FREE).await,
                    Err(e) => self.log_error("desk_change_failed", &e),
                }
            }
        }
        let d = self.desk().ok()?;
        let last = self.log.live().ok()?.updated_at;
        if d.idle_close_due(last, c.idle_close_ms)
            .is_some_and(|t| t <= now)
        {
            if let Err(e) = self.desk_act(Action::Close, Actor::System) {
                self.log_error("desk_change_failed", &e);
            }
        }
        self.desk_deadline(&self.desk().ok()?)
    }

    /// Stores a system message in the transcript, in order with the rest.
    async fn post_notice(&self, text: &str) {
        let id = MessageId::new();
        let msg = NewMessage {
            client_id: ClientId::of_reply(&id),
            id,
            author: Author {
                id: SYSTEM_ID.into(),
                name: SYSTEM_ID.into(),
                kind: AuthorKind::System,
            },
            text: text.into(),
            reply_to: None,
            created_at: now_ms(),
            turn: None,
            poll: None,
            attachments: Vec::new(),
            mentions: Vec::new(),
        };
        self.enqueue(Job::Send { ws: None, msg });
        self.drain().await;
    }
}
