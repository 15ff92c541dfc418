//! Configuration as shipped. The table of variables (`config::table`) is
//! held to the parser: the names read are exactly the table's, and each
//! default, bound, choice and secret it states is the parser's. The README's
//! tables are rendered from it. `wrangler.toml` names only variables Confab
//! reads, with values it accepts, never a secret, and only where they differ
//! from the defaults (wrangler does not pass `[vars]` on to environments, so
//! each environment lists its own).
//!
//! The names Confab reads are found by asking the parser itself: it is run
//! with a lookup that records each name asked, under settings that take
//! every branch (an assistant with every provider, an identity provider).

use confab::config::table::{self, Kind, Section, WhenUnset, VARS};
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

/// Settings under which the parser takes every branch.
fn every_branch() -> BTreeMap<String, String> {
    let mut vars = secrets();
    for (k, v) in [
        ("ENCRYPTION_ACTIVE_KEY_ID", "k1"),
        ("LLM_PROVIDERS", "openai,anthropic,gemini,workers_ai"),
        ("OPENAI_API_KEY", "sk-test"),
        ("MODERATION_WORDS", "buy now, cheap pills"),
        ("TURNSTILE_SITE_KEY", "site-key"),
        ("TURNSTILE_SECRET_KEY", "turnstile-secret"),
        ("ANTHROPIC_API_KEY", "sk-test"),
        ("GEMINI_API_KEY", "test"),
        (
            "JWT_JWKS_URL",
            "https://idp.example.com/.well-known/jwks.json",
        ),
    ] {
        vars.insert(k.into(), v.into());
    }
    vars
}

fn names_read() -> BTreeSet<String> {
    let (config, asked) = parse(&every_branch());
    config.expect("the settings that take every branch are valid");
    asked
}

#[test]
fn the_table_names_every_variable_read_and_only_those() {
    let mut listed = BTreeSet::new();
    for v in VARS {
        assert!(listed.insert(v.name.to_string()), "{} twice", v.name);
    }
    let read = names_read();
    let unlisted: Vec<_> = read.difference(&listed).collect();
    let unread: Vec<_> = listed.difference(&read).collect();
    assert!(
        unlisted.is_empty(),
        "read but not in the table: {unlisted:?}"
    );
    assert!(unread.is_empty(), "in the table but never read: {unread:?}");
}

/// The README's configuration tables are the table's rendering. With
/// `CONFAB_BLESS=1` the test writes them instead of comparing.
#[test]
fn the_readme_tables_are_rendered_from_the_table() {
    let path = format!("{ROOT}/README.md");
    let mut readme = std::fs::read_to_string(&path).unwrap();
    let bless = std::env::var("CONFAB_BLESS").is_ok_and(|v| v == "1");
    for (tag, section) in [
        ("service", Section::Service),
        ("assistant", Section::Assistant),
    ] {
        let start = format!("<!-- config:{tag} ");
        let end = format!("<!-- end config:{tag} -->");
        let a = readme
            .find(&start)
            .unwrap_or_else(|| panic!("README has no {start}"));
        let a = a + readme[a..].find("-->\n").unwrap() + 4;
        let b = readme
            .find(&end)
            .unwrap_or_else(|| panic!("README has no {end}"));
        let rendered = table::markdown(section);
        if bless {
            readme.replace_range(a..b, &rendered);
        } else {
            assert!(
                readme[a..b] == rendered,
                "README's {tag} table differs from src/config/table.rs; \
                 run CONFAB_BLESS=1 cargo test --test configuration"
            );
        }
    }
    if bless {
        std::fs::write(&path, readme).unwrap();
    }
}

/// A stated default is what the parser uses: setting it changes nothing.
#[test]
fn each_stated_default_is_the_parsers() {
    let base = every_branch();
    let (unset, _) = parse(&base);
    let unset = unset.unwrap();
    let mut checked = 0;
    for v in VARS {
        let value = match (v.kind, v.default) {
            (Kind::Int(i), _) => i.default.to_string(),
            (_, WhenUnset::Is(value)) => value.to_string(),
            _ => continue,
        };
        assert!(!base.contains_key(v.name), "{} is set in the base", v.name);
        let mut vars = base.clone();
        vars.insert(v.name.into(), value.clone());
        assert_eq!(parse(&vars).0.as_ref(), Ok(&unset), "{} = {value}", v.name);
        checked += 1;
    }
    assert!(checked > 40, "{checked}");
}

