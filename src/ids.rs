//! Identifier formats. Pure.

/// Session ids travel in URLs and Durable Object names, so they are kept to a
/// URL-safe alphabet and a bounded length. Anything else is treated as an id
/// that does not exist.
pub fn is_valid_session_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A random identifier of `bytes` random bytes, hex encoded.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // getrandom only fails when the platform has no entropy source at all,
    // which neither workerd nor any supported host is.
    getrandom::getrandom(&mut buf).expect("entropy source unavailable");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A uniform random number in [0, 1), for jitter.
pub fn random_unit() -> f64 {
    let mut buf = [0u8; 4];
    getrandom::getrandom(&mut buf).expect("entropy source unavailable");
    u32::from_le_bytes(buf) as f64 / (u32::MAX as f64 + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids() {
        assert!(is_valid_session_id("abc-DEF_123"));
        assert!(is_valid_session_id(&"a".repeat(64)));
        assert!(!is_valid_session_id(""));
        assert!(!is_valid_session_id(&"a".repeat(65)));
        assert!(!is_valid_session_id("a/b"));
        assert!(!is_valid_session_id("a b"));
        assert!(!is_valid_session_id("é"));
    }

    #[test]
    fn random_hex_is_hex_and_varies() {
        let a = random_hex(16);
        let b = random_hex(16);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        let u = random_unit();
        assert!((0.0..1.0).contains(&u));
    }
}
