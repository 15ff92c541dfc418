//! The desk feed: what session objects tell the desk object, and the
//! `inbox` frame it passes on to every agent's console. Pure.
//!
//! Each [`Item`] is one session's inbox line as it stands after an event:
//! its status, assignee and times, and for a new message a short preview.
//! A console upserts its row by `session`, so items are self-contained and
//! one lost item is repaired by the next one about the same session (or
//! by the listing, which the console reloads when its socket reconnects).
//!
//! The desk object keeps no item: previews exist only in transit, so
//! there is nothing of a conversation at rest outside the session's own
//! sealed log and D1.

use super::{Status, View};
use crate::protocol::{Author, UserRef};
use serde::{Deserialize, Serialize};

/// The most characters of a message a preview carries.
pub const PREVIEW_CHARS: usize = 140;

/// The most items one call to the desk object carries; a session sends
/// what one group of commits produced, far fewer.
pub const MAX_ITEMS_PER_CALL: usize = 64;

/// What happened to a session.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Created,
    /// A message was stored; the item has its preview.
    Message,
    /// Handed back to the assistant (released, or reopened by the user).
    Open,
    Waiting,
    Assigned,
    Resolved,
    Closed,
    /// The session was erased; the item keeps its last status.
    Deleted,
}

impl Event {
    /// Every event (the JS client's types are checked against this).
    pub const ALL: [Event; 8] = [
        Event::Created,
        Event::Message,
        Event::Open,
        Event::Waiting,
        Event::Assigned,
        Event::Resolved,
        Event::Closed,
        Event::Deleted,
    ];

    /// The event a change to `status` is.
    pub fn of(status: Status) -> Self {
        match status {
            Status::Open => Event::Open,
            Status::Waiting => Event::Waiting,
            Status::Assigned => Event::Assigned,
            Status::Resolved => Event::Resolved,
            Status::Closed => Event::Closed,
        }
    }
}

/// The start of a message, for a line in the inbox.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub author: Author,
    pub text: String,
}

impl Preview {
    /// The first [`PREVIEW_CHARS`] characters of `text`, with `…` when cut.
    pub fn of(author: &Author, text: &str) -> Self {
        let mut cut: String = text.chars().take(PREVIEW_CHARS).collect();
        if cut.len() < text.len() {
            cut.push('…');
        }
        Preview {
            author: author.clone(),
            text: cut,
        }
    }
}

/// One session's inbox line after an event. Only ever serialized: the
/// session renders its frames and the desk passes them on unread.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub event: Event,
    pub session: String,
    pub owner_id: String,
    pub status: Status,
    pub assignee: Option<UserRef>,
    pub waiting_since: Option<i64>,
    pub first_agent_reply_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub preview: Option<Preview>,
    /// When it happened (unix ms).
    pub at: i64,
}

impl Item {
    pub fn new(event: Event, session: &str, owner_id: &str, view: View, at: i64) -> Self {
        Item {
            event,
            session: session.to_string(),
            owner_id: owner_id.to_string(),
            status: view.status,
            assignee: view.assignee,
            waiting_since: view.waiting_since,
            first_agent_reply_at: view.first_agent_reply_at,
            resolved_at: view.resolved_at,
            preview: None,
            at,
        }
    }

    /// The `inbox` frame a console gets: the item with `"type":"inbox"`.
    pub fn frame(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        // An object always starts with `{`; splicing the tag in avoids
        // serde's flatten machinery in the bundle.
        format!(r#"{{"type":"inbox",{}"#, &json[1..])
    }
}

/// The body of one call to the desk object: the items' `inbox` frames,
/// one per line. JSON escapes every newline inside a string, so a line is
/// always one whole frame, and the desk forwards lines without parsing.
pub fn batch(items: &[Item]) -> String {
    items.iter().map(Item::frame).collect::<Vec<_>>().join("\n")
}

/// The frames of a [`batch`], or `None` for more than
/// [`MAX_ITEMS_PER_CALL`].
pub fn frames(body: &str) -> Option<Vec<&str>> {
    let lines: Vec<&str> = body.split('\n').filter(|l| !l.is_empty()).collect();
    (lines.len() <= MAX_ITEMS_PER_CALL).then_some(lines)
}

/// The Worker's request to open an agent's console socket on the desk
/// object (its one JSON header; the admin check is the Worker's, and who
/// the agent is does not change what the desk sends).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// When the agent's token stops being accepted (unix ms; 0: never).
    pub expires_at: u64,
    pub ticket: Option<crate::contract::Ticket>,
}

