//! The route table's own checks (`crate::router`).

use super::*;

/// The endpoint and parameters a request resolves to.
fn ep(method: &str, path: &str) -> Result<(Endpoint, Option<&'static str>), AppError> {
    let path: &'static str = Box::leak(path.to_string().into_boxed_str());
    resolve(method, path).map(|r| (r.endpoint(), r.session.map(SessionId::as_str)))
}

#[test]
fn resolves_known_routes() {
    use Endpoint as E;
    assert_eq!(ep("GET", "/healthz"), Ok((E::Healthz, None)));
    assert_eq!(ep("GET", "/"), Ok((E::Page(Page::Chat), None)));
    assert_eq!(ep("GET", "/index.html"), Ok((E::Page(Page::Chat), None)));
    assert_eq!(ep("GET", "/admin"), Ok((E::Page(Page::Admin), None)));
    assert_eq!(ep("POST", "/admin"), Err(AppError::MethodNotAllowed));
    for m in ["PURGE", "PROPFIND", "MKCOL", "LOCK", "SEARCH"] {
        assert_eq!(
            ep(m, "/v1/admin/sessions"),
            Err(AppError::MethodNotAllowed),
            "{m}"
        );
    }
    assert_eq!(ep("HEAD", "/readyz"), Ok((E::Readyz, None)));
    assert_eq!(ep("POST", "/v1/dev/token"), Ok((E::DevToken, None)));
    assert_eq!(ep("POST", "/v1/sessions"), Ok((E::CreateSession, None)));
    assert_eq!(ep("GET", "/v1/sessions"), Ok((E::ListSessions, None)));
    let s = Some("abc");
    assert_eq!(ep("GET", "/v1/sessions/abc"), Ok((E::GetSession, s)));
    assert_eq!(ep("DELETE", "/v1/sessions/abc"), Ok((E::DeleteSession, s)));
    assert_eq!(ep("GET", "/v1/sessions/abc/messages"), Ok((E::History, s)));
    assert_eq!(ep("GET", "/v1/sessions/abc/members"), Ok((E::Members, s)));
    assert_eq!(
        ep("POST", "/v1/sessions/abc/members"),
        Ok((E::AddMember, s))
    );
    let r = resolve("DELETE", "/v1/sessions/abc/members/u1").unwrap();
    assert_eq!(
        (r.endpoint(), r.session_id(), r.user),
        (E::RemoveMember, s, Some("u1"))
    );
    assert_eq!(
        ep("GET", "/v1/sessions/abc_1/ws"),
        Ok((E::SessionSocket, Some("abc_1")))
    );
}

#[test]
fn resolves_identity_admin_and_preflight_routes() {
    use Endpoint as E;
    assert_eq!(
        ep("POST", "/v1/sessions/abc/tickets"),
        Ok((E::CreateTicket, Some("abc")))
    );
    assert_eq!(
        ep("GET", "/v1/admin/sessions"),
        Ok((E::AdminSessions, None))
    );
    assert_eq!(ep("GET", "/v1/client-config"), Ok((E::ClientConfig, None)));
    assert_eq!(ep("OPTIONS", "/v1/sessions"), Ok((E::Preflight, None)));
    assert_eq!(
        ep("OPTIONS", "/v1/sessions/abc/tickets"),
        Ok((E::Preflight, None))
    );
    assert_eq!(ep("OPTIONS", "/nope"), Err(AppError::NotFound));
    assert_eq!(
        ep("GET", "/v1/sessions/abc/tickets"),
        Err(AppError::MethodNotAllowed)
    );
    assert!(!resolve("GET", "/healthz").unwrap().rate_limited());
    assert!(resolve("POST", "/v1/sessions").unwrap().rate_limited());
    assert_eq!(resolve("OPTIONS", "/").unwrap().access(), Access::Public);
}

