//! The per-session Durable Object.
//!
//! **Keying.** One object per chat session, addressed with
//! `idFromName(session id)` on the `SESSIONS` namespace, so every Worker
//! instance anywhere reaches the same object for a session. It learns its
//! session id from the first call it serves (every call names it) or from
//! a socket's attachment after hibernation.
//!
//! **Storage.** The object's own SQLite storage is the session's system of
//! record (`log/`): messages (sealed as in D1), edits, reactions, polls
//! and votes, read positions, members, mode, and the outbox of changes D1
//! has not confirmed (`outbox.rs`). D1 holds the replicated copy that listings,
//! admin views, metrics and exports query, in the shard the Worker picked
//! when it created the session (`init` names it; the log keeps it; see
//! `crate::shards`).
//!
//! **Guarantees.**
//! - *Durable ack:* a message is acked and broadcast only once the local
//!   transaction holding it has committed (the runtime's output gate holds
//!   every frame until then). No network round trip lies on that path.
//! - *Ordering:* every message gets the next seq of its session, assigned
//!   in the log's commit: strictly increasing and gap-free.
//! - *Exactly once:* a send repeating a stored `client_id` (same author id
//!   and kind) is acked with the original seq and `duplicate: true`; an
//!   edit, deletion, reaction or vote repeating its `client_id` changes
//!   nothing and is answered `applied` with `duplicate: true`.
//! - *Resume:* a socket connecting with `after=SEQ` gets every later message,
//!   in order, before any live message; with `changes=N`, then every
//!   change numbered after `N` to the messages it had, each changed thing
//!   once in its current state; then a `synced` frame (`replay.rs`,
//!   `log/stream.rs`).
//! - *Fan-out:* every socket of every participant gets every message,
//!   but for the messages of people its user blocks (`fanout.rs`).
//! - *Moderation* (`moderate.rs`, `filter.rs`): removals, mutes and
//!   bans take effect on every socket at once; the pre-send filter
//!   screens users' sends. *Mentions* (`mentions.rs`) reach the people
//!   named through their per-user objects, after the commit.
//! - *Replication:* every change reaches D1 within `REPLICATION_INTERVAL_MS`
//!   while D1 is up, by idempotent upserts; while it is down, chat goes on
//!   and the backlog drains when it returns (`outbox.rs`, `alarm.rs`).
//! - *Authorization for the socket's life* (`lifetime.rs`): a socket ends
//!   when its token does (4001) or its user is removed (4003).
//! - *Budgets* (`limits.rs`): every frame that writes draws from a per-user
//!   bucket kept in the object's storage.
//! - *The agents' inbox* (`desk.rs`): after each commit the object tells
//!   the desk object (`crate::inbox`) what changed, in one call per group,
//!   through `wait_until`: best effort and never on the path to an ack.
//! - *Webhooks* (`hooks.rs`): every event some enabled endpoint takes
//!   (`webhooks::gate`) is stored with the change it reports and then
//!   handed to the `WEBHOOKS` queue, also after the ack; none is lost
//!   while the queue is down.
//! - *The assistant* (`turn.rs`): one turn at a time, under the session's
//!   profile (`profiles.rs`), its policy the pure `crate::llm::driver`;
//!   function calls and agents' approvals are `tools.rs`, kept in the log
//!   (`log/tools.rs`), never on the path to an ack.
//!
//! **Sessions from before the log.** An object with no log of its session
//! loads it from D1 once (`calls.rs`, `loaded`), before serving anything,
//! from whichever shard holds it; a session no shard knows is not found.
//!
//! **Hibernation.** Sockets are accepted through the hibernation API with
//! their identity in a serialized attachment and a `user:<id>` tag; `ping`
//! is answered by the runtime's auto-response without waking the object.
//! The in-memory queue and replay list exist only while work is running,
//! and the runtime does not evict an object with work in flight, so the
//! object may hibernate whenever it is idle and lose nothing.
//!
//! **Contract.** The Worker reaches the object only with the typed calls of
//! `crate::contract` (one JSON header per request); `internal.rs` is the
//! Worker's side. The Worker waits at most `internal::CALL_TIMEOUT_MS`.

mod alarm;
mod attempt;
mod calls;
mod desk;
mod fanout;
mod files;
mod filter;
mod hooks;
mod lifetime;
mod limits;
pub mod log;
mod mentions;
mod moderate;
pub mod outbox;
mod profiles;
mod progress;
mod queue;
mod replay;
mod running;
mod sockets;
mod tools;
mod turn;

