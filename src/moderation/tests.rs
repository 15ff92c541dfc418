use super::*;

fn by() -> UserRef {
    UserRef {
        id: "mod-1".into(),
        name: "Mo".into(),
    }
}

fn request(kind: Kind, duration_secs: Option<u64>) -> SanctionRequest {
    SanctionRequest {
        user_id: "u-1".into(),
        kind,
        duration_secs,
        reason: Reason::Spam,
    }
}

#[test]
fn reasons_and_kinds_round_trip_and_refuse_others() {
    for r in Reason::ALL {
        assert_eq!(Reason::parse(r.as_str()), Some(r));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, format!("\"{}\"", r.as_str()));
    }
    assert_eq!(Reason::parse("Spam"), None);
    assert_eq!(Kind::parse("ban"), Some(Kind::Ban));
    assert_eq!(Kind::parse("kick"), None);
    assert_eq!(Kind::Mute.code(), "muted");
    assert_eq!(Kind::Ban.code(), "banned");
    for s in [Status::Open, Status::Removed, Status::Dismissed] {
        assert_eq!(Status::parse(s.as_str()), Some(s));
    }
    assert_eq!(Status::parse("closed"), None);
}

#[test]
fn a_sanction_request_becomes_a_timed_or_open_ended_sanction() {
    let s = request(Kind::Mute, Some(600))
        .into_sanction(by(), 1_000)
        .unwrap();
    assert_eq!(s.until, Some(601_000));
    assert!(s.active(600_999));
    assert!(!s.active(601_000));
    let forever = request(Kind::Ban, None).into_sanction(by(), 1_000).unwrap();
    assert_eq!(forever.until, None);
    assert!(forever.active(i64::MAX));
}

#[test]
fn a_sanction_request_refuses_bad_durations_self_and_bad_ids() {
    let code = |r: SanctionRequest| r.into_sanction(by(), 0).unwrap_err().code();
    assert_eq!(code(request(Kind::Mute, Some(0))), "invalid_duration");
    assert_eq!(
        code(request(Kind::Mute, Some(MAX_DURATION_SECS + 1))),
        "invalid_duration"
    );
    assert!(request(Kind::Mute, Some(MAX_DURATION_SECS))
        .into_sanction(by(), 0)
        .is_ok());
    let mut own = request(Kind::Ban, None);
    own.user_id = "mod-1".into();
    assert_eq!(code(own), "cannot_sanction_self");
    let mut bad = request(Kind::Ban, None);
    bad.user_id = " spaced ".into();
    assert_eq!(code(bad), "invalid_user_id");
}

#[test]
fn find_takes_bans_as_mutes_and_the_longest_active_one() {
    let mk = |user: &str, kind, until| Sanction {
        user_id: user.into(),
        kind,
        until,
        reason: Reason::Other,
        by: by(),
        at: 0,
    };
    let all = vec![
        mk("a", Kind::Mute, Some(100)),
        mk("a", Kind::Mute, Some(500)),
        mk("b", Kind::Ban, Some(300)),
        mk("c", Kind::Mute, Some(50)),
    ];
    assert_eq!(find(&all, "a", Kind::Mute, 10).unwrap().until, Some(500));
    assert!(find(&all, "a", Kind::Ban, 10).is_none());
    // A ban stops writing too.
    assert_eq!(find(&all, "b", Kind::Mute, 10).unwrap().kind, Kind::Ban);
    assert!(find(&all, "b", Kind::Ban, 300).is_none(), "ended");
    assert!(find(&all, "c", Kind::Mute, 60).is_none(), "ended");
    assert!(find(&all, "z", Kind::Mute, 0).is_none());
}

#[test]
fn refusals_carry_the_time_left_and_the_documented_code() {
    let s = request(Kind::Mute, Some(60))
        .into_sanction(by(), 0)
        .unwrap();
    let e = s.refusal(15_000);
    assert_eq!((e.status(), e.code()), (403, "muted"));
    let frame: serde_json::Value =
        serde_json::from_str(&crate::error::SocketError::App(e).frame(Some("c1"))).unwrap();
    assert_eq!(frame["code"], "muted");
    assert_eq!(frame["retry_after_ms"], 45_000);
    assert_eq!(frame["client_id"], "c1");
    let ban = request(Kind::Ban, None).into_sanction(by(), 0).unwrap();
    let e = ban.refusal(1);
    assert_eq!((e.code(), e.close_code()), ("banned", 4003));
    let frame = crate::error::SocketError::App(e).frame(None);
    assert!(!frame.contains("retry_after_ms"), "{frame}");
}

#[test]
fn reasons_are_counted_in_a_fixed_order() {
    let counted = count_reasons("spam,abuse,spam,bogus");
    assert_eq!(
        counted,
        vec![
            ReasonCount {
                reason: Reason::Spam,
                count: 2
            },
            ReasonCount {
                reason: Reason::Abuse,
                count: 1
            },
        ]
    );
    assert!(count_reasons("").is_empty());
}

#[test]
fn queue_cursors_round_trip_and_refuse_forgeries() {
    let c = Cursor {
        at: 12,
        session: "s_0123456789abcdef0123456789abcdef".into(),
        seq: 7,
    };
    assert_eq!(Cursor::parse(&c.encode()), Some(c));
    assert_eq!(Cursor::parse("x.1.s"), None);
    assert_eq!(Cursor::parse("-1.1.s"), None);
    assert_eq!(Cursor::parse("1.1"), None);
    assert_eq!(Cursor::parse("1.1.<script>"), None);
}

#[test]
fn report_ids_have_their_shape() {
    let id = new_report_id();
    assert!(id.starts_with("rp_") && id.len() == 27, "{id}");
    assert_ne!(id, new_report_id());
}

#[test]
fn only_people_can_be_hidden_by_a_block() {
    use crate::protocol::{Author, AuthorKind};
    let blocked: std::collections::HashSet<String> = ["bo".to_string()].into();
    let by = |id: &str, kind| Author {
        id: id.into(),
        name: "x".into(),
        kind,
    };
    assert!(hidden(&blocked, &by("bo", AuthorKind::User)));
    assert!(hidden(&blocked, &by("bo", AuthorKind::Agent)));
    assert!(!hidden(&blocked, &by("bo", AuthorKind::Assistant)));
    assert!(!hidden(&blocked, &by("bo", AuthorKind::System)));
    assert!(!hidden(&blocked, &by("cy", AuthorKind::User)));
}

#[test]
fn stored_sanctions_read_back_and_unknown_kinds_are_skipped() {
    let row = |kind: &str, reason: &str| SanctionRow {
        user_id: "u".into(),
        kind: kind.into(),
        until: Some(9),
        reason: reason.into(),
        by_id: "m".into(),
        by_name: "Mo".into(),
        at: 1,
    };
    let s = row("ban", "spam").sanction().unwrap();
    assert_eq!(
        (s.kind, s.reason, s.until, s.by.name.as_str()),
        (Kind::Ban, Reason::Spam, Some(9), "Mo")
    );
    assert_eq!(
        row("mute", "new-reason").sanction().unwrap().reason,
        Reason::Other
    );
    assert!(row("kick", "spam").sanction().is_none());
    assert_eq!(SANCTION_COLUMNS.split(", ").count(), 7);
}
