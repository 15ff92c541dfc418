//! The webhook queue's consumer: signs and sends each event to the
//! endpoints that take it, logs every attempt, and puts failed deliveries
//! back on the queue with a delay (or, after the last attempt, on the
//! dead-letter queue).
//!
//! All deliveries of a batch run at once, each bounded by
//! `WEBHOOK_TIMEOUT_MS`, so one slow receiver costs the batch at most that
//! long and never touches a session. A delivery is at least once: if the
//! queue cannot take the retries, the whole message is retried, and
//! endpoints that already had it get it again with the same `webhook-id`.

use super::{aad, backoff_seconds, secret_key, signature, Envelope, Failure, Outcome};
use crate::bindings::{WEBHOOKS, WEBHOOKS_DLQ};
use crate::config::{Config, LogLevel};
use crate::error::AppError;
use crate::runtime::{log, timeout};
use crate::store::webhooks::{self as db, Attempt, EndpointRow};
use crate::store::{self, now_ms};
use futures::future::join_all;
use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{
    Env, Fetch, Headers, Message, MessageBatch, MessageExt, Method, Queue, QueueContentType,
    QueueRetryOptionsBuilder, RawMessageBuilder, Request, RequestInit, RequestRedirect,
    SendMessage,
};

/// How long a batch waits before it is tried again when D1 or the
/// configuration failed it as a whole.
const BATCH_RETRY_S: u32 = 10;

/// The queue handler: `batch` holds envelopes as JSON text. It never
/// fails: the worker's glue turns an error into a panic, and a panic
/// aborts the wasm instance every session object of the isolate runs in
/// (README, "What a panic costs"). A batch it could not work on (D1 down,
/// a bad configuration) is logged and tried again as a whole.
pub async fn consume(batch: MessageBatch<String>, env: Env) {
    if let Err(e) = deliver_batch(&batch, &env).await {
        report("webhook_batch_failed", &e);
        let later = QueueRetryOptionsBuilder::new()
            .with_delay_seconds(BATCH_RETRY_S)
            .build();
        batch.retry_all_with_options(&later);
    }
}

/// Sends the batch's deliveries and acks or retries each message; an
/// error before any of that leaves the batch to `consume`.
async fn deliver_batch(batch: &MessageBatch<String>, env: &Env) -> Result<(), AppError> {
    let config =
        crate::runtime::config(env).map_err(|_| AppError::Unavailable { check: "config" })?;
    let messages = batch.messages().map_err(AppError::internal)?;
    let home = store::db(env, config.shards.home())?;
    let mut endpoints: Option<Vec<EndpointRow>> = None;
    let mut jobs = Vec::new();
    for m in &messages {
        let Some((envelope, body)) = open(config, m) else {
            m.ack();
            continue;
        };
        if endpoints.is_none() {
            endpoints = Some(db::enabled(&home).await?);
        }
        let all = endpoints.as_deref().unwrap_or_default();
        let targets = all.iter().filter(|e| match &envelope.to {
            None => e.filter().takes(envelope.kind),
            // A retry goes to its endpoint only while it is enabled.
            Some(to) => &e.id == to,
        });
        for e in targets {
            jobs.push((e.clone(), envelope.clone(), body.clone()));
        }
    }
    let results = join_all(
        jobs.iter()
            .map(|(e, env_, body)| send(config, e, env_, body)),
    )
    .await;
    let mut log_rows = Vec::with_capacity(jobs.len());
    let mut retries = Vec::new();
    let mut dead = Vec::new();
    for ((e, envelope, body), (outcome, status, error, latency)) in jobs.iter().zip(results) {
        let c = &config.webhooks;
        let last = envelope.attempt >= c.max_attempts;
        let (outcome, next) = match outcome {
            Outcome::Delivered => (Outcome::Delivered, None),
            _ if last => (Outcome::Dead, None),
            _ => {
                let wait = backoff_seconds(envelope.attempt, c.retry_base_s, c.retry_max_s);
                (Outcome::Failed, Some(wait))
            }
        };
        log_rows.push(Attempt {
            endpoint_id: e.id.clone(),
            event_id: envelope.id.clone(),
            event_type: envelope.kind.as_str().into(),
            session_id: envelope.session.clone(),
            attempt: envelope.attempt,
            outcome,
            http_status: status,
            latency_ms: Some(latency),
            error: error.map(|f| f.as_str().into()),
            next_retry_at: next.map(|w| now_ms() + i64::from(w) * 1000),
            at: now_ms(),
        });
        // Only a delivery that goes back on a queue is sealed again: under
        // the active key, so a retry never outlives the key of its first
        // pass (key rotation, README).
        let again = || Envelope {
            to: Some(e.id.clone()),
            attempt: envelope.attempt + 1,
            sealed: config
                .keyring
                .seal(&aad(&envelope.session, &envelope.id), body),
            ..envelope.clone()
        };
        match (outcome, next) {
            (Outcome::Failed, Some(wait)) => retries.push(queued(&again(), wait)),
            (Outcome::Dead, _) => dead.push(queued(&again(), 0)),
            _ => {}
        }
    }
    let requeued = requeue(env, WEBHOOKS, retries).await && requeue(env, WEBHOOKS_DLQ, dead).await;
    if let Err(e) = db::log(&home, &log_rows, now_ms() - super::LOG_RETENTION_MS).await {
        report("webhook_log_failed", &e);
    }
    for m in &messages {
        if requeued {
            m.ack();
        } else {
            m.retry();
        }
    }
    Ok(())
}

