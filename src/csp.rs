//! The bundled pages' Content-Security-Policy. Pure.
//!
//! Scripts, styles and connections come only from this origin, there are
//! no plugins and no `<base>`, and forms post only here, so even injected
//! markup could not send anything away. Who may frame a page is
//! configuration: the chat page may be embedded by the origins in
//! `ALLOWED_ORIGINS` (and its own), the admin console by nobody.

use crate::router::Page;

const BASE: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'";

/// The page's policy; `embedders` is the allowlist as CSP sources.
pub fn page_policy(page: Page, embedders: &[String]) -> String {
    let ancestors = match page {
        Page::Admin => "'none'".to_string(),
        Page::Chat => std::iter::once("'self'")
            .chain(embedders.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
    };
    format!("{BASE}; frame-ancestors {ancestors}")
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
        let p = page_policy(Page::Chat, &allowed);
        assert!(
            p.ends_with("; frame-ancestors 'self' https://app.example.com https://*.customer.io")
        );
        assert!(p.contains("form-action 'self'"));
        assert!(page_policy(Page::Chat, &[]).ends_with("frame-ancestors 'self'"));
    }

    #[test]
    fn the_admin_console_is_never_framed() {
        let p = page_policy(Page::Admin, &["https://app.example.com".to_string()]);
        assert!(p.ends_with("frame-ancestors 'none'"));
        assert!(!p.contains("app.example.com"));
    }
}
