//! Decoding and validating client frames: each refusal a `FrameError`
//! with a stable code (protocol.md "Errors").

use super::*;

/// A frame the server could not accept, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub code: &'static str,
    pub message: String,
    /// Echoed so that the sender can match the error to its outbox entry.
    pub client_id: Option<String>,
}

impl FrameError {
    /// What the desk's inbox socket answers any frame but `ping` with: it
    /// only listens; agents act through the admin API or a session socket.
    pub fn inbox_listens_only() -> Self {
        FrameError::new("unknown_type", "the inbox socket takes no frames but ping")
    }

    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        FrameError {
            code,
            message: message.into(),
            client_id: None,
        }
    }
}

/// Limits applied while decoding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message_chars: usize,
}

/// Parses and validates one client frame. The happy path parses once; only a
/// failure looks again to classify it.
pub fn decode(text: &str, limits: Limits) -> Result<ClientFrame, FrameError> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return Err(FrameError::new("invalid_json", "frame is not valid JSON"));
    };
    let kind = match value.get("type").and_then(|t| t.as_str()) {
        None => {
            return Err(FrameError::new(
                "invalid_frame",
                "frame must be an object with a string `type`",
            ))
        }
        Some(t) if !CLIENT_TYPES.contains(&t) => {
            return Err(FrameError::new(
                "unknown_type",
                format!("unknown frame type `{}`", truncate(t, 32)),
            ))
        }
        Some(t) => t,
    };
    let keyed = matches!(kind, "send" | "edit" | "delete" | "react" | "vote" | "rate");
    // Kept for the error: a refused frame is answered with its client id.
    let client_id = value
        .get("client_id")
        .and_then(|c| c.as_str())
        .map(String::from);
    let frame = crate::tagged::from_value::<ClientFrame>(value, "type").map_err(|e| {
        // A bad client id has a code of its own.
        if let (true, Some(Err(why))) = (keyed, client_id.as_deref().map(ClientId::check)) {
            return FrameError::new("invalid_client_id", why.message());
        }
        // serde's message names the field and what it expected; it says
        // nothing about the server, so it is safe and useful to return.
        let why = match e {
            crate::tagged::TaggedError::Invalid(why) => why,
            crate::tagged::TaggedError::NoTag => {
                "frame must be an object with a string `type`".into()
            }
        };
        let mut e = FrameError::new("invalid_frame", truncate(&why, 200));
        e.client_id = client_id.filter(|c| is_valid_client_id(c));
        e
    })?;
    // A refused frame with an idempotency key is answered with it, so that
    // the sender's outbox can let it go.
    validate(&frame, limits).map_err(|mut e| {
        e.client_id = frame.client_id().map(String::from);
        e
    })?;
    Ok(frame)
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Checks a message text against the limits; used for sends and edits.
pub fn validate_text(text: &str, limits: Limits) -> Result<(), FrameError> {
    if text.trim().is_empty() {
        return Err(FrameError::new("text_empty", "text must not be empty"));
    }
    if text.chars().count() > limits.max_message_chars {
        return Err(FrameError::new(
            "text_too_long",
            format!(
                "text is longer than {} characters",
                limits.max_message_chars
            ),
        ));
    }
    Ok(())
}

fn validate(frame: &ClientFrame, limits: Limits) -> Result<(), FrameError> {
    match frame {
        ClientFrame::Send {
            text,
            reply_to,
            poll,
            attachments,
            ..
        } => {
            if attachments.is_empty() || !text.trim().is_empty() {
                validate_text(text, limits)?;
            }
            validate_attachments(attachments)?;
            if let Some(r) = reply_to {
                validate_seq(*r)?;
            }
            if let Some(p) = poll {
                p.check()?;
            }
        }
        ClientFrame::Vote { seq, choices, .. } => {
            validate_seq(*seq)?;
            if choices.len() > crate::poll::MAX_OPTIONS {
                return Err(FrameError::new(
                    "invalid_choice",
                    format!("at most {} choices", crate::poll::MAX_OPTIONS),
                ));
            }
        }
        ClientFrame::Edit { seq, text, .. } => {
            validate_seq(*seq)?;
            validate_text(text, limits)?;
        }
        ClientFrame::Delete { seq, .. } | ClientFrame::Read { seq } => validate_seq(*seq)?,
        ClientFrame::React { seq, emoji, .. } => {
            validate_seq(*seq)?;
            let n = emoji.chars().count();
            if n == 0
                || n > MAX_EMOJI_CHARS
                || emoji.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(FrameError::new(
                    "invalid_emoji",
                    format!("emoji must be 1-{MAX_EMOJI_CHARS} characters without spaces"),
                ));
            }
        }
        ClientFrame::Rate { seq, reason, .. } => {
            validate_seq(*seq)?;
            let max = crate::protocol::MAX_RATING_REASON_CHARS;
            if reason.as_ref().is_some_and(|r| r.chars().count() > max) {
                return Err(FrameError::new(
                    "reason_too_long",
                    format!("a rating's reason is at most {max} characters"),
                ));
            }
        }
        ClientFrame::Approve { call_id } | ClientFrame::Reject { call_id } => {
            if call_id.is_empty() || call_id.len() > crate::protocol::MAX_CALL_ID_CHARS {
                return Err(FrameError::new(
                    "invalid_call_id",
                    "`call_id` must be 1-128 characters",
                ));
            }
        }
        ClientFrame::SetProfile { profile } => {
            if !crate::llm::profile::is_name(profile) {
                return Err(FrameError::new(
                    "invalid_profile",
                    "`profile` must be a profile name: 1-40 of a-z, 0-9, - and _",
                ));
            }
        }
        ClientFrame::Transfer { to } => {
            if !crate::ids::is_valid_user_id(to) {
                return Err(FrameError::new(
                    "invalid_user_id",
                    "`to` must be a user id: 1-128 characters, no surrounding white space or control characters",
                ));
            }
        }
        ClientFrame::Typing
        | ClientFrame::Stop
        | ClientFrame::Escalate
        | ClientFrame::Claim
        | ClientFrame::Takeover
        | ClientFrame::Resolve
        | ClientFrame::Release
        | ClientFrame::Regenerate
        | ClientFrame::Ping => {}
    }
    Ok(())
}

/// At most `MAX_PER_MESSAGE` distinct attachment ids.
fn validate_attachments(ids: &[String]) -> Result<(), FrameError> {
    use crate::attachment::{is_id, MAX_PER_MESSAGE};
    let invalid = |why: String| FrameError::new("invalid_attachment", why);
    if ids.len() > MAX_PER_MESSAGE {
        return Err(invalid(format!("at most {MAX_PER_MESSAGE} attachments")));
    }
    for (i, id) in ids.iter().enumerate() {
        if !is_id(id) {
            return Err(invalid(format!("attachment {i} is not an attachment id")));
        }
        if ids[..i].contains(id) {
            return Err(invalid(format!("attachment {i} repeats an earlier one")));
        }
    }
    Ok(())
}

fn validate_seq(seq: u64) -> Result<(), FrameError> {
    if seq == 0 {
        return Err(FrameError::new("invalid_seq", "seq starts at 1"));
    }
    if seq > MAX_SEQ {
        return Err(FrameError::new(
            "invalid_seq",
            format!("seq must be at most {MAX_SEQ}"),
        ));
    }
    Ok(())
}
