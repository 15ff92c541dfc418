//! The session's serial work queue.
//!
//! Every change to the session (sends, edits, deletes, reactions, read
//! positions) and every history replay for a resuming socket runs here, one
//! job at a time, in arrival order. Consecutive sends are taken together and
//! appended to the session log in one synchronous block, which the runtime
//! commits as one transaction (group commit); the output gate holds each
//! ack and broadcast until that commit is durable. No network round trip
//! lies between a message and its ack: D1 is written later, by the
//! outbox's flush (`outbox.rs`).
//!
//! Under load, sends that arrive close together form one group: a drain
//! that starts within `GROUP_WINDOW_MS` of the last commit (a session
//! taking more than about 250 messages a second) first waits that long,
//! so that the sends arriving meanwhile join it. Each event would
//! otherwise be its own group of one, since an event's drain runs to its
//! end before the next event is delivered. A group is one local
//! transaction, and sockets that asked for it (`?batch=1`) get its
//! messages in one `batch` frame. Both cut the fixed cost per message and
//! per receiver (BENCHMARKS.md); the price is up to `GROUP_WINDOW_MS` of
//! latency under such load. At lighter load nothing waits.
//!
//! Because replays run in the same queue, a replay read never races a
//! commit: each page sees every message committed before it, and every
//! message committed after the final page is broadcast to the socket live.
//! That is what makes resume gap-free and duplicate-free.

use super::log::{Appended, Change, Rated, Reacted, Voted};
use super::replay::Step;
use super::sockets::{send_to, user_tag, Frame};
use super::Core;
use crate::config::LogLevel;
use crate::contract::PostReply;
use crate::error::{AppError, SocketError};
use crate::ids::{ClientId, MessageId};
use crate::protocol::{AuthorKind, Rating, ReactAction, ServerFrame, UserRef};
use crate::runtime::log;
use crate::store::messages::NewMessage;
use crate::store::now_ms;
use crate::webhooks::{Kind, MessageData, TurnData};
use serde_json::Value;
use worker::WebSocket;

/// Most sends appended in one group.
pub const MAX_BATCH: usize = 50;
/// A drain starting this soon after the last commit waits as long for
/// more sends to join its group.
const GROUP_WINDOW_MS: i64 = 4;
/// Messages per replay page; a long replay yields to other work between pages.
pub const REPLAY_PAGE: u32 = 100;

/// Where a service post's answer goes.
pub type Posted = futures::channel::oneshot::Sender<Result<PostReply, AppError>>;

pub enum Job {
    /// A message to store: a user's send (acked on `ws`) or the assistant's
    /// reply (no socket).
    Send {
        ws: Option<WebSocket>,
        msg: NewMessage,
    },
    Change(ChangeJob),
    Read {
        ws: WebSocket,
        user: UserRef,
        seq: u64,
    },
    /// One step of a new socket's greeting and replay (`replay.rs`).
    Replay {
        ws: WebSocket,
        user: UserRef,
        step: Step,
    },
}

/// An edit, deletion, reaction or vote on message `seq` by `user` (as
/// `kind`), with its idempotency key if it has one.
pub struct ChangeJob {
    pub ws: WebSocket,
    pub user: UserRef,
    pub kind: AuthorKind,
    pub seq: u64,
    pub client_id: Option<ClientId>,
    pub alter: Alter,
}

/// What a change does to a message.
pub enum Alter {
    Edit(String),
    Delete,
    React(String, ReactAction),
    /// A ballot replacing the user's earlier one on a poll.
    Vote(Vec<u32>),
    /// A rating of an assistant reply, with its reason.
    Rate(crate::protocol::Rating, Option<String>),
}

/// What a change came to.
enum Outcome {
    /// It is change number `.1`, announced by the frame `.0`.
    Done(String, u64),
    /// A vote, change number `.2`: the tally for everyone (`.0`), and for
    /// the voter's own sockets with their ballot (`.1`).
    Voted(String, String, u64),
    /// Done, and told to the changer's own sockets alone (`.0`): a rating.
    Private(String),
    /// Nothing to change (a reaction already so).
    Nothing,
    /// Its idempotency key was used already, for this change (if any).
    Duplicate(Option<u64>),
    Refused(SocketError),
}

enum Work {
    Commit(Vec<(Option<WebSocket>, NewMessage)>),
    // Boxed: a job is large next to a batch (a Vec).
    One(Box<Job>),
}

impl Core {
    pub(super) fn enqueue(&self, job: Job) {
        self.queue.borrow_mut().push_back(job);
    }

