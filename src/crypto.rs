//! Encryption at rest: AES-256-GCM envelopes and the keyring. Pure.
//!
//! **Envelope** (stored as TEXT): `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`
//! with a random 96-bit nonce and the 128-bit GCM tag, base64url without
//! padding. `v1` names this layout; a future layout gets a new prefix.
//!
//! **AAD** binds every value to where it belongs, as
//! `confab/v1/<field>/<session id>[/<message id>]`, so a ciphertext copied
//! to another row or field fails to open.
//!
//! **Keyring**: several 256-bit keys by id, one of them active. New values
//! are sealed with the active key; any known key opens.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use std::fmt;

pub const VERSION: &str = "v1";
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;
const MAX_KEY_ID: usize = 16;

/// What a sealed value is; part of its AAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    MessageBody,
    SessionTitle,
    ContactName,
    ContactEmail,
    /// A webhook event waiting or travelling to the consumer (keyed by
    /// session and event id).
    WebhookEvent,
    /// A webhook endpoint's signing secret (keyed by endpoint id).
    WebhookSecret,
    /// A poll's options (keyed by session and message id).
    PollOptions,
    /// An attachment's bytes in R2 (keyed by session and attachment id).
    AttachmentBody,
    /// An attachment's file name (keyed by session and attachment id).
    AttachmentName,
    /// A rating's reason (keyed by session, and the seq and user).
    RatingReason,
    /// An assistant profile's provider API key (keyed by profile name and
    /// the provider's place in its chain).
    ProfileKey,
    /// A function call's arguments, and its result (keyed by session, and
    /// the reply and call ids).
    ToolCall,
    ToolResult,
}

impl Field {
    fn as_str(self) -> &'static str {
        match self {
            Field::MessageBody => "message.body",
            Field::SessionTitle => "session.title",
            Field::ContactName => "session.contact_name",
            Field::ContactEmail => "session.contact_email",
            Field::WebhookEvent => "webhook.event",
            Field::WebhookSecret => "webhook.secret",
            Field::PollOptions => "poll.options",
            Field::AttachmentBody => "attachment.body",
            Field::AttachmentName => "attachment.name",
            Field::RatingReason => "rating.reason",
            Field::ProfileKey => "profile.api_key",
            Field::ToolCall => "tool.arguments",
            Field::ToolResult => "tool.result",
        }
    }
}

/// Where a value belongs.
pub fn aad(field: Field, session_id: &str, message_id: Option<&str>) -> String {
    match message_id {
        Some(m) => format!("confab/{VERSION}/{}/{session_id}/{m}", field.as_str()),
        None => format!("confab/{VERSION}/{}/{session_id}", field.as_str()),
    }
}

/// Why a stored value could not be opened. Each has a stable code that API
/// responses carry instead of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Not an envelope of a known version.
    Malformed,
    /// Sealed with a key id this keyring does not hold.
    UnknownKey,
    /// The tag does not verify: altered, or moved from another place.
    Tampered,
}

impl OpenError {
    pub fn code(self) -> &'static str {
        match self {
            OpenError::Malformed => "ciphertext_malformed",
            OpenError::UnknownKey => "ciphertext_unknown_key",
            OpenError::Tampered => "ciphertext_tampered",
        }
    }
}

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[derive(Clone)]
pub struct Keyring {
    /// Each key: its id, its cipher, and its seed for derived secrets
    /// (HMAC-SHA256 of the key), so no derived value is ever the key.
    keys: Vec<(String, Aes256Gcm, [u8; 32])>,
    active: usize,
}

// Keys never print.
impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, ..)| id.as_str()).collect();
        f.debug_struct("Keyring")
            .field("key_ids", &ids)
            .field("active", &self.keys[self.active].0)
            .finish()
    }
}

impl PartialEq for Keyring {
    fn eq(&self, other: &Self) -> bool {
        self.active_id() == other.active_id()
            && self
                .keys
                .iter()
                .map(|k| &k.0)
                .eq(other.keys.iter().map(|k| &k.0))
    }
}