/// The envelope and its opened body; None (logged) for a message that can
/// never be delivered.
fn open(config: &Config, m: &Message<String>) -> Option<(Envelope, String)> {
    let envelope: Envelope = match serde_json::from_str(m.body()) {
        Ok(e) => e,
        Err(_) => {
            report(
                "webhook_message_invalid",
                &AppError::internal("not an envelope"),
            );
            return None;
        }
    };
    match config
        .keyring
        .open(&aad(&envelope.session, &envelope.id), &envelope.sealed)
    {
        Ok(body) => Some((envelope, body)),
        Err(e) => {
            report("webhook_message_invalid", &AppError::internal(e.code()));
            None
        }
    }
}

/// One attempt: the outcome, the receiver's status, why it failed without
/// one, and how long it took.
async fn send(
    config: &Config,
    e: &EndpointRow,
    envelope: &Envelope,
    body: &str,
) -> (Outcome, Option<u16>, Option<Failure>, u64) {
    let started = now_ms();
    let took = || (now_ms() - started).max(0) as u64;
    let Some(request) = request(config, e, envelope, body) else {
        return (
            Outcome::Failed,
            None,
            Some(Failure::SecretUnreadable),
            took(),
        );
    };
    let controller = worker::AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    match timeout(
        u64::from(config.webhooks.timeout_ms),
        fetch.send_with_signal(&signal),
    )
    .await
    {
        None => {
            controller.abort();
            (Outcome::Failed, None, Some(Failure::Timeout), took())
        }
        Some(Err(_)) => (Outcome::Failed, None, Some(Failure::Network), took()),
        Some(Ok(r)) => {
            let status = r.status_code();
            (Outcome::of_status(status), Some(status), None, took())
        }
    }
}

/// The signed POST; None if the endpoint's secret cannot be opened.
fn request(config: &Config, e: &EndpointRow, envelope: &Envelope, body: &str) -> Option<Request> {
    let secret = config.keyring.open(&secret_aad(&e.id), &e.secret).ok()?;
    let key = secret_key(&secret)?;
    let ts = now_ms() / 1000;
    let headers = Headers::new();
    headers.set("content-type", "application/json").ok()?;
    headers.set("user-agent", "Confab-Webhooks/1").ok()?;
    headers.set("webhook-id", &envelope.id).ok()?;
    // Each attempt is a span of what made the event (or a trace of its own).
    let trace = crate::trace::Trace::continued(envelope.trace.as_deref());
    headers.set("traceparent", &trace.header()).ok()?;
    headers.set("webhook-timestamp", &ts.to_string()).ok()?;
    headers
        .set(
            "webhook-signature",
            &signature(&key, &envelope.id, ts, body),
        )
        .ok()?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual)
        .with_body(Some(JsValue::from_str(body)));
    Request::new_with_init(&e.url, &init).ok()
}

/// Where an endpoint's sealed secret belongs.
pub fn secret_aad(endpoint: &str) -> String {
    crate::crypto::aad(crate::crypto::Field::WebhookSecret, endpoint, None)
}

fn queued(e: &Envelope, delay_s: u32) -> SendMessage<JsValue> {
    let text = serde_json::to_string(e).unwrap_or_default();
    RawMessageBuilder::new(JsValue::from_str(&text))
        .delay_seconds(delay_s)
        .build_with_content_type(QueueContentType::Text)
}

/// Sends `messages` to the queue `binding`; whether it took them.
async fn requeue(env: &Env, binding: &str, messages: Vec<SendMessage<JsValue>>) -> bool {
    if messages.is_empty() {
        return true;
    }
    let queue: Queue = match env.queue(binding) {
        Ok(q) => q,
        Err(e) => {
            report("webhook_requeue_failed", &AppError::internal(e));
            return false;
        }
    };
    match queue.send_raw_batch(messages).await {
        Ok(()) => true,
        Err(e) => {
            report("webhook_requeue_failed", &AppError::internal(e));
            false
        }
    }
}

fn report(event: &str, e: &AppError) {
    let detail = e.log_detail().unwrap_or_default();
    log(LogLevel::Error, event, [("detail", Value::from(detail))]);
}
