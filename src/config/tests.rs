use super::*;
use std::collections::HashMap;

const KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Builds a config; the keyring is added unless the test sets its own.
fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.entry("ENCRYPTION_KEYS".into())
        .or_insert_with(|| KEY.into());
    map.entry("ENCRYPTION_ACTIVE_KEY_ID".into())
        .or_insert_with(|| "k1".into());
    Config::from_lookup(|k| map.get(k).cloned())
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn defaults_apply_when_unset() {
    let c = cfg(&[("JWT_HS256_SECRET", SECRET)]).unwrap();
    assert_eq!(c.environment, Environment::Production);
    assert_eq!(c.log_level, LogLevel::Info);
    assert_eq!(c.max_frame_bytes, ints::MAX_FRAME_BYTES.default);
    assert_eq!(
        c.max_sockets_per_session,
        ints::MAX_SOCKETS_PER_SESSION.default
    );
}

#[test]
fn empty_values_count_as_unset() {
    let c = cfg(&[
        ("MAX_FRAME_BYTES", "  "),
        ("ENVIRONMENT", ""),
        ("JWT_HS256_SECRET", SECRET),
    ])
    .unwrap();
    assert_eq!(c.max_frame_bytes, ints::MAX_FRAME_BYTES.default);
    assert!(!c.is_development());
}

#[test]
fn values_are_read() {
    let c = cfg(&[
        ("ENVIRONMENT", "development"),
        ("LOG_LEVEL", "debug"),
        ("MAX_FRAME_BYTES", "2048"),
        ("MAX_SOCKETS_PER_SESSION", "3"),
        ("MAX_MESSAGE_CHARS", "10"),
        ("TYPING_THROTTLE_MS", "0"),
        ("JWT_LEEWAY_SECONDS", "5"),
    ])
    .unwrap();
    assert_eq!(c.max_message_chars, 10);
    assert_eq!(c.typing_throttle_ms, 0);
    assert_eq!(c.jwt.policy.leeway_s, 5);
    // No key in development: the built-in development secret.
    assert_eq!(
        c.jwt.hs256_secret.as_ref().unwrap().expose(),
        crate::auth::config::defaults::DEV_SECRET
    );
    assert!(c.origins.allows("http://localhost:8787"));
    assert!(c.is_development());
    assert_eq!(c.log_level, LogLevel::Debug);
    assert_eq!(c.max_frame_bytes, 2048);
    assert_eq!(c.max_sockets_per_session, 3);
}

#[test]
fn each_invalid_variable_is_named() {
    for (var, bad) in [
        ("ENVIRONMENT", "staging"),
        ("LOG_LEVEL", "loud"),
        ("MAX_FRAME_BYTES", "12"),
        ("MAX_FRAME_BYTES", "lots"),
        ("MAX_SOCKETS_PER_SESSION", "0"),
        ("MAX_MESSAGE_CHARS", "0"),
        ("TYPING_THROTTLE_MS", "-1"),
        ("JWT_HS256_SECRET", "short"),
        ("ENCRYPTION_ACTIVE_KEY_ID", "k9"),
        ("ENCRYPTION_KEYS", "k1:short"),
        ("JWT_JWKS", "{\"keys\": 1}"),
        ("JWT_JWKS", "{\"keys\": []}"),
        ("JWT_JWKS_URL", "http://idp.example/jwks"),
        ("ALLOWED_ORIGINS", "example.com"),
        ("WS_TICKET_TTL_SECONDS", "120"),
        ("D1_SHARDS", "DB,DB"),
        ("D1_SHARDS", "DB,my-db"),
    ] {
        let mut pairs = vec![(var, bad)];
        if var != "JWT_HS256_SECRET" {
            pairs.push(("JWT_HS256_SECRET", SECRET));
        }
        let err = cfg(&pairs).unwrap_err();
        assert_eq!(err.variable, var, "value {bad:?}");
        assert!(err.to_string().starts_with(var));
    }
}

#[test]
fn keys_are_required_in_every_environment() {
    let map: HashMap<&str, &str> = [("ENVIRONMENT", "development")].into();
    let err = Config::from_lookup(|k| map.get(k).map(|v| v.to_string())).unwrap_err();
    assert_eq!(err.variable, "ENCRYPTION_KEYS");
    let map: HashMap<&str, &str> =
        [("ENVIRONMENT", "development"), ("ENCRYPTION_KEYS", KEY)].into();
    let err = Config::from_lookup(|k| map.get(k).map(|v| v.to_string())).unwrap_err();
    assert_eq!(err.variable, "ENCRYPTION_ACTIVE_KEY_ID");
}

#[test]
fn assistant_chain_and_limits() {
    assert!(cfg(&[("JWT_HS256_SECRET", SECRET)])
        .unwrap()
        .assistant
        .is_none());
    let c = cfg(&[
        ("JWT_HS256_SECRET", SECRET),
        ("LLM_PROVIDERS", "anthropic, openai"),
        ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/"),
        ("OPENAI_API_KEY", "sk-secret-value"),
        ("LLM_MAX_RETRIES", "0"),
    ])
    .unwrap();
    let a = c.assistant.as_ref().unwrap();
    assert_eq!(a.chain.len(), 2);
    assert_eq!(a.chain[0].endpoint.kind, crate::llm::Kind::Anthropic);
    assert_eq!(a.chain[1].endpoint.base_url, "http://127.0.0.1:9/v1");
    assert_eq!(
        a.chain[1].api_key.as_ref().unwrap().expose(),
        "sk-secret-value"
    );
    assert_eq!(a.max_retries, 0);
    assert!(!format!("{c:?}").contains("sk-secret-value"));
    for (var, bad) in [
        ("LLM_PROVIDERS", "openai,skynet"),
        ("OPENAI_BASE_URL", "ftp://x"),
        ("LLM_IDLE_TIMEOUT_MS", "5"),
    ] {
        let mut pairs = vec![("JWT_HS256_SECRET", SECRET), ("LLM_PROVIDERS", "openai")];
        pairs.retain(|(k, _)| *k != var);
        pairs.push((var, bad));
        assert_eq!(cfg(&pairs).unwrap_err().variable, var);
    }
}

#[test]
fn production_requires_a_token_key() {
    assert_eq!(cfg(&[]).unwrap_err().variable, "JWT_HS256_SECRET");
    // A JWKS URL alone is enough; HS256 is then refused, and log
    // pseudonyms are keyed from the keyring.
    let c = cfg(&[("JWT_JWKS_URL", "https://idp.example/.well-known/jwks.json")]).unwrap();
    assert!(c.jwt.hs256_secret.is_none());
    assert_eq!(c.pseudonym_key.expose().len(), 64);
    assert!(!c.origins.allows("http://localhost:8787"));
}

#[test]
fn debug_never_prints_secrets() {
    let c = cfg(&[("JWT_HS256_SECRET", SECRET)]).unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("hs256_secret: Some(set)"), "{shown}");
    assert!(!shown.contains("AAECAwQF"), "{shown}");
}
