//! Serving the Worker's calls (`crate::contract::Call`). A call that names
//! a caller is admitted once, before it is served: the caller's role, from
//! the log's owner and members, must pass the level the route table gives
//! the route (`Caller::need`).

use super::log::tools::Sight;
use super::log::Meta;
use super::outbox::Replication;
use super::sockets;
use super::Core;
use crate::contract::{
    AccessReply, Call, Caller, HistoryReply, LiveState, MembersReply, Mode, ReplicationReply,
    ReplicationState, Role, RotateReply,
};
use crate::error::{close, AppError};
use crate::store::{self, now_ms, replica};
use crate::webhooks::{Kind, SessionData};
use std::rc::Rc;
use worker::Response;

fn no_content() -> Result<Response, AppError> {
    Ok(Response::empty()
        .map_err(AppError::internal)?
        .with_status(204))
}

fn reply<T: serde::Serialize>(body: &T) -> Result<Response, AppError> {
    crate::http::json(200, body)
}

impl Core {
    pub(super) async fn serve(this: &Rc<Core>, call: Call) -> Result<Response, AppError> {
        match call {
            Call::Init {
                session,
                owner_id,
                created_at,
                shard,
                owner_blocks,
                owner_sanctions,
                profile,
            } => {
                // With the session row, in the same transaction.
                this.log.set_shard(&shard)?;
                this.log.set_blocks(&owner_id, &owner_blocks)?;
                for x in &owner_sanctions {
                    this.log.sanction(x, created_at)?;
                }
                let (session_id, owner) = (session.clone(), owner_id.clone());
                this.log.init(&Meta {
                    id: session,
                    owner_id,
                    state: "live".into(),
                    mode: Mode::Assistant.as_str().into(),
                    human_assisted: 0,
                    last_seq: 0,
                    message_count: 0,
                    tokens_in: 0,
                    tokens_out: 0,
                    turns: 0,
                    latency_ms_total: 0,
                    cost_nanos: 0,
                    profile,
                    created_at,
                    updated_at: created_at,
                })?;
                // The idle close is due even if nobody ever writes.
                if let Ok(d) = this.desk() {
                    if let Some(at) = this.desk_deadline(&d) {
                        this.alarm_soon(at);
                    }
                    let v = d.view();
                    let data = SessionData::new(&session_id, &owner, &v, None);
                    this.hook(Kind::SessionCreated, &data, None);
                    this.tell_desk(crate::desk::feed::Event::Created, v, None);
                }
                no_content()
            }
            Call::Fault { .. } => {
                // Development only, like the route that leads here.
                if crate::runtime::config(&this.env).is_ok_and(|c| c.is_development()) {
                    panic!("development fault injected in the session object")
                }
                Err(AppError::NotFound)
            }
            Call::Erase { .. } => this.erase().await,
            Call::Remove {
                seq, by, reason, ..
            } => {
                this.loaded().await?;
                this.remove(seq, by, reason).await
            }
            Call::Post {
                client_id,
                author,
                text,
                ..
            } => {
                this.loaded().await?;
                this.post(client_id, author, text).await
            }
            call => {
                this.loaded().await?;
                this.serve_loaded(call)
            }
        }
    }

