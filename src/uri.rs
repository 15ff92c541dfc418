//! The two things the Worker reads off a request URL: its origin and its
//! query parameters. Pure.
//!
//! The runtime hands the Worker an absolute URL it has already parsed and
//! normalised (lower-case scheme and host, no default port), so reading it
//! needs no URL parser; not linking one (the `url` crate and its IDNA
//! tables) keeps tens of KiB out of the bundle.

/// `scheme://host[:port]` of an absolute URL, as browsers write an
/// `Origin` header; None for anything else.
pub fn origin(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    // Credentials are not part of an origin; the runtime's URLs carry none,
    // but a URL with them must not yield `user@host` as an origin.
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(&url[..scheme.len() + 3 + authority_len])
}

/// The query's `name=value` pairs, decoded as
/// `application/x-www-form-urlencoded` (`+` is a space, `%XX` a byte,
/// invalid UTF-8 replaced), in order. The fragment is not part of it.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The first value of the query parameter `name`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    query_pairs(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (b.get(i + 1).and_then(hex), b.get(i + 2).and_then(hex)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                // A `%` not followed by two hex digits stays as it is.
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn hex(c: &u8) -> Option<u8> {
    (*c as char).to_digit(16).map(|d| d as u8)
}

/// Percent-encodes every byte but RFC 5987's `attr-char`s: a value for
/// `filename*=UTF-8''…`, safe in a header whatever the name holds.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_only_attr_chars() {
        assert_eq!(encode("a b.png"), "a%20b.png");
        assert_eq!(encode("x\"\r\n;y"), "x%22%0D%0A%3By");
        assert_eq!(encode("größe.txt"), "gr%C3%B6%C3%9Fe.txt");
    }

    #[test]
    fn origins_of_the_urls_the_runtime_gives() {
        for (url, want) in [
            (
                "https://chat.example.com/v1/sessions?x=1",
                Some("https://chat.example.com"),
            ),
            ("http://127.0.0.1:8787/", Some("http://127.0.0.1:8787")),
            ("http://localhost:8787", Some("http://localhost:8787")),
            ("https://example.com?q#f", Some("https://example.com")),
            ("https://example.com#f", Some("https://example.com")),
            ("https://user:pw@example.com/", None),
            ("/relative/path", None),
            ("https:///nohost", None),
            ("://nohost", None),
        ] {
            assert_eq!(origin(url), want, "{url}");
        }
    }

    #[test]
    fn query_pairs_decode_as_forms_do() {
        let url = "https://x.test/p?a=1&b=two+words&c=%E2%9C%93&d&e=&a=2&f=%zz&g=%41%4a#frag=no";
        let pairs = query_pairs(url);
        let want: Vec<(String, String)> = [
            ("a", "1"),
            ("b", "two words"),
            ("c", "✓"),
            ("d", ""),
            ("e", ""),
            ("a", "2"),
            ("f", "%zz"),
            ("g", "AJ"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(pairs, want);
        assert_eq!(query_param(url, "a").as_deref(), Some("1"));
        assert_eq!(query_param(url, "frag"), None);
        assert_eq!(query_pairs("https://x.test/p"), vec![]);
        assert_eq!(
            query_param("https://x.test/?k=%FF", "k").as_deref(),
            Some("\u{FFFD}")
        );
        assert_eq!(
            query_param("https://x.test/?%61=b", "a").as_deref(),
            Some("b")
        );
    }
}