/// Each choice is accepted and anything else refused, naming the variable;
/// so are malformed URLs, JSON and keyrings.
#[test]
fn each_kind_is_enforced() {
    let base = every_branch();
    let with = |name: &str, value: &str| {
        let mut vars = base.clone();
        vars.insert(name.into(), value.into());
        parse(&vars).0
    };
    for v in VARS {
        let bad = match v.kind {
            Kind::OneOf(choices) => {
                for c in choices {
                    assert!(with(v.name, c).is_ok(), "{} = {c}", v.name);
                }
                "none-of-these"
            }
            Kind::Url => "ftp://example.com",
            Kind::Json => "{\"keys\": 1}",
            Kind::Keyring => "k1:short",
            Kind::Int(_) => "many",
            Kind::Text | Kind::List => continue,
        };
        let err = with(v.name, bad).expect_err(v.name);
        assert!(
            err.starts_with(&format!("{}: ", v.name)),
            "{}: {err}",
            v.name
        );
    }
}

/// No secret's value shows in the configuration's debug output.
#[test]
fn no_secret_shows_in_debug_output() {
    let mut vars = every_branch();
    let mut values = vec![];
    for v in VARS.iter().filter(|v| v.secret) {
        // A value each parser accepts, and that shows if printed.
        let value = match v.name {
            "ENCRYPTION_KEYS" => KEYS.to_string(),
            "TOOL_SIGNING_SECRET" => {
                "whsec_c2VjcmV0LW9mLXRvb2wtc2lnbmluZy0wMTIzNDU2Nw==".to_string()
            }
            name => format!("secret-of-{name}-0123456789abcdef0123456789"),
        };
        vars.insert(v.name.into(), value.clone());
        values.push(value);
    }
    assert!(values.len() >= 6, "{values:?}");
    let shown = format!("{:?}", parse(&vars).0.unwrap());
    for value in values {
        let tell = value.split(':').nth(1).unwrap_or(&value);
        assert!(!shown.contains(tell), "{tell} shows in {shown}");
    }
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
        for v in VARS.iter().filter(|v| v.secret) {
            assert!(
                !vars.contains_key(v.name),
                "{place}: {} is a secret; use wrangler secret put",
                v.name
            );
        }
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
        let classes = [
            (b::SESSIONS, b::SESSION_CLASS),
            (b::DESK, b::DESK_CLASS),
            (b::USERS, b::USER_CLASS),
        ];
        for (name, class) in classes {
            assert!(
                objects
                    .iter()
                    .any(|o| o.get("name").and_then(|v| v.as_str()) == Some(name)
                        && o.get("class_name").and_then(|v| v.as_str()) == Some(class)),
                "{place}: no {name} binding of class {class}"
            );
        }
        for (key, field, name) in [
            ("kv_namespaces", "binding", b::KV),
            ("r2_buckets", "binding", b::FILES),
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
        // Both webhook queues are produced to; the first is consumed here
        // with the second as its dead-letter queue.
        let queues = t
            .get("queues")
            .unwrap_or_else(|| panic!("{place}: no queues"));
        let producers = queues
            .get("producers")
            .and_then(|p| p.as_array())
            .cloned()
            .unwrap_or_default();
        let queue_of = |binding: &str| {
            producers
                .iter()
                .find(|p| p.get("binding").and_then(|v| v.as_str()) == Some(binding))
                .and_then(|p| p.get("queue").and_then(|v| v.as_str()).map(String::from))
                .unwrap_or_else(|| panic!("{place}: no queue producer {binding}"))
        };
        let (events, dead) = (queue_of(b::WEBHOOKS), queue_of(b::WEBHOOKS_DLQ));
        let consumers = queues
            .get("consumers")
            .and_then(|p| p.as_array())
            .cloned()
            .unwrap_or_default();
        assert!(
            consumers
                .iter()
                .any(|c| c.get("queue").and_then(|v| v.as_str()) == Some(&events)
                    && c.get("dead_letter_queue").and_then(|v| v.as_str()) == Some(&dead)),
            "{place}: {events} is not consumed with {dead} as its dead-letter queue"
        );
        assert!(
            !consumers
                .iter()
                .any(|c| c.get("queue").and_then(|v| v.as_str()) == Some(&dead)),
            "{place}: the dead letters must wait for an operator"
        );
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

/// Every integer variable is in one table (`config::ints`), and in the
/// table of variables; the parser refuses a value just past each bound.
#[test]
fn the_integer_table_drives_the_parser() {
    use confab::config::ints;
    let read = names_read();
    let base = every_branch();
    for int in ints::ALL {
        assert!(read.contains(int.name), "{} is never read", int.name);
        assert!((int.min..=int.max).contains(&int.default), "{int:?}");
        assert!(
            VARS.iter()
                .any(|v| matches!(v.kind, Kind::Int(i) if i == *int)),
            "{} is not in the table of variables",
            int.name
        );
        let with = |v: String| {
            let mut vars = base.clone();
            vars.insert(int.name.to_string(), v);
            parse(&vars).0
        };
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
    }
}
