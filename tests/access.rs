//! Access control end to end: the owner/member/stranger/admin matrix over
//! every endpoint and the socket, the matrix generated from the route
//! table, origins and CORS, security headers, rate limits, and human
//! takeover over the socket.

mod common;

use common::*;
use confab::router::{Access, Endpoint, ROUTES};
use futures::SinkExt;
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn admin(h: &Harness, prefix: &str) -> User {
    let mut u = User::new(h, prefix);
    u.name = format!("Agent {prefix}");
    u.token = token_with_roles(&u.id, &u.name, &["admin"]);
    u
}

#[tokio::test]
async fn owner_member_stranger_and_admin_matrix() {
    let h = Harness::shared();
    let owner = User::new(h, "m-owner");
    let member = User::new(h, "m-member");
    let stranger = User::new(h, "m-stranger");
    let root = admin(h, "m-admin");
    let extra = User::new(h, "m-extra");
    let s = owner.create_session("matrix").await;
    owner.add_member(&s, &member).await;

    // (method, path, body, [owner, member, stranger, admin])
    let mut cases: Vec<(Method, String, Option<Value>, [u16; 4])> = vec![
        (
            Method::GET,
            format!("/v1/sessions/{s}"),
            None,
            [200, 200, 404, 200],
        ),
        (
            Method::GET,
            format!("/v1/sessions/{s}/messages"),
            None,
            [200, 200, 404, 200],
        ),
        (
            Method::GET,
            format!("/v1/sessions/{s}/members"),
            None,
            [200, 404, 404, 200],
        ),
        (
            Method::POST,
            format!("/v1/sessions/{s}/members"),
            Some(json!({"user_id": extra.id})),
            [201, 404, 404, 201],
        ),
        (
            Method::POST,
            format!("/v1/sessions/{s}/tickets"),
            None,
            [201, 201, 404, 201],
        ),
        (
            Method::GET,
            "/v1/admin/sessions".into(),
            None,
            [404, 404, 404, 200],
        ),
        (
            Method::GET,
            format!("/v1/admin/sessions/{s}"),
            None,
            [404, 404, 404, 200],
        ),
        (
            Method::POST,
            format!("/v1/admin/sessions/{s}/takeover"),
            None,
            [404, 404, 404, 200],
        ),
        (
            Method::POST,
            format!("/v1/admin/sessions/{s}/release"),
            None,
            [404, 404, 404, 200],
        ),
        (
            Method::POST,
            "/v1/admin/maintenance/reencrypt?batch=1".into(),
            None,
            [404, 404, 404, 200],
        ),
        (Method::GET, "/metrics".into(), None, [404, 404, 404, 200]),
    ];
    // Removing a member: each caller removes `extra`, re-added between calls.
    cases.push((
        Method::DELETE,
        format!("/v1/sessions/{s}/members/{}", extra.id),
        None,
        [204, 404, 404, 204],
    ));
    let callers = [&owner, &member, &stranger, &root];
    for (method, path, body, expected) in &cases {
        for (who, want) in callers.iter().zip(expected) {
            if *method == Method::DELETE {
                owner.add_member(&s, &extra).await;
            }
            let (status, resp) = who.call(method.clone(), path, body.clone()).await;
            assert_eq!(status, *want, "{method} {path} as {}: {resp}", who.id);
            if status == 404 {
                assert_eq!(resp["error"]["code"], "not_found", "{method} {path}");
            }
        }
    }

    // The socket, with a bearer header (tickets are covered above).
    for (who, want) in callers.iter().zip([101u16, 101, 404, 101]) {
        if want == 101 {
            let mut ws = connect_bearer(&who.plain_ws_url(&s, None), &who.token).await;
            let hello = recv(&mut ws).await;
            assert_eq!(hello["you"]["id"], who.id.as_str());
        } else {
            let (status, _) =
                refused_upgrade_as(&who.plain_ws_url(&s, None), Some(&who.token)).await;
            assert_eq!(status, want, "socket as {}", who.id);
        }
    }

    // Erasing: members and strangers cannot; an admin can erase any session.
    for who in [&member, &stranger] {
        let (status, _) = who
            .call(Method::DELETE, &format!("/v1/sessions/{s}"), None)
            .await;
        assert_eq!(status, 404);
    }
    let (status, _) = root
        .call(Method::DELETE, &format!("/v1/sessions/{s}"), None)
        .await;
    assert_eq!(status, 204);
    let s2 = owner.create_session("owner erases").await;
    let (status, _) = owner
        .call(Method::DELETE, &format!("/v1/sessions/{s2}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = owner
        .call(Method::GET, &format!("/v1/sessions/{s}"), None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn origins_cors_and_security_headers() {
    let h = Harness::start(Options {
        vars: vec![
            (
                "ALLOWED_ORIGINS".into(),
                "https://app.example.com, https://*.customer.io".into(),
            ),
            ("HSTS_MAX_AGE".into(), "600".into()),
        ],
        ..Options::default()
    });
    let u = User::new(&h, "cors");
    let s = u.create_session("cors").await;

    // Preflight from an allowed (wildcard) origin.
    let res = http()
        .request(Method::OPTIONS, format!("{}/v1/sessions", h.url))
        .header("origin", "https://shop.customer.io")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    let hv = |r: &reqwest::Response, k: &str| {
        r.headers().get(k).map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(
        hv(&res, "access-control-allow-origin").as_deref(),
        Some("https://shop.customer.io")
    );
    // Exactly the lists docs/api.md gives.
    assert_eq!(
        hv(&res, "access-control-allow-methods").as_deref(),
        Some("GET, HEAD, POST, PUT, PATCH, DELETE")
    );
    assert_eq!(
        hv(&res, "access-control-allow-headers").as_deref(),
        Some("authorization, content-type")
    );
    assert_eq!(hv(&res, "access-control-max-age").as_deref(), Some("600"));

    // Preflight and requests from an origin not on the list.
    let res = http()
        .request(Method::OPTIONS, format!("{}/v1/sessions", h.url))
        .header("origin", "https://customer.io.evil.net")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    assert!(hv(&res, "access-control-allow-origin").is_none());
    for origin in ["https://evil.example", "http://app.example.com", "null"] {
        let res = u
            .req(Method::GET, "/v1/sessions")
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 403, "{origin}");
        assert!(hv(&res, "access-control-allow-origin").is_none());
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "origin_not_allowed");
    }

    // Allowed origins get CORS headers on real responses, errors included.
    let res = u
        .req(Method::GET, "/v1/sessions")
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        hv(&res, "access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(hv(&res, "vary").as_deref(), Some("Origin"));
    assert_eq!(
        hv(&res, "access-control-expose-headers").as_deref(),
        Some("x-request-id, retry-after")
    );

    // Security headers on every response, errors included.
    for (path, status) in [
        ("/v1/sessions", 200),
        ("/v1/sessions/nope", 404),
        ("/healthz", 200),
    ] {
        let res = u.req(Method::GET, path).send().await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{path}");
        assert_eq!(
            hv(&res, "x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(hv(&res, "referrer-policy").as_deref(), Some("no-referrer"));
        assert_eq!(
            hv(&res, "content-security-policy").as_deref(),
            Some("frame-ancestors 'none'")
        );
        assert_eq!(
            hv(&res, "strict-transport-security").as_deref(),
            Some("max-age=600; includeSubDomains")
        );
    }

    // WebSocket upgrades check the origin too.
    let (status, body) = refused_upgrade_with(
        &u.ws_url(&s, None).await,
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("origin_not_allowed"))
    );
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = u.ws_url(&s, None).await.into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "https://a.b.customer.io".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("allowed origin upgrades");
    assert_eq!(recv(&mut ws).await["type"], "hello");
}

#[tokio::test]
async fn per_ip_http_limit_answers_429_with_retry_after() {
    let h = Harness::start(Options {
        ratelimits: vec![("HTTP_RATE_LIMITER".into(), 5)],
        ..Options::default()
    });
    let u = User::new(&h, "ip");
    let get = |ip: &'static str| {
        let u = u.clone();
        async move {
            let res = u
                .req(Method::GET, "/v1/sessions")
                .header("cf-connecting-ip", ip)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let retry = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (
                status,
                retry,
                res.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(get("203.0.113.7").await);
    }
    let ok = statuses.iter().filter(|s| s.0 == 200).count();
    assert_eq!(ok, 5, "{statuses:?}");
    let (status, retry, body) = statuses.last().unwrap();
    assert_eq!(*status, 429);
    assert_eq!(retry.as_deref(), Some("60"));
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another address is unaffected, and probes are never limited.
    assert_eq!(get("203.0.113.8").await.0, 200);
    for _ in 0..10 {
        let res = http()
            .get(format!("{}/healthz", h.url))
            .header("cf-connecting-ip", "203.0.113.7")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
    }
}

#[tokio::test]
async fn per_user_socket_limit_refuses_the_extra_socket_with_4029() {
    let h = Harness::start(Options {
        vars: vec![("MAX_SOCKETS_PER_USER".into(), "2".into())],
        ..Options::default()
    });
    let owner = User::new(&h, "sock");
    let other = User::new(&h, "sock-other");
    let s = owner.create_session("sockets").await;
    owner.add_member(&s, &other).await;
    let (mut a, _, _) = owner.join(&s, None).await;
    let (_b, _, _) = owner.join(&s, None).await;
    let mut c = connect(&owner.ws_url(&s, None).await).await;
    let f = recv(&mut c).await;
    assert_eq!(
        (f["type"].as_str(), f["code"].as_str()),
        (Some("error"), Some("too_many_sockets")),
        "{f}"
    );
    assert_eq!(close_code(&mut c).await, Some(4029));
    // Others are not affected; closing one socket makes room again.
    let (_o, _, _) = other.join(&s, None).await;
    a.close(None).await.unwrap();
    // The server completes the closing handshake with the same code.
    assert_eq!(close_code(&mut a).await, Some(1000));
    // The slot frees once the object has processed the close: retry until
    // a deadline instead of guessing how long that takes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let _d = loop {
        let mut ws = connect(&owner.ws_url(&s, None).await).await;
        let f = recv(&mut ws).await;
        if f["type"] == "hello" {
            break ws;
        }
        assert_eq!(f["code"], "too_many_sockets", "{f}");
        assert!(
            std::time::Instant::now() < deadline,
            "the closed socket's slot never freed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
}

#[tokio::test]
async fn an_agent_takes_over_and_releases_over_the_socket() {
    let h = Harness::shared();
    let owner = User::new(h, "to-owner");
    let agent = admin(h, "to-agent");
    let s = owner.create_session("takeover").await;
    let (mut user_ws, _, _) = owner.join(&s, None).await;
    let (mut agent_ws, _, _) = agent.join(&s, None).await;

    // Users cannot take over.
    send_text(&mut user_ws, r#"{"type":"takeover"}"#).await;
    let (f, _) = recv_type(&mut user_ws, "error").await;
    assert_eq!(f["code"], "forbidden");

    send_text(&mut agent_ws, r#"{"type":"takeover"}"#).await;
    for ws in [&mut user_ws, &mut agent_ws] {
        let (f, _) = recv_type(ws, "mode").await;
        assert_eq!(f["mode"], "human");
        assert_eq!(
            f["by"]["name"],
            agent.name.as_str(),
            "named by the JWT's name claim"
        );
    }
    // The agent's messages carry author kind `agent` and the agent's name.
    send_msg(&mut agent_ws, "a1", "Hi, I'm a person").await;
    let (m, _) = recv_type(&mut user_ws, "message").await;
    assert_eq!(m["author"]["kind"], "agent", "{m}");
    assert_eq!(m["author"]["name"], agent.name.as_str());
    // The admin listing reads D1's replicated copy.
    h.replicated(&s).await;
    let (status, body) = agent
        .call(
            Method::GET,
            &format!("/v1/admin/sessions?human_assisted=true&owner={}", owner.id),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["sessions"][0]["id"], s.as_str());
    assert_eq!(body["sessions"][0]["mode"], "human");

    send_text(&mut agent_ws, r#"{"type":"release"}"#).await;
    let (f, _) = recv_type(&mut user_ws, "mode").await;
    assert_eq!(f["mode"], "assistant");
    let (_, session) = owner
        .call(Method::GET, &format!("/v1/sessions/{s}"), None)
        .await;
    assert_eq!(session["mode"], "assistant");
    let _ = agent_ws.send(Message::Close(None)).await;
}

// The authorization matrix, generated from the route table: every line of
// `confab::router::ROUTES`, called by each kind of caller, must admit
// exactly the callers its access level names. A route added to the table
// is tested here without a line of this test changing, and it cannot be
// added without an access level. (The matrix above pins exact statuses for
// hand-picked cases; this one checks the table's levels, all of them.)
//
// Denied means the level's answer: 401 `token_missing` without a token,
// 404 `not_found` to a signed-in caller the level leaves out (a session or
// an admin route never reveals itself). Admitted means anything else below
// 500: the handler ran (with an empty body a POST may well answer 400).

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Anonymous,
    Stranger,
    Member,
    Owner,
    Admin,
    /// A token with the service role (`/v1/service/*`).
    Service,
}

const EVERYONE: [Who; 6] = [
    Who::Anonymous,
    Who::Stranger,
    Who::Member,
    Who::Owner,
    Who::Admin,
    Who::Service,
];

/// Whether `level` lets `who` through, on a production deployment (the
/// shared runtime), where development routes do not exist.
fn admitted(level: Access, who: Who) -> bool {
    use Who::*;
    match level {
        Access::Public => true,
        // Only a URL the deployment signed opens these; the table's walk
        // has none (tests/attachments.rs has real ones).
        Access::Dev | Access::Signed => false,
        Access::User => who != Anonymous,
        Access::Member => matches!(who, Member | Owner | Admin),
        Access::Owner => matches!(who, Owner | Admin),
        Access::Metrics | Access::Admin => who == Admin,
        Access::Service => who == Service,
    }
}

/// The status and error code of a request as `token`'s holder (None:
/// anonymous). The socket route is asked for an upgrade, which is the only
/// request it answers past its 426.
async fn call(
    h: &Harness,
    method: &str,
    path: &str,
    token: Option<&str>,
    socket: bool,
) -> (u16, Value) {
    let url = format!("{}{path}", h.url);
    if socket {
        let mut headers = vec![
            ("upgrade", "websocket".to_string()),
            ("connection", "upgrade".to_string()),
            ("sec-websocket-version", "13".to_string()),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==".to_string()),
        ];
        if let Some(t) = token {
            headers.push(("authorization", format!("Bearer {t}")));
        }
        let mut req = http().get(url);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        // A 101's body is the socket: do not wait for it.
        if status == 101 {
            return (status, Value::Null);
        }
        return (status, res.json().await.unwrap_or(Value::Null));
    }
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http().request(method.clone(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if method == Method::POST {
        // The body adding a member needs. For the session levels the
        // Worker reads a request's own shape before the session object
        // decides the role: a malformed body is a 400 to anyone, whatever
        // the session (so it reveals nothing), and would hide the level's
        // answer here. Routes that take no body ignore it.
        // (An upload slot's body, for the one route that takes it.)
        // (A report's, of the message the walk posted as seq 1.)
        req = req.json(&if path.ends_with("/attachments") {
            serde_json::json!({"name": "r.txt", "type": "text/plain", "size": 5})
        } else if path.ends_with("/reports") {
            serde_json::json!({"seq": 1, "reason": "spam"})
        } else {
            serde_json::json!({ "user_id": "r-added" })
        });
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_route_admits_exactly_the_callers_its_access_level_names() {
    let h = Harness::shared();
    let member = User::new(h, "r-member");
    let stranger = User::new(h, "r-stranger");
    let mut admin = User::new(h, "r-admin");
    admin.token = token_with_roles(&admin.id, "Agent", &["admin"]);
    let service = token_with_roles("r-backend", "Backend", &["service"]);
    let mut checked = 0;
    for route in ROUTES {
        // An owner per route keeps each under the daily session cap.
        let owner = User::new(h, "r-owner");
        let token = |who: Who| match who {
            Who::Anonymous => None,
            Who::Stranger => Some(stranger.token.as_str()),
            Who::Member => Some(member.token.as_str()),
            Who::Owner => Some(owner.token.as_str()),
            Who::Admin => Some(admin.token.as_str()),
            Who::Service => Some(service.as_str()),
        };
        for who in EVERYONE {
            let mut path = route.path.to_string();
            let mut hook: Option<String> = None;
            if path.contains("{session}") {
                // A fresh session each time: some calls erase it or remove
                // the member, and the next caller must find it as it was.
                let session = owner.create_session("routes").await;
                owner.add_member(&session, &member).await;
                path = path
                    .replace("{session}", &session)
                    .replace("{user}", &member.id);
                if path.ends_with("/reports") {
                    // Something to report: a message nobody here wrote.
                    let r = http()
                        .post(format!("{}/v1/service/sessions/{session}/messages", h.url))
                        .bearer_auth(&service)
                        .json(&json!({"client_id": "r-1", "text": "report me", "as": "system"}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 201);
                }
                if path.contains("/sanctions/") {
                    // Something to lift.
                    let (status, e) = admin
                        .call(
                            Method::POST,
                            &format!("/v1/admin/sessions/{session}/sanctions"),
                            Some(json!({"user_id": member.id, "kind": "mute", "reason": "spam"})),
                        )
                        .await;
                    assert_eq!(status, 201, "{e}");
                }
            }
            if path.contains("{attachment}") {
                let session = path.split('/').nth(3).unwrap().to_string();
                let (status, slot) = owner
                    .call(
                        Method::POST,
                        &format!("/v1/sessions/{session}/attachments"),
                        Some(json!({"name": "r.txt", "type": "text/plain", "size": 5})),
                    )
                    .await;
                assert_eq!(status, 201, "{slot}");
                let url = format!("{}{}", h.url, slot["upload_url"].as_str().unwrap());
                let res = http().put(url).body("hello").send().await.unwrap();
                let view: Value = res.json().await.unwrap();
                path = path.replace("{attachment}", view["id"].as_str().unwrap());
            }
            if path == "/v1/admin/sanctions/{user}" {
                // Something to lift (for the user the path names).
                let (status, e) = admin
                    .call(
                        Method::POST,
                        "/v1/admin/sanctions",
                        Some(json!({"user_id": "{user}", "kind": "mute", "reason": "spam"})),
                    )
                    .await;
                assert_eq!(status, 201, "{e}");
            }
            path = path.replace("{token}", "not.signed");
            if path.contains("{webhook}") {
                // A fresh endpoint each time (one call deletes it),
                // disabled so that no event is sent anywhere.
                let (status, e) = admin
                    .call(
                        Method::POST,
                        "/v1/admin/webhooks",
                        Some(json!({"url": "https://hooks.example.com/c", "enabled": false})),
                    )
                    .await;
                assert_eq!(status, 201, "{e}");
                hook = e["id"].as_str().map(String::from);
                path = path.replace("{webhook}", hook.as_deref().unwrap());
            }
            if path.contains("{profile}") {
                // Made again each time (one call deletes it).
                let profile = json!({"chain": [{"provider": "openai"}]});
                let (status, e) = admin
                    .call(Method::PUT, "/v1/admin/profiles/checked", Some(profile))
                    .await;
                assert!([200, 201].contains(&status), "{e}");
                path = path.replace("{profile}", "checked");
            }
            let socket = matches!(
                route.endpoint,
                Endpoint::SessionSocket | Endpoint::InboxSocket
            );
            let (status, body) = call(h, route.method, &path, token(who), socket).await;
            if let Some(id) = hook {
                // Gone already if this call deleted it.
                let _ = admin
                    .call(Method::DELETE, &format!("/v1/admin/webhooks/{id}"), None)
                    .await;
            }
            let what = format!(
                "{} {} ({:?}) as {who:?}: {status} {body}",
                route.method, route.path, route.access
            );
            if admitted(route.access, who) {
                assert!(![401, 403, 404].contains(&status), "refused {what}");
                assert!(status < 500, "failed {what}");
            } else if who == Who::Anonymous
                && ![Access::Dev, Access::Signed].contains(&route.access)
            {
                assert_eq!(status, 401, "{what}");
                assert_eq!(body["error"]["code"], "token_missing", "{what}");
            } else {
                assert_eq!(status, 404, "{what}");
                assert_eq!(body["error"]["code"], "not_found", "{what}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len() * EVERYONE.len());
}