use crate::auth::user_hash;
use crate::config::{Config, LogLevel};
use crate::desk::Action;
use crate::error::{close, AppError, SocketError};
use crate::ids::{random_hex, MessageId};
use crate::limits::Scope;
use crate::metrics::Metric;
use crate::protocol::{
    decode, AuthorKind, ClientFrame, Limits, PresenceStatus, ServerFrame, PING_FRAME, PONG_FRAME,
};
use crate::runtime::{self, log};
use crate::store::{messages::NewMessage, now_ms};
use queue::{Alter, Job};
use serde_json::Value;
use sockets::{attachment, devices, send_to, user_tag, Attachment};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair, WebSocketRequestResponsePair,
};

pub mod internal;

#[durable_object]
pub struct ChatSession {
    core: Rc<Core>,
}

/// The object's parts and the runtime handles they share, behind an `Rc`
/// so that work can continue after the event that started it returns (see
/// `accept_socket`). Each part owns its state: the log its tables, the
/// outbox its rows and replication state, the limiter its buckets.
pub struct Core {
    state: State,
    env: Env,
    log: log::Log,
    outbox: outbox::Outbox,
    queue: RefCell<VecDeque<Job>>,
    draining: Cell<bool>,
    /// When the last group of sends committed (unix ms; see `queue.rs`).
    last_commit: Cell<i64>,
    /// Sockets whose replay is running, and whether they were greeted yet.
    replaying: RefCell<Vec<(WebSocket, bool)>>,
    /// Last relayed `typing` per connection; losing it only risks one extra
    /// typing frame, so it need not survive hibernation.
    typing_at: RefCell<HashMap<String, u64>>,
    /// The session id, learned from the first call or attachment.
    session: RefCell<String>,
    /// This object itself, for work that outlives the event starting it.
    me: Weak<Core>,
    /// The assistant: idle, or running a turn (see `turn.rs`).
    turn: RefCell<turn::TurnSlot>,
    /// The `traceparent` of the latest `send` not yet committed, which the
    /// turn it asks for joins (`crate::trace`); parsed only when used.
    asked_trace: RefCell<Option<String>>,
    /// Per-user budgets for mutating frames, saved in storage.
    buckets: limits::Buckets,
    /// When the pending alarm fires, if this instance knows (`alarm.rs`).
    alarm_at: Cell<Option<i64>>,
    /// Whether this instance looked for a reply a dead one left behind.
    recovered: Cell<bool>,
    /// When the reply in progress was last saved (`progress.rs`).
    progress_saved_at: Cell<i64>,
    /// Items for the desk object not sent yet (`desk.rs`); losing them
    /// leaves consoles a step behind, never chat.
    feed: RefCell<Vec<crate::desk::feed::Item>>,
    /// Webhook events not yet taken by the queue (`hooks.rs`).
    hooks: hooks::Hooks,
    /// Messages posted through the service API, by message id, waiting
    /// for their commit (`queue.rs`, `post`).
    posted: RefCell<HashMap<String, queue::Posted>>,
    /// Sends the pre-send filter passed, waiting for their commit.
    screening: filter::Screening,
    /// The assistant profile last read (`profiles.rs`).
    profiles: profiles::Profiles,
    /// The assistant's calls waiting for an agent (`tools.rs`).
    approvals: tools::Approvals,
}

