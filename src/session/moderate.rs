//! Serving moderation calls (`crate::moderation`): reports are checked
//! here and kept by the Worker in D1; removals and sanctions are the
//! log's (`log/moderation.rs`) and take effect on every socket at once.

use super::log::Change;
use super::sockets::user_tag;
use super::Core;
use crate::contract::{Caller, RemoveReply};
use crate::error::{AppError, SocketError};
use crate::moderation::{Kind, Reason, Sanction, Target};
use crate::protocol::{Author, AuthorKind, ServerFrame, UserRef};
use crate::store::now_ms;
use worker::{Response, WebSocket};

impl Core {
    /// `report`: a member's report of someone else's live message.
    pub(super) fn report(&self, caller: &Caller, seq: u64) -> Result<Response, AppError> {
        let (id, author) = self.log.owner_of(seq)?.ok_or(AppError::NotFound)?;
        if id.starts_with('!') {
            return Err(AppError::MessageGone);
        }
        // Matched by kind too: no token subject passes for the system.
        let people = matches!(author.kind, AuthorKind::User | AuthorKind::Agent);
        if author.id == caller.user.id && people {
            return Err(AppError::bad_request(
                "cannot_report_own",
                "you cannot report your own message; delete it instead",
            ));
        }
        crate::http::json(
            200,
            &Target {
                message_id: id,
                author_id: author.id,
            },
        )
    }

    /// `remove`: a moderator's removal, announced to every socket as a
    /// `deleted` frame naming who and why; its attachments go with it.
    pub(super) async fn remove(
        &self,
        seq: u64,
        by: UserRef,
        reason: Reason,
    ) -> Result<Response, AppError> {
        let now = now_ms();
        let (change, removed) = match self.log.remove(seq, (&by, reason), now, &self.outbox)? {
            Ok(done) => done,
            Err(Change::Deleted) => return Err(AppError::MessageGone),
            Err(_) => return Err(AppError::NotFound),
        };
        // In the same commit as the removal; the objects go after it.
        self.log.drop_files(seq)?;
        let frame = ServerFrame::Deleted {
            seq,
            deleted_at: now,
            change,
            removed: Some(&removed),
        };
        self.broadcast_event(&frame.to_json());
        self.replicate_soon();
        self.delete_unlinked().await;
        crate::http::json(
            200,
            &RemoveReply {
                seq,
                change,
                removed,
            },
        )
    }

    /// `sanction`: in force at once. A ban closes the user's sockets here
    /// (4003); a mute tells them, and their next write is refused.
    pub(super) fn sanction(&self, x: &Sanction) -> Result<Response, AppError> {
        let now = now_ms();
        self.log.sanction(x, now)?;
        let refusal = x.refusal(now);
        let end = (x.kind == Kind::Ban).then(|| (refusal.close_code(), refusal.code()));
        self.tell_user(
            &x.user_id,
            &SocketError::App(refusal.clone()).frame(None),
            end,
        );
        Ok(Response::empty()
            .map_err(AppError::internal)?
            .with_status(204))
    }

    /// `lift`: ends every sanction on `user_id`.
    pub(super) fn lift(&self, user_id: &str) -> Result<Response, AppError> {
        if !self.log.lift(user_id, now_ms())? {
            return Err(AppError::NotFound);
        }
        Ok(Response::empty()
            .map_err(AppError::internal)?
            .with_status(204))
    }

    /// The sockets of the people who block `author`.
    pub(super) fn blockers_of(&self, author: &Author) -> Vec<WebSocket> {
        let Ok(blocks) = self.log.blocks() else {
            return Vec::new();
        };
        blocks
            .iter()
            .filter(|(_, blocked)| crate::moderation::hidden(blocked, author))
            .flat_map(|(reader, _)| self.state.get_websockets_with_tag(&user_tag(reader)))
            .collect()
    }

    /// The sanction of `kind` (a ban counts as a mute) in force on a user
    /// of the session now, as the refusal they get. Admins are exempt.
    pub(super) fn sanctioned(&self, user_id: &str, kind: Kind) -> Option<AppError> {
        let now = now_ms();
        let all = self.log.sanctions().ok()?;
        crate::moderation::find(&all, user_id, kind, now).map(|x| x.refusal(now))
    }
}
