//! Fan-out to the session's sockets. Each frame crosses into JS once
//! (`Frame`), whoever gets it; sockets whose replay is running get
//! messages from their replay, and events once greeted; people who block
//! an author do not get their messages (`crate::moderation`).

use super::sockets::{attachment, send_to, user_tag, Frame, BATCH_TAG, SINGLE_TAG};
use super::Core;
use crate::protocol::{Author, AuthorKind};
use worker::WebSocket;

impl Core {
    /// Broadcasts a committed group's `message` frames (by `authors`, in
    /// the same order), hiding each from the people who block its author:
    /// their sockets get the group without those frames.
    pub(super) fn broadcast_messages(&self, frames: &[String], authors: &[&Author]) {
        let blocks = self.log.blocks().unwrap_or_default();
        let mut except: Vec<WebSocket> = Vec::new();
        let mut theirs: Vec<(Vec<WebSocket>, Vec<String>)> = Vec::new();
        for (reader, blocked) in blocks.iter() {
            if !authors
                .iter()
                .any(|a| crate::moderation::hidden(blocked, a))
            {
                continue;
            }
            let sockets = self.state.get_websockets_with_tag(&user_tag(reader));
            if sockets.is_empty() {
                continue;
            }
            let shown = frames
                .iter()
                .zip(authors)
                .filter(|(_, a)| !crate::moderation::hidden(blocked, a))
                .map(|(f, _)| f.clone())
                .collect();
            except.extend(sockets.iter().cloned());
            theirs.push((sockets, shown));
        }
        self.broadcast_group(frames, &except);
        // The rare case: a blocker is here. Their own cut, one by one.
        let replaying = self.replaying.borrow();
        for (sockets, shown) in theirs {
            for ws in sockets
                .iter()
                .filter(|ws| !replaying.iter().any(|(r, _)| r == *ws))
            {
                shown.iter().for_each(|f| send_to(ws, f));
            }
        }
    }

    /// Sends a `message` (or assistant `turn`/`delta`) frame to every live
    /// socket; replaying sockets get it from their replay (or the turn
    /// snapshot at its end) instead.
    pub(super) fn broadcast_message(&self, json: &str) {
        self.broadcast_message_except(json, &[]);
    }

    /// Sends the `message` frame of a tool message to every live agent's
    /// socket, and to every live user's when `shown` (`log/tools.rs`);
    /// replaying sockets get it from their replay, as any message.
    pub(super) fn broadcast_tool_message(&self, json: &str, shown: bool) {
        let frame = Frame::new(json);
        let replaying = self.replaying.borrow();
        for ws in self.state.get_websockets() {
            let agent = attachment(&ws).is_some_and(|a| a.kind == AuthorKind::Agent);
            if (agent || shown) && !replaying.iter().any(|(r, _)| *r == ws) {
                frame.send(&ws);
            }
        }
    }

    fn broadcast_message_except(&self, json: &str, except: &[WebSocket]) {
        let frame = Frame::new(json);
        let replaying = self.replaying.borrow();
        for ws in self.state.get_websockets() {
            if !replaying.iter().any(|(r, _)| *r == ws) && !except.contains(&ws) {
                frame.send(&ws);
            }
        }
    }

    /// Sends the `message` frames of a committed group to every live
    /// socket but `except`: in one `batch` frame to sockets that asked for
    /// it, one by one to the others. Each frame crosses into JS once.
    pub(super) fn broadcast_group(&self, frames: &[String], except: &[WebSocket]) {
        let [_, _, ..] = frames else {
            if let [one] = frames {
                self.broadcast_message_except(one, except);
            }
            return;
        };
        let replaying = self.replaying.borrow();
        let live =
            |ws: &&WebSocket| !replaying.iter().any(|(r, _)| r == *ws) && !except.contains(ws);
        let batched = self.state.get_websockets_with_tag(BATCH_TAG);
        if !batched.is_empty() {
            let batch = Frame::new(&crate::protocol::batch_frame(frames));
            batched.iter().filter(live).for_each(|ws| batch.send(ws));
        }
        let singles = if batched.is_empty() {
            self.state.get_websockets()
        } else {
            self.state.get_websockets_with_tag(SINGLE_TAG)
        };
        let each: Vec<Frame> = frames.iter().map(|f| Frame::new(f)).collect();
        for ws in singles.iter().filter(live) {
            each.iter().for_each(|f| f.send(ws));
        }
    }

    /// Sends an event (edit, reaction, presence, …) to every socket that has
    /// been greeted. A replaying socket may get an event about a message it
    /// has not seen yet; its replay carries that message's current state.
    pub(super) fn broadcast_event(&self, json: &str) {
        self.broadcast_event_except(json, &[]);
    }

    pub(super) fn broadcast_event_except(&self, json: &str, except: &[WebSocket]) {
        let frame = Frame::new(json);
        let replaying = self.replaying.borrow();
        for ws in self.state.get_websockets() {
            let ungreeted = replaying.iter().any(|(r, greeted)| *r == ws && !greeted);
            if !ungreeted && !except.contains(&ws) {
                frame.send(&ws);
            }
        }
    }

    pub(super) fn mark_greeted(&self, ws: &WebSocket) {
        if let Some(entry) = self
            .replaying
            .borrow_mut()
            .iter_mut()
            .find(|(r, _)| r == ws)
        {
            entry.1 = true;
        }
    }

    pub(super) fn end_replay(&self, ws: &WebSocket) {
        self.replaying.borrow_mut().retain(|(r, _)| r != ws);
    }
}