#[test]
fn the_table_is_well_formed() {
    let mut seen = std::collections::HashSet::new();
    for r in ROUTES {
        assert!(
            ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&r.method),
            "{r:?}"
        );
        assert!(r.path.starts_with('/'), "{r:?}");
        // One line per method and path: the first would shadow a second.
        assert!(seen.insert((r.method, r.path)), "twice: {r:?}");
        // A route about a session is at a session level or admin only,
        // and one that is not has no session to check a role in.
        let about_session = r.path.contains(SESSION);
        let session_level = matches!(r.access, Access::Member | Access::Owner);
        assert!(!session_level || about_session, "{r:?}");
        assert!(
            !about_session || session_level || matches!(r.access, Access::Admin | Access::Service),
            "{r:?}"
        );
        // Each line resolves to itself.
        let sample = r
            .path
            .replace(SESSION, "s1")
            .replace(USER, "u1")
            .replace(WEBHOOK, "wh_0123456789abcdef01234567")
            .replace(ATTACHMENT, "att_0123456789abcdef0123456789abcdef")
            .replace(TOKEN, "abc.def")
            .replace(PROFILE, "sales-en");
        let got = resolve(r.method, Box::leak(sample.into_boxed_str())).unwrap();
        assert!(std::ptr::eq(got.spec, r), "{r:?}");
    }
    // Names are per endpoint: two lines share one only for one endpoint.
    for a in ROUTES {
        for b in ROUTES {
            assert_eq!(a.name == b.name, a.endpoint == b.endpoint, "{a:?} {b:?}");
        }
    }
}

#[test]
fn logged_paths_keep_only_known_words() {
    assert_eq!(
        redacted_path("/v1/sessions/abc/members/ann@example.com"),
        "/v1/sessions/*/members/*"
    );
    assert_eq!(
        redacted_path("/v1/sessions/s1/members/auth0%7C1/x"),
        "/v1/sessions/*/members/*/*"
    );
    assert_eq!(
        redacted_path("/v1/admin/maintenance/reencrypt"),
        "/v1/admin/maintenance/reencrypt"
    );
    assert_eq!(redacted_path("/"), "/");
    assert_eq!(redacted_path("/secret-token-value"), "/*");
    // A parameter's placeholder is not a word.
    assert_eq!(redacted_path("/{session}"), "/*");
    // A signed URL's token never reaches the log.
    assert_eq!(redacted_path("/v1/files/eyJzZXNz.c2ln"), "/v1/files/*");
    assert_eq!(redacted_path(&"/a".repeat(40)).matches('*').count(), 12);
}

#[test]
fn attachment_ids_and_tokens_are_checked_for_shape() {
    let id = "att_0123456789abcdef0123456789abcdef";
    let link = resolve(
        "GET",
        Box::leak(format!("/v1/sessions/s1/attachments/{id}").into_boxed_str()),
    );
    assert_eq!(link.unwrap().attachment, Some(id));
    for bad in [
        "att_1",
        "att_0123456789ABCDEF0123456789abcdef",
        "0123456789abcdef0123456789abcdef",
    ] {
        let path = Box::leak(format!("/v1/sessions/s1/attachments/{bad}").into_boxed_str());
        assert_eq!(resolve("GET", path), Err(AppError::NotFound), "{bad}");
    }
    assert_eq!(
        resolve("PUT", "/v1/uploads/a-b_c.d").unwrap().token,
        Some("a-b_c.d")
    );
    assert_eq!(resolve("GET", "/v1/files/a%2Fb"), Err(AppError::NotFound));
    let long = Box::leak(format!("/v1/files/{}", "a".repeat(2049)).into_boxed_str());
    assert_eq!(resolve("GET", long), Err(AppError::NotFound));
    assert_eq!(allowed_methods("/v1/uploads/x"), ["PUT", "OPTIONS"]);
}