    /// Runs queued jobs until the queue is empty. Only one drain runs at a
    /// time; a caller that finds one running leaves its job to it.
    pub(super) async fn drain(&self) {
        if self.draining.replace(true) {
            return;
        }
        let busy = now_ms() - self.last_commit.get() < GROUP_WINDOW_MS;
        if busy && matches!(self.queue.borrow().front(), Some(Job::Send { .. })) {
            worker::Delay::from(std::time::Duration::from_millis(GROUP_WINDOW_MS as u64)).await;
        }
        loop {
            let work = {
                let mut q = self.queue.borrow_mut();
                match q.pop_front() {
                    None => break,
                    Some(Job::Send { ws, msg }) => {
                        let mut batch = vec![(ws, msg)];
                        while batch.len() < MAX_BATCH && matches!(q.front(), Some(Job::Send { .. }))
                        {
                            if let Some(Job::Send { ws, msg }) = q.pop_front() {
                                batch.push((ws, msg));
                            }
                        }
                        Work::Commit(batch)
                    }
                    Some(job) => Work::One(Box::new(job)),
                }
            };
            match work {
                Work::Commit(batch) => self.commit(batch).await,
                Work::One(job) => self.run(*job).await,
            }
        }
        self.draining.set(false);
    }

    /// A message from the service API: queued like a socket's send, and
    /// answered once its group committed (or was refused).
    pub(super) async fn post(
        &self,
        client_id: String,
        author: crate::protocol::Author,
        text: String,
    ) -> Result<worker::Response, AppError> {
        let client_id = ClientId::parse(client_id)
            .map_err(|r| AppError::bad_request("invalid_client_id", r.message()))?;
        let id = MessageId::new();
        let (tx, rx) = futures::channel::oneshot::channel();
        self.posted.borrow_mut().insert(id.as_str().to_string(), tx);
        let msg = NewMessage {
            id,
            client_id,
            author,
            text,
            reply_to: None,
            created_at: now_ms(),
            turn: None,
            poll: None,
            attachments: Vec::new(),
            mentions: Vec::new(),
        };
        self.enqueue(Job::Send { ws: None, msg });
        self.drain().await;
        // Dropped unanswered only when the session was erased meanwhile.
        let reply = rx.await.map_err(|_| AppError::NotFound)??;
        crate::http::json(200, &reply).map_err(|e| AppError::internal(format!("{e:?}")))
    }

    /// Answers the service API's posts in `batch`.
    fn answer_posts(
        &self,
        batch: &[(Option<WebSocket>, NewMessage)],
        outcome: Result<&[Appended], &AppError>,
    ) {
        let mut posted = self.posted.borrow_mut();
        if posted.is_empty() {
            return;
        }
        for (i, (_, m)) in batch.iter().enumerate() {
            let Some(tx) = posted.remove(m.id.as_str()) else {
                continue;
            };
            let answer = match outcome {
                Ok(c) => Ok(PostReply {
                    seq: c[i].view.seq,
                    id: c[i].view.id.clone(),
                    duplicate: c[i].duplicate,
                }),
                Err(e) => Err(e.clone()),
            };
            let _ = tx.send(answer);
        }
    }

