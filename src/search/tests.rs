use super::*;

fn key(b: u8) -> IndexKey {
    IndexKey([b; 32])
}

#[test]
fn words_are_lowercased_distinct_runs_of_letters_and_digits() {
    assert_eq!(
        words("Refund? REFUND for order #A-1234, a café déjà-vu 42"),
        ["refund", "for", "order", "1234", "café", "déjà", "vu", "42"]
    );
    assert!(
        words("a . ! ?").is_empty(),
        "one-letter words are not indexed"
    );
    let long = "x".repeat(100);
    assert_eq!(words(&long)[0].chars().count(), MAX_WORD_CHARS);
}

#[test]
fn terms_are_keyed_and_reveal_no_word() {
    let t = key(1).terms("Refund my order, refund it");
    assert_eq!(t.len(), 4, "distinct words only: {t:?}");
    assert_eq!(t[0], key(1).term("refund"));
    assert_eq!(t[0].len(), 32);
    assert!(t[0].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(
        key(1).term("refund"),
        key(2).term("refund"),
        "another key, other terms"
    );
    assert!(!t.iter().any(|h| h.contains("refund")));
    let many: String = (0..400).map(|i| format!("w{i} ")).collect();
    assert_eq!(key(1).terms(&many).len(), MAX_TERMS_PER_MESSAGE);
}

#[test]
fn queries_are_checked() {
    assert_eq!(query_words("  Order 1234 ").unwrap(), ["order", "1234"]);
    assert_eq!(query_words("?!").unwrap_err().code(), "invalid_query");
    assert_eq!(query_words("a").unwrap_err().code(), "invalid_query");
    let nine = "aa bb cc dd ee ff gg hh ii";
    assert_eq!(query_words(nine).unwrap_err().code(), "query_too_long");
    assert_eq!(query_words(&"ab ".repeat(80)).unwrap(), ["ab"]);
    assert_eq!(
        query_words(&"x".repeat(300)).unwrap_err().code(),
        "query_too_long"
    );
}

#[test]
fn cursors_round_trip_and_bad_ones_are_refused() {
    let c = Cursor {
        created_at: 1_700_000_000_000,
        session: "s_0123456789abcdef0123456789abcdef".into(),
        seq: 42,
    };
    assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
    for bad in ["", "1.2", "x.2.s", "1.y.s", "1.2.../etc"] {
        assert_eq!(
            Cursor::decode(bad).unwrap_err().code(),
            "invalid_cursor",
            "{bad}"
        );
    }
}

fn render(p: &[Piece]) -> String {
    p.iter()
        .map(|p| {
            if p.hit {
                format!("[{}]", p.text)
            } else {
                p.text.clone()
            }
        })
        .collect()
}

#[test]
fn snippets_mark_hits_as_text_pieces() {
    let q = vec!["refund".to_string(), "order".to_string()];
    assert_eq!(
        render(&snippet("I want a REFUND for my order.", &q)),
        "I want a [REFUND] for my [order]."
    );
    // Markup in a message stays text in a piece; pieces never nest.
    let s = snippet("<b>refund</b>", &q);
    assert_eq!(render(&s), "<b>[refund]</b>");
    assert_eq!(
        s[0],
        Piece {
            text: "<b>".into(),
            hit: false
        }
    );
    // A long text is cut around the first hit, at word starts.
    let text = format!(
        "{} the refund {}",
        "lorem ipsum ".repeat(30),
        "dolor sit ".repeat(40)
    );
    let r = render(&snippet(&text, &q));
    assert!(r.starts_with("…lorem") || r.starts_with("…ipsum"), "{r}");
    assert!(r.contains("[refund]") && r.ends_with('…'), "{r}");
    assert!(
        r.chars().count() <= SNIPPET_CHARS + 4,
        "{}",
        r.chars().count()
    );
    // No hit (a collision): the text's start.
    assert_eq!(render(&snippet("nothing here", &q)), "nothing here");
    // Multi-byte text cuts on char boundaries.
    let cjk = format!("{}refund", "日本語 ".repeat(80));
    assert!(render(&snippet(&cjk, &q)).contains("[refund]"));
}

#[test]
fn the_index_key_comes_from_the_named_keyring_entry_alone() {
    use crate::crypto::Keyring;
    let k1 = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let s1 = "s1:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    let a = Keyring::parse(&format!("{k1},{s1}"), "k1").unwrap();
    let b = Keyring::parse(&format!("{s1},{k1}"), "k1").unwrap();
    let rotated = Keyring::parse(&format!("{s1},{k1}"), "s1").unwrap();
    let key = a.derive_key("s1", KEY_LABEL).unwrap();
    // Neither the order of the keyring nor the active key changes it.
    assert_eq!(b.derive_key("s1", KEY_LABEL), Some(key));
    assert_eq!(rotated.derive_key("s1", KEY_LABEL), Some(key));
    assert_ne!(a.derive_key("k1", KEY_LABEL), Some(key));
    assert_ne!(a.derive_key("s1", "another purpose"), Some(key));
    assert_eq!(a.derive_key("zz", KEY_LABEL), None);

    let lookup = |search: &'static str| {
        move |k: &str| match k {
            "ENCRYPTION_KEYS" => Some(format!("{k1},{s1}")),
            "ENCRYPTION_ACTIVE_KEY_ID" => Some("k1".into()),
            "SEARCH_KEY_ID" => Some(search.into()),
            "JWT_HS256_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
            _ => None,
        }
    };
    let c = crate::config::Config::from_lookup(lookup("s1")).unwrap();
    assert_eq!(c.search, Some(IndexKey(key)));
    let err = crate::config::Config::from_lookup(lookup("zz")).unwrap_err();
    assert_eq!(err.variable, "SEARCH_KEY_ID");
    assert!(crate::config::Config::from_lookup(lookup(""))
        .unwrap()
        .search
        .is_none());
}
