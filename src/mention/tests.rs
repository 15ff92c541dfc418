use super::*;

fn people() -> Vec<Person> {
    [
        ("u-ann", "Ann Smith"),
        ("u-bo", "Bo"),
        ("auth0|77", "Dana Jones"),
        ("u-dan", "Dan Brown"),
        ("u-dana2", "Dana Lee"),
    ]
    .iter()
    .map(|(id, name)| Person {
        id: id.to_string(),
        name: name.to_string(),
    })
    .collect()
}

fn ids(refs: &[UserRef]) -> Vec<&str> {
    refs.iter().map(|u| u.id.as_str()).collect()
}

#[test]
fn handles_are_read_after_an_at_but_not_inside_addresses() {
    assert_eq!(handles("@Ann, hi @bo."), vec!["ann", "bo"]);
    assert_eq!(handles("mail ann@example.com"), Vec::<String>::new());
    assert_eq!(
        handles("(@auth0|77) and @ann @ANN"),
        vec!["auth0|77", "ann"]
    );
    assert_eq!(handles("@ alone and @-"), Vec::<String>::new());
    assert_eq!(handles("end @dana."), vec!["dana"]);
    let long = format!("@{}", "a".repeat(100));
    assert_eq!(handles(&long)[0].len(), MAX_HANDLE_CHARS);
}

#[test]
fn a_handle_names_by_id_squashed_name_or_unique_first_name() {
    let p = people();
    let r = |text: &str| resolve(&handles(text), &p, "u-bo");
    assert_eq!(ids(&r("@annsmith")), vec!["u-ann"]);
    assert_eq!(ids(&r("@Ann")), vec!["u-ann"], "the only Ann");
    assert_eq!(ids(&r("@auth0|77")), vec!["auth0|77"]);
    assert_eq!(ids(&r("@dana")), Vec::<&str>::new(), "two Danas: ambiguous");
    assert_eq!(ids(&r("@danalee @DanBrown")), vec!["u-dana2", "u-dan"]);
    assert_eq!(ids(&r("@bo")), Vec::<&str>::new(), "not the author");
    assert_eq!(ids(&r("@nobody")), Vec::<&str>::new());
    assert_eq!(ids(&r("@ann @annsmith @u-ann")), vec!["u-ann"], "once each");
    assert_eq!(r("@ann")[0].name, "Ann Smith");
}

#[test]
fn at_most_ten_are_mentioned() {
    let many: Vec<Person> = (0..15)
        .map(|i| Person {
            id: format!("p{i}"),
            name: format!("P{i}"),
        })
        .collect();
    let text: String = (0..15).map(|i| format!("@p{i} ")).collect();
    assert_eq!(resolve(&handles(&text), &many, "x").len(), MAX_MENTIONS);
}

#[test]
fn excerpts_are_cut_by_characters() {
    assert_eq!(excerpt("short"), "short");
    let long = "é".repeat(EXCERPT_CHARS + 5);
    let e = excerpt(&long);
    assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
    assert!(e.ends_with('…'));
    assert_eq!(
        excerpt(&"x".repeat(EXCERPT_CHARS)).chars().count(),
        EXCERPT_CHARS
    );
}
