//! The JS client library (`public/confab.js`) and its types
//! (`public/confab.d.ts`) state facts the Rust code defines: the author
//! kinds, session modes and statuses, reaction actions, and the close
//! codes after which a client renews or stops. These tests read both files
//! and compare, so neither side can drift alone.

use confab::contract::Mode;
use confab::desk::Status;
use confab::error::close;
use confab::protocol::{AuthorKind, ReactAction};
use serde::Serialize;
use std::collections::BTreeSet;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap()
}

/// The wire names of every value of an enum.
fn wire<T: Serialize>(all: &[T]) -> BTreeSet<String> {
    all.iter()
        .map(|v| {
            serde_json::to_value(v)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// The string literals of the union type that follows `anchor` in the
/// `.d.ts` (`kind: "user" | "assistant"`), up to the end of that union.
fn union_after(dts: &str, anchor: &str) -> BTreeSet<String> {
    let start = dts
        .find(anchor)
        .unwrap_or_else(|| panic!("{anchor} is not in confab.d.ts"))
        + anchor.len();
    let rest = &dts[start..];
    let end = rest.find([';', '}', ',']).unwrap_or(rest.len());
    rest[..end]
        .split('|')
        .map(|s| s.trim().trim_matches('"').to_string())
        .collect()
}

#[test]
fn the_typescript_unions_list_exactly_the_protocols_values() {
    let dts = read("public/confab.d.ts");
    assert_eq!(
        union_after(&dts, "interface Author extends UserRef { kind:"),
        wire(&AuthorKind::ALL)
    );
    assert_eq!(union_after(&dts, "mode:"), wire(&Mode::ALL));
    assert_eq!(union_after(&dts, "; status:"), wire(&Status::ALL));
    assert_eq!(
        union_after(&dts, "export type InboxEvent ="),
        wire(&confab::desk::feed::Event::ALL)
    );
    for s in Status::ALL {
        assert_eq!(Status::parse(s.as_str()), Some(s));
    }
    assert_eq!(
        union_after(&dts, "user: UserRef; action:"),
        wire(&ReactAction::ALL)
    );
    assert_eq!(
        union_after(&dts, "export type Rating ="),
        wire(&confab::protocol::Rating::ALL)
    );
}

#[test]
fn the_client_renews_and_stops_on_the_servers_close_codes() {
    let js = read("public/confab.js");
    let dts = read("public/confab.d.ts");
    assert!(
        js.contains(&format!(
            "export const RENEW_CLOSE_CODE = {};",
            close::TOKEN_EXPIRED
        )),
        "confab.js renews on another code than close::TOKEN_EXPIRED"
    );
    assert!(dts.contains(&format!("RENEW_CLOSE_CODE: {};", close::TOKEN_EXPIRED)));
    let terminal = format!(
        "export const TERMINAL_CLOSE_CODES = new Set([{}, {}, {}]);",
        close::POLICY,
        close::ACCESS_REVOKED,
        close::SESSION_DELETED
    );
    assert!(
        js.contains(&terminal),
        "confab.js stops on other codes than {terminal}"
    );
}
