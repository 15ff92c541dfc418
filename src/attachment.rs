//! Attachments: files a message carries, stored sealed in R2. Pure.
//!
//! The flow (docs/api.md "Attachments"):
//! 1. A member asks for an upload slot (`name`, `type`, `size`). The
//!    Worker checks them against the [`Policy`] and answers a signed upload
//!    URL ([`Ticket`], [`SLOT_TTL_MS`]), bound to the session, the
//!    attachment id and the uploader.
//! 2. The bytes are `PUT` to that URL. The Worker reads at most the
//!    declared size, checks that they are what the type says ([`sniff`]),
//!    reads an image's size ([`dimensions`]), seals them
//!    (`Keyring::seal_bytes`, AAD bound to session and attachment) and
//!    writes them to R2 under a key of their own ([`object_key`]). The
//!    session object then records the attachment; a second upload with
//!    the same ticket is refused there, and its object deleted.
//! 3. A `send` names its attachments by id; the object accepts only the
//!    sender's own uploads in that session that no message carries yet.
//! 4. Downloads: a member asks for a link and gets a short-lived signed
//!    URL ([`Link`], [`LINK_TTL_MS`]) that serves the opened bytes, so an
//!    `<img src>` works without a bearer token.
//!
//! Tokens are `base64url(JSON claims).base64url(HMAC-SHA256)`, keyed by a
//! secret derived from the keyring, with the purpose (`upload`, `file`)
//! inside the MAC so that one kind cannot stand in for the other.

use serde::{Deserialize, Serialize};

/// Most attachments one message may carry.
pub const MAX_PER_MESSAGE: usize = 10;
/// Longest file name kept, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// How long an upload URL works.
pub const SLOT_TTL_MS: i64 = 10 * 60 * 1000;
/// How long a download URL works.
pub const LINK_TTL_MS: i64 = 5 * 60 * 1000;
/// Random bytes in an attachment id (hex, so twice as many characters).
const ID_BYTES: usize = 16;
/// Prefix of attachment ids, so that logs and clients tell them apart.
const ID_PREFIX: &str = "att_";

/// The types Confab accepts, each recognised by its first bytes: a
/// declared type is never trusted alone.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/gif")]
    Gif,
    #[serde(rename = "image/webp")]
    Webp,
    #[serde(rename = "application/pdf")]
    Pdf,
    #[serde(rename = "text/plain")]
    Text,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Png,
        Kind::Jpeg,
        Kind::Gif,
        Kind::Webp,
        Kind::Pdf,
        Kind::Text,
    ];

    pub fn mime(self) -> &'static str {
        match self {
            Kind::Png => "image/png",
            Kind::Jpeg => "image/jpeg",
            Kind::Gif => "image/gif",
            Kind::Webp => "image/webp",
            Kind::Pdf => "application/pdf",
            Kind::Text => "text/plain",
        }
    }

    pub fn parse(mime: &str) -> Option<Kind> {
        let base = mime.split(';').next().unwrap_or("").trim();
        Kind::ALL
            .into_iter()
            .find(|k| k.mime().eq_ignore_ascii_case(base))
    }

    /// Shown inline (and offered to vision models); anything else is
    /// served as a download.
    pub fn is_image(self) -> bool {
        matches!(self, Kind::Png | Kind::Jpeg | Kind::Gif | Kind::Webp)
    }

    /// The `Content-Type` a download is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Text => "text/plain; charset=utf-8",
            k => k.mime(),
        }
    }
}

/// What a deployment accepts (`ATTACHMENT_MAX_BYTES`, `ATTACHMENT_TYPES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub max_bytes: u64,
    pub types: Vec<Kind>,
}

