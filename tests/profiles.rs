//! Assistant profiles end to end: admins manage them (keys sealed, never
//! shown), a session is created with one its creator may choose, an agent
//! switches it mid-session, every reply records the profile it was
//! written under and is written with that profile's provider, model, key,
//! prompt, temperature and output limit (read from the stand-in's own
//! requests), the ledger keeps usage per profile, and a profile's daily
//! budget is shared by all its users.

mod common;

use common::llm::*;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const DEPLOYMENT_KEY: &str = "sk-deployment-key";
const PROFILE_KEY: &str = "sk-ant-profile-key";

async fn put(admin: &User, name: &str, body: Value) -> (u16, Value) {
    admin
        .call(
            Method::PUT,
            &format!("/v1/admin/profiles/{name}"),
            Some(body),
        )
        .await
}

async fn create(u: &User, profile: &str) -> (u16, Value) {
    u.call(
        Method::POST,
        "/v1/sessions",
        Some(json!({"title": "t", "profile": profile})),
    )
    .await
}

/// Sends `text` and gives the stored reply.
async fn ask(ws: &mut Ws, id: &str, text: &str) -> Value {
    send_msg(ws, id, text).await;
    until_reply(ws).await.pop().unwrap()
}

/// The stand-in's latest request for `model`.
async fn last_request(h: &Harness, model: &str) -> Value {
    let all = h.standin_requests(Some(model)).await;
    all.last()
        .cloned()
        .unwrap_or_else(|| panic!("no request for {model}"))
}