    async fn commit(&self, batch: Vec<(Option<WebSocket>, NewMessage)>) {
        let msgs: Vec<NewMessage> = batch.iter().map(|(_, m)| m.clone()).collect();
        let result = self.keyring().and_then(|keys| {
            self.desk_admits_writes()?;
            self.log.append(keys, &msgs, now_ms(), &self.outbox)
        });
        self.answer_posts(&batch, result.as_deref());
        let ids: Vec<&str> = batch.iter().map(|(_, m)| m.id.as_str()).collect();
        let committed = match result {
            Ok(c) => c,
            Err(e) => {
                let refusal = match e {
                    AppError::NotFound => SocketError::SessionGone,
                    AppError::SessionClosed => SocketError::App(e),
                    _ => {
                        self.log_error("commit_failed", &e);
                        SocketError::NotStored
                    }
                };
                // Not acked, so the senders retry with the same client ids
                // (and are screened again).
                for (ws, m) in &batch {
                    let Some(ws) = ws else { continue };
                    send_to(ws, &refusal.frame(Some(m.client_id.as_str())));
                }
                self.screened(&ids, &[]);
                return;
            }
        };
        self.last_commit.set(now_ms());
        self.replicate_soon();
        let stored: Vec<(&str, u64, &str, &str)> = (committed.iter())
            .filter(|c| !c.duplicate)
            .map(|c| {
                (
                    c.view.id.as_str(),
                    c.view.seq,
                    c.view.author.id.as_str(),
                    c.view.text.as_str(),
                )
            })
            .collect();
        self.screened(&ids, &stored);
        // Webhook events, stored in the same block as the messages.
        let session = self.session_id();
        for c in committed.iter().filter(|c| !c.duplicate) {
            // A reply belongs to its turn's trace, anything else to the
            // traced `send` it came from (if it was one).
            let trace = match c.view.turn {
                Some(_) => self.turn_span(),
                None => self
                    .asked_trace
                    .borrow()
                    .as_deref()
                    .and_then(crate::trace::Trace::parse)
                    .map(|t| t.child().header()),
            };
            self.hook(
                Kind::MessageCreated,
                &MessageData::new(&session, &c.view),
                trace.clone(),
            );
            if let Some(turn) = &c.view.turn {
                let data = TurnData {
                    session_id: &session,
                    message_id: &c.view.id,
                    seq: c.view.seq,
                    turn,
                };
                self.hook(Kind::TurnCompleted, &data, trace);
            }
        }
        let authors: Vec<&crate::protocol::Author> = committed
            .iter()
            .filter(|c| !c.duplicate)
            .map(|c| &c.view.author)
            .collect();
        // In the same block as the append, so the desk change (a reopen)
        // commits with the message; its frame follows the messages'.
        let desk_frames = self.desk_after_messages(&authors);
        let mut frames = Vec::with_capacity(batch.len());
        let mut authors = Vec::with_capacity(batch.len());
        let mut askers = Vec::new();
        for ((ws, m), c) in batch.iter().zip(&committed) {
            if let Some(ws) = ws {
                send_to(
                    ws,
                    &ServerFrame::Ack {
                        client_id: m.client_id.as_str(),
                        seq: c.view.seq,
                        id: &c.view.id,
                        duplicate: c.duplicate,
                    }
                    .to_json(),
                );
            }
            if !c.duplicate {
                frames.push(ServerFrame::Message(&c.view).to_json());
                authors.push(&c.view.author);
                match &c.view.poll {
                    // A poll asks the people in the session, not the
                    // assistant; the alarm announces its closing.
                    Some(p) => p.closes_at.into_iter().for_each(|at| self.alarm_soon(at)),
                    None if c.view.author.kind == crate::protocol::AuthorKind::User => {
                        askers.push(UserRef {
                            id: c.view.author.id.clone(),
                            name: c.view.author.name.clone(),
                        })
                    }
                    None => {}
                }
            }
        }
        self.broadcast_messages(&frames, &authors);
        let stored: Vec<&crate::protocol::MessageView> = (committed.iter())
            .filter(|c| !c.duplicate)
            .map(|c| &c.view)
            .collect();
        self.tell_mentioned(&stored);
        // The inbox shows a session's latest message.
        if let Some(last) = committed.iter().rev().find(|c| !c.duplicate) {
            self.tell_desk_message(&last.view.author, &last.view.text);
        }
        for f in &desk_frames {
            self.broadcast_event(f);
        }
        // After the messages: a reply's `turn` frame never precedes them.
        for user in askers {
            let asked = self.asked_trace.borrow_mut().take();
            let trace = crate::trace::Trace::continued(asked.as_deref());
            self.request_turn(user, Some(trace));
        }
    }

    /// Carries out one job. (Long: one arm per kind of job, each the log
    /// change and the frame that announces it, side by side.)
    async fn run(&self, job: Job) {
        let config = match self.require_config() {
            Ok(c) => c,
            Err(e) => return self.log_error("no_config", &e),
        };
        let keys = &config.keyring;
        let now = now_ms();
        let (log, out) = (&self.log, &self.outbox);
        match job {
            Job::Change(c) => {
                self.apply(config, c, now);
                self.delete_unlinked().await;
            }
            Job::Read { ws, user, seq } => match log.mark_read(&user.id, seq, now, out) {
                Ok(Some(seq)) => {
                    self.broadcast_event(&ServerFrame::Receipt { user: &user, seq }.to_json())
                }
                Ok(None) => {}
                Err(e) => self.fail(&ws, "read_failed", &e, None),
            },
            Job::Replay { ws, user, step } => return self.replay(keys, ws, user, step),
            Job::Send { .. } => unreachable!("sends are committed in batches"),
        }
        self.replicate_soon();
    }