impl DurableObject for ChatSession {
    fn new(state: State, env: Env) -> Self {
        // Keep-alives are answered by the runtime without waking the object.
        if let Ok(pair) = WebSocketRequestResponsePair::new(PING_FRAME, PONG_FRAME) {
            state.set_websocket_auto_response(&pair);
        }
        let sql = state.storage().sql();
        let outbox = outbox::Outbox::open(&sql);
        let hooks = hooks::Hooks::open(&sql);
        let log = log::Log::open(sql);
        Self {
            core: Rc::new_cyclic(|me| Core {
                state,
                env,
                log,
                outbox,
                queue: RefCell::new(VecDeque::new()),
                draining: Cell::new(false),
                last_commit: Cell::new(0),
                replaying: RefCell::new(Vec::new()),
                typing_at: RefCell::new(HashMap::new()),
                session: RefCell::new(String::new()),
                me: me.clone(),
                turn: RefCell::new(turn::TurnSlot::Idle),
                asked_trace: RefCell::new(None),
                buckets: limits::Buckets::default(),
                alarm_at: Cell::new(None),
                recovered: Cell::new(false),
                progress_saved_at: Cell::new(0),
                feed: RefCell::new(Vec::new()),
                hooks,
                posted: RefCell::new(HashMap::new()),
                screening: filter::Screening::default(),
                profiles: profiles::Profiles::default(),
                approvals: tools::Approvals::default(),
            }),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let this = &self.core;
        let call = req
            .headers()
            .get(crate::contract::CALL_HEADER)?
            .and_then(|h| crate::contract::Call::decode(&h));
        let Some(call) = call else {
            let e = AppError::internal("internal request without a valid call");
            return crate::http::json(e.status(), &e.body(""))
                .map_err(|e| worker::Error::RustError(e.to_string()));
        };
        this.learn_session(call.session());
        let request_id = match &call {
            crate::contract::Call::Connect { request_id, .. } => request_id.clone(),
            _ => String::new(),
        };
        // The Worker's span of the request (`internal.rs` sends it).
        let trace = req.headers().get("traceparent").ok().flatten();
        let trace_id = trace
            .as_deref()
            .and_then(crate::trace::Trace::parse)
            .map(|t| t.trace_id().to_string());
        match Core::serve(this, call).await {
            Ok(r) => Ok(r),
            Err(e) => {
                if let Some(detail) = e.log_detail() {
                    log(
                        LogLevel::Error,
                        "session_request_failed",
                        [
                            ("request_id", Value::from(request_id.as_str())),
                            ("trace_id", trace_id.map_or(Value::Null, Value::from)),
                            ("session", Value::from(this.session_id())),
                            ("detail", Value::from(detail)),
                        ],
                    );
                }
                crate::http::json(e.status(), &e.body(&request_id))
                    .map_err(|e| worker::Error::RustError(e.to_string()))
            }
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.core.on_alarm().await;
        Response::empty()
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let this = &self.core;
        let Ok(config) = runtime::config(&this.env) else {
            let _ = ws.close(Some(close::TRY_AGAIN_LATER), Some("configuration invalid"));
            return Ok(());
        };
        let Some(me) = attachment(&ws) else {
            // Every socket we accept has an attachment; one without cannot be served.
            let _ = ws.close(Some(close::POLICY), Some("unknown connection"));
            return Ok(());
        };
        this.learn_session(&me.session);
        this.recover_turn();
        if me.expired(now_ms() as u64) {
            crate::runtime::end_expired(&ws);
            return Ok(());
        }
        let text = match message {
            WebSocketIncomingMessage::String(text) => text,
            WebSocketIncomingMessage::Binary(_) => {
                this.count_frame("binary");
                send_to(&ws, &SocketError::BinaryNotSupported.frame(None));
                return Ok(());
            }
        };
        if text.len() > config.max_frame_bytes {
            let _ = ws.close(Some(close::TOO_BIG), Some("frame too large"));
            return Ok(());
        }
        let limits = Limits {
            max_message_chars: config.max_message_chars,
        };
        let frame = decode(&text, limits);
        let kind = frame.as_ref().map_or("invalid", |f| f.type_name());
        this.count_frame(kind);
        match frame {
            Ok(frame) => this.handle(ws, me, frame, config).await,
            Err(e) => send_to(&ws, &SocketError::Frame(e).frame(None)),
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        self.core.leave(&ws);
        self.core
            .count(Metric::WsCloses, format!(r#"code="{code}""#));
        // Complete the closing handshake; 1005/1006 are reserved and cannot be sent.
        let code = match code as u16 {
            1005 | 1006 => close::NORMAL,
            c => c,
        };
        let _ = ws.close(Some(code), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.core.leave(&ws);
        let _ = ws.close(Some(close::INTERNAL), Some("socket error"));
        Ok(())
    }
}

impl Core {
    fn session_id(&self) -> String {
        self.session.borrow().clone()
    }

    /// Learns the session id, once per instance. A woken instance whose
    /// outbox still holds changes (its alarm may have been lost with the
    /// previous instance) schedules their flush.
    fn learn_session(&self, id: &str) {
        if self.session.borrow().is_empty() && !id.is_empty() {
            *self.session.borrow_mut() = id.to_string();
            if self.outbox.depth(&self.log).is_ok_and(|(n, _)| n > 0) {
                self.replicate_soon();
            }
        }
    }

    /// Accepts a socket for a caller the Worker has verified and
    /// `serve_loaded` has admitted (owner, member, or admin): spends its
    /// ticket, refuses it past the socket caps, attaches who it is, and
    /// queues its replay. (Long: those steps must run in this order, with
    /// nothing awaited between them, so a socket is never half-accepted.)
    pub(super) fn accept_socket(
        this: &Rc<Core>,
        request_id: &str,
        caller: crate::contract::Caller,
        resume: replay::Step,
        ticket: Option<crate::contract::Ticket>,
        (expires_at, frames): (u64, &str),
    ) -> std::result::Result<Response, AppError> {
        let config = this.require_config()?;
        let session = this.session_id();
        let kind = if caller.admin {
            AuthorKind::Agent
        } else {
            AuthorKind::User
        };
        let user = caller.user;
        if let Some(t) = ticket {
            crate::runtime::spend_ticket(&this.state.storage().sql(), &t)?;
        }

        let pair = WebSocketPair::new().map_err(AppError::internal)?;
        let tag = user_tag(&user.id);
        let refusal = if this.state.get_websockets().len() >= config.max_sockets_per_session {
            Some(AppError::SessionFull)
        } else if this.state.get_websockets_with_tag(&tag).len() >= config.max_sockets_per_user {
            Some(AppError::TooManySockets)
        } else {
            None
        };
        if let Some(e) = refusal {
            // Accepted outside the hibernation set only to say why, so that
            // browsers (which cannot read a refused upgrade) see the reason.
            pair.server.accept().map_err(AppError::internal)?;
            send_to(&pair.server, &SocketError::App(e.clone()).frame(None));
            let _ = pair.server.close(Some(e.close_code()), Some(e.code()));
            return Response::from_websocket(pair.client).map_err(AppError::internal);
        }

        // The frames tag says how it takes messages committed together.
        this.state
            .accept_websocket_with_tags(&pair.server, &[&tag, frames]);
        pair.server
            .serialize_attachment(Attachment {
                conn: random_hex(8),
                session: session.clone(),
                user: user.clone(),
                kind,
                expires_at,
            })
            .map_err(AppError::internal)?;
        // Replaying (and not yet greeted) until its replay job runs.
        this.replaying
            .borrow_mut()
            .push((pair.server.clone(), false));
        let devices = devices(&this.state, &user.id, None);
        if devices == 1 {
            this.tell_presence(&user, kind, true);
        }
        let user_id = user.id.clone();
        this.broadcast_event_except(
            &ServerFrame::Presence {
                user: &user,
                status: PresenceStatus::Joined,
                devices,
            }
            .to_json(),
            std::slice::from_ref(&pair.server),
        );
        this.enqueue(Job::Replay {
            ws: pair.server,
            user,
            step: resume,
        });
        // The replay runs after the 101 is returned; wait_until tells the
        // runtime the object still has work in flight.
        let core = Rc::clone(this);
        this.state.wait_until(async move {
            if expires_at != 0 {
                core.alarm_no_later_than(expires_at as i64).await;
            }
            core.drain().await
        });
        this.count(Metric::WsConnections, r#"event="opened""#.into());
        log(
            LogLevel::Info,
            "ws_open",
            [
                ("request_id", Value::from(request_id)),
                ("session", Value::from(session.as_str())),
                (
                    "user",
                    Value::from(user_hash(
                        config.pseudonym_key.expose().as_bytes(),
                        &user_id,
                    )),
                ),
                ("devices", Value::from(devices)),
            ],
        );
        Response::from_websocket(pair.client).map_err(AppError::internal)
    }

    fn leave(&self, ws: &WebSocket) {
        self.end_replay(ws);
        let Some(me) = attachment(ws) else { return };
        self.learn_session(&me.session);
        self.typing_at.borrow_mut().remove(&me.conn);
        self.count(Metric::WsConnections, r#"event="closed""#.into());
        let remaining = devices(&self.state, &me.user.id, Some(ws));
        if remaining == 0 {
            self.tell_presence(&me.user, me.kind, false);
        }
        self.broadcast_event_except(
            &ServerFrame::Presence {
                user: &me.user,
                status: PresenceStatus::Left,
                devices: remaining,
            }
            .to_json(),
            std::slice::from_ref(ws),
        );
        let user = runtime::config(&self.env)
            .map(|c| Value::from(user_hash(c.pseudonym_key.expose().as_bytes(), &me.user.id)))
            .unwrap_or(Value::Null);
        log(
            LogLevel::Info,
            "ws_close",
            [
                ("session", Value::from(me.session)),
                ("user", user),
                ("devices", Value::from(remaining)),
            ],
        );
    }

    /// Serves one client frame: its rate limit first, then one arm per kind
    /// of frame. (Long for the arms, each a few lines.)
    async fn handle(&self, ws: WebSocket, me: Attachment, frame: ClientFrame, config: &Config) {
        if me.kind == AuthorKind::User && frame.speaks() {
            if let Some(muted) = self.sanctioned(&me.user.id, crate::moderation::Kind::Mute) {
                // Typing is dropped quietly; the rest is answered.
                if !matches!(frame, ClientFrame::Typing) {
                    send_to(&ws, &SocketError::App(muted).frame(frame.client_id()));
                }
                return;
            }
        }
        if let Some(scope) = Scope::of_frame(&frame) {
            if let Err(wait) = self.take_token(scope, &me.user.id, config) {
                self.count(
                    Metric::RateLimited,
                    format!(r#"scope="{}""#, scope.as_str()),
                );
                let client_id = frame.client_id();
                let refusal = SocketError::RateLimited {
                    scope,
                    retry_after_ms: wait,
                };
                send_to(&ws, &refusal.frame(client_id));
                return;
            }
        }
        match frame {
            ClientFrame::Send {
                client_id,
                text,
                reply_to,
                traceparent,
                poll,
                attachments,
            } => {
                // A reply answers a stored message: clients learn seqs from
                // acks, so a later one cannot be meant (threads, api.md).
                let last = self.log.last_seq().unwrap_or(0);
                if reply_to.is_some_and(|parent| parent > last) {
                    let refusal = SocketError::MessageNotFound.frame(Some(&client_id));
                    return send_to(&ws, &refusal);
                }
                // The closing time needs the clock, so it is checked here
                // rather than while decoding.
                if let Some(Err(mut e)) = poll.as_ref().map(|p| p.check_closing(now_ms())) {
                    e.client_id = Some(client_id.to_string());
                    return send_to(&ws, &SocketError::Frame(e).frame(None));
                }
                // Only the sender's own uploads here that no message carries
                // yet (claimed for good in the commit).
                if !attachments.is_empty()
                    && !self
                        .log
                        .claimable(&me.user.id, &attachments)
                        .unwrap_or(false)
                {
                    let refusal = SocketError::AttachmentNotFound.frame(Some(&client_id));
                    return send_to(&ws, &refusal);
                }
                *self.asked_trace.borrow_mut() = traceparent;
                let msg = NewMessage {
                    id: MessageId::new(),
                    client_id,
                    author: crate::protocol::Author {
                        id: me.user.id,
                        name: me.user.name,
                        kind: me.kind,
                    },
                    text,
                    reply_to,
                    created_at: now_ms(),
                    turn: None,
                    poll,
                    attachments,
                    mentions: Vec::new(),
                };
                let msg = self.mentioning(msg);
                if !self.screen(&ws, &msg, config).await {
                    return;
                }
                self.enqueue(Job::Send { ws: Some(ws), msg });
            }
            ClientFrame::Edit {
                seq,
                text,
                client_id,
            } => self.enqueue_change(ws, me, (seq, client_id), Alter::Edit(text)),
            ClientFrame::Delete { seq, client_id } => {
                self.enqueue_change(ws, me, (seq, client_id), Alter::Delete)
            }
            ClientFrame::React {
                seq,
                emoji,
                action,
                client_id,
            } => self.enqueue_change(ws, me, (seq, client_id), Alter::React(emoji, action)),
            ClientFrame::Vote {
                seq,
                choices,
                client_id,
            } => self.enqueue_change(ws, me, (seq, client_id), Alter::Vote(choices)),
            ClientFrame::Rate {
                seq,
                rating,
                reason,
                client_id,
            } => self.enqueue_change(ws, me, (seq, client_id), Alter::Rate(rating, reason)),
            ClientFrame::Regenerate => return self.regenerate(&ws, me.user),
            ClientFrame::Read { seq } => self.enqueue(Job::Read {
                ws,
                user: me.user,
                seq,
            }),
            ClientFrame::Typing => {
                self.typing(&me, config.typing_throttle_ms);
                return;
            }
            ClientFrame::Stop => {
                self.stop_turn();
                return;
            }
            ClientFrame::Escalate => return self.desk_frame(&ws, &me, Action::Escalate),
            ClientFrame::Claim | ClientFrame::Takeover => {
                return self.desk_frame(&ws, &me, Action::Claim)
            }
            ClientFrame::Transfer { to } => {
                return self.desk_frame(&ws, &me, Action::transfer_to(to))
            }
            ClientFrame::Resolve => return self.desk_frame(&ws, &me, Action::Resolve),
            ClientFrame::Release => return self.desk_frame(&ws, &me, Action::Release),
            ClientFrame::SetProfile { profile } => {
                return self.set_profile(&ws, &me, profile).await
            }
            ClientFrame::Approve { call_id } => return self.decide_call(&ws, &me, &call_id, true),
            ClientFrame::Reject { call_id } => return self.decide_call(&ws, &me, &call_id, false),
            ClientFrame::Ping => {
                // Only reached when the frame differs from the exact
                // auto-response text (e.g. other whitespace).
                send_to(&ws, PONG_FRAME);
                return;
            }
        }
        self.drain().await;
    }
}
