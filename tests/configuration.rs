//! Configuration as shipped: every variable Confab reads is in the README's
//! configuration tables and every one listed there is read; `wrangler.toml`
//! names only variables Confab reads, with values it accepts, and only where
//! they differ from the defaults (wrangler does not pass `[vars]` on to
//! environments, so each environment lists its own).
//!
//! The names Confab reads are found by asking the parser itself: it is run
//! with a lookup that records each name asked, under settings that take
//! every branch (an assistant with every provider, an identity provider).

use confab::config::Config;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Secrets are not in `wrangler.toml`; these stand in for them.
fn secrets() -> BTreeMap<String, String> {
    [
        ("ENCRYPTION_KEYS", KEYS),
        ("JWT_HS256_SECRET", "0123456789abcdef0123456789abcdef"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Builds a configuration from `vars`, recording every name asked.
fn parse(vars: &BTreeMap<String, String>) -> (Result<Config, String>, BTreeSet<String>) {
    let asked = RefCell::new(BTreeSet::new());
    let config = Config::from_lookup(|name| {
        asked.borrow_mut().insert(name.to_string());
        vars.get(name).cloned()
    })
    .map_err(|e| e.to_string());
    (config, asked.into_inner())
}

fn names_read() -> BTreeSet<String> {
    let mut vars = secrets();
    for (k, v) in [
        ("ENCRYPTION_ACTIVE_KEY_ID", "k1"),
        ("LLM_PROVIDERS", "openai,anthropic,gemini,workers_ai"),
        ("OPENAI_API_KEY", "sk-test"),
        ("ANTHROPIC_API_KEY", "sk-test"),
        ("GEMINI_API_KEY", "test"),
        (
            "JWT_JWKS_URL",
            "https://idp.example.com/.well-known/jwks.json",
        ),
    ] {
        vars.insert(k.into(), v.into());
    }
    let (config, asked) = parse(&vars);
    config.expect("the settings that take every branch are valid");
    asked
}

/// Every `NAME` in the first cell of a README table row.
fn names_documented() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let mut names = BTreeSet::new();
    for line in readme.lines().filter(|l| l.starts_with("| `")) {
        let first = line.split('|').nth(1).unwrap_or_default();
        for part in first.split('`').skip(1).step_by(2) {
            if !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            {
                names.insert(part.to_string());
            }
        }
    }
    names
}

#[test]
fn every_variable_read_is_documented_and_every_documented_one_is_read() {
    let (read, documented) = (names_read(), names_documented());
    let undocumented: Vec<_> = read.difference(&documented).collect();
    let unread: Vec<_> = documented.difference(&read).collect();
    assert!(
        undocumented.is_empty(),
        "read but not in the README: {undocumented:?}"
    );
    assert!(
        unread.is_empty(),
        "in the README but never read: {unread:?}"
    );
}

/// `[vars]` of the top level and of each `[env.*]`, by name.
fn wrangler_vars() -> BTreeMap<String, BTreeMap<String, String>> {
    let text = std::fs::read_to_string(format!("{ROOT}/wrangler.toml")).unwrap();
    let doc: toml::Table = text.parse().expect("wrangler.toml is TOML");
    let vars = |t: &toml::Table| -> BTreeMap<String, String> {
        t.get("vars")
            .and_then(|v| v.as_table())
            .map(|v| {
                v.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().expect("vars are strings").to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut all = BTreeMap::from([("top level".to_string(), vars(&doc))]);
    for (name, env) in doc
        .get("env")
        .and_then(|e| e.as_table())
        .into_iter()
        .flatten()
    {
        all.insert(format!("env.{name}"), vars(env.as_table().unwrap()));
    }
    all
}

#[test]
fn wrangler_toml_sets_only_known_variables_to_valid_values_that_differ_from_the_defaults() {
    let read = names_read();
    let all = wrangler_vars();
    assert!(all.contains_key("env.production") && all.contains_key("env.dev"));
    for (place, vars) in &all {
        let unknown: Vec<_> = vars.keys().filter(|k| !read.contains(*k)).collect();
        assert!(
            unknown.is_empty(),
            "{place}: Confab reads no variable named {unknown:?}"
        );
        let mut with_secrets = secrets();
        with_secrets.extend(vars.clone());
        let (config, _) = parse(&with_secrets);
        let config = config.unwrap_or_else(|e| panic!("{place}: {e}"));
        for name in vars.keys() {
            let mut without = with_secrets.clone();
            without.remove(name);
            let (other, _) = parse(&without);
            assert!(
                other.as_ref() != Ok(&config),
                "{place}: {name} = {:?} is the default; leave it out",
                vars[name]
            );
        }
    }
}

/// The top level and each `[env.*]` of `wrangler.toml` as tables.
fn wrangler_places() -> Vec<(String, toml::Table)> {
    let text = std::fs::read_to_string(format!("{ROOT}/wrangler.toml")).unwrap();
    let doc: toml::Table = text.parse().expect("wrangler.toml is TOML");
    let mut places = vec![("top level".to_string(), doc.clone())];
    for (name, env) in doc
        .get("env")
        .and_then(|e| e.as_table())
        .into_iter()
        .flatten()
    {
        places.push((format!("env.{name}"), env.as_table().unwrap().clone()));
    }
    places
}

/// The names declared under `key` (an array of tables, or one table),
/// read from `field`.
fn declared(place: &toml::Table, key: &str, field: &str) -> Vec<String> {
    let one = |t: &toml::Value| t.get(field).and_then(|v| v.as_str()).map(String::from);
    match place.get(key) {
        Some(toml::Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(t @ toml::Value::Table(_)) => one(t).into_iter().collect(),
        _ => vec![],
    }
}

/// Every environment declares every binding the code uses, by the names
/// in `src/bindings.rs`, and a D1 database for each shard it lists.
#[test]
fn every_environment_declares_the_bindings_the_code_uses() {
    use confab::bindings as b;
    for (place, t) in wrangler_places() {
        let objects = t
            .get("durable_objects")
            .and_then(|d| d.get("bindings"))
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        assert!(
            objects.iter().any(
                |o| o.get("name").and_then(|v| v.as_str()) == Some(b::SESSIONS)
                    && o.get("class_name").and_then(|v| v.as_str()) == Some(b::SESSION_CLASS)
            ),
            "{place}: no {} binding of class {}",
            b::SESSIONS,
            b::SESSION_CLASS
        );
        for (key, field, name) in [
            ("kv_namespaces", "binding", b::KV),
            ("ai", "binding", b::AI),
            ("assets", "binding", b::ASSETS),
            ("ratelimits", "name", b::HTTP_RATE_LIMITER),
            ("d1_databases", "binding", b::HOME_D1),
        ] {
            assert!(
                declared(&t, key, field).iter().any(|d| d == name),
                "{place}: no {key} {name}"
            );
        }
        let shards = t
            .get("vars")
            .and_then(|v| v.get("D1_SHARDS"))
            .and_then(|v| v.as_str())
            .unwrap_or(b::HOME_D1);
        let d1 = declared(&t, "d1_databases", "binding");
        for shard in shards.split(',').map(str::trim) {
            assert!(
                d1.iter().any(|d| d == shard),
                "{place}: D1_SHARDS names {shard}, which it does not declare"
            );
        }
    }
}

/// The README row that documents `name`, as cells, and the default it
/// states for it (a row may document two: `` `A` / `B` | `1` / `2` ``).
fn readme_row(name: &str) -> Option<(Vec<String>, String, usize, usize)> {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let quoted = format!("`{name}`");
    readme.lines().find_map(|l| {
        let cells: Vec<String> = l.split('|').map(|c| c.trim().to_string()).collect();
        let names: Vec<&str> = cells.get(1)?.split(" / ").collect();
        let at = names.iter().position(|n| *n == quoted)?;
        let default = cells.get(2)?.split(" / ").nth(at)?.to_string();
        let count = names.len();
        Some((cells, default, at, count))
    })
}

/// Every integer variable is in one table (`config::ints`); the parser
/// reads each by it, and the README states its default and, where it
/// states bounds, the table's.
#[test]
fn the_integer_table_drives_the_parser_and_the_readme() {
    use confab::config::ints;
    let read = names_read();
    let mut base = secrets();
    base.insert("ENCRYPTION_ACTIVE_KEY_ID".into(), "k1".into());
    // The assistant's variables are read only with a provider.
    base.insert("LLM_PROVIDERS".into(), "workers_ai".into());
    let (default_config, _) = parse(&base);
    let default_config = default_config.unwrap();
    let mut names = BTreeSet::new();
    for int in ints::ALL {
        assert!(names.insert(int.name), "{} twice", int.name);
        assert!(read.contains(int.name), "{} is never read", int.name);
        assert!((int.min..=int.max).contains(&int.default), "{int:?}");
        // Its default is what the parser uses when it is unset.
        let with = |v: String| {
            let mut vars = base.clone();
            vars.insert(int.name.to_string(), v);
            parse(&vars).0
        };
        assert_eq!(
            with(int.default.to_string()).as_ref(),
            Ok(&default_config),
            "{}",
            int.name
        );
        // Its bounds are the parser's.
        let refused = format!(
            "{}: expected an integer from {} to {}",
            int.name, int.min, int.max
        );
        if int.max < usize::MAX {
            assert!(with(int.max.to_string()).is_ok(), "{}", int.name);
            assert_eq!(with((int.max + 1).to_string()).err(), Some(refused.clone()));
        }
        if int.min > 0 {
            assert!(with(int.min.to_string()).is_ok(), "{}", int.name);
            assert_eq!(with((int.min - 1).to_string()).err(), Some(refused));
        }
        let (row, default, at, count) =
            readme_row(int.name).unwrap_or_else(|| panic!("{} has no README row", int.name));
        // The cell may go on to say what an environment sets instead.
        assert!(
            default.starts_with(&format!("`{}`", int.default)),
            "README default of {}: {default}",
            int.name,
        );
        // Bounds stated as "(A to B)", one per variable the row names.
        let said = row[3].replace(['(', ')', ',', '.', ';'], " ");
        let words: Vec<&str> = said.split_whitespace().collect();
        let bounds: Vec<(usize, usize)> = words
            .windows(3)
            .filter(|w| w[1] == "to")
            .filter_map(|w| Some((w[0].parse().ok()?, w[2].parse().ok()?)))
            .collect();
        if bounds.len() == count {
            assert_eq!(
                bounds[at],
                (int.min, int.max),
                "README bounds of {}",
                int.name
            );
        }
    }
}
