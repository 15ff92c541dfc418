use super::*;

#[test]
fn signature_matches_the_standard_webhooks_example() {
    // The example in the Standard Webhooks specification (and its
    // reference libraries' tests).
    let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let sig = signature(
        &key,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        r#"{"test": 2432232314}"#,
    );
    assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    // Any change to what is signed changes it.
    assert_ne!(
        signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_331,
            r#"{"test": 2432232314}"#
        ),
        sig
    );
}

#[test]
fn secrets_are_random_and_decode_to_32_bytes() {
    let (a, b) = (new_secret(), new_secret());
    assert_ne!(a, b);
    assert!(a.starts_with("whsec_"));
    assert_eq!(secret_key(&a).unwrap().len(), 32);
    assert_eq!(secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), None);
    assert_eq!(secret_key("whsec_not base64!"), None);
}

#[test]
fn backoff_doubles_from_the_base_up_to_the_cap() {
    let waits: Vec<u32> = (1..=8).map(|n| backoff_seconds(n, 5, 300)).collect();
    assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300]);
    assert_eq!(backoff_seconds(0, 5, 300), 5);
    assert_eq!(backoff_seconds(90, 5, 43_200), 43_200);
}

#[test]
fn timestamps_are_rfc3339_utc() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339(1_614_265_330_042), "2021-02-25T15:02:10.042Z");
    assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    assert_eq!(rfc3339(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
}

#[test]
fn payload_has_type_timestamp_and_data() {
    let p = payload(
        Kind::MessageCreated,
        0,
        &serde_json::json!({"session_id": "s"}),
    );
    let v: serde_json::Value = serde_json::from_str(&p).unwrap();
    assert_eq!(v["type"], "message.created");
    assert_eq!(v["timestamp"], "1970-01-01T00:00:00.000Z");
    assert_eq!(v["data"]["session_id"], "s");
}

#[test]
fn kinds_round_trip_and_statuses_map() {
    for k in Kind::ALL {
        assert_eq!(Kind::parse(k.as_str()), Some(k));
        assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
    }
    assert_eq!(Kind::parse("session.open"), None);
    assert_eq!(Kind::of_status(Status::Open), None);
    assert_eq!(Kind::of_status(Status::Waiting), Some(Kind::SessionWaiting));
    assert_eq!(Kind::of_status(Status::Closed), Some(Kind::SessionClosed));
}

#[test]
fn envelope_round_trips_and_omits_an_unset_endpoint() {
    let e = Envelope {
        id: new_event_id(),
        kind: Kind::TurnCompleted,
        session: "s1".into(),
        at: 7,
        sealed: "v1.k.x".into(),
        to: None,
        attempt: 1,
        trace: None,
    };
    let json = serde_json::to_string(&e).unwrap();
    assert!(!json.contains("\"to\""));
    assert!(!json.contains("\"trace\""));
    assert!(json.contains(r#""type":"turn.completed""#));
    assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), e);
    assert!(e.id.starts_with("msg_") && e.id.len() == 28);
    // A first pass may leave the attempt out.
    let bare = r#"{"id":"msg_1","type":"session.closed","session":"s","at":1,"sealed":"x"}"#;
    assert_eq!(serde_json::from_str::<Envelope>(bare).unwrap().attempt, 1);
}

#[test]
fn urls_are_checked() {
    assert_eq!(
        check_url("https://hooks.example.com/confab?x=1", false),
        Ok(())
    );
    assert_eq!(check_url("http://127.0.0.1:9000/h", true), Ok(()));
    assert_eq!(
        check_url("http://127.0.0.1:9000/h", false),
        Err(Invalid::HttpNotAllowed)
    );
    // With http off (production), private hosts are refused over https
    // too; a public host on another port is fine.
    for private in [
        "https://127.0.0.1/h",
        "https://10.0.0.7:8443/h",
        "https://[::1]/h",
        "https://169.254.169.254/latest",
        "https://localhost/h",
        "https://receiver.internal/h",
    ] {
        assert_eq!(
            check_url(private, false),
            Err(Invalid::PrivateHost),
            "{private}"
        );
        assert_eq!(check_url(private, true), Ok(()), "development: {private}");
    }
    assert_eq!(check_url("https://hooks.example.com:8443/h", false), Ok(()));
    for bad in [
        "",
        "hooks.example.com",
        "ftp://example.com/",
        "https://",
        "https:///path",
        "https://user:pw@example.com/",
        "https://example.com/a b",
        "https://example.com/\n",
        "https://example.com/#frag",
        "javascript://example.com/",
    ] {
        assert_eq!(check_url(bad, true), Err(Invalid::Url), "{bad:?}");
    }
    let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
    assert_eq!(check_url(&long, true), Err(Invalid::Url));
}

#[test]
fn filters_parse_store_and_match() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(Filter::parse(&s(&["*"])), Ok(Filter::All));
    let f = Filter::parse(&s(&[
        "message.created",
        "session.closed",
        "message.created",
    ]))
    .unwrap();
    assert_eq!(f.stored(), "message.created,session.closed");
    assert_eq!(Filter::from_stored(&f.stored()), f);
    assert!(f.takes(Kind::MessageCreated) && !f.takes(Kind::SessionCreated));
    assert!(Filter::All.takes(Kind::TurnCompleted));
    assert_eq!(Filter::from_stored("*"), Filter::All);
    for bad in [&[][..], &["*", "message.created"], &["message.sent"], &[""]] {
        assert_eq!(Filter::parse(&s(bad)), Err(Invalid::Events), "{bad:?}");
    }
}

#[test]
fn outcomes_and_ids() {
    assert_eq!(Outcome::of_status(204), Outcome::Delivered);
    for s in [301, 400, 410, 500, 503] {
        assert_eq!(Outcome::of_status(s), Outcome::Failed);
    }
    let id = new_endpoint_id();
    assert!(is_endpoint_id(&id), "{id}");
    assert!(!is_endpoint_id("wh_XYZ"));
    assert!(!is_endpoint_id("wh_0123456789abcdef0123456"));
}