    fn serve_loaded(self: &Rc<Self>, call: Call) -> Result<Response, AppError> {
        let now = now_ms();
        let role = match call.caller() {
            Some(caller) => Some(self.admit(caller)?),
            None => None,
        };
        match call {
            Call::Connect {
                request_id,
                caller,
                after,
                changes,
                ticket,
                expires_at,
                batch,
                ..
            } => {
                let frames = if batch {
                    sockets::BATCH_TAG
                } else {
                    sockets::SINGLE_TAG
                };
                Core::accept_socket(
                    self,
                    &request_id,
                    caller,
                    super::replay::Step::Greet { after, changes },
                    ticket,
                    (expires_at, frames),
                )
            }
            Call::Access { .. } => {
                let m = self.log.live()?;
                reply(&AccessReply {
                    // Access names a caller, so it was admitted above.
                    role: role.ok_or_else(|| AppError::internal("access without a caller"))?,
                    shard: self.shard()?,
                    live: LiveState {
                        mode: m.mode(),
                        profile: m.profile.clone(),
                        desk: self.log.desk(&m)?.view(),
                        last_seq: m.last_seq.max(0) as u64,
                        message_count: m.message_count.max(0) as u64,
                        updated_at: m.updated_at,
                    },
                })
            }
            Call::History {
                before,
                limit,
                thread,
                ref caller,
                ..
            } => {
                let keys = self.keyring()?;
                let last_seq = self.log.last_seq()?;
                // A thread is a message's: one that does not exist has none.
                if thread.is_some_and(|root| root > last_seq) {
                    return Err(AppError::NotFound);
                }
                let before = before.unwrap_or(u64::MAX);
                // A poll's tally shows the caller's own ballot.
                let reader = Some(caller.user.id.as_str());
                // Tool messages as the caller's socket would get them.
                let sight = Sight::of(caller.admin);
                let how = (true, thread, sight);
                let page = (self.log).page(keys, (0, before), limit, how, reader)?;
                let last_change = self.log.last_change()?;
                reply(&HistoryReply {
                    next_before: page.next_before(),
                    messages: page.messages,
                    last_seq,
                    last_change,
                })
            }
            Call::Members { .. } => reply(&MembersReply {
                members: self.log.members()?,
            }),
            Call::AddMember {
                user_id,
                blocks,
                sanctions,
                ..
            } => {
                let added = self.add_member(&user_id, now)?;
                self.log.set_blocks(&user_id, &blocks)?;
                for x in &sanctions {
                    self.log.sanction(x, now)?;
                }
                Ok(added)
            }
            Call::Block {
                user_id,
                blocked,
                on,
                ..
            } => {
                // Kept for the people of the session only.
                let m = self.log.live()?;
                if user_id == m.owner_id || self.log.is_member(&user_id)? {
                    self.log.block(&user_id, &blocked, on)?;
                }
                no_content()
            }
            Call::RemoveMember { user_id, .. } => self.remove_member(&user_id, now),
            Call::Desk { action, by, .. } => {
                // The admin routes that send this are for agents only.
                let view = self.desk_act(action, crate::desk::Actor::Agent(&by))?;
                reply(&view)
            }
            Call::Rotate { limit, .. } => {
                let keys = self.keyring()?;
                let r: RotateReply = self.log.rotate(keys, limit, now, &self.outbox)?;
                if r.rotated > 0 {
                    self.replicate_soon();
                }
                reply(&r)
            }
            Call::Replication { .. } => self.replication(),
            Call::Upload { file, caller, .. } => {
                let keys = self.keyring()?;
                if !self.log.store_file(keys, &caller.user.id, &file, now)? {
                    return Err(AppError::Attachment(
                        crate::attachment::Refusal::AlreadyUploaded,
                    ));
                }
                crate::http::json(201, &file.view)
            }
            Call::File { id, .. } => {
                let keys = self.keyring()?;
                reply(&self.log.file(keys, &id)?.ok_or(AppError::NotFound)?)
            }
            Call::Report {
                seq, ref caller, ..
            } => self.report(caller, seq),
            Call::Sanction { sanction, .. } => self.sanction(&sanction),
            Call::Lift { user_id, .. } => self.lift(&user_id),
            Call::Moderation { .. } => reply(&self.log.record(self.keyring()?, now)?),
            Call::Tools { .. } => reply(&self.log.tool_records(self.keyring()?)?),
            Call::Notify { user_id, frame, .. } => self.notify(&user_id, &frame),
            Call::Init { .. }
            | Call::Fault { .. }
            | Call::Erase { .. }
            | Call::Post { .. }
            | Call::Remove { .. } => {
                unreachable!("served before loading")
            }
        }
    }

    /// `add_member`: owners and admins; at most `MAX_MEMBERS_PER_SESSION`.
    fn add_member(&self, user_id: &str, now: i64) -> Result<Response, AppError> {
        let cap = self.require_config()?.max_members_per_session;
        if !self.log.add_member(user_id, now, cap, &self.outbox)? {
            return Err(AppError::bad_request(
                "too_many_members",
                format!("a session has at most {cap} members"),
            ));
        }
        self.replicate_soon();
        no_content()
    }

    /// `remove_member`: owners and admins; the user's sockets close at once.
    fn remove_member(&self, user_id: &str, now: i64) -> Result<Response, AppError> {
        if !self.log.remove_member(user_id, now, &self.outbox)? {
            return Err(AppError::NotFound);
        }
        self.replicate_soon();
        // The owner keeps access whatever the member list says.
        if user_id != self.log.live()?.owner_id {
            self.revoke(user_id);
        }
        no_content()
    }

    /// `replication`: what D1 has not confirmed yet.
    fn replication(&self) -> Result<Response, AppError> {
        let (pending, oldest_at) = self.outbox.depth(&self.log)?;
        let (state, failures) = match self.outbox.state() {
            Replication::Idle => (ReplicationState::Idle, 0),
            Replication::Scheduled(_) => (ReplicationState::Scheduled, 0),
            Replication::BackingOff { failures, .. } => (ReplicationState::BackingOff, failures),
        };
        reply(&ReplicationReply {
            pending: pending as u64,
            oldest_at,
            state,
            failures,
            last_seq: self.log.last_seq()?,
            shard: self.shard()?,
        })
    }

