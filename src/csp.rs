//! The bundled pages' Content-Security-Policy. Pure.
//!
//! Scripts, styles and connections come only from this origin, there are
//! no plugins and no `<base>`, and forms post only here, so even injected
//! markup could not send anything away. Who may frame a page is
//! configuration: the chat page may be embedded by the origins in
//! `ALLOWED_ORIGINS` (and its own), the admin console by nobody. The
//! widget's panel is framed like the chat page and, when new visitors must
//! pass Cloudflare Turnstile, may also load and frame Turnstile's script.

use crate::router::Page;

const BASE: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
     style-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'";

/// Where Turnstile's challenge comes from.
const TURNSTILE: &str = "https://challenges.cloudflare.com";

/// The page's policy; `embedders` is the allowlist as CSP sources;
/// `turnstile`: new visitors must pass Turnstile.
pub fn page_policy(page: Page, embedders: &[String], turnstile: bool) -> String {
    let scripts = if page == Page::Widget && turnstile {
        format!("script-src 'self' {TURNSTILE}; frame-src {TURNSTILE}")
    } else {
        "script-src 'self'".to_string()
    };
    let ancestors = match page {
        Page::Admin => "'none'".to_string(),
        // CSP host sources cannot name an IPv6 literal (`http://[::1]:*`,
        // which development allows): the browser would warn and skip it.
        Page::Chat | Page::Widget => std::iter::once("'self'")
            .chain(
                embedders
                    .iter()
                    .map(String::as_str)
                    .filter(|s| !s.contains('[')),
            )
            .collect::<Vec<_>>()
            .join(" "),
    };
    format!("{BASE}; {scripts}; frame-ancestors {ancestors}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chat_page_names_exactly_the_allowed_embedders() {
        let allowed = vec![
            "https://app.example.com".to_string(),
            "https://*.customer.io".to_string(),
        ];
        let p = page_policy(Page::Chat, &allowed, true);
        assert!(
            p.ends_with("; frame-ancestors 'self' https://app.example.com https://*.customer.io")
        );
        assert!(p.contains("form-action 'self'"));
        assert!(page_policy(Page::Chat, &[], false).ends_with("frame-ancestors 'self'"));
        assert!(p.contains("script-src 'self';"), "{p}");
        // The widget's panel is framed as the chat page is; Turnstile's
        // script and frame are let in only when it is configured.
        let w = page_policy(Page::Widget, &allowed, false);
        assert!(w.ends_with(&p[p.find("frame-ancestors").unwrap()..]), "{w}");
        assert!(!w.contains("challenges.cloudflare.com"));
        let w = page_policy(Page::Widget, &allowed, true);
        assert!(w.contains("script-src 'self' https://challenges.cloudflare.com; frame-src https://challenges.cloudflare.com"));
    }

    #[test]
    fn the_admin_console_is_never_framed() {
        let p = page_policy(Page::Admin, &["https://app.example.com".to_string()], true);
        assert!(!p.contains("challenges"));
        assert!(p.ends_with("frame-ancestors 'none'"));
        assert!(!p.contains("app.example.com"));
    }
}