impl Policy {
    /// The types from a comma-separated list of MIME types; Err names the
    /// first one Confab cannot accept.
    pub fn parse_types(list: &str) -> Result<Vec<Kind>, String> {
        let mut types = Vec::new();
        for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let k = Kind::parse(t).ok_or_else(|| t.to_string())?;
            if !types.contains(&k) {
                types.push(k);
            }
        }
        Ok(types)
    }

    /// Checks a slot request: a usable name, an accepted type, a size from
    /// 1 byte to the limit.
    pub fn check(&self, slot: &SlotRequest) -> Result<Kind, Refusal> {
        let chars = slot.name.chars().count();
        if slot.name.trim().is_empty()
            || chars > MAX_NAME_CHARS
            || slot
                .name
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\')
        {
            return Err(Refusal::InvalidName);
        }
        let kind = Kind::parse(&slot.content_type)
            .filter(|k| self.types.contains(k))
            .ok_or(Refusal::UnsupportedType)?;
        if slot.size == 0 {
            return Err(Refusal::Empty);
        }
        if slot.size > self.max_bytes {
            return Err(Refusal::TooLarge(self.max_bytes));
        }
        Ok(kind)
    }
}

/// What a client asks to upload.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SlotRequest {
    pub name: String,
    #[serde(rename = "type")]
    pub content_type: String,
    pub size: u64,
}

/// Why an upload or download was refused; each has a status and a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Blank, too long, or holding control characters or slashes.
    InvalidName,
    /// Not one of the deployment's types.
    UnsupportedType,
    /// The bytes are not what the declared type says.
    ContentMismatch,
    Empty,
    /// Larger than the slot (or the limit, in bytes).
    TooLarge(u64),
    /// This upload URL was used already.
    AlreadyUploaded,
    /// A signed URL past its time.
    LinkExpired,
}

impl Refusal {
    pub fn status(self) -> u16 {
        match self {
            Refusal::InvalidName | Refusal::Empty => 400,
            Refusal::UnsupportedType | Refusal::ContentMismatch => 415,
            Refusal::TooLarge(_) => 413,
            Refusal::AlreadyUploaded => 409,
            Refusal::LinkExpired => 410,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Refusal::InvalidName => "invalid_attachment_name",
            Refusal::UnsupportedType => "unsupported_type",
            Refusal::ContentMismatch => "content_mismatch",
            Refusal::Empty => "attachment_empty",
            Refusal::TooLarge(_) => "attachment_too_large",
            Refusal::AlreadyUploaded => "already_uploaded",
            Refusal::LinkExpired => "link_expired",
        }
    }

    pub fn message(self) -> String {
        match self {
            Refusal::InvalidName => format!(
                "name must be 1-{MAX_NAME_CHARS} characters, without control characters or slashes"
            ),
            Refusal::UnsupportedType => "this type of file is not accepted".into(),
            Refusal::ContentMismatch => "the file's bytes are not of its declared type".into(),
            Refusal::Empty => "the file is empty".into(),
            Refusal::TooLarge(max) => format!("the file is larger than {max} bytes"),
            Refusal::AlreadyUploaded => "this upload URL was used already".into(),
            Refusal::LinkExpired => "this link has expired; ask for a new one".into(),
        }
    }
}

/// A new attachment id: `att_` and 32 hex digits.
pub fn new_id() -> String {
    format!("{ID_PREFIX}{}", crate::ids::random_hex(ID_BYTES))
}

pub fn is_id(id: &str) -> bool {
    id.strip_prefix(ID_PREFIX).is_some_and(|hex| {
        hex.len() == 2 * ID_BYTES && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Where an upload's sealed bytes live in R2: under the session (so that
/// erasing it deletes one prefix), the attachment, and a random part of
/// the upload's own, so that a replayed upload can never overwrite the
/// object a message already shows.
pub fn object_key(session: &str, id: &str) -> String {
    format!("{}{id}/{}", prefix(session), crate::ids::random_hex(8))
}

/// Every object of a session starts with this.
pub fn prefix(session: &str) -> String {
    format!("sessions/{session}/")
}

/// An attachment as messages carry it and clients see it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AttachmentView {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// An upload the Worker stored, as the session object records it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    #[serde(flatten)]
    pub view: AttachmentView,
    /// The R2 key of its sealed bytes.
    pub key: String,
}

/// The upload URL's claims.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub session: String,
    pub id: String,
    pub user: String,
    /// The uploader's display name and admin flag, for the session
    /// object's admission when the upload lands.
    pub user_name: String,
    pub admin: bool,
    pub name: String,
    pub kind: Kind,
    pub size: u64,
    pub expires_at: i64,
}

/// The download URL's claims.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub session: String,
    pub id: String,
    pub key: String,
    pub name: String,
    pub kind: Kind,
    pub expires_at: i64,
}