impl Eq for Keyring {}

/// A keyring problem, naming the variable at fault and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyringError {
    pub variable: &'static str,
    pub expected: String,
}

impl Keyring {
    /// Parses `keys` (`id:base64,id:base64`, each key 32 bytes in standard
    /// base64) and the active key id.
    pub fn parse(keys: &str, active: &str) -> Result<Keyring, KeyringError> {
        let bad_keys = |why: &str| KeyringError {
            variable: "ENCRYPTION_KEYS",
            expected: format!("comma-separated `id:base64` entries of 32-byte keys ({why})"),
        };
        let mut parsed: Vec<(String, Aes256Gcm, [u8; 32])> = Vec::new();
        for entry in keys.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, b64) = entry
                .split_once(':')
                .ok_or_else(|| bad_keys("an entry has no `:`"))?;
            if id.is_empty()
                || id.len() > MAX_KEY_ID
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(bad_keys("key ids are 1-16 characters of A-Z a-z 0-9 _ -"));
            }
            if parsed.iter().any(|(k, ..)| k == id) {
                return Err(bad_keys("a key id appears twice"));
            }
            let bytes =
                Base64::decode_vec(b64.trim()).map_err(|_| bad_keys("a key is not base64"))?;
            let cipher =
                Aes256Gcm::new_from_slice(&bytes).map_err(|_| bad_keys("a key is not 32 bytes"))?;
            let seed = hmac_sha256(&bytes, b"confab/keyring-seed");
            parsed.push((id.to_string(), cipher, seed));
        }
        if parsed.is_empty() {
            return Err(bad_keys("none given"));
        }
        let active = parsed
            .iter()
            .position(|(id, ..)| id == active.trim())
            .ok_or_else(|| KeyringError {
                variable: "ENCRYPTION_ACTIVE_KEY_ID",
                expected: "the id of one of the keys in ENCRYPTION_KEYS".into(),
            })?;
        Ok(Keyring {
            keys: parsed,
            active,
        })
    }

    /// A value derived from the first listed key and `label` (hex), for
    /// secrets that must exist but need no configuration of their own.
    /// It changes only when the first listed key does.
    pub fn derive_label(&self, label: &str) -> String {
        hmac_sha256(&self.keys[0].2, label.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A 32-byte key derived from key `id` and `label`, for a purpose of
    /// its own (the search index's, `crate::search`), so that it does not
    /// change when the first or active key does. None: no such key.
    pub fn derive_key(&self, id: &str, label: &str) -> Option<[u8; 32]> {
        let (_, _, seed) = self.keys.iter().find(|(k, ..)| k == id)?;
        Some(hmac_sha256(seed, label.as_bytes()))
    }

    pub fn active_id(&self) -> &str {
        &self.keys[self.active].0
    }

    /// The envelope prefix of values sealed with the active key.
    pub fn active_prefix(&self) -> String {
        format!("{VERSION}.{}.", self.active_id())
    }

    pub fn seal(&self, aad: &str, plaintext: &str) -> String {
        let (id, blob) = self.encrypt(aad, plaintext.as_bytes());
        format!("{VERSION}.{id}.{}", Base64UrlUnpadded::encode_string(&blob))
    }

    /// Seals with the active key: its id, and `nonce ‖ ciphertext ‖ tag`.
    fn encrypt(&self, aad: &str, plain: &[u8]) -> (&str, Vec<u8>) {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::getrandom(&mut nonce).expect("entropy source unavailable");
        let (id, cipher, _) = &self.keys[self.active];
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: aad.as_bytes(),
                },
            )
            // AES-GCM encryption only fails for inputs of over 64 GiB.
            .expect("aes-gcm seals");
        let mut blob = Vec::with_capacity(NONCE_BYTES + sealed.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        (id, blob)
    }

    pub fn open(&self, aad: &str, envelope: &str) -> Result<String, OpenError> {
        let mut parts = envelope.splitn(3, '.');
        let (Some(VERSION), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(OpenError::Malformed);
        };
        let blob = Base64UrlUnpadded::decode_vec(b64).map_err(|_| OpenError::Malformed)?;
        let plain = self.decrypt(id, aad, &blob)?;
        String::from_utf8(plain).map_err(|_| OpenError::Tampered)
    }

    /// Opens `nonce ‖ ciphertext ‖ tag` sealed with key `id`.
    fn decrypt(&self, id: &str, aad: &str, blob: &[u8]) -> Result<Vec<u8>, OpenError> {
        let cipher = self
            .keys
            .iter()
            .find(|(k, ..)| k == id)
            .map(|(_, c, _)| c)
            .ok_or(OpenError::UnknownKey)?;
        if blob.len() < NONCE_BYTES + TAG_BYTES {
            return Err(OpenError::Malformed);
        }
        let (nonce, sealed) = blob.split_at(NONCE_BYTES);
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Tampered)
    }

    /// Seals bytes (an attachment) as a binary envelope:
    /// `v1.<key id>.` then `nonce ‖ ciphertext ‖ tag`, raw, so a file is
    /// not a third larger in storage as base64 would make it.
    pub fn seal_bytes(&self, aad: &str, plain: &[u8]) -> Vec<u8> {
        let (id, blob) = self.encrypt(aad, plain);
        let mut out = format!("{VERSION}.{id}.").into_bytes();
        out.extend_from_slice(&blob);
        out
    }

    /// Opens what [`Keyring::seal_bytes`] sealed, with any known key.
    pub fn open_bytes(&self, aad: &str, envelope: &[u8]) -> Result<Vec<u8>, OpenError> {
        let rest = envelope
            .strip_prefix(format!("{VERSION}.").as_bytes())
            .ok_or(OpenError::Malformed)?;
        let dot = rest
            .iter()
            .take(MAX_KEY_ID + 1)
            .position(|&b| b == b'.')
            .ok_or(OpenError::Malformed)?;
        let id = std::str::from_utf8(&rest[..dot]).map_err(|_| OpenError::Malformed)?;
        self.decrypt(id, aad, &rest[dot + 1..])
    }

    /// Opens with any known key and reseals with the active one.
    pub fn rotate(&self, aad: &str, envelope: &str) -> Result<String, OpenError> {
        Ok(self.seal(aad, &self.open(aad, envelope)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "HxsdHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

    fn ring(active: &str) -> Keyring {
        Keyring::parse(&format!("k1:{K1}, k2:{K2}"), active).unwrap()
    }

    #[test]
    fn seal_open_round_trip_with_fresh_nonces() {
        let r = ring("k1");
        let a = aad(Field::MessageBody, "s1", Some("m1"));
        let e1 = r.seal(&a, "hello wörld");
        let e2 = r.seal(&a, "hello wörld");
        assert_ne!(e1, e2, "nonces differ");
        assert!(e1.starts_with("v1.k1."));
        assert!(!e1.contains("hello"));
        assert_eq!(r.open(&a, &e1).unwrap(), "hello wörld");
        assert_eq!(r.open(&a, &r.seal(&a, "")).unwrap(), "");
    }

    #[test]
    fn moved_or_altered_values_do_not_open() {
        let r = ring("k1");
        let a = aad(Field::MessageBody, "s1", Some("m1"));
        let e = r.seal(&a, "secret");
        assert_eq!(
            r.open(&aad(Field::MessageBody, "s1", Some("m2")), &e),
            Err(OpenError::Tampered)
        );
        assert_eq!(
            r.open(&aad(Field::MessageBody, "s2", Some("m1")), &e),
            Err(OpenError::Tampered)
        );
        assert_eq!(
            r.open(&aad(Field::SessionTitle, "s1", None), &e),
            Err(OpenError::Tampered)
        );
        let mut chars: Vec<char> = e.chars().collect();
        let i = chars.len() - 5;
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let flipped: String = chars.into_iter().collect();
        assert_eq!(r.open(&a, &flipped), Err(OpenError::Tampered));
        assert_eq!(r.open(&a, "plaintext"), Err(OpenError::Malformed));
        assert_eq!(r.open(&a, "v1.k1.!!!"), Err(OpenError::Malformed));
        assert_eq!(r.open(&a, "v1.k1.AAAA"), Err(OpenError::Malformed));
        assert_eq!(
            r.open(&a, &e.replacen("v1.k1.", "v1.zz.", 1)),
            Err(OpenError::UnknownKey)
        );
        assert_eq!(
            r.open(&a, &e.replacen("v1.", "v9.", 1)),
            Err(OpenError::Malformed)
        );
    }

    #[test]
    fn any_known_key_opens_and_rotation_moves_to_the_active_key() {
        let old = ring("k1");
        let new = ring("k2");
        let a = aad(Field::ContactEmail, "s1", None);
        let e = old.seal(&a, "ann@example.com");
        assert_eq!(new.open(&a, &e).unwrap(), "ann@example.com");
        let rotated = new.rotate(&a, &e).unwrap();
        assert!(rotated.starts_with(&new.active_prefix()));
        assert_eq!(new.open(&a, &rotated).unwrap(), "ann@example.com");
        let only_k1 = Keyring::parse(&format!("k1:{K1}"), "k1").unwrap();
        assert_eq!(only_k1.open(&a, &rotated), Err(OpenError::UnknownKey));
    }

    #[test]
    fn bytes_seal_and_open_in_place_only() {
        let r = ring("k1");
        let a = aad(Field::AttachmentBody, "s1", Some("att_1"));
        let plain: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let sealed = r.seal_bytes(&a, &plain);
        assert!(sealed.starts_with(b"v1.k1."));
        assert_eq!(sealed.len(), 6 + NONCE_BYTES + plain.len() + TAG_BYTES);
        assert!(!sealed.windows(64).any(|w| w == &plain[..64]));
        assert_eq!(ring("k2").open_bytes(&a, &sealed).unwrap(), plain);
        let other = aad(Field::AttachmentBody, "s1", Some("att_2"));
        assert_eq!(r.open_bytes(&other, &sealed), Err(OpenError::Tampered));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(r.open_bytes(&a, &flipped), Err(OpenError::Tampered));
        assert_eq!(r.open_bytes(&a, b"plain bytes"), Err(OpenError::Malformed));
        assert_eq!(r.open_bytes(&a, b"v1.k1.short"), Err(OpenError::Malformed));
        let mut unknown = sealed.clone();
        unknown[4] = b'9';
        assert_eq!(r.open_bytes(&a, &unknown), Err(OpenError::UnknownKey));
    }

    #[test]
    fn keyring_errors_name_the_variable() {
        let var = |keys: &str, active: &str| Keyring::parse(keys, active).unwrap_err().variable;
        assert_eq!(var("", "k1"), "ENCRYPTION_KEYS");
        assert_eq!(var("k1", "k1"), "ENCRYPTION_KEYS");
        assert_eq!(var("k1:notbase64!", "k1"), "ENCRYPTION_KEYS");
        assert_eq!(var("k1:AAEC", "k1"), "ENCRYPTION_KEYS");
        assert_eq!(var(&format!("k1:{K1},k1:{K2}"), "k1"), "ENCRYPTION_KEYS");
        assert_eq!(var(&format!("bad id:{K1}"), "k1"), "ENCRYPTION_KEYS");
        assert_eq!(var(&format!("k1:{K1}"), "k2"), "ENCRYPTION_ACTIVE_KEY_ID");
    }

    #[test]
    fn debug_shows_ids_not_keys() {
        let shown = format!("{:?}", ring("k2"));
        assert!(shown.contains("k1") && shown.contains("k2"));
        assert!(!shown.contains(K1) && !shown.contains("Aes"));
    }
}
