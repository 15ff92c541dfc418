//! Link previews (`GET /v1/previews?url=`, `src/preview.rs`): the Worker
//! fetches a page from a stand-in site (the stand-in server's `/site/`),
//! bounded by time, size and redirects, caches it in KV, and refuses URLs
//! that would reach inside the network (SSRF).

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

async fn preview(u: &User, url: &str) -> (u16, Value) {
    let q: String = url
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    u.call(Method::GET, &format!("/v1/previews?url={q}"), None)
        .await
}

async fn hits(h: &Harness, path: &str) -> u64 {
    let (_, _, v) = get_json(&h.llm_url, &format!("/_standin/site/hits?path={path}")).await;
    v["hits"].as_u64().unwrap()
}

#[tokio::test]
async fn a_page_is_previewed_within_bounds_cached_and_private_hosts_are_refused() {
    let h = Harness::start(Options {
        vars: vec![
            ("ENVIRONMENT".into(), "development".into()),
            ("LINK_PREVIEWS".into(), "on".into()),
            ("LINK_PREVIEW_ALLOW_ORIGINS".into(), "{llm_url}".into()),
            ("LINK_PREVIEW_TIMEOUT_MS".into(), "1000".into()),
        ],
        ..Default::default()
    });
    let u = User::new(&h, "previewer");
    let site = |p: &str| format!("{}{p}", h.llm_url);

    // Signed-in users only.
    let anonymous = http()
        .get(format!("{}/v1/previews?url=x", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    let (status, p) = preview(&u, &site("/site/article")).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        p,
        json!({
            "url": site("/site/article"),
            "title": "Edge chat & you",
            "description": "How Confab keeps every device in step.",
            "image": site("/site/image.png"),
            "site_name": "Stand-in Times",
        })
    );
    // Cached in KV: the site is not asked again.
    assert_eq!(preview(&u, &site("/site/article")).await.1, p);
    assert_eq!(hits(&h, "/site/article").await, 1);

    // A redirect is followed (and checked); the preview names the page.
    let (status, moved) = preview(&u, &site("/site/moved")).await;
    assert_eq!((status, &moved["title"]), (200, &p["title"]), "{moved}");
    assert_eq!(moved["url"], site("/site/article"));
    let (_, plain) = preview(&u, &site("/site/plain")).await;
    assert_eq!(
        (plain["title"].as_str(), &plain["description"]),
        (Some("Just a title"), &Value::Null)
    );
    // Only the first LINK_PREVIEW_MAX_BYTES are read: a title past them is
    // not seen.
    let (status, huge) = preview(&u, &site("/site/huge")).await;
    assert_eq!((status, &huge["title"]), (200, &Value::Null), "{huge}");

    for (path, status, code) in [
        ("/site/to-private", 400, "url_not_allowed"),
        ("/site/loop", 502, "preview_unavailable"),
        ("/site/image.png", 502, "preview_unavailable"),
        ("/site/gone", 502, "preview_unavailable"),
        ("/site/slow", 504, "preview_timeout"),
    ] {
        let (got, body) = preview(&u, &site(path)).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
    }
    // The redirect to a private address was never followed (no request
    // could reach it), and a failure is not cached.
    assert_eq!(hits(&h, "/site/to-private").await, 1);
    preview(&u, &site("/site/gone")).await;
    assert_eq!(hits(&h, "/site/gone").await, 2);

    // SSRF: only public hosts on default ports; the worker itself, other
    // loopback ports, metadata and private addresses are refused.
    let worker_itself = format!("{}/healthz", h.url);
    for url in [
        worker_itself.as_str(),
        "http://127.0.0.1:1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://2130706433/",
        "https://example.com:8443/",
    ] {
        let (got, body) = preview(&u, url).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (400, Some("url_not_allowed")),
            "{url}: {body}"
        );
    }
    for url in [
        "",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://user:pw@example.com/",
    ] {
        let (got, body) = preview(&u, url).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (400, Some("invalid_url")),
            "{url:?}: {body}"
        );
    }
}

#[tokio::test]
async fn previews_are_off_unless_switched_on() {
    let h = Harness::start(Options::default());
    let u = User::new(&h, "no-previews");
    let (status, body) = preview(&u, "https://example.com/").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}
