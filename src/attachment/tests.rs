use super::*;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn policy() -> Policy {
    Policy {
        max_bytes: 1000,
        types: Policy::parse_types("image/png, image/jpeg,text/plain").unwrap(),
    }
}

fn slot(name: &str, t: &str, size: u64) -> SlotRequest {
    SlotRequest {
        name: name.into(),
        content_type: t.into(),
        size,
    }
}

#[test]
fn slots_are_checked_against_the_policy() {
    let p = policy();
    assert_eq!(p.check(&slot("a.png", "image/png", 10)), Ok(Kind::Png));
    assert_eq!(
        p.check(&slot("a.png", "IMAGE/PNG; x=1", 1000)),
        Ok(Kind::Png)
    );
    assert_eq!(
        p.check(&slot("a.png", "image/png", 1001)),
        Err(Refusal::TooLarge(1000))
    );
    assert_eq!(p.check(&slot("a.png", "image/png", 0)), Err(Refusal::Empty));
    assert_eq!(
        p.check(&slot("a.gif", "image/gif", 10)),
        Err(Refusal::UnsupportedType)
    );
    assert_eq!(
        p.check(&slot("a.svg", "image/svg+xml", 10)),
        Err(Refusal::UnsupportedType)
    );
    assert_eq!(
        p.check(&slot("a.html", "text/html", 10)),
        Err(Refusal::UnsupportedType)
    );
    for bad in ["", "  ", "../etc/passwd", "a\\b", "a\nb", &"x".repeat(201)] {
        assert_eq!(
            p.check(&slot(bad, "text/plain", 1)),
            Err(Refusal::InvalidName),
            "{bad:?}"
        );
    }
    assert_eq!(
        Policy::parse_types("image/png,image/svg+xml"),
        Err("image/svg+xml".into())
    );
}

#[test]
fn tokens_verify_only_for_their_purpose_key_and_time() {
    let link = Link {
        session: "s1".into(),
        id: new_id(),
        key: "sessions/s1/x/y".into(),
        name: "a.png".into(),
        kind: Kind::Png,
        expires_at: 2000,
    };
    let t = sign(SECRET, &link);
    assert!(t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
    assert_eq!(verify::<Link>(SECRET, &t, 1999), Ok(link.clone()));
    assert_eq!(verify::<Link>(SECRET, &t, 2000), Err(TokenError::Expired));
    assert_eq!(
        verify::<Link>(b"another secret", &t, 0),
        Err(TokenError::Invalid)
    );
    // A download link is not an upload ticket, even with the same secret.
    assert_eq!(verify::<Ticket>(SECRET, &t, 0), Err(TokenError::Invalid));
    // Changed claims (a longer lifetime) break the MAC.
    let (payload, tag) = t.split_once('.').unwrap();
    let mut longer = link.clone();
    longer.expires_at = 9_999_999;
    let forged = sign(b"x", &longer);
    let forged_payload = forged.split_once('.').unwrap().0;
    assert_eq!(
        verify::<Link>(SECRET, &format!("{forged_payload}.{tag}"), 0),
        Err(TokenError::Invalid)
    );
    for junk in [
        "",
        ".",
        "abc",
        &format!("{payload}."),
        &format!("{payload}.!!"),
    ] {
        assert_eq!(
            verify::<Link>(SECRET, junk, 0),
            Err(TokenError::Invalid),
            "{junk}"
        );
    }
}

#[test]
fn ids_have_one_shape() {
    let id = new_id();
    assert!(is_id(&id), "{id}");
    assert_ne!(id, new_id());
    assert!(!is_id("att_XYZ"));
    assert!(!is_id(&id.replace("att_", "msg_")));
    assert!(!is_id(&format!("{id}0")));
    assert!(object_key("s1", &id).starts_with(&format!("sessions/s1/{id}/")));
    assert_ne!(object_key("s1", &id), object_key("s1", &id));
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 6, 0, 0, 0]);
    b
}

#[test]
fn sniffing_tells_types_apart() {
    assert!(sniff(Kind::Png, &png(1, 1)));
    assert!(!sniff(Kind::Jpeg, &png(1, 1)));
    assert!(sniff(Kind::Jpeg, &[0xFF, 0xD8, 0xFF, 0xE0]));
    assert!(sniff(Kind::Gif, b"GIF89a\x01\x00\x01\x00"));
    assert!(sniff(Kind::Webp, b"RIFF\x10\0\0\0WEBPVP8 "));
    assert!(sniff(Kind::Pdf, b"%PDF-1.7\n"));
    assert!(sniff(Kind::Text, "hello wörld\n".as_bytes()));
    assert!(!sniff(Kind::Text, b"MZ\x90\x00\x03"));
    assert!(!sniff(Kind::Text, &[0xC3, 0x28]));
    // An HTML page declared as a PNG is refused.
    assert!(!sniff(Kind::Png, b"<html><script>alert(1)</script>"));
}