// The URLs' tokens are signed as the deployment's other self-signed
// tokens are (`crate::signed`), each purpose part of its MAC.
pub use crate::signed::{sign, verify, Claims, TokenError};

impl Claims for Ticket {
    const PURPOSE: &'static str = "attachment/upload";
    fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

impl Claims for Link {
    const PURPOSE: &'static str = "attachment/file";
    fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

/// Whether `bytes` begin the way files of `kind` do. Text must be UTF-8
/// without NUL bytes (so no binary passes as text).
pub fn sniff(kind: Kind, bytes: &[u8]) -> bool {
    match kind {
        Kind::Png => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        Kind::Jpeg => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        Kind::Gif => bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a"),
        Kind::Webp => bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        Kind::Pdf => bytes.starts_with(b"%PDF-"),
        Kind::Text => !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok(),
    }
}

/// An image's width and height from its header, where the format says
/// them there (None for other kinds, or a header too short to tell).
pub fn dimensions(kind: Kind, b: &[u8]) -> Option<(u32, u32)> {
    let be16 = |i: usize| Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]) as u32);
    let le16 = |i: usize| Some(u16::from_le_bytes([*b.get(i)?, *b.get(i + 1)?]) as u32);
    let be32 = |i: usize| {
        let s = b.get(i..i + 4)?;
        Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    };
    let le24 = |i: usize| {
        let s = b.get(i..i + 3)?;
        Some(u32::from_le_bytes([s[0], s[1], s[2], 0]))
    };
    let dims = match kind {
        // IHDR is the first chunk: width and height at 16 and 20.
        Kind::Png if b.get(12..16) == Some(b"IHDR") => (be32(16)?, be32(20)?),
        Kind::Gif => (le16(6)?, le16(8)?),
        Kind::Webp => match b.get(12..16)? {
            b"VP8X" => (le24(24)? + 1, le24(27)? + 1),
            b"VP8L" => {
                let bits = u32::from_le_bytes([*b.get(21)?, *b.get(22)?, *b.get(23)?, *b.get(24)?]);
                ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            }
            b"VP8 " => (le16(26)? & 0x3FFF, le16(28)? & 0x3FFF),
            _ => return None,
        },
        Kind::Jpeg => {
            // Walk the segments to the first start-of-frame marker.
            let mut i = 2;
            loop {
                if *b.get(i)? != 0xFF {
                    return None;
                }
                let marker = *b.get(i + 1)?;
                let len = be16(i + 2)? as usize;
                let sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
                if sof {
                    break (be16(i + 7)?, be16(i + 5)?);
                }
                i += 2 + len;
            }
        }
        _ => return None,
    };
    (dims.0 > 0 && dims.1 > 0).then_some(dims)
}

/// The images of a transcript (oldest first) that go to a vision model:
/// from people's messages (not the assistant's), newest first, at most
/// `crate::llm::MAX_PROMPT_IMAGES`, none over `crate::llm::MAX_IMAGE_BYTES`.
/// Each as (seq, attachment).
pub fn for_prompt(messages: &[crate::protocol::MessageView]) -> Vec<(u64, &AttachmentView)> {
    use crate::llm::{MAX_IMAGE_BYTES, MAX_PROMPT_IMAGES};
    messages
        .iter()
        .rev()
        .filter(|m| !m.deleted && m.author.kind != crate::protocol::AuthorKind::Assistant)
        .flat_map(|m| m.attachments.iter().map(move |a| (m.seq, a)))
        .filter(|(_, a)| a.kind.is_image() && a.size <= MAX_IMAGE_BYTES)
        .take(MAX_PROMPT_IMAGES)
        .collect()
}

/// A message's text as the assistant reads it: with a line naming each
/// file it carries, so that a model without vision knows one was sent.
pub fn describe(text: &str, files: &[AttachmentView]) -> String {
    let mut out = text.to_string();
    for f in files {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("[attached: {} ({})]", f.name, f.kind.mime()));
    }
    out
}

#[cfg(test)]
mod tests;
