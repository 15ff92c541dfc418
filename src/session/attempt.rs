//! The I/O of a reply (`crate::llm::driver::ReplyIo`): fetch (or the `AI`
//! binding), the clock, and the session's sockets. The policy (retries,
//! fallback, deadlines, stops) is the driver's; this only carries it out.

use super::running::Running;
use crate::config::LogLevel;
use crate::llm::config::Provider;
use crate::llm::driver::{Read, Refused, ReplyIo};
use crate::llm::providers::Request as LlmRequest;
use crate::llm::Kind;
use crate::runtime::{log, timeout};
use crate::store::now_ms;
use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;
use worker::{AbortController, ByteStream, Delay, Fetch, Headers, Method, Request, RequestInit};

/// The fetch request for an HTTP provider.
fn http_request(req: &LlmRequest, trace: Option<String>) -> Option<Request> {
    let headers = Headers::new();
    for (k, v) in &req.headers {
        headers.set(k, v).ok()?;
    }
    // The attempt's span of the turn's trace (W3C Trace Context).
    if let Some(t) = trace {
        headers.set("traceparent", &t).ok()?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(req.body.to_string().into()));
    Request::new_with_init(&req.url, &init).ok()
}

impl ReplyIo for Running<'_> {
    type Body = ByteStream;

    fn now_ms(&self) -> i64 {
        now_ms()
    }

    fn random_unit(&self) -> f64 {
        crate::ids::random_unit()
    }

    async fn sleep(&self, ms: u64) {
        Delay::from(Duration::from_millis(ms)).await
    }

    async fn open(
        &self,
        p: &Provider,
        req: &LlmRequest,
        wait_ms: u64,
    ) -> Result<ByteStream, Refused> {
        if p.endpoint.kind == Kind::WorkersAi {
            return self.run_workers_ai(p, &req.body, wait_ms).await;
        }
        let controller = AbortController::default();
        let signal = controller.signal();
        // `stop` aborts through the controller; a reply already stopped
        // does not send the request at all.
        if self.core.with_reply(|t| t.arm(controller)) != Some(true) {
            return Err(Refused::Unreachable);
        }
        let request = http_request(req, self.core.turn_span()).ok_or(Refused::Misconfigured)?;
        let mut response =
            match timeout(wait_ms, Fetch::Request(request).send_with_signal(&signal)).await {
                None => return Err(Refused::TimedOut),
                Some(Err(_)) => return Err(Refused::Unreachable),
                Some(Ok(r)) => r,
            };
        let status = response.status_code();
        if status != 200 {
            return Err(Refused::Status {
                status,
                retry_after: response.headers().get("retry-after").ok().flatten(),
            });
        }
        response.stream().map_err(|_| Refused::Unreachable)
    }

    async fn read(&self, body: &mut ByteStream, wait_ms: u64) -> Read {
        match timeout(wait_ms, body.next()).await {
            None => Read::TimedOut,
            Some(None) => Read::End,
            Some(Some(Err(_))) => Read::Broken,
            Some(Some(Ok(b))) => Read::Bytes(b),
        }
    }

    fn relay(&self, text: &str) {
        self.core.relay(text)
    }

    fn stopped(&self) -> bool {
        self.core.reply_stopped()
    }

    fn attempt_failed(&self, p: &Provider, attempt: u32, code: &'static str) {
        log(
            LogLevel::Warn,
            "llm_attempt_failed",
            [
                ("session", Value::from(self.core.session_id().as_str())),
                ("trace_id", self.core.turn_trace_id()),
                ("provider", Value::from(p.endpoint.kind.as_str())),
                ("code", Value::from(code)),
                ("attempt", Value::from(attempt)),
            ],
        );
    }
}

impl Running<'_> {
    /// Starts a Workers AI run through the `AI` binding. The binding takes
    /// the inputs as a plain object (serialized JSON-compatibly: a
    /// `serde_json::Value`'s maps would otherwise cross as JS `Map`s, which
    /// it reads as empty), and reports failure by rejecting, which counts as
    /// retryable. Called through worker-sys because `Ai::run_bytes` makes
    /// `Map`s of maps.
    async fn run_workers_ai(
        &self,
        p: &Provider,
        body: &Value,
        wait_ms: u64,
    ) -> Result<ByteStream, Refused> {
        use serde::Serialize;
        use worker::wasm_bindgen::JsCast;
        let inputs = body
            .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .map_err(|_| Refused::Misconfigured)?;
        let ai = (self.core.env)
            .ai(crate::bindings::AI)
            .map_err(|_| Refused::Misconfigured)?;
        let ai: &worker::worker_sys::Ai = ai.as_ref().unchecked_ref();
        let run = worker::wasm_bindgen_futures::JsFuture::from(ai.run(&p.endpoint.model, inputs));
        match timeout(wait_ms, run).await {
            None => Err(Refused::TimedOut),
            Some(Err(_)) => Err(Refused::Unavailable),
            Some(Ok(out)) => match out.dyn_into::<worker::web_sys::ReadableStream>() {
                Ok(stream) => Ok(ByteStream::from(stream)),
                // Not a stream: the model does not stream.
                Err(_) => Err(Refused::Misconfigured),
            },
        }
    }
}