#[test]
fn image_sizes_are_read_from_headers() {
    assert_eq!(dimensions(Kind::Png, &png(640, 480)), Some((640, 480)));
    assert_eq!(dimensions(Kind::Png, &png(0, 480)), None);
    assert_eq!(dimensions(Kind::Png, &png(640, 480)[..20]), None);
    assert_eq!(
        dimensions(Kind::Gif, b"GIF89a\x20\x03\x58\x02"),
        Some((800, 600))
    );
    // JPEG: SOI, an APP0 segment, then SOF0 with height 2 and width 3.
    let jpeg = [
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x02,
        0x00, 0x03, 0x01, 0x01, 0x11, 0x00,
    ];
    assert_eq!(dimensions(Kind::Jpeg, &jpeg), Some((3, 2)));
    assert_eq!(dimensions(Kind::Jpeg, &jpeg[..12]), None);
    // WebP extended: canvas 100x50 stored minus one, 24-bit little-endian.
    let mut webp = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0".to_vec();
    webp.extend_from_slice(&[99, 0, 0, 49, 0, 0]);
    assert_eq!(dimensions(Kind::Webp, &webp), Some((100, 50)));
    assert_eq!(dimensions(Kind::Pdf, b"%PDF-1.7"), None);
}

#[test]
fn prompts_take_the_newest_images_of_people_only() {
    use crate::protocol::{Author, AuthorKind, MessageView};
    let file = |id: &str, kind: Kind, size: u64| AttachmentView {
        id: id.into(),
        name: format!("{id}.x"),
        kind,
        size,
        width: None,
        height: None,
    };
    let msg = |seq: u64, kind: AuthorKind, files: Vec<AttachmentView>| MessageView {
        seq,
        id: format!("m{seq}"),
        client_id: None,
        author: Author {
            id: "u".into(),
            name: "U".into(),
            kind,
        },
        text: String::new(),
        reply_to: None,
        created_at: 0,
        edited_at: None,
        deleted: false,
        superseded: false,
        removed: None,
        unreadable: None,
        turn: None,
        reactions: vec![],
        poll: None,
        attachments: files,
        mentions: vec![],
        tool: None,
    };
    let history = vec![
        msg(
            1,
            AuthorKind::User,
            vec![file("old1", Kind::Png, 10), file("old2", Kind::Jpeg, 10)],
        ),
        msg(2, AuthorKind::Assistant, vec![file("bot", Kind::Png, 10)]),
        msg(
            3,
            AuthorKind::User,
            vec![
                file("doc", Kind::Pdf, 10),
                file("huge", Kind::Png, crate::llm::MAX_IMAGE_BYTES + 1),
                file("a", Kind::Webp, 10),
            ],
        ),
        msg(
            4,
            AuthorKind::Agent,
            vec![file("b", Kind::Gif, 10), file("c", Kind::Png, 10)],
        ),
    ];
    let picked: Vec<(u64, &str)> = for_prompt(&history)
        .into_iter()
        .map(|(s, a)| (s, a.id.as_str()))
        .collect();
    assert_eq!(picked, [(4, "b"), (4, "c"), (3, "a"), (1, "old1")]);
    assert_eq!(
        describe("look", &[file("a", Kind::Png, 1)]),
        "look\n[attached: a.x (image/png)]"
    );
    assert_eq!(
        describe("", &[file("d", Kind::Pdf, 1)]),
        "[attached: d.x (application/pdf)]"
    );
}

#[test]
fn refusals_have_documented_statuses_codes_and_messages() {
    use crate::error::AppError;
    let cases = [
        (Refusal::InvalidName, 400, "invalid_attachment_name"),
        (Refusal::UnsupportedType, 415, "unsupported_type"),
        (Refusal::ContentMismatch, 415, "content_mismatch"),
        (Refusal::Empty, 400, "attachment_empty"),
        (Refusal::TooLarge(1024), 413, "attachment_too_large"),
        (Refusal::AlreadyUploaded, 409, "already_uploaded"),
        (Refusal::LinkExpired, 410, "link_expired"),
    ];
    for (r, status, code) in cases {
        assert_eq!((r.status(), r.code()), (status, code));
        let e = AppError::Attachment(r);
        assert_eq!((e.status(), e.code()), (status, code));
        assert_eq!(e.public_message(), r.message());
        assert!(!r.message().is_empty());
    }
    assert!(Refusal::TooLarge(1024).message().contains("1024"));
}

#[test]
fn files_are_served_with_their_type() {
    assert_eq!(Kind::Text.content_type(), "text/plain; charset=utf-8");
    assert_eq!(Kind::Png.content_type(), "image/png");
    assert_eq!(Kind::Pdf.content_type(), "application/pdf");
}

#[test]
fn webp_sizes_are_read_from_each_kind_of_header() {
    // Lossless (VP8L): 14-bit width and height, each stored minus one.
    let bits: u32 = 99 | (49 << 14);
    let mut lossless = b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2f".to_vec();
    lossless.extend_from_slice(&bits.to_le_bytes());
    assert_eq!(dimensions(Kind::Webp, &lossless), Some((100, 50)));
    // Lossy (VP8): after the frame tag and start code, 14-bit sizes.
    let mut lossy = b"RIFF\0\0\0\0WEBPVP8 \0\0\0\0\0\0\0\x9d\x01\x2a".to_vec();
    lossy.extend_from_slice(&[64, 0, 32, 0]);
    assert_eq!(dimensions(Kind::Webp, &lossy), Some((64, 32)));
    assert_eq!(dimensions(Kind::Webp, &lossy[..27]), None, "cut short");
    let other = b"RIFF\0\0\0\0WEBPALPH\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
    assert_eq!(dimensions(Kind::Webp, other), None);
    // A JPEG whose segments do not start with 0xFF tells nothing.
    assert_eq!(dimensions(Kind::Jpeg, &[0xFF, 0xD8, 0x00, 0x00]), None);
}