    /// The caller's role, when it passes the level of the route they came
    /// by; otherwise NotFound: the session must look absent to them.
    fn admit(&self, caller: &Caller) -> Result<Role, AppError> {
        let meta = self.log.live()?;
        let member = caller.user.id != meta.owner_id && self.log.is_member(&caller.user.id)?;
        let role = Role::of(caller, &meta.owner_id, member);
        let Some(r) = role.filter(|_| caller.need.admits(role, caller.admin)) else {
            return Err(AppError::NotFound);
        };
        // A banned user learns why (a level they fail is still a 404,
        // which reveals nothing). Admins answer to their role, not to
        // the session's moderators.
        if !caller.admin {
            if let Some(banned) = self.sanctioned(&caller.user.id, crate::moderation::Kind::Ban) {
                return Err(banned);
            }
        }
        Ok(r)
    }

    /// The configuration, or `Unavailable` for work that cannot go on
    /// without it (the object's twin of `Ctx::require_config`).
    pub(super) fn require_config(&self) -> Result<&'static crate::config::Config, AppError> {
        crate::runtime::config(&self.env).map_err(|_| AppError::Unavailable { check: "config" })
    }

    pub(super) fn keyring(&self) -> Result<&'static crate::crypto::Keyring, AppError> {
        self.require_config().map(|c| &c.keyring)
    }

    /// The session's log, loading it from D1 first when this object has
    /// none (a session created before session logs, or whose `init` was
    /// lost). NotFound when neither store knows it, or it was erased.
    pub(super) async fn loaded(&self) -> Result<Meta, AppError> {
        if let Some(m) = self.log.meta()? {
            if !m.live() {
                return Err(AppError::NotFound);
            }
            self.recover_turn();
            return Ok(m);
        }
        let session = self.session_id();
        if session.is_empty() {
            return Err(AppError::NotFound);
        }
        let (shard, db) = self.find_in_d1(&session).await?;
        let imported = replica::load(&db, &session)
            .await?
            .ok_or(AppError::NotFound)?;
        self.log.set_shard(&shard)?;
        // Messages page by page; the session row last, which makes the log
        // live. Another event may load it meanwhile: both only repeat work.
        let mut after = 0;
        loop {
            let (rows, more) = replica::load_messages(&db, &session, after).await?;
            self.log.load_messages(&rows)?;
            match rows.last() {
                Some(last) if more => after = last.seq,
                _ => break,
            }
        }
        if self.log.meta()?.is_none() {
            self.log.load(&imported)?;
        }
        let m = self.log.live()?;
        self.recover_turn();
        Ok(m)
    }

    /// The shard holding a session this object has no log of. Looked for
    /// in every shard at once: an `init` lost after its D1 insert leaves
    /// the session in whichever shard the Worker picked.
    async fn find_in_d1(
        &self,
        session: &str,
    ) -> Result<(crate::shards::Shard, worker::D1Database), AppError> {
        let shards = &self.require_config()?.shards;
        let mut dbs = store::all(&self.env, shards)?;
        let found = store::each(&dbs, |db| replica::exists(db, session)).await?;
        let at = found.iter().position(|f| *f).ok_or(AppError::NotFound)?;
        Ok((shards.all()[at].clone(), dbs.swap_remove(at)))
    }

    /// Erases the session: every socket closes with 4004, queued work is
    /// dropped, and the storage is deleted, leaving a tombstone so that no
    /// later call can load the session again.
    pub(super) async fn erase(&self) -> Result<Response, AppError> {
        let meta = match self.loaded().await {
            Ok(m) => m,
            // Already erased (a retried call), or never here: nothing to do.
            Err(AppError::NotFound) => return no_content(),
            Err(e) => return Err(e),
        };
        // The session's files first: if R2 fails, the erase fails whole
        // and its retry finds the session still there to erase.
        self.erase_files(&meta.id).await?;
        // Consoles drop the session's line; told before the storage the
        // desk's view is read from goes.
        if let Ok(d) = self.desk() {
            self.tell_desk(crate::desk::feed::Event::Deleted, d.view(), None);
        }
        // Events already recorded still go out (best effort: the storage
        // holding them goes next).
        let _ = self.send_hooks().await;
        self.queue.borrow_mut().clear();
        self.stop_turn();
        for ws in self.state.get_websockets() {
            let _ = ws.close(Some(close::SESSION_DELETED), Some("session deleted"));
        }
        let storage = self.state.storage();
        storage.delete_alarm().await.map_err(AppError::internal)?;
        storage.delete_all().await.map_err(AppError::internal)?;
        self.alarm_at.set(None);
        self.outbox.reset(self.log.sql());
        self.hooks.reopen();
        self.buckets.reset();
        self.log.tombstone(&meta)?;
        no_content()
    }
}