#[tokio::test]
async fn profiles_are_chosen_switched_and_recorded_on_every_reply() {
    let model = unique("pm");
    let sales_model = format!("{model}-sales");
    let h = runtime(&model, &[("OPENAI_API_KEY", DEPLOYMENT_KEY)]);
    let admin = User::admin(&h, "ops");

    // Managed by admins: created (201), replaced (200), listed, keys sealed.
    let sales = json!({
        "chain": [{"provider": "anthropic", "model": sales_model, "api_key": PROFILE_KEY}],
        "assistant_name": "Sally", "system_prompt": "You sell.",
        "temperature": 0.4, "max_output_tokens": 99,
    });
    let (status, body) = put(&admin, "sales", json!({"chain": [{"provider": "openai"}]})).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = put(&admin, "sales", sales.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["chain"][0]["api_key_set"], true, "{body}");
    assert!(!body.to_string().contains(PROFILE_KEY), "{body}");
    assert_eq!(
        (body["name"].as_str(), body["temperature"].as_f64()),
        (Some("sales"), Some(0.4))
    );
    let staff = json!({"chain": [{"provider": "openai"}], "roles": ["staff"], "system_prompt": "Staff only."});
    assert_eq!(put(&admin, "staff", staff).await.0, 201);
    let (status, list) = admin.call(Method::GET, "/v1/admin/profiles", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        (names, list["default"].as_str()),
        (vec!["sales", "staff"], Some("default"))
    );
    let (_, one) = admin
        .call(Method::GET, "/v1/admin/profiles/sales", None)
        .await;
    assert_eq!(one["chain"][0]["api_key_set"], true);
    assert!(!list.to_string().contains(PROFILE_KEY) && !one.to_string().contains(PROFILE_KEY));
    let rows = h
        .sql(
            "SELECT spec FROM assistant_profiles WHERE name = 'sales'",
            json!([]),
        )
        .await;
    let spec = rows[0]["spec"].as_str().unwrap();
    assert!(
        spec.contains("\"api_key\"") && !spec.contains(PROFILE_KEY),
        "sealed: {spec}"
    );

    // Bad input is refused with its code; admins only.
    let bad = [
        (
            "default",
            json!({"chain": [{"provider": "openai"}]}),
            "invalid_profile",
        ),
        (
            "hot",
            json!({"chain": [{"provider": "anthropic"}], "temperature": 1.5}),
            "invalid_profile",
        ),
        ("empty", json!({"chain": []}), "invalid_profile"),
        (
            "typo",
            json!({"chain": [{"provider": "openai"}], "tool": []}),
            "invalid_json",
        ),
        (
            // HTTP tools are signed: not without TOOL_SIGNING_SECRET.
            "unsigned",
            json!({"chain": [{"provider": "openai"}], "tools": [{"name": "t", "description": "d",
                "parameters": {"type": "object"}, "url": "https://shop.example/t"}]}),
            "invalid_profile",
        ),
        (
            "vendor",
            json!({"chain": [{"provider": "mistral"}]}),
            "invalid_json",
        ),
    ];
    for (name, body, code) in bad {
        let (status, got) = put(&admin, name, body).await;
        assert_eq!(
            (status, got["error"]["code"].as_str()),
            (400, Some(code)),
            "{name}: {got}"
        );
    }
    let user = User::new(&h, "buyer");
    let (status, _) = put(&user, "mine", json!({"chain": [{"provider": "openai"}]})).await;
    assert_eq!(status, 404, "admin routes do not reveal themselves");
    assert_eq!(
        admin
            .call(Method::GET, "/v1/admin/profiles/nope", None)
            .await
            .0,
        404
    );

    // Chosen at creation: only one the caller may choose, else as unknown.
    for name in ["staff", "nope", "Bad Name"] {
        let (status, body) = create(&user, name).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("unknown_profile")),
            "{name}"
        );
    }
    let staffer = User {
        token: token_with_roles(&user.id, &user.name, &["staff"]),
        ..user.clone()
    };
    let (status, body) = create(&staffer, "staff").await;
    assert_eq!(
        (status, body["profile"].as_str()),
        (201, Some("staff")),
        "{body}"
    );
    let (status, body) = create(&user, "sales").await;
    assert_eq!(
        (status, body["profile"].as_str()),
        (201, Some("sales")),
        "{body}"
    );
    let s = body["id"].as_str().unwrap().to_string();
    let (mut ws, hello, _) = user.join(&s, None).await;
    assert_eq!(hello["profile"], "sales");

    // A reply under `sales`: its vendor, model, key, prompt, temperature.
    let r1 = ask(&mut ws, "q1", "what do you sell?").await;
    assert_eq!(r1["turn"]["profile"], "sales", "{r1}");
    assert_eq!(
        (
            r1["turn"]["provider"].as_str(),
            r1["author"]["name"].as_str()
        ),
        (Some("anthropic"), Some("Sally"))
    );
    let req = last_request(&h, &sales_model).await;
    assert_eq!(req["headers"]["x-api-key"], PROFILE_KEY);
    assert_eq!(
        (
            req["body"]["system"].as_str(),
            req["body"]["max_tokens"].as_u64()
        ),
        (Some("You sell."), Some(99))
    );
    assert_eq!(req["body"]["temperature"], 0.4);

    // Users may not switch; agents may, to a profile that exists.
    send_json(&mut ws, json!({"type": "set_profile", "profile": "staff"})).await;
    let (e, _) = recv_type(&mut ws, "error").await;
    assert_eq!(e["code"], "forbidden", "{e}");
    let (mut agent, _, _) = admin.join(&s, None).await;
    send_json(
        &mut agent,
        json!({"type": "set_profile", "profile": "nope"}),
    )
    .await;
    let (e, _) = recv_type(&mut agent, "error").await;
    assert_eq!(e["code"], "unknown_profile", "{e}");
    send_json(
        &mut agent,
        json!({"type": "set_profile", "profile": "NOPE!"}),
    )
    .await;
    let (e, _) = recv_type(&mut agent, "error").await;
    assert_eq!(e["code"], "invalid_profile", "{e}");
    send_json(
        &mut agent,
        json!({"type": "set_profile", "profile": "default"}),
    )
    .await;
    let (switched, _) = recv_type(&mut ws, "profile").await;
    assert_eq!(
        (switched["profile"].as_str(), switched["by"]["id"].as_str()),
        (Some("default"), Some(admin.id.as_str()))
    );

    // Under the default: the deployment's vendor, key and prompt.
    let r2 = ask(&mut ws, "q2", "and now?").await;
    assert_eq!(
        (
            r2["turn"]["profile"].as_str(),
            r2["turn"]["provider"].as_str()
        ),
        (Some("default"), Some("openai"))
    );
    let req = last_request(&h, &model).await;
    assert_eq!(
        req["headers"]["authorization"],
        format!("Bearer {DEPLOYMENT_KEY}")
    );
    assert!(req["body"].get("temperature").is_none(), "{}", req["body"]);
    assert_ne!(req["body"]["messages"][0]["content"], "Staff only.");

    // Any profile, whoever may create sessions with it: the agent decides.
    send_json(
        &mut agent,
        json!({"type": "set_profile", "profile": "staff"}),
    )
    .await;
    recv_type(&mut ws, "profile").await;
    let r3 = ask(&mut ws, "q3", "staff?").await;
    assert_eq!(r3["turn"]["profile"], "staff");
    let req = last_request(&h, &model).await;
    assert_eq!(
        req["body"]["messages"][0]["content"], "Staff only.",
        "{}",
        req["body"]
    );

    // Recorded everywhere: history, a new socket's hello, the session, D1,
    // and the ledger by profile.
    let (_, page) = user
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    let profiles: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author"]["kind"] == "assistant")
        .map(|m| m["turn"]["profile"].as_str().unwrap())
        .collect();
    assert_eq!(profiles, ["sales", "default", "staff"]);
    let (_, hello, _) = user.join(&s, None).await;
    assert_eq!(hello["profile"], "staff");
    let (_, view) = user
        .call(Method::GET, &format!("/v1/sessions/{s}"), None)
        .await;
    assert_eq!(view["profile"], "staff", "{view}");
    h.replicated(&s).await;
    let shard = h.shard_of(&s).await;
    let rows = h.sql_on(&shard, "SELECT profile FROM messages WHERE session_id = ?1 AND author_kind = 'assistant' ORDER BY seq", json!([s])).await;
    let stored: Vec<&str> = rows
        .iter()
        .map(|r| r["profile"].as_str().unwrap())
        .collect();
    assert_eq!(stored, ["sales", "default", "staff"]);
    let row = h
        .sql_on(
            &shard,
            "SELECT profile FROM sessions WHERE id = ?1",
            json!([s]),
        )
        .await;
    assert_eq!(row[0]["profile"], "staff");
    let (status, report) = admin
        .call(
            Method::GET,
            &format!("/v1/admin/usage?by=profile&user={}", user.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{report}");
    let mut by: Vec<(String, u64)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["profile"].as_str().unwrap().to_string(),
                i["turns"].as_u64().unwrap(),
            )
        })
        .collect();
    by.sort();
    assert_eq!(
        by,
        [
            ("default".into(), 1),
            ("sales".into(), 1),
            ("staff".into(), 1)
        ],
        "{report}"
    );

    // A session whose profile is deleted gets no reply until switched.
    send_json(
        &mut agent,
        json!({"type": "set_profile", "profile": "sales"}),
    )
    .await;
    recv_type(&mut ws, "profile").await;
    let (status, _) = admin
        .call(Method::DELETE, "/v1/admin/profiles/sales", None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        admin
            .call(Method::DELETE, "/v1/admin/profiles/sales", None)
            .await
            .0,
        404
    );
    send_msg(&mut ws, "q4", "hello?").await;
    let (e, _) = recv_type(&mut ws, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["message"].as_str()),
        (
            Some("profile_missing"),
            Some("the assistant is unavailable right now; try again")
        )
    );
}

