use super::*;
use crate::llm::providers::build;
use crate::llm::Prompt;

fn deployment() -> Assistant {
    let lookup = |k: &str| {
        Some(
            match k {
                "LLM_PROVIDERS" => "openai,anthropic",
                "OPENAI_BASE_URL" => "http://127.0.0.1:9/v1",
                "OPENAI_API_KEY" => "sk-deployment",
                "OPENAI_MODEL" => "gpt-dep",
                "ASSISTANT_NAME" => "Ada",
                _ => return None,
            }
            .to_string(),
        )
    };
    let num = |i: &crate::config::Int| i.default;
    crate::llm::config::from_lookup(&lookup, &num)
        .unwrap()
        .unwrap()
}

/// A deployment with no prices, https-only tool URLs and no signing key.
fn plain() -> Deployment {
    Deployment::default()
}

fn parse(json: &str) -> Profile {
    serde_json::from_str(json).unwrap()
}

#[test]
fn names_are_short_lowercase_words() {
    for ok in ["sales", "support-en", "a", "v2_beta", &"x".repeat(40)] {
        assert!(is_name(ok), "{ok}");
    }
    for bad in ["", "Sales", "-x", "_x", "a b", "é", "a/b", &"x".repeat(41)] {
        assert!(!is_name(bad), "{bad}");
    }
}

