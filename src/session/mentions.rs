//! Mentions, the object's side (`crate::mention`): resolving a send's
//! handles, telling the people mentioned through their own objects
//! (`crate::hub`), keeping those objects told where their user is, and
//! passing on the `mention` frames they send here.

use super::sockets::{send_to, user_tag};
use super::Core;
use crate::error::AppError;
use crate::mention;
use crate::protocol::{AuthorKind, MessageView, ServerFrame, UserRef};
use crate::store::messages::NewMessage;
use worker::Response;

impl Core {
    /// Resolves a send's `@` handles to the session's people.
    pub(super) fn mentioning(&self, mut msg: NewMessage) -> NewMessage {
        if !msg.text.contains('@') {
            return msg;
        }
        let handles = mention::handles(&msg.text);
        if handles.is_empty() {
            return msg;
        }
        match self.log.mentionable() {
            Ok(people) => msg.mentions = mention::resolve(&handles, &people, &msg.author.id),
            Err(e) => self.log_error("mentions_failed", &e),
        }
        msg
    }

    /// After a commit: each person a stored message mentions gets a
    /// `mention` frame in their other sessions, unless they block its
    /// author. Off the path to the ack, best effort.
    pub(super) fn tell_mentioned(&self, views: &[&MessageView]) {
        let session = self.session_id();
        let blocks = self.log.blocks().unwrap_or_default();
        for v in views.iter().filter(|v| !v.mentions.is_empty()) {
            let by = UserRef {
                id: v.author.id.clone(),
                name: v.author.name.clone(),
            };
            let frame = ServerFrame::Mention {
                session: &session,
                seq: v.seq,
                message_id: &v.id,
                by: &by,
                text: &mention::excerpt(&v.text),
            }
            .to_json();
            for u in &v.mentions {
                let blocked = blocks.get(&u.id);
                if blocked.is_some_and(|b| crate::moderation::hidden(b, &v.author)) {
                    continue;
                }
                let (env, user, from, frame) = (
                    self.env.clone(),
                    u.id.clone(),
                    session.clone(),
                    frame.clone(),
                );
                self.state.wait_until(async move {
                    if let Err(e) = crate::hub::mention(&env, &user, &from, frame).await {
                        crate::runtime::log(
                            crate::config::LogLevel::Warn,
                            "mention_failed",
                            [("detail", serde_json::Value::from(e.to_string()))],
                        );
                    }
                });
            }
        }
    }

    /// A person's first socket here opened (`here`), or their last
    /// closed: their object learns it, after this event.
    pub(super) fn tell_presence(&self, user: &UserRef, kind: AuthorKind, here: bool) {
        if !matches!(kind, AuthorKind::User | AuthorKind::Agent) {
            return;
        }
        if here {
            if let Err(e) = self.log.seen(user) {
                self.log_error("people_failed", &e);
            }
        }
        let (env, user, session) = (self.env.clone(), user.id.clone(), self.session_id());
        self.state.wait_until(async move {
            let _ = crate::hub::present(&env, &user, &session, here).await;
        });
    }

    /// `notify`: a `mention` frame from the user's object, to their
    /// greeted sockets here; 404 when they have none.
    pub(super) fn notify(&self, user_id: &str, frame: &str) -> Result<Response, AppError> {
        let replaying = self.replaying.borrow();
        let sockets: Vec<_> = self
            .state
            .get_websockets_with_tag(&user_tag(user_id))
            .into_iter()
            .filter(|ws| !replaying.iter().any(|(r, greeted)| r == ws && !greeted))
            .collect();
        if sockets.is_empty() {
            return Err(AppError::NotFound);
        }
        sockets.iter().for_each(|ws| send_to(ws, frame));
        Ok(Response::empty()
            .map_err(AppError::internal)?
            .with_status(204))
    }
}
