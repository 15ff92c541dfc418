use super::*;
use crate::desk::Status;

fn post(v: serde_json::Value) -> Result<(ClientId, Author, String), AppError> {
    serde_json::from_value::<Post>(v).unwrap().checked(10)
}

fn code(e: AppError) -> &'static str {
    e.code()
}

#[test]
fn system_bot_and_agent_authors() {
    let (c, a, t) =
        post(serde_json::json!({"client_id": "c1", "text": "hi", "as": "system"})).unwrap();
    assert_eq!((c.as_str(), t.as_str()), ("c1", "hi"));
    assert_eq!(
        (a.id.as_str(), a.name.as_str(), a.kind),
        ("system", "system", AuthorKind::System)
    );
    let (_, a, _) = post(serde_json::json!({"client_id": "c", "text": "x", "as": "bot", "id": "billing", "name": "Billing"})).unwrap();
    assert_eq!(
        (a.id.as_str(), a.name.as_str(), a.kind),
        ("bot:billing", "Billing", AuthorKind::System)
    );
    let (_, a, _) =
        post(serde_json::json!({"client_id": "c", "text": "x", "as": "agent", "id": "dana"}))
            .unwrap();
    assert_eq!(
        (a.id.as_str(), a.name.as_str(), a.kind),
        ("dana", "dana", AuthorKind::Agent)
    );
}

#[test]
fn bad_posts_are_refused_with_the_field_named() {
    let cases = [
        (
            serde_json::json!({"client_id": "turn:x", "text": "x", "as": "system"}),
            "invalid_client_id",
        ),
        (
            serde_json::json!({"client_id": "a b", "text": "x", "as": "system"}),
            "invalid_client_id",
        ),
        (
            serde_json::json!({"client_id": "c", "text": "  ", "as": "system"}),
            "invalid_text",
        ),
        (
            serde_json::json!({"client_id": "c", "text": "01234567890", "as": "system"}),
            "invalid_text",
        ),
        (
            serde_json::json!({"client_id": "c", "text": "x", "as": "bot"}),
            "invalid_user_id",
        ),
        (
            serde_json::json!({"client_id": "c", "text": "x", "as": "agent", "id": " padded"}),
            "invalid_user_id",
        ),
        (
            serde_json::json!({"client_id": "c", "text": "x", "as": "system", "id": "s"}),
            "invalid_user_id",
        ),
        (
            serde_json::json!({"client_id": "c", "text": "x", "as": "system", "name": "a\nb"}),
            "invalid_name",
        ),
        (
            serde_json::json!({"client_id": "c", "text": "x", "as": "system", "name": ""}),
            "invalid_name",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(
            post(body.clone()).map(|_| ()).map_err(code),
            Err(want),
            "{body}"
        );
    }
    // Unknown authors and fields do not parse at all.
    assert!(serde_json::from_value::<Post>(
        serde_json::json!({"client_id": "c", "text": "x", "as": "user"})
    )
    .is_err());
    assert!(serde_json::from_value::<Post>(
        serde_json::json!({"client_id": "c", "text": "x", "as": "system", "kind": "user"})
    )
    .is_err());
}

#[test]
fn statuses_map_to_desk_actions() {
    let set = |status, assignee: Option<&str>| {
        SetStatus {
            status,
            assignee: assignee.map(String::from),
        }
        .action()
    };
    assert_eq!(set(Status::Open, None), Ok(Action::Release));
    assert_eq!(set(Status::Waiting, None), Ok(Action::Escalate));
    assert_eq!(set(Status::Resolved, None), Ok(Action::Resolve));
    assert_eq!(set(Status::Closed, None), Ok(Action::Close));
    assert_eq!(
        set(Status::Assigned, Some("dana")),
        Ok(Action::transfer_to("dana".into()))
    );
    for (s, a) in [
        (Status::Assigned, None),
        (Status::Assigned, Some("")),
        (Status::Open, Some("dana")),
    ] {
        assert_eq!(
            set(s, a).map_err(code),
            Err("invalid_assignee"),
            "{s:?} {a:?}"
        );
    }
}

#[test]
fn the_text_transcript_has_a_line_per_message() {
    let m = |seq, kind, name: &str, text: &str| MessageView {
        seq,
        id: format!("m{seq}"),
        client_id: None,
        author: Author {
            id: name.into(),
            name: name.into(),
            kind,
        },
        text: text.into(),
        reply_to: None,
        created_at: 1_614_265_330_042 + seq as i64,
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
    let mut gone = m(3, AuthorKind::User, "Ann", "");
    gone.deleted = true;
    let mut poll = m(4, AuthorKind::User, "Ann", "Tea?");
    let spec = crate::poll::PollSpec {
        options: vec!["yes".into(), "no".into()],
        multiple: false,
        anonymous: false,
        closes_at: None,
    };
    let tally = crate::poll::Tally::count(&spec, &[("bo".into(), 1)], 0, None);
    poll.poll = Some(crate::poll::PollView::new(spec, tally));
    let call = crate::protocol::ToolMessage::ToolCall {
        call: crate::protocol::CallPart {
            id: "c1".into(),
            name: "lookup".into(),
            arguments: serde_json::json!({"order": "A-1"}),
            decision: Some("approved".into()),
        },
    };
    let result = crate::protocol::ToolMessage::ToolResult {
        result: crate::protocol::ResultPart {
            call_id: "c1".into(),
            name: "lookup".into(),
            content: "shipped".into(),
            is_error: false,
        },
    };
    let at = 1_614_265_330_047;
    let text = transcript_text(&[
        m(1, AuthorKind::User, "Ann", "two\nlines"),
        m(2, AuthorKind::Assistant, "Assistant", "ok"),
        gone,
        poll,
        MessageView::tool((5, "r/c1".into(), at), "Ada", call, None),
        MessageView::tool((6, "r/c1/result".into(), at + 1), "Ada", result, None),
    ]);
    assert_eq!(
        text,
        "[2021-02-25T15:02:10.043Z] Ann (user): two\n    lines\n\
         [2021-02-25T15:02:10.044Z] Assistant (assistant): ok\n\
         [2021-02-25T15:02:10.045Z] Ann (user): (deleted)\n\
         [2021-02-25T15:02:10.046Z] Ann (user): Tea? [poll, open: yes (0) | no (1)]\n\
         [2021-02-25T15:02:10.047Z] Ada (tool_call): lookup {\"order\":\"A-1\"} (approved)\n\
         [2021-02-25T15:02:10.048Z] Ada (tool_result): lookup answered: shipped\n"
    );
}