#[test]
fn a_profile_says_what_is_wrong_with_it() {
    let ok = parse(r#"{"chain":[{"provider":"openai"}]}"#);
    assert_eq!(ok.check(plain()), Ok(()));
    let cases = [
        (r#"{"chain":[]}"#, "chain must list 1 to 4 providers"),
        (
            r#"{"chain":[{"provider":"openai","base_url":"ftp://x"}]}"#,
            "base_url must be an http(s) URL",
        ),
        (
            r#"{"chain":[{"provider":"workers_ai","api_key":"k"}]}"#,
            "workers_ai takes a model only (it runs through the AI binding)",
        ),
        (
            r#"{"chain":[{"provider":"anthropic"}],"temperature":1.5}"#,
            "anthropic takes a temperature from 0 to 1",
        ),
        (
            r#"{"chain":[{"provider":"openai"}],"max_output_tokens":0}"#,
            "max_output_tokens must be 1 to 100000",
        ),
        (
            r#"{"chain":[{"provider":"openai"}],"daily_cost_budget_usd":1}"#,
            "daily_cost_budget_usd needs LLM_PRICES (a budget in money needs prices)",
        ),
        (
            r#"{"chain":[{"provider":"openai","model":" "}]}"#,
            "model must be 1 to 200 characters",
        ),
    ];
    for (json, why) in cases {
        assert_eq!(parse(json).check(plain()), Err(why.to_string()), "{json}");
    }
    // A budget in money is fine once prices exist.
    assert!(
        parse(r#"{"chain":[{"provider":"openai"}],"daily_cost_budget_usd":1}"#)
            .check(Deployment {
                priced: true,
                ..plain()
            })
            .is_ok()
    );
    // Unknown fields, vendors and temperatures out of range do not parse.
    for bad in [
        r#"{"chain":[{"provider":"openai"}],"tool":[]}"#,
        r#"{"chain":[{"provider":"openai"}],"tools":[{"builtin":"shutdown"}]}"#,
        r#"{"chain":[{"provider":"mistral"}]}"#,
        r#"{"chain":[{"provider":"openai"}],"temperature":2.5}"#,
        r#"{"chain":[{"provider":"openai"}],"temperature":-1}"#,
    ] {
        assert!(serde_json::from_str::<Profile>(bad).is_err(), "{bad}");
    }
}

#[test]
fn roles_decide_who_may_choose_it() {
    let open = parse(r#"{"chain":[{"provider":"openai"}]}"#);
    let staff = parse(r#"{"chain":[{"provider":"openai"}],"roles":["staff","beta"]}"#);
    assert!(open.admits(&[], false));
    assert!(!staff.admits(&[], false));
    assert!(!staff.admits(&["visitor".into()], false));
    assert!(staff.admits(&["beta".into()], false));
    assert!(staff.admits(&[], true));
}

#[test]
fn what_a_profile_leaves_out_is_the_deployments() {
    let base = deployment();
    let p = parse(
        r#"{"chain":[{"provider":"openai"},{"provider":"gemini","model":"g-1","api_key":"sealed"}],
            "system_prompt":"Sell.","temperature":0.35,"max_output_tokens":77,
            "daily_token_budget":5000}"#,
    );
    let a = p.assistant(
        "sales",
        &base,
        vec![None, Some(Secret::new("AIza-profile".into()))],
    );
    assert_eq!(a.profile, "sales");
    assert_eq!(
        (a.name.as_str(), a.system_prompt.as_str()),
        ("Ada", "Sell.")
    );
    assert_eq!(
        a.profile_budget,
        Budget {
            tokens: 5000,
            cost: None
        }
    );
    // The user's own budgets and the timeouts stay the deployment's.
    assert_eq!(a.daily_token_budget, base.daily_token_budget);
    assert_eq!(a.idle_timeout_ms, base.idle_timeout_ms);
    let (o, g) = (&a.chain[0], &a.chain[1]);
    // OpenAI: the deployment's URL, model and key.
    assert_eq!(o.endpoint.base_url, "http://127.0.0.1:9/v1");
    assert_eq!(o.endpoint.model, "gpt-dep");
    assert_eq!(
        o.api_key.as_ref().map(Secret::expose),
        Some("sk-deployment")
    );
    // Gemini, not in the deployment's chain: the vendor's URL, its own key.
    assert_eq!(
        g.endpoint.base_url,
        "https://generativelanguage.googleapis.com"
    );
    assert_eq!(g.api_key.as_ref().map(Secret::expose), Some("AIza-profile"));
    assert!(a.chain.iter().all(|p| p.endpoint.max_output_tokens == 77));
    // The temperature reaches each vendor's request where it belongs.
    let prompt = Prompt::default();
    let body = |p: &Provider| build(&p.endpoint, None, &prompt).body;
    assert_eq!(body(o)["temperature"], 0.35);
    assert_eq!(body(g)["generationConfig"]["temperature"], 0.35);
    assert_eq!(body(g)["generationConfig"]["maxOutputTokens"], 77);
    // Without one, none is sent.
    let plain = parse(r#"{"chain":[{"provider":"anthropic","model":"c-9"}]}"#);
    let a = plain.assistant("plain", &base, vec![None]);
    assert_eq!(a.system_prompt, base.system_prompt);
    assert!(body(&a.chain[0]).get("temperature").is_none());
    assert_eq!(a.chain[0].endpoint.model, "c-9");
    assert!(a.chain[0].api_key.is_none());
}

#[test]
fn stored_names_leave_the_default_out() {
    assert_eq!(stored_name("default"), None);
    assert_eq!(stored_name("sales"), Some("sales".into()));
}

#[test]
fn tools_are_http_or_builtin_and_say_what_is_wrong() {
    let signing = Deployment {
        signs_tools: true,
        ..plain()
    };
    let with = |tools: &str| {
        parse(&format!(
            r#"{{"chain":[{{"provider":"openai"}}],"tools":{tools}}}"#
        ))
    };
    let lookup = r#"{"name":"lookup_order","description":"Finds an order","parameters":{"type":"object"},"url":"https://shop.example/tools/lookup","timeout_ms":5000}"#;
    let p = with(&format!(
        r#"[{lookup},{{"builtin":"escalate_to_human","needs_approval":true}}]"#
    ));
    assert_eq!(p.check(signing), Ok(()));
    // Without a key to sign with, no HTTP tool.
    assert_eq!(
        p.check(plain()),
        Err("HTTP tools need TOOL_SIGNING_SECRET (their requests are signed)".into())
    );
    let cases = [
        (
            r#"[{"builtin":"end_conversation","name":"x"}]"#,
            "the built-in end_conversation takes only needs_approval",
        ),
        (
            r#"[{"name":"x","description":"d","parameters":{"type":"object"}}]"#,
            "an HTTP tool needs name, description, parameters and url (or a tool is a builtin)",
        ),
        (
            r#"[{"name":"bad name","description":"d","parameters":{"type":"object"},"url":"https://a.example/"}]"#,
            "a tool name is 1 to 64 of A-Z a-z 0-9 _ -",
        ),
        (
            r#"[{"name":"x","description":"d","parameters":{"type":"array"},"url":"https://a.example/"}]"#,
            "tool x: parameters must be a JSON Schema of type object",
        ),
        (
            r#"[{"name":"x","description":"d","parameters":{"type":"object"},"url":"http://a.example/"}]"#,
            "tool x: url must use https (WEBHOOK_ALLOW_HTTP is off)",
        ),
        (
            r#"[{"name":"x","description":"d","parameters":{"type":"object"},"url":"https://a.example/","timeout_ms":60000}]"#,
            "timeout_ms must be 1 to 30000",
        ),
        (
            r#"[{"builtin":"end_conversation"},{"builtin":"end_conversation"}]"#,
            "two tools are named end_conversation",
        ),
    ];
    for (tools, why) in cases {
        assert_eq!(with(tools).check(signing), Err(why.to_string()), "{tools}");
    }
    // What the driver and the object get: specs, approval, what a call does.
    let a = p.assistant("shop", &deployment(), vec![None]);
    assert_eq!(a.tools.len(), 2);
    assert_eq!(a.tools[0].spec.name, "lookup_order");
    assert_eq!(
        a.tools[0].kind,
        crate::llm::tools::ToolKind::Http {
            url: "https://shop.example/tools/lookup".into(),
            timeout_ms: 5000
        }
    );
    assert!(!a.tools[0].needs_approval && a.tools[1].needs_approval);
    assert_eq!(a.tools[1].spec.name, "escalate_to_human");
    assert_eq!(a.tools[1].spec.parameters["type"], "object");
}
