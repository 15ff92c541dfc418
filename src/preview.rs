//! Link previews (pure): which URLs the Worker may fetch for a preview, and
//! what it reads from the page (`GET /v1/previews?url=`, `api/previews.rs`).
//!
//! **Which URLs.** Only `http` and `https`, without credentials, on the
//! scheme's default port, to a host that is a public name or a public IP
//! address. Refused: loopback, private, link-local, shared (CGNAT),
//! multicast and reserved IPv4 and IPv6 ranges (an IPv6 address that
//! embeds an IPv4 one is judged by it); IPv4 in forms other than four
//! decimal parts (`2130706433`, `0x7f.1`, `0177.0.0.1`), which resolvers
//! read as addresses; single-label names (`intranet`) and `localhost`,
//! `.localhost`, `.local`, `.internal`, `.home.arpa`. Each redirect is
//! checked the same way before it is followed.
//!
//! What this cannot see: a public name whose DNS answer is a private
//! address. The Worker cannot resolve names itself; on Cloudflare, a
//! Worker's subrequests leave from Cloudflare's network, which does not
//! route to the deployment's private networks.
//!
//! **What is read.** The `<head>` tags products use for shared links: Open
//! Graph (`og:title`, `og:description`, `og:image`, `og:site_name`), then
//! Twitter cards, then `<title>` and `<meta name="description">`; entities
//! decoded, white space collapsed, each value capped.

use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest URL taken, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 3;
/// Caps on what a preview keeps, in characters.
pub const MAX_TITLE_CHARS: usize = 300;
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// Why a URL is not fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not an absolute http(s) URL without credentials, or too long.
    Invalid,
    /// An address or name the Worker must not reach, or another port.
    NotAllowed,
}

impl Refused {
    pub fn code(self) -> &'static str {
        match self {
            Refused::Invalid => "invalid_url",
            Refused::NotAllowed => "url_not_allowed",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refused::Invalid => "url must be an absolute http(s) URL without credentials, at most 2048 bytes",
            Refused::NotAllowed => "url must name a public host on the default port; private, loopback and link-local addresses are refused",
        }
    }
}

/// A URL split for checking.
struct Parts<'a> {
    scheme: &'a str,
    host: &'a str,
    port: Option<&'a str>,
}

fn parts(url: &str) -> Result<Parts<'_>, Refused> {
    if url.len() > MAX_URL_BYTES || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Refused::Invalid);
    }
    let (scheme, rest) = url.split_once("://").ok_or(Refused::Invalid)?;
    if !matches!(scheme, "http" | "https") {
        return Err(Refused::Invalid);
    }
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.is_empty() || authority.contains('@') {
        return Err(Refused::Invalid);
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or(Refused::Invalid)?;
            match after {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':').ok_or(Refused::Invalid)?)),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(Refused::Invalid);
    }
    Ok(Parts { scheme, host, port })
}

/// Checks that `url` may be fetched for a preview. `allowed` lists
/// origins (`http://127.0.0.1:8788`) exempt from the address rules: a
/// local stand-in site in development, never set in production.
pub fn check(url: &str, allowed: &[String]) -> Result<(), Refused> {
    let p = parts(url)?;
    let origin = crate::uri::origin(url).unwrap_or_default();
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return Ok(());
    }
    let default_port = if p.scheme == "https" { "443" } else { "80" };
    if p.port.is_some_and(|port| port != default_port) || !public_host(p.host) {
        return Err(Refused::NotAllowed);
    }
    Ok(())
}

/// Whether an http(s) URL names a public host (the address rules of
/// [`check`], without its port rule): webhook endpoints are held to it too.
pub fn names_public_host(url: &str) -> bool {
    parts(url).is_ok_and(|p| public_host(p.host))
}

fn public_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        return public_v6(v6);
    }
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return public_v4(v4);
    }
    // A name. Its last label must look like a top-level domain: other
    // numeric forms are addresses to resolvers.
    let last = host.rsplit('.').next().unwrap_or_default();
    !(["localhost", "local", "internal", "arpa"].contains(&last)
        || !host.contains('.')
        || !last.starts_with(|c: char| c.is_ascii_alphabetic()))
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || a >= 224
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113))
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible and NAT64 (64:ff9b::)
    // addresses reach an IPv4 host: judge that one.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..6] == [0; 6] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return public_v4(v4);
    }
    // Global unicast is 2000::/3; of it, documentation (2001:db8::/32) is
    // not a host anyone runs.
    (s[0] & 0xe000) == 0x2000 && !(s[0] == 0x2001 && s[1] == 0x0db8)
}

