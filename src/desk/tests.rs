use super::*;
use crate::protocol::AuthorKind;

fn who(id: &str) -> UserRef {
    UserRef {
        id: id.into(),
        name: id.to_uppercase(),
    }
}

fn at(stage: Stage) -> Desk {
    Desk {
        stage,
        ..Desk::new(0)
    }
}

#[test]
fn statuses_round_trip_and_are_the_five_of_the_api() {
    let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(names, ["open", "waiting", "assigned", "resolved", "closed"]);
    for s in Status::ALL {
        assert_eq!(Status::parse(s.as_str()), Some(s));
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    assert_eq!(Status::parse("active"), None);
    assert_eq!(Status::parse("idle"), None);
}

#[test]
fn a_user_escalates_and_an_agent_claims() {
    let (alice, bob) = (who("alice"), who("bob"));
    let d = Desk::new(1);
    let waiting = d
        .apply(&Action::Escalate, Actor::User(&alice), 10)
        .unwrap()
        .unwrap();
    assert_eq!(waiting.stage, Stage::Waiting { told: false });
    assert_eq!(waiting.times.waiting_since, Some(10));
    assert_eq!(waiting.mode(), Mode::Assistant);
    // Escalating again changes nothing (and is not an error).
    assert_eq!(
        waiting.apply(&Action::Escalate, Actor::User(&alice), 11),
        Ok(None)
    );
    let claimed = waiting
        .apply(&Action::Claim, Actor::Agent(&bob), 20)
        .unwrap()
        .unwrap();
    assert_eq!(claimed.stage, Stage::Assigned(Some(bob.clone())));
    assert_eq!(claimed.assignee(), Some(&bob));
    assert_eq!(claimed.mode(), Mode::Human);
    assert_eq!(claimed.changed_at, 20);
    // The wait's start is kept for the inbox's times.
    assert_eq!(claimed.times.waiting_since, Some(10));
}

#[test]
fn of_two_claims_the_second_loses_and_a_repeat_is_no_change() {
    let (bob, carol) = (who("bob"), who("carol"));
    let d = at(Stage::Waiting { told: false });
    let won = d
        .apply(&Action::Claim, Actor::Agent(&bob), 5)
        .unwrap()
        .unwrap();
    assert_eq!(
        won.apply(&Action::Claim, Actor::Agent(&carol), 5),
        Err(Refused::AlreadyAssigned)
    );
    assert_eq!(won.apply(&Action::Claim, Actor::Agent(&bob), 6), Ok(None));
    // An open session can be claimed too, and one taken over before
    // assignees were recorded by anyone.
    assert!(at(Stage::Open)
        .apply(&Action::Claim, Actor::Agent(&carol), 1)
        .unwrap()
        .is_some());
    let legacy = at(Stage::Assigned(None));
    assert_eq!(
        legacy
            .apply(&Action::Claim, Actor::Agent(&carol), 1)
            .unwrap()
            .unwrap()
            .assignee(),
        Some(&carol)
    );
}

#[test]
fn transfer_resolve_and_release() {
    let (bob, carol) = (who("bob"), who("carol"));
    let mine = at(Stage::Assigned(Some(bob.clone())));
    let moved = mine
        .apply(
            &Action::Transfer { to: carol.clone() },
            Actor::Agent(&bob),
            3,
        )
        .unwrap()
        .unwrap();
    assert_eq!(moved.assignee(), Some(&carol));
    assert_eq!(
        moved.apply(
            &Action::Transfer { to: carol.clone() },
            Actor::Agent(&bob),
            4
        ),
        Ok(None)
    );
    let resolved = moved
        .apply(&Action::Resolve, Actor::Agent(&carol), 9)
        .unwrap()
        .unwrap();
    assert_eq!(resolved.status(), Status::Resolved);
    assert_eq!(resolved.times.resolved_at, Some(9));
    assert_eq!(resolved.mode(), Mode::Assistant);
    assert_eq!(
        resolved.apply(&Action::Resolve, Actor::Agent(&bob), 10),
        Ok(None)
    );
    let released = mine
        .apply(&Action::Release, Actor::Agent(&bob), 7)
        .unwrap()
        .unwrap();
    assert_eq!(released.stage, Stage::Open);
    assert_eq!(
        released.apply(&Action::Release, Actor::Agent(&bob), 8),
        Ok(None)
    );
}

#[test]
fn users_only_escalate_and_the_system_only_closes() {
    let alice = who("alice");
    let d = at(Stage::Waiting { told: false });
    for a in [
        Action::Claim,
        Action::Resolve,
        Action::Release,
        Action::Close,
        Action::Transfer { to: who("x") },
    ] {
        assert_eq!(
            d.apply(&a, Actor::User(&alice), 1),
            Err(Refused::NotAnAgent),
            "{a:?}"
        );
    }
    assert_eq!(
        d.apply(&Action::Claim, Actor::System, 1),
        Err(Refused::NotAnAgent)
    );
    let closed = d.apply(&Action::Close, Actor::System, 2).unwrap().unwrap();
    assert_eq!(closed.status(), Status::Closed);
}

#[test]
fn closed_is_final_and_refuses_messages() {
    let closed = at(Stage::Closed);
    let bob = who("bob");
    for a in [
        Action::Escalate,
        Action::Claim,
        Action::Resolve,
        Action::Release,
        Action::Close,
    ] {
        assert_eq!(
            closed.apply(&a, Actor::Agent(&bob), 1),
            Err(Refused::Closed)
        );
    }
    assert_eq!(closed.on_message(AuthorKind::User, 1), Err(Refused::Closed));
    assert_eq!(
        closed.on_message(AuthorKind::Assistant, 1),
        Err(Refused::Closed)
    );
    assert!(!closed.assistant_answers(true));
    assert_eq!(closed.idle_close_due(0, 1000), None);
}

#[test]
fn a_users_message_reopens_a_resolved_session() {
    let mut resolved = at(Stage::Resolved);
    resolved.times.resolved_at = Some(5);
    let open = resolved.on_message(AuthorKind::User, 6).unwrap().unwrap();
    assert_eq!(open.stage, Stage::Open);
    assert_eq!(open.times.resolved_at, None);
    // The assistant's or an agent's message does not reopen it.
    assert_eq!(resolved.on_message(AuthorKind::Assistant, 6), Ok(None));
    assert_eq!(
        resolved
            .on_message(AuthorKind::Agent, 6)
            .unwrap()
            .unwrap()
            .stage,
        Stage::Resolved
    );
}

#[test]
fn the_first_agent_reply_is_timed_once() {
    let d = at(Stage::Assigned(Some(who("bob"))));
    let first = d.on_message(AuthorKind::Agent, 40).unwrap().unwrap();
    assert_eq!(first.times.first_agent_reply_at, Some(40));
    assert_eq!(first.on_message(AuthorKind::Agent, 50), Ok(None));
    assert_eq!(d.on_message(AuthorKind::User, 40), Ok(None));
}

#[test]
fn an_unclaimed_wait_is_told_once_and_the_assistant_comes_back() {
    let alice = who("alice");
    let w = Desk::new(0)
        .apply(&Action::Escalate, Actor::User(&alice), 100)
        .unwrap()
        .unwrap();
    assert_eq!(w.escalation_due(300), Some(400));
    assert!(w.assistant_answers(true));
    assert!(!w.assistant_answers(false));
    let told = w.told().unwrap();
    assert_eq!(told.status(), Status::Waiting);
    assert_eq!(told.escalation_due(300), None);
    assert!(told.assistant_answers(false));
    assert_eq!(told.told(), None);
    assert_eq!(at(Stage::Open).escalation_due(300), None);
}

#[test]
fn idle_close_follows_the_last_activity() {
    assert_eq!(at(Stage::Open).idle_close_due(1_000, 60_000), Some(61_000));
    assert_eq!(at(Stage::Open).idle_close_due(1_000, 0), None);
}

#[test]
fn actions_have_a_pinned_wire_format() {
    let t: Action = serde_json::from_str(r#"{"transfer":{"to":{"id":"u","name":"U"}}}"#).unwrap();
    assert_eq!(
        t,
        Action::Transfer {
            to: UserRef {
                id: "u".into(),
                name: "U".into()
            }
        }
    );
    assert_eq!(serde_json::to_string(&Action::Claim).unwrap(), r#""claim""#);
}