    /// A change the log could not take: logged, and the sender told (with
    /// the change's idempotency key, if it had one, so it is sent again).
    pub(super) fn fail(&self, ws: &WebSocket, event: &str, e: &AppError, key: Option<&str>) {
        self.log_error(event, e);
        send_to(ws, &SocketError::ChangeNotApplied.frame(key));
    }

    /// Adds one to a metric counter of this session; the outbox carries it
    /// to D1 with the next flush, so no event costs a D1 write of its own.
    /// A client frame of type `kind`, counted in memory until the next
    /// flush (`Outbox::fold`): no storage write per frame.
    pub(super) fn count_frame(&self, kind: &str) {
        let name = crate::metrics::Metric::WsFrames.name();
        self.outbox.count_later(name, &format!(r#"type="{kind}""#));
        self.replicate_soon();
    }

    pub(super) fn count(&self, metric: crate::metrics::Metric, labels: String) {
        let counted = self
            .outbox
            .count(self.log.sql(), metric.name(), &labels, 1.0, now_ms());
        match counted {
            Ok(()) => self.replicate_soon(),
            Err(e) => self.log_error("count_failed", &e),
        }
    }

    pub(super) fn log_error(&self, event: &str, e: &AppError) {
        log(
            LogLevel::Error,
            event,
            [
                ("session", Value::from(self.session_id())),
                ("detail", Value::from(e.to_string())),
            ],
        );
    }
}

impl Core {
    /// Queues an edit, deletion, reaction or vote on message `seq` by the
    /// socket's user, with its idempotency key.
    pub(super) fn enqueue_change(
        &self,
        ws: WebSocket,
        me: super::sockets::Attachment,
        (seq, client_id): (u64, Option<crate::ids::ClientId>),
        alter: Alter,
    ) {
        self.enqueue(Job::Change(ChangeJob {
            ws,
            user: me.user,
            kind: me.kind,
            seq,
            client_id,
            alter,
        }));
    }

    /// Carries out a change and tells everyone (and its sender, if it has
    /// an idempotency key) what it came to.
    fn apply(&self, config: &crate::config::Config, c: ChangeJob, now: i64) {
        let key = c.client_id.as_deref();
        // An edit carries its author's text, a reaction its author's name:
        // neither goes to those who block them.
        let hide_from = match c.alter {
            Alter::Edit(_) | Alter::React(..) => self.blockers_of(&crate::protocol::Author {
                id: c.user.id.clone(),
                name: c.user.name.clone(),
                kind: c.kind,
            }),
            _ => Vec::new(),
        };
        // A closed session's transcript is final (read positions may move).
        let outcome = match self.desk_admits_writes() {
            Err(e @ AppError::SessionClosed) => Ok(Outcome::Refused(SocketError::App(e))),
            _ => self.change(config, &c.user, c.kind, c.seq, key, c.alter, now),
        };
        let (change, duplicate) = match outcome {
            Ok(Outcome::Done(frame, n)) => {
                self.broadcast_event_except(&frame, &hide_from);
                (Some(n), false)
            }
            Ok(Outcome::Voted(all, own, n)) => {
                let mine = self.state.get_websockets_with_tag(&user_tag(&c.user.id));
                self.broadcast_event_except(&all, &mine);
                self.send_own(&mine, &own);
                (Some(n), false)
            }
            Ok(Outcome::Private(own)) => {
                let mine = self.state.get_websockets_with_tag(&user_tag(&c.user.id));
                self.send_own(&mine, &own);
                (None, false)
            }
            Ok(Outcome::Nothing) => (None, false),
            Ok(Outcome::Duplicate(n)) => (n, true),
            Ok(Outcome::Refused(e)) => return send_to(&c.ws, &e.frame(key)),
            Err(e) => return self.fail(&c.ws, "change_failed", &e, key),
        };
        if let Some(client_id) = key {
            let applied = ServerFrame::Applied {
                client_id,
                change,
                duplicate,
            };
            send_to(&c.ws, &applied.to_json());
        }
    }

    /// Sends `frame` to the user's sockets `mine` that are past their
    /// greeting (one in replay gets it from the replay).
    fn send_own(&self, mine: &[WebSocket], frame: &str) {
        let greeted = |ws: &&WebSocket| {
            let replaying = self.replaying.borrow();
            !replaying.iter().any(|(r, g)| r == *ws && !g)
        };
        let own = Frame::new(frame);
        mine.iter().filter(greeted).for_each(|ws| own.send(ws));
    }

    /// Applies one change to the log, with its idempotency key, in one
    /// synchronous block (so both commit together), and says what it came
    /// to and the frame that announces it.
    #[allow(clippy::too_many_arguments)]
    fn change(
        &self,
        config: &crate::config::Config,
        user: &UserRef,
        kind: AuthorKind,
        seq: u64,
        key: Option<&str>,
        alter: Alter,
        now: i64,
    ) -> Result<Outcome, AppError> {
        let (log, out) = (&self.log, &self.outbox);
        if let Some(k) = key {
            if let Some(change) = log.keyed(&user.id, k)? {
                return Ok(Outcome::Duplicate(change));
            }
        }
        let who = (user.id.as_str(), kind);
        let outcome = match alter {
            Alter::Edit(text) => {
                let keep = config.max_edit_history;
                match log.edit(&config.keyring, seq, who, &text, now, keep, out)? {
                    Change::Done(change) => {
                        let frame = ServerFrame::Edited {
                            seq,
                            text: &text,
                            edited_at: now,
                            change,
                        };
                        Outcome::Done(frame.to_json(), change)
                    }
                    refused => Outcome::Refused(change_error(refused)),
                }
            }
            Alter::Delete => match log.delete(seq, who, now, out)? {
                Change::Done(change) => {
                    // In the same commit; the objects go after it.
                    log.drop_files(seq)?;
                    let frame = ServerFrame::Deleted {
                        seq,
                        deleted_at: now,
                        change,
                        removed: None,
                    };
                    Outcome::Done(frame.to_json(), change)
                }
                refused => Outcome::Refused(change_error(refused)),
            },
            Alter::React(emoji, action) => {
                let cap = config.max_reactions_per_user;
                match log.react(seq, user, &emoji, action, now, cap, out)? {
                    Reacted::Changed(change) => {
                        let frame = ServerFrame::Reaction {
                            seq,
                            emoji: &emoji,
                            user,
                            action,
                            change,
                        };
                        Outcome::Done(frame.to_json(), change)
                    }
                    // Already so: nothing changed, nothing to tell anyone.
                    Reacted::Unchanged => Outcome::Nothing,
                    Reacted::Missing => Outcome::Refused(SocketError::MessageNotFound),
                    Reacted::TooMany => Outcome::Refused(SocketError::TooManyReactions { cap }),
                }
            }
            Alter::Rate(rating, reason) => {
                // Users judge the assistant; agents answer for it.
                if kind != AuthorKind::User {
                    return Ok(Outcome::Refused(SocketError::NotRateable));
                }
                let keys = &config.keyring;
                let said = (rating, reason.as_deref());
                match log.rate(keys, seq, &user.id, said, now, out)? {
                    Rated::Done => {
                        let frame = ServerFrame::Rated {
                            seq,
                            rating,
                            reason: reason
                                .as_deref()
                                .filter(|r| rating != Rating::None && !r.trim().is_empty()),
                        };
                        Outcome::Private(frame.to_json())
                    }
                    Rated::Unchanged => Outcome::Nothing,
                    Rated::NotRateable => Outcome::Refused(SocketError::NotRateable),
                    Rated::Missing => Outcome::Refused(SocketError::MessageNotFound),
                }
            }
            Alter::Vote(choices) => {
                let keys = &config.keyring;
                match log.vote(keys, (seq, user), &choices, now, out)? {
                    Voted::Changed(change, spec, votes) => {
                        let frame = |reader| {
                            let tally = crate::poll::Tally::count(&spec, &votes, now, reader);
                            ServerFrame::Poll {
                                seq,
                                tally: &tally,
                                change,
                            }
                            .to_json()
                        };
                        Outcome::Voted(frame(None), frame(Some(&user.id)), change)
                    }
                    Voted::Unchanged => Outcome::Nothing,
                    Voted::Refused(r) => Outcome::Refused(SocketError::Poll(r)),
                    Voted::Missing => Outcome::Refused(SocketError::MessageNotFound),
                }
            }
        };
        if let Some(k) = key {
            let change = match &outcome {
                Outcome::Done(_, n) | Outcome::Voted(_, _, n) => Some(*n),
                Outcome::Nothing | Outcome::Private(_) => None,
                // A refusal keeps no key: the sender drops the change.
                _ => return Ok(outcome),
            };
            log.remember_key(&user.id, k, change, now)?;
        }
        Ok(outcome)
    }
}

fn change_error(c: Change) -> SocketError {
    match c {
        Change::Forbidden => SocketError::NotAuthor,
        Change::Deleted => SocketError::MessageDeleted,
        Change::NotFound | Change::Done(_) => SocketError::MessageNotFound,
    }
}
