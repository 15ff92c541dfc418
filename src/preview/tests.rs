use super::*;

#[test]
fn only_public_hosts_on_default_ports_are_fetched() {
    let ok = |u: &str| check(u, &[]);
    for u in [
        "https://example.com/a?b#c",
        "http://news.example.co.uk",
        "https://example.com:443/x",
        "http://93.184.216.34/",
        "https://[2606:4700::1111]/",
        "https://example.com./",
    ] {
        assert_eq!(ok(u), Ok(()), "{u}");
    }
    for u in [
        "ftp://example.com/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://user:pw@example.com/",
        "https://",
        "https://exa mple.com/",
        "example.com",
    ] {
        assert_eq!(ok(u), Err(Refused::Invalid), "{u}");
    }
    for u in [
        "http://127.0.0.1/",
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f.0.0.1/",
        "http://0177.0.0.1/",
        "http://10.1.2.3/",
        "http://172.20.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://[::1]/",
        "http://[::]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[64:ff9b::a00:1]/",
        "http://[2001:db8::1]/",
        "http://localhost/",
        "http://LOCALHOST./",
        "http://api.localhost/",
        "http://printer.local/",
        "http://db.internal/",
        "http://router.home.arpa/",
        "http://intranet/",
        "https://example.com:8443/",
        "http://example.com:22/",
    ] {
        assert_eq!(ok(u), Err(Refused::NotAllowed), "{u}");
    }
    // The development allow-list exempts exact origins only.
    let allowed = vec!["http://127.0.0.1:8788".to_string()];
    assert_eq!(check("http://127.0.0.1:8788/site/a", &allowed), Ok(()));
    assert_eq!(
        check("http://127.0.0.1:8789/site/a", &allowed),
        Err(Refused::NotAllowed)
    );
    assert_eq!(Refused::NotAllowed.code(), "url_not_allowed");
}

#[test]
fn redirects_resolve_against_the_page() {
    let base = "https://example.com/a/b?q=1";
    assert_eq!(
        resolve(base, "https://other.example/x").as_deref(),
        Some("https://other.example/x")
    );
    assert_eq!(
        resolve(base, "//cdn.example/i.png").as_deref(),
        Some("https://cdn.example/i.png")
    );
    assert_eq!(
        resolve(base, "/root").as_deref(),
        Some("https://example.com/root")
    );
    assert_eq!(
        resolve(base, "c").as_deref(),
        Some("https://example.com/a/c")
    );
    assert_eq!(
        resolve("https://example.com", "c").as_deref(),
        Some("https://example.com/c")
    );
    assert_eq!(resolve(base, "javascript:alert(1)"), None);
    assert_eq!(resolve(base, "c:d").as_deref(), None);
    assert_eq!(
        resolve(base, "c/d:e").as_deref(),
        Some("https://example.com/a/c/d:e")
    );
}

#[test]
fn open_graph_comes_first_then_twitter_then_the_title() {
    let html = r#"<!doctype html><html><head>
      <title>Plain &amp; simple</title>
      <meta name="twitter:title" content="Tweet title">
      <META PROPERTY="og:title" CONTENT="Launch &quot;day&quot; &#8212; notes">
      <meta property='og:description' content='  Two
         lines &lt;b&gt; &#x41;  '>
      <meta property="og:image" content="/img/cover.png?x=1&amp;y=2">
      <meta property="og:site_name" content=Example>
      </head><body><meta property="og:title" content="not read"></body></html>"#;
    let p = parse("https://example.com/post/1", html);
    assert_eq!(p.title.as_deref(), Some("Launch \"day\" — notes"));
    assert_eq!(p.description.as_deref(), Some("Two lines <b> A"));
    assert_eq!(
        p.image.as_deref(),
        Some("https://example.com/img/cover.png?x=1&y=2")
    );
    assert_eq!(p.site_name.as_deref(), Some("Example"));
    assert_eq!(p.url, "https://example.com/post/1");

    let plain = parse(
        "https://example.com/",
        "<html><head><title>\n Just a title </title><meta name=description content=\"Desc\"></head>",
    );
    assert_eq!(plain.title.as_deref(), Some("Just a title"));
    assert_eq!(plain.description.as_deref(), Some("Desc"));
    assert_eq!(plain.image, None);
}

#[test]
fn values_are_capped_and_images_must_be_http() {
    let long = "x".repeat(MAX_TITLE_CHARS + 50);
    let html = format!(
        r#"<meta property="og:title" content="{long}"><meta property="og:image" content="javascript:alert(1)">"#
    );
    let p = parse("https://example.com/", &html);
    assert_eq!(p.title.unwrap().chars().count(), MAX_TITLE_CHARS);
    // Not an http(s) URL: no image.
    assert_eq!(
        parse(
            "https://example.com/",
            r#"<meta property="og:image" content="data:image/png;base64,AAAA">"#
        )
        .image,
        None
    );
    assert_eq!(p.image, None);
    // Broken markup ends the scan, never the worker.
    let p = parse(
        "https://example.com/",
        "<meta property=\"og:title\" content=\"x",
    );
    assert_eq!(p.title, None);
    assert_eq!(
        parse("https://e.com/", "&#xFFFFFFFF; &bogus; <title>a &")
            .title
            .as_deref(),
        Some("a &")
    );
}