/// What the desk object sends a console once its socket is open.
pub const READY_FRAME: &str = r#"{"type":"ready"}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::AuthorKind;

    fn view() -> View {
        View {
            status: Status::Assigned,
            assignee: Some(UserRef {
                id: "dana".into(),
                name: "Dana".into(),
            }),
            waiting_since: Some(10),
            first_agent_reply_at: None,
            resolved_at: None,
        }
    }

    #[test]
    fn an_item_is_an_inbox_frame_with_every_field() {
        let mut item = Item::new(Event::of(Status::Assigned), "s1", "ann", view(), 42);
        let author = Author {
            id: "ann".into(),
            name: "Ann".into(),
            kind: AuthorKind::User,
        };
        item.preview = Some(Preview::of(&author, "hi"));
        let v: serde_json::Value = serde_json::from_str(&item.frame()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "type": "inbox", "event": "assigned", "session": "s1", "owner_id": "ann",
                "status": "assigned", "assignee": {"id": "dana", "name": "Dana"},
                "waiting_since": 10, "first_agent_reply_at": null, "resolved_at": null,
                "preview": {"author": {"id": "ann", "name": "Ann", "kind": "user"}, "text": "hi"},
                "at": 42
            })
        );
    }

    #[test]
    fn a_batch_is_one_whole_frame_per_line_even_for_multiline_text() {
        let author = Author {
            id: "ann".into(),
            name: "Ann\nExample".into(),
            kind: AuthorKind::User,
        };
        let mut items = vec![];
        for (i, text) in ["line one\nline two\r\n", "\u{2028}", "plain"]
            .iter()
            .enumerate()
        {
            let mut item = Item::new(Event::Message, "s1", "ann", view(), i as i64);
            item.preview = Some(Preview::of(&author, text));
            items.push(item);
        }
        let body = batch(&items);
        let got = frames(&body).unwrap();
        assert_eq!(got.len(), 3);
        for (frame, item) in got.iter().zip(&items) {
            assert_eq!(*frame, item.frame());
            let v: serde_json::Value = serde_json::from_str(frame).unwrap();
            assert_eq!(v["preview"]["text"], item.preview.as_ref().unwrap().text);
        }
        assert_eq!(frames("").unwrap().len(), 0);
        let too_many = vec![items[2].clone(); MAX_ITEMS_PER_CALL + 1];
        assert!(frames(&batch(&too_many)).is_none());
        assert!(frames(&batch(&too_many[1..])).is_some());
    }

    #[test]
    fn every_status_is_an_event_of_the_same_name() {
        for s in Status::ALL {
            let e = serde_json::to_value(Event::of(s)).unwrap();
            assert_eq!(e, s.as_str());
        }
    }

    #[test]
    fn a_preview_is_cut_on_a_character_boundary() {
        let a = Author {
            id: "u".into(),
            name: "U".into(),
            kind: AuthorKind::User,
        };
        assert_eq!(Preview::of(&a, "short").text, "short");
        let long = "é".repeat(PREVIEW_CHARS + 5);
        let p = Preview::of(&a, &long);
        assert_eq!(p.text.chars().count(), PREVIEW_CHARS + 1);
        assert!(p.text.ends_with('…'));
        let exact = "x".repeat(PREVIEW_CHARS);
        assert_eq!(Preview::of(&a, &exact).text, exact);
    }
}