#[tokio::test]
async fn a_profiles_daily_budget_is_shared_by_all_its_users() {
    let model = unique("pb");
    let h = runtime(&model, &[]);
    let admin = User::admin(&h, "ops");
    // One token a day: the day's first turn runs (a reservation is granted
    // while what is spent is below the budget), the next does not.
    let tight = json!({"chain": [{"provider": "openai"}], "daily_token_budget": 1});
    assert_eq!(put(&admin, "tight", tight).await.0, 201);

    let (a, b) = (User::new(&h, "ann"), User::new(&h, "bob"));
    let (_, body) = create(&a, "tight").await;
    let sa = body["id"].as_str().unwrap().to_string();
    let (mut wa, _, _) = a.join(&sa, None).await;
    let r = ask(&mut wa, "a1", "hi").await;
    assert_eq!(r["turn"]["profile"], "tight");
    let spent =
        r["turn"]["tokens_in"].as_u64().unwrap() + r["turn"]["tokens_out"].as_u64().unwrap();
    h.replicated(&sa).await;
    let day = h
        .sql(
            "SELECT tokens, reserved, reserved_nanos FROM profile_daily WHERE profile = 'tight'",
            json!([]),
        )
        .await;
    assert_eq!(
        day,
        [json!({"tokens": spent, "reserved": 0, "reserved_nanos": 0})],
        "settled in place of the reservation"
    );

    // Another user, another session, the same profile: refused.
    let (_, body) = create(&b, "tight").await;
    let sb = body["id"].as_str().unwrap().to_string();
    let (mut wb, _, _) = b.join(&sb, None).await;
    send_msg(&mut wb, "b1", "me too").await;
    let (e, _) = recv_type(&mut wb, "error").await;
    assert_eq!(e["code"], "quota_exceeded", "{e}");
    // Nothing stays reserved for the refused turn, on the user or profile.
    let day = h
        .sql(
            "SELECT reserved FROM profile_daily WHERE profile = 'tight'",
            json!([]),
        )
        .await;
    assert_eq!(day[0]["reserved"], 0);
    let mine = h
        .sql(
            "SELECT reserved FROM usage_daily WHERE user_id = ?1",
            json!([b.id]),
        )
        .await;
    assert!(mine.iter().all(|r| r["reserved"] == 0), "{mine:?}");
    // The same user under the default profile is answered.
    let sd = b.create_session("plain").await;
    let (mut wd, _, _) = b.join(&sd, None).await;
    let r = ask(&mut wd, "b2", "and here?").await;
    assert_eq!(r["turn"]["profile"], "default");
}
