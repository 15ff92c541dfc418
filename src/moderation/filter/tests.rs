use super::*;
use std::collections::HashMap;

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn words_and_phrases_match_whole_and_without_case() {
    let list = WordList::parse("Viagra, buy now ,  cheap   pills,").unwrap();
    assert_eq!(list.find("VIAGRA here"), Some("viagra".into()));
    assert_eq!(list.find("please BUY, now!"), Some("buy now".into()));
    assert_eq!(list.find("cheap pills"), Some("cheap pills".into()));
    // Whole words only, and a phrase's words in a row.
    assert_eq!(list.find("viagras"), None);
    assert_eq!(list.find("buy it now"), None);
    assert_eq!(list.find("cheap"), None);
    assert_eq!(list.find(""), None);
}

#[test]
fn word_lists_have_bounds() {
    assert!(WordList::parse(" , ,").is_err());
    let many = vec!["w"; MAX_PHRASES + 1].join(",");
    assert!(WordList::parse(&many).is_err());
    assert!(WordList::parse("a b c d e f g h i").is_err());
    assert!(WordList::parse("a b c d e f g h").is_ok());
}

#[test]
fn the_filter_reads_its_variables() {
    assert_eq!(Filter::from_lookup(lookup(&[])), Ok(None));
    let f = Filter::from_lookup(lookup(&[
        ("MODERATION_FILTER", "words"),
        ("MODERATION_WORDS", "spam"),
        ("MODERATION_ACTION", "block"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(f.action, Action::Block);
    assert!(matches!(f.check, Check::Words(ref w) if w.find("SPAM") .is_some()));
    let ai = Filter::from_lookup(lookup(&[("MODERATION_FILTER", "ai")]))
        .unwrap()
        .unwrap();
    assert_eq!(
        (ai.check, ai.action),
        (
            Check::Ai {
                model: AI_MODEL.into()
            },
            Action::Flag
        )
    );
    let err = |vars: &[(&str, &str)]| Filter::from_lookup(lookup(vars)).unwrap_err().variable;
    assert_eq!(err(&[("MODERATION_FILTER", "words")]), "MODERATION_WORDS");
    assert_eq!(err(&[("MODERATION_FILTER", "regex")]), "MODERATION_FILTER");
    assert_eq!(err(&[("MODERATION_ACTION", "delete")]), "MODERATION_ACTION");
    // A bad list is refused even while the filter is off.
    assert_eq!(err(&[("MODERATION_WORDS", ",")]), "MODERATION_WORDS");
}

#[test]
fn llama_guard_answers_are_read_and_anything_else_is_not() {
    assert_eq!(verdict("safe"), Some(Verdict::Safe));
    assert_eq!(verdict("\n\nsafe\n"), Some(Verdict::Safe));
    assert_eq!(
        verdict("unsafe\nS1,S10"),
        Some(Verdict::Unsafe(vec!["S1".into(), "S10".into()]))
    );
    assert_eq!(verdict("unsafe"), Some(Verdict::Unsafe(vec![])));
    // A category is a short code; prose is dropped.
    assert_eq!(
        verdict("unsafe\nS2, <b>not a code</b>"),
        Some(Verdict::Unsafe(vec!["S2".into()]))
    );
    assert_eq!(verdict("I cannot help with that"), None);
    assert_eq!(verdict(""), None);
}

#[test]
fn decisions_have_their_shape() {
    let id = new_decision_id();
    assert!(id.starts_with("fd_") && id.len() == 27);
    assert_eq!(Outcome::Blocked.as_str(), "blocked");
    assert_eq!(Source::Ai.as_str(), "ai");
    let d = Decision {
        id,
        at: 1,
        session_id: "s".into(),
        user_id: "u".into(),
        source: Source::Words,
        action: Outcome::Flagged,
        detail: "spam".into(),
        seq: Some(4),
        message_id: Some("m".into()),
    };
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(
        (v["source"].as_str(), v["action"].as_str()),
        (Some("words"), Some("flagged"))
    );
}
