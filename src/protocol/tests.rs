//! The wire format of every frame, pinned.

use super::*;

const L: Limits = Limits {
    max_message_chars: 10,
};

#[test]
fn decodes_every_client_frame() {
    let cases = [
        (
            r#"{"type":"send","client_id":"c1","text":"hi","reply_to":3}"#,
            ClientFrame::Send {
                client_id: ClientId::parse("c1".into()).unwrap(),
                text: "hi".into(),
                reply_to: Some(3),
                traceparent: None,
                poll: None,
                attachments: vec![],
            },
        ),
        (
            r#"{"type":"send","client_id":"c3","text":" ","attachments":["att_0123456789abcdef0123456789abcdef"]}"#,
            ClientFrame::Send {
                client_id: ClientId::parse("c3".into()).unwrap(),
                text: " ".into(),
                reply_to: None,
                traceparent: None,
                poll: None,
                attachments: vec!["att_0123456789abcdef0123456789abcdef".into()],
            },
        ),
        (
            r#"{"type":"send","client_id":"c2","text":"lunch?","poll":{"options":["yes","no"],"closes_at":9}}"#,
            ClientFrame::Send {
                client_id: ClientId::parse("c2".into()).unwrap(),
                text: "lunch?".into(),
                reply_to: None,
                traceparent: None,
                poll: Some(crate::poll::PollSpec {
                    options: vec!["yes".into(), "no".into()],
                    multiple: false,
                    anonymous: false,
                    closes_at: Some(9),
                }),
                attachments: vec![],
            },
        ),
        (
            r#"{"type":"vote","seq":4,"choices":[1],"client_id":"v1"}"#,
            ClientFrame::Vote {
                seq: 4,
                choices: vec![1],
                client_id: Some(ClientId::parse("v1".into()).unwrap()),
            },
        ),
        (
            r#"{"type":"edit","seq":2,"text":"x"}"#,
            ClientFrame::Edit {
                seq: 2,
                text: "x".into(),
                client_id: None,
            },
        ),
        (
            r#"{"type":"delete","seq":2,"client_id":"d1"}"#,
            ClientFrame::Delete {
                seq: 2,
                client_id: Some(ClientId::parse("d1".into()).unwrap()),
            },
        ),
        (
            r#"{"type":"react","seq":2,"emoji":"👍","action":"add","client_id":"r1"}"#,
            ClientFrame::React {
                seq: 2,
                emoji: "👍".into(),
                action: ReactAction::Add,
                client_id: Some(ClientId::parse("r1".into()).unwrap()),
            },
        ),
        (r#"{"type":"typing"}"#, ClientFrame::Typing),
        (r#"{"type":"stop"}"#, ClientFrame::Stop),
        (r#"{"type":"takeover"}"#, ClientFrame::Takeover),
        (r#"{"type":"release"}"#, ClientFrame::Release),
        (r#"{"type":"read","seq":9}"#, ClientFrame::Read { seq: 9 }),
        (PING_FRAME, ClientFrame::Ping),
    ];
    for (text, want) in cases {
        assert_eq!(decode(text, L), Ok(want), "{text}");
    }
}

#[test]
fn classifies_bad_frames() {
    let code = |t: &str| decode(t, L).unwrap_err().code;
    assert_eq!(code("{not json"), "invalid_json");
    assert_eq!(code(""), "invalid_json");
    assert_eq!(code("[1,2]"), "invalid_frame");
    assert_eq!(code(r#"{"text":"x"}"#), "invalid_frame");
    assert_eq!(code(r#"{"type":"shout"}"#), "unknown_type");
    assert_eq!(code(r#"{"type":"send","client_id":"c"}"#), "invalid_frame");
    assert_eq!(
        code(r#"{"type":"send","client_id":"c","text":"   "}"#),
        "text_empty"
    );
    assert_eq!(
        code(r#"{"type":"send","client_id":"c","text":"","attachments":[]}"#),
        "text_empty"
    );
    // Attachments let the text be empty, not too long.
    let a = "att_0123456789abcdef0123456789abcdef";
    assert_eq!(
        code(&format!(
            r#"{{"type":"send","client_id":"c","text":"01234567890","attachments":["{a}"]}}"#
        )),
        "text_too_long"
    );
    for ids in [
        r#"["att_xyz"]"#.to_string(),
        format!(r#"["{a}","{a}"]"#),
        format!("[{}]", vec![format!(r#""{a}""#); 11].join(",")),
    ] {
        let f = format!(r#"{{"type":"send","client_id":"c","text":"x","attachments":{ids}}}"#);
        assert_eq!(code(&f), "invalid_attachment", "{ids}");
    }
    assert_eq!(
        code(r#"{"type":"send","client_id":"c","text":"01234567890"}"#),
        "text_too_long"
    );
    assert_eq!(
        code(r#"{"type":"send","client_id":"bad id","text":"x"}"#),
        "invalid_client_id"
    );
    assert_eq!(code(r#"{"type":"delete","seq":0}"#), "invalid_seq");
    for big in [
        "9007199254740992",
        "9223372036854775808",
        "18446744073709551615",
    ] {
        for frame in [
            format!(r#"{{"type":"read","seq":{big}}}"#),
            format!(r#"{{"type":"delete","seq":{big}}}"#),
            format!(r#"{{"type":"edit","seq":{big},"text":"x"}}"#),
            format!(r#"{{"type":"react","seq":{big},"emoji":"x","action":"add"}}"#),
            format!(r#"{{"type":"send","client_id":"c","text":"x","reply_to":{big}}}"#),
        ] {
            assert_eq!(code(&frame), "invalid_seq", "{frame}");
        }
    }
    assert!(decode(r#"{"type":"read","seq":9007199254740991}"#, L).is_ok());
    assert_eq!(
        code(r#"{"type":"send","client_id":"turn:abc","text":"x"}"#),
        "invalid_client_id"
    );
    assert_eq!(code(r#"{"type":"delete","seq":-1}"#), "invalid_frame");
    assert_eq!(
        code(r#"{"type":"react","seq":1,"emoji":"a b","action":"add"}"#),
        "invalid_emoji"
    );
    assert_eq!(
        code(r#"{"type":"react","seq":1,"emoji":"x","action":"maybe"}"#),
        "invalid_frame"
    );
}

#[test]
fn ratings_and_regenerate_decode_with_their_limits() {
    let long = "x".repeat(MAX_RATING_REASON_CHARS + 1);
    let frame = format!(r#"{{"type":"rate","seq":2,"rating":"down","reason":"{long}"}}"#);
    assert_eq!(decode(&frame, L).unwrap_err().code, "reason_too_long");
    let ok = decode(r#"{"type":"rate","seq":2,"rating":"up"}"#, L).unwrap();
    assert_eq!(
        ok,
        ClientFrame::Rate {
            seq: 2,
            rating: Rating::Up,
            reason: None,
            client_id: None
        }
    );
    assert_eq!(
        decode(r#"{"type":"rate","seq":2,"rating":"meh"}"#, L)
            .unwrap_err()
            .code,
        "invalid_frame"
    );
    assert_eq!(
        decode(r#"{"type":"regenerate"}"#, L).unwrap(),
        ClientFrame::Regenerate
    );
    for r in Rating::ALL {
        assert_eq!(Rating::parse(r.as_str()), Some(r));
    }
}

#[test]
fn errors_echo_a_valid_client_id() {
    let e = decode(
        r#"{"type":"send","client_id":"c9","text":"01234567890"}"#,
        L,
    )
    .unwrap_err();
    assert_eq!(e.client_id.as_deref(), Some("c9"));
    let v: serde_json::Value =
        serde_json::from_str(&crate::error::SocketError::Frame(e.clone()).frame(None)).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["code"], "text_too_long");
    assert_eq!(v["client_id"], "c9");
}

#[test]
fn a_change_is_refused_with_its_client_id() {
    let e = decode(r#"{"type":"edit","seq":1,"text":" ","client_id":"e1"}"#, L).unwrap_err();
    assert_eq!((e.code, e.client_id.as_deref()), ("text_empty", Some("e1")));
    let e = decode(
        r#"{"type":"react","seq":1,"emoji":" ","client_id":"r1","action":"add"}"#,
        L,
    )
    .unwrap_err();
    assert_eq!(
        (e.code, e.client_id.as_deref()),
        ("invalid_emoji", Some("r1"))
    );
    let e = decode(
        r#"{"type":"send","client_id":"p1","text":"q","poll":{"options":["only"]}}"#,
        L,
    )
    .unwrap_err();
    assert_eq!(
        (e.code, e.client_id.as_deref()),
        ("invalid_poll", Some("p1"))
    );
    let e = decode(
        r#"{"type":"vote","seq":1,"choices":[0,1,2,3,4,5,6,7,8,9,10],"client_id":"v1"}"#,
        L,
    )
    .unwrap_err();
    assert_eq!(
        (e.code, e.client_id.as_deref()),
        ("invalid_choice", Some("v1"))
    );
    let e = decode(
        r#"{"type":"vote","seq":1,"choices":[-1],"client_id":"v2"}"#,
        L,
    )
    .unwrap_err();
    assert_eq!(
        (e.code, e.client_id.as_deref()),
        ("invalid_frame", Some("v2"))
    );
    let e = decode(r#"{"type":"delete","seq":1,"client_id":"turn:x"}"#, L).unwrap_err();
    assert_eq!(e.code, "invalid_client_id");
    // Frames without a key have none to echo.
    assert_eq!(
        decode(r#"{"type":"read","seq":0}"#, L)
            .unwrap_err()
            .client_id,
        None
    );
}

#[test]
fn change_frames_carry_their_change_number() {
    let user = UserRef {
        id: "u".into(),
        name: "U".into(),
    };
    let frames = [
        ServerFrame::Edited {
            seq: 2,
            text: "x",
            edited_at: 5,
            change: 7,
        },
        ServerFrame::Deleted {
            seq: 2,
            deleted_at: 5,
            change: 8,
            removed: None,
        },
        ServerFrame::Reaction {
            seq: 2,
            emoji: "👍",
            user: &user,
            action: ReactAction::Remove,
            change: 9,
        },
    ];
    let changes: Vec<u64> = frames
        .iter()
        .map(|f| {
            serde_json::from_str::<serde_json::Value>(&f.to_json()).unwrap()["change"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(changes, [7, 8, 9]);
    // A deletion says nothing of moderation; a removal names who and why.
    assert!(!frames[1].to_json().contains("removed"));
    let removal = crate::moderation::Removal {
        by: user.clone(),
        reason: crate::moderation::Reason::Spam,
        at: 5,
    };
    let removed = ServerFrame::Deleted {
        seq: 2,
        deleted_at: 5,
        change: 8,
        removed: Some(&removal),
    };
    assert_eq!(
        removed.to_json(),
        r#"{"type":"deleted","seq":2,"deleted_at":5,"change":8,"removed":{"by":{"id":"u","name":"U"},"reason":"spam","at":5}}"#
    );
    let applied = ServerFrame::Applied {
        client_id: "e1",
        change: None,
        duplicate: true,
    };
    assert_eq!(
        applied.to_json(),
        r#"{"type":"applied","client_id":"e1","change":null,"duplicate":true}"#
    );
    assert_eq!(
        ServerFrame::Synced {
            last_seq: 4,
            last_change: 9
        }
        .to_json(),
        r#"{"type":"synced","last_seq":4,"last_change":9}"#
    );
}

#[test]
fn text_limit_counts_characters_not_bytes() {
    assert!(decode(r#"{"type":"send","client_id":"c","text":"ééééééééé"}"#, L).is_ok());
}

#[test]
fn ping_and_pong_constants_match_the_frames() {
    assert_eq!(decode(PING_FRAME, L), Ok(ClientFrame::Ping));
    assert_eq!(ServerFrame::Pong.to_json(), PONG_FRAME);
}

#[test]
fn message_frame_shape() {
    let m = MessageView {
        seq: 3,
        id: "m1".into(),
        client_id: Some("c1".into()),
        author: Author {
            id: "u".into(),
            name: "U".into(),
            kind: AuthorKind::User,
        },
        text: "hi".into(),
        reply_to: None,
        created_at: 5,
        edited_at: None,
        deleted: false,
        superseded: false,
        removed: None,
        unreadable: None,
        turn: None,
        reactions: vec![],
        poll: None,
        attachments: vec![],
        mentions: vec![],
        tool: None,
    };
    let v: serde_json::Value = serde_json::from_str(&ServerFrame::Message(&m).to_json()).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["seq"], 3);
    assert_eq!(v["author"]["kind"], "user");
    assert!(v.get("deleted").is_none());
    assert!(v.get("edited_at").is_none());
    // Someone's message has no `kind` (it is `message`), and reads back
    // without a tool part.
    assert!(v.get("kind").is_none());
    let back: MessageView = serde_json::from_value(v).unwrap();
    assert_eq!(back, m);
}

#[test]
fn tool_messages_carry_their_kind_and_part_and_read_back() {
    let call = MessageView::tool(
        (7, "r1/c1".into(), 9),
        "Ada",
        ToolMessage::ToolCall {
            call: CallPart {
                id: "c1".into(),
                name: "lookup_order".into(),
                arguments: serde_json::json!({"order": 42}),
                decision: Some("approved".into()),
            },
        },
        None,
    );
    let v: serde_json::Value =
        serde_json::from_str(&ServerFrame::Message(&call).to_json()).unwrap();
    assert_eq!(v["kind"], "tool_call");
    assert_eq!(v["seq"], 7);
    assert_eq!(v["author"]["kind"], "assistant");
    assert_eq!(v["author"]["name"], "Ada");
    assert_eq!(v["call"]["arguments"]["order"], 42);
    assert_eq!(v["call"]["decision"], "approved");
    assert_eq!(serde_json::from_value::<MessageView>(v).unwrap(), call);
    let result = MessageView::tool(
        (8, "r1/c1/result".into(), 10),
        "Ada",
        ToolMessage::ToolResult {
            result: ResultPart {
                call_id: "c1".into(),
                name: "lookup_order".into(),
                content: "shipped".into(),
                is_error: false,
            },
        },
        None,
    );
    let v: serde_json::Value =
        serde_json::from_str(&ServerFrame::Message(&result).to_json()).unwrap();
    assert_eq!(v["kind"], "tool_result");
    assert_eq!(v["result"]["content"], "shipped");
    assert!(v.get("call").is_none());
    assert_eq!(serde_json::from_value::<MessageView>(v).unwrap(), result);
}

#[test]
fn a_batch_frame_carries_the_frames_as_they_were_serialized() {
    let frames = vec![
        r#"{"type":"message","seq":1}"#.to_string(),
        r#"{"type":"message","seq":2}"#.to_string(),
    ];
    let b = batch_frame(&frames);
    assert_eq!(
        b,
        r#"{"type":"batch","frames":[{"type":"message","seq":1},{"type":"message","seq":2}]}"#
    );
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["frames"][1]["seq"], 2);
}
