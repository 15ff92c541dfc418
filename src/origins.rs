//! Browser origins allowed to use the API: exact origins and
//! `https://*.example.com` wildcards. Pure.
//!
//! Requests without an `Origin` header (servers, native apps, curl) are not
//! browser requests and are not subject to the allowlist; tokens still are.

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origins {
    exact: Vec<String>,
    /// `(scheme://, .suffix)` pairs from `scheme://*.suffix` entries.
    wildcard: Vec<(String, String)>,
    /// Local development: any `http://localhost:*` and `http://127.0.0.1:*`.
    local: bool,
}

impl Origins {
    /// Parses a comma-separated list; `development` also allows localhost.
    pub fn parse(list: Option<&str>, development: bool) -> Result<Origins, String> {
        let mut out = Origins {
            local: development,
            ..Origins::default()
        };
        for entry in list.unwrap_or("").split(',').map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            let bad = || {
                format!(
                    "comma-separated origins like https://app.example.com or \
                     https://*.example.com (not `{}`)",
                    entry.chars().take(80).collect::<String>()
                )
            };
            let (scheme, host) = entry.split_once("://").ok_or_else(bad)?;
            if !matches!(scheme, "https" | "http")
                || host.is_empty()
                || host.contains('/')
                || host.chars().any(char::is_whitespace)
            {
                return Err(bad());
            }
            if let Some(suffix) = host.strip_prefix("*.") {
                if suffix.is_empty() || suffix.contains('*') || !suffix.contains('.') {
                    return Err(bad());
                }
                out.wildcard.push((
                    format!("{scheme}://"),
                    format!(".{}", suffix.to_ascii_lowercase()),
                ));
            } else if host.contains('*') {
                return Err(bad());
            } else {
                out.exact.push(entry.to_ascii_lowercase());
            }
        }
        Ok(out)
    }

    /// The allowlist as a CSP source list (for `frame-ancestors`): the exact
    /// origins, the wildcards, and in development any loopback port.
    pub fn csp_sources(&self) -> Vec<String> {
        let mut out = self.exact.clone();
        out.extend(
            self.wildcard
                .iter()
                .map(|(scheme, suffix)| format!("{scheme}*{suffix}")),
        );
        if self.local {
            out.extend(
                ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"].map(String::from),
            );
        }
        out
    }

    /// Whether a browser at `origin` may call.
    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        if self.exact.contains(&origin) {
            return true;
        }
        for (scheme, suffix) in &self.wildcard {
            if let Some(host) = origin.strip_prefix(scheme.as_str()) {
                // One label or more before the suffix, and no path or userinfo.
                if host.len() > suffix.len()
                    && host.ends_with(suffix.as_str())
                    && !host.contains(['/', '@'])
                {
                    return true;
                }
            }
        }
        if self.local {
            for base in ["http://localhost", "http://127.0.0.1", "http://[::1]"] {
                if let Some(rest) = origin.strip_prefix(base) {
                    if rest.is_empty()
                        || rest
                            .strip_prefix(':')
                            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    {
                        return true;
                    }
                }
            }
        }
        false
    }
}

/// Parses `PUBLIC_ORIGINS`: the deployment's own origins, exact, comma
/// separated, lower-cased. No wildcards: these say which Host a request may
/// carry.
pub fn parse_public(list: Option<&str>) -> Result<Vec<String>, String> {
    let o = Origins::parse(list, false)?;
    if !o.wildcard.is_empty() {
        return Err("exact origins like https://chat.example.com (no wildcards)".into());
    }
    Ok(o.exact)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_origins_are_exact() {
        assert_eq!(
            parse_public(Some("https://Chat.example.com, http://127.0.0.1:8787")).unwrap(),
            vec!["https://chat.example.com", "http://127.0.0.1:8787"]
        );
        assert!(parse_public(Some("https://*.example.com")).is_err());
        assert!(parse_public(Some("chat.example.com")).is_err());
        assert!(parse_public(None).unwrap().is_empty());
    }

    #[test]
    fn csp_sources_list_the_allowlist() {
        let o = Origins::parse(
            Some("https://app.example.com, https://*.customer.io"),
            false,
        )
        .unwrap();
        assert_eq!(
            o.csp_sources(),
            vec!["https://app.example.com", "https://*.customer.io"]
        );
        assert!(Origins::parse(None, true)
            .unwrap()
            .csp_sources()
            .contains(&"http://localhost:*".to_string()));
        assert!(Origins::parse(None, false)
            .unwrap()
            .csp_sources()
            .is_empty());
    }

    #[test]
    fn exact_and_wildcard_origins() {
        let o = Origins::parse(
            Some("https://app.example.com, https://*.customer.io"),
            false,
        )
        .unwrap();
        assert!(o.allows("https://app.example.com"));
        assert!(o.allows("HTTPS://APP.EXAMPLE.COM"));
        assert!(!o.allows("http://app.example.com"));
        assert!(!o.allows("https://app.example.com.evil.io"));
        assert!(o.allows("https://a.customer.io"));
        assert!(o.allows("https://a.b.customer.io"));
        assert!(!o.allows("https://customer.io"));
        assert!(!o.allows("https://evilcustomer.io"));
        assert!(!o.allows("http://a.customer.io"));
        assert!(!o.allows("https://x@a.customer.io"));
        assert!(!o.allows("http://localhost:8787"));
        assert!(!o.allows("null"));
    }

    #[test]
    fn development_allows_localhost_only() {
        let o = Origins::parse(None, true).unwrap();
        assert!(o.allows("http://localhost:8787"));
        assert!(o.allows("http://127.0.0.1:3000"));
        assert!(o.allows("http://localhost"));
        assert!(!o.allows("http://localhost.evil.com"));
        assert!(!o.allows("http://localhost:80x"));
        assert!(!o.allows("https://example.com"));
    }

    #[test]
    fn rejects_malformed_entries() {
        for bad in [
            "example.com",
            "https://",
            "https://*",
            "https://a.*.com",
            "ftp://x.com",
            "https://x.com/path",
            "https://*.com",
        ] {
            assert!(Origins::parse(Some(bad), false).is_err(), "{bad}");
        }
    }
}