#[test]
fn a_405_names_the_methods_the_path_answers() {
    assert_eq!(allowed_methods("/healthz"), ["GET", "HEAD", "OPTIONS"]);
    assert_eq!(
        allowed_methods("/v1/sessions"),
        ["GET", "HEAD", "POST", "OPTIONS"]
    );
    assert_eq!(
        allowed_methods("/v1/sessions/abc"),
        ["GET", "HEAD", "DELETE", "OPTIONS"]
    );
    assert_eq!(
        allowed_methods("/v1/sessions/abc/ws"),
        ["GET", "HEAD", "OPTIONS"]
    );
    assert_eq!(allowed_methods("/v1/dev/token"), ["POST", "OPTIONS"]);
    assert!(allowed_methods("/nope").is_empty());
    // Every method Allow names is one the route table takes there.
    for path in [
        "/healthz",
        "/v1/sessions",
        "/v1/sessions/abc",
        "/v1/admin/sessions/abc/takeover",
    ] {
        for m in allowed_methods(path) {
            assert_ne!(
                resolve(m, path).err(),
                Some(AppError::MethodNotAllowed),
                "{m} {path}"
            );
        }
    }
}

#[test]
fn wrong_method_is_405_unknown_path_is_404() {
    assert_eq!(ep("POST", "/healthz"), Err(AppError::MethodNotAllowed));
    assert_eq!(
        ep("PUT", "/v1/sessions/abc"),
        Err(AppError::MethodNotAllowed)
    );
    assert_eq!(ep("GET", "/v1/dev/token"), Err(AppError::MethodNotAllowed));
    assert_eq!(ep("GET", "/nope"), Err(AppError::NotFound));
    assert_eq!(ep("GET", "/healthz/extra"), Err(AppError::NotFound));
    assert_eq!(ep("GET", "/v1/sessions/a%20b/ws"), Err(AppError::NotFound));
    assert_eq!(ep("GET", "/v1/sessions//ws"), Err(AppError::NotFound));
    for bad in ["%20a", "a%0Ab", "bad%zz"] {
        assert_eq!(
            ep("DELETE", &format!("/v1/sessions/abc/members/{bad}")),
            Err(AppError::NotFound),
            "{bad}"
        );
    }
    // Identity-provider subjects, percent-encoded, are user ids.
    let r = resolve("DELETE", "/v1/sessions/abc/members/auth0%7C123").unwrap();
    assert_eq!(r.user, Some("auth0%7C123"));
}

#[test]
fn profile_names_are_checked() {
    let r = resolve("PUT", "/v1/admin/profiles/support_en-2").unwrap();
    assert_eq!(r.profile, Some("support_en-2"));
    assert_eq!(r.name(), "admin.profiles.put");
    for bad in ["Sales", "-x", "a%20b", &"x".repeat(41)] {
        let p = format!("/v1/admin/profiles/{bad}");
        assert_eq!(resolve("GET", &p).unwrap_err(), AppError::NotFound, "{bad}");
    }
    assert_eq!(
        redacted_path("/v1/admin/profiles/sales"),
        "/v1/admin/profiles/*"
    );
}

#[test]
fn webhook_ids_are_checked_and_patch_is_allowed() {
    let id = "wh_0123456789abcdef01234567";
    let path = format!("/v1/admin/webhooks/{id}");
    let r = resolve("PATCH", &path).unwrap();
    assert_eq!(r.webhook, Some(id));
    assert_eq!(r.access(), Access::Admin);
    for bad in [
        "wh_XYZ",
        "0123456789abcdef01234567",
        "wh_0123456789ABCDEF01234567",
    ] {
        let p = format!("/v1/admin/webhooks/{bad}");
        assert_eq!(
            resolve("GET", &p).map(|_| ()),
            Err(AppError::NotFound),
            "{bad}"
        );
    }
    assert_eq!(
        allowed_methods(&path),
        ["GET", "HEAD", "PATCH", "DELETE", "OPTIONS"]
    );
    assert_eq!(
        redacted_path(&format!("{path}/deliveries")),
        "/v1/admin/webhooks/*/deliveries"
    );
}
