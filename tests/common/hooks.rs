//! The webhook receiver stand-in (`tests/support/webhook_receiver.py`),
//! one per process: every request it gets is verified with the
//! `standardwebhooks` package from PyPI. Used by `tests/webhooks.rs` and
//! the benchmark.

use super::root;
use serde_json::{json, Value};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

/// The receiver, started on first use. It exits when its stdin closes,
/// which is when this process ends (statics are never dropped).
pub struct Receiver(OnceLock<(Child, ChildStdin, String)>);

pub static RECEIVER: Receiver = Receiver(OnceLock::new());

impl Receiver {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self
            .0
            .get_or_init(|| {
                use std::io::BufRead;
                let python = root().join("target/pyenv/bin/python");
                let script = root().join("tests/support/webhook_receiver.py");
                let mut child = Command::new(python)
                    .arg(script)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("the Python venv exists (run make bootstrap)");
                let mut line = String::new();
                std::io::BufReader::new(child.stdout.take().unwrap())
                    .read_line(&mut line)
                    .unwrap();
                let port = line
                    .trim()
                    .strip_prefix("listening ")
                    .expect("receiver port")
                    .to_string();
                let stdin = child.stdin.take().unwrap();
                (child, stdin, format!("http://127.0.0.1:{port}"))
            })
            .2
    }
}

/// Sets receiver `name`'s secret and mode (`ok`, `down`, `hold`).
pub async fn set_mode(name: &str, secret: &str, mode: &str) {
    let r = reqwest::Client::new()
        .post(format!("{}/control/{name}", RECEIVER.url()))
        .json(&json!({"secret": secret, "mode": mode}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

/// Every request `name` got so far.
pub async fn received(name: &str) -> Vec<Value> {
    let all: Vec<Value> = reqwest::get(format!("{}/control/received", RECEIVER.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    all.into_iter().filter(|r| r["name"] == name).collect()
}

/// The verified events `name` got for `session`, in arrival order:
/// `{id, type, body, at_ms}`.
pub async fn events(name: &str, session: &str) -> Vec<Value> {
    received(name)
        .await
        .into_iter()
        .filter(|r| r["verified"] == true && r["body"]["data"]["session_id"] == session)
        .map(|r| json!({"id": r["id"], "type": r["body"]["type"], "body": r["body"], "at_ms": r["at_ms"]}))
        .collect()
}