/// Where a redirect's `Location` points, from the URL that sent it: an
/// absolute URL, a scheme-relative one or a path. None for anything else.
pub fn resolve(base: &str, location: &str) -> Option<String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Some(location.to_string());
    }
    // Another scheme (`data:`, `javascript:`, …): nothing to fetch.
    let scheme_end = location.find(':').unwrap_or(usize::MAX);
    if scheme_end < location.find(['/', '?', '#']).unwrap_or(location.len()) {
        return None;
    }
    let origin = crate::uri::origin(base)?;
    if let Some(rest) = location.strip_prefix("//") {
        let scheme = &origin[..origin.find("://")?];
        return Some(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Some(format!("{origin}{location}"));
    }
    // A relative path: beside the base's last segment.
    let path_start = origin.len();
    let path = &base[path_start..];
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let dir = if dir.is_empty() { "/" } else { dir };
    Some(format!("{origin}{dir}{location}"))
}

/// What a page says about itself.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Preview {
    /// The page the preview describes (after redirects).
    pub url: String,
    pub title: Option<String>,
    pub description: Option<String>,
    /// An absolute http(s) URL of the page's image, if it names one.
    pub image: Option<String>,
    pub site_name: Option<String>,
}

/// Reads the preview of `html`, the page at `url`.
pub fn parse(url: &str, html: &str) -> Preview {
    let mut meta: Vec<(String, String)> = Vec::new();
    let mut title: Option<String> = None;
    let lower = html.to_ascii_lowercase();
    let mut at = 0;
    while let Some(i) = lower[at..].find('<') {
        let start = at + i;
        let Some(len) = lower[start..].find('>') else {
            break;
        };
        let tag = &html[start + 1..start + len];
        let name_end = tag
            .find(|c: char| c.is_ascii_whitespace() || c == '/')
            .unwrap_or(tag.len());
        let name = tag[..name_end].to_ascii_lowercase();
        at = start + len + 1;
        match name.as_str() {
            "meta" => {
                let attrs = attributes(&tag[name_end..]);
                let get = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
                let key = get("property").or_else(|| get("name"));
                if let (Some(k), Some(v)) = (key, get("content")) {
                    meta.push((k.to_ascii_lowercase(), v));
                }
            }
            "title" if title.is_none() => {
                let end = lower[at..].find("</title").map_or(lower.len(), |e| at + e);
                title = Some(html[at..end].to_string());
                at = end;
            }
            // Nothing after the head describes the page.
            "body" | "/head" => break,
            _ => {}
        }
    }
    let first = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| meta.iter().find(|(m, _)| m == k).map(|(_, v)| v.clone()))
    };
    let title = first(&["og:title", "twitter:title"]).or(title);
    let description = first(&["og:description", "twitter:description", "description"]);
    let image = first(&["og:image", "og:image:url", "twitter:image"])
        .map(|i| decode(&i))
        .and_then(|i| resolve(url, i.trim()))
        .filter(|i| i.len() <= MAX_URL_BYTES && parts(i).is_ok());
    Preview {
        url: url.to_string(),
        title: title.and_then(|t| clean(&t, MAX_TITLE_CHARS)),
        description: description.and_then(|d| clean(&d, MAX_DESCRIPTION_CHARS)),
        image,
        site_name: first(&["og:site_name"]).and_then(|s| clean(&s, MAX_TITLE_CHARS)),
    }
}

/// A tag's `name="value"` attributes (names lower-cased; quotes `"` or
/// `'`, or none).
fn attributes(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if rest.is_empty() {
            return out;
        }
        let name_end = rest
            .find(|c: char| c == '=' || c.is_ascii_whitespace() || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let Some(after) = rest.strip_prefix('=') else {
            out.push((name, String::new()));
            continue;
        };
        let after = after.trim_start();
        let (value, next) = match after.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let body = &after[1..];
                let end = body.find(q).unwrap_or(body.len());
                (&body[..end], body.get(end + 1..).unwrap_or(""))
            }
            _ => {
                let end = after
                    .find(|c: char| c.is_ascii_whitespace())
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        out.push((name, value.to_string()));
        rest = next;
    }
}

/// Entities decoded, white space collapsed, at most `max` characters;
/// None when nothing is left.
fn clean(s: &str, max: usize) -> Option<String> {
    let text = decode(s);
    let words: Vec<&str> = text.split_whitespace().collect();
    let joined = words.join(" ");
    let capped: String = joined
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect();
    (!capped.is_empty()).then_some(capped)
}

/// The HTML entities pages use in these tags: the five named ones, `nbsp`
/// and numeric references. Anything else stays as written.
fn decode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest[..rest.len().min(12)].find(';');
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => ' ',
                _ => {
                    let n = match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => name.strip_prefix('#')?.parse().ok()?,
                    };
                    char::from_u32(n)?
                }
            };
            Some((c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
