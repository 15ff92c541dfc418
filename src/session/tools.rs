//! The assistant's function calls, carried out (the policy is the pure
//! `crate::llm::driver::round`): HTTP tools, a signed POST to the
//! product's backend; the built-ins, on the support desk; and calls that
//! need a person, put to the agents here.
//!
//! **HTTP tools.** The call is POSTed as JSON (`{"type": "tool.call",
//! "call_id", "name", "arguments", "session_id", "user_id"}`) with the
//! Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`) keyed with `TOOL_SIGNING_SECRET`, as webhooks are
//! signed. A 2xx answer's body (at most `MAX_RESULT_BYTES`) is the result;
//! any other status, a slower answer than the tool's timeout, a bigger
//! body or a network error is a failed call, told to the model as such.
//! Redirects are not followed.
//!
//! **Approvals.** Agents' sockets get `approval_request`, users'
//! `awaiting_approval`; an agent's `approve` or `reject` decides, and
//! everyone gets `approval`. No decision within the wait is `timed_out`.
//! A `stop` (or a takeover) rejects every call still waiting. A socket
//! that connects meanwhile is told what waits. Calls and results are kept
//! in the session log (`log/tools.rs`) as messages of their own kinds
//! (`tool_call`, `tool_result`), sent to agents as they happen (and to
//! users, when the profile says `show_tools`).

use super::log::tools::Teller;
use super::running::Running;
use super::sockets::{attachment, send_to, Attachment};
use super::Core;
use crate::desk::{Action, Actor};
use crate::error::AppError;
use crate::error::SocketError;
use crate::llm::driver::Decision;
use crate::llm::tools::{Builtin, ToolCall, ToolKind, ToolResult};
use crate::protocol::{
    AuthorKind, MessageView, ServerFrame, ToolCallView, UserRef, ASSISTANT_AUTHOR_ID,
};
use crate::runtime::timeout;
use crate::store::now_ms;
use futures::channel::oneshot;
use futures::StreamExt;
use serde_json::json;
use std::cell::RefCell;
use worker::{
    AbortController, Fetch, Headers, Method, Request, RequestInit, RequestRedirect, WebSocket,
};

/// Largest answer an HTTP tool may give.
pub const MAX_RESULT_BYTES: usize = 16 * 1024;

/// A decision and who made it.
type Verdict = (Decision, Option<UserRef>);

/// A call waiting for an agent.
struct Pending {
    call: ToolCall,
    expires_at: i64,
    answer: oneshot::Sender<Verdict>,
}

/// The calls waiting for approval in this session.
#[derive(Default)]
pub(super) struct Approvals {
    pending: RefCell<Vec<Pending>>,
}

impl Approvals {
    fn take(&self, call_id: &str) -> Option<Pending> {
        let mut p = self.pending.borrow_mut();
        let at = p.iter().position(|x| x.call.id == call_id)?;
        Some(p.remove(at))
    }
}

fn decision_name(d: Decision) -> &'static str {
    match d {
        Decision::Approved => "approved",
        Decision::Rejected => "rejected",
        Decision::TimedOut => "timed_out",
    }
}

fn view(c: &ToolCall) -> ToolCallView<'_> {
    ToolCallView {
        id: &c.id,
        name: &c.name,
        arguments: &c.arguments,
    }
}

fn failed(c: &ToolCall, why: impl Into<String>) -> ToolResult {
    ToolResult {
        call_id: c.id.clone(),
        name: c.name.clone(),
        content: why.into(),
        is_error: true,
    }
}

impl Core {
    /// Sends `agents` to agents' sockets and `others` (if any) to the rest.
    pub(super) fn broadcast_split(&self, agents: &str, others: Option<&str>) {
        for ws in self.state.get_websockets() {
            match attachment(&ws).map(|a| a.kind) {
                Some(AuthorKind::Agent) => send_to(&ws, agents),
                _ => {
                    if let Some(o) = others {
                        send_to(&ws, o)
                    }
                }
            }
        }
    }

    /// `approve` / `reject`: an agent decides a waiting call.
    pub(super) fn decide_call(
        &self,
        ws: &WebSocket,
        me: &Attachment,
        call_id: &str,
        approve: bool,
    ) {
        if me.kind != AuthorKind::Agent {
            return send_to(ws, &SocketError::NotAnAgent.frame(None));
        }
        let Some(p) = self.approvals.take(call_id) else {
            return send_to(ws, &SocketError::UnknownCall.frame(None));
        };
        let d = if approve {
            Decision::Approved
        } else {
            Decision::Rejected
        };
        // The turn waiting on it records and announces it.
        let _ = p.answer.send((d, Some(me.user.clone())));
    }

    /// Rejects every waiting call (a `stop`, a takeover).
    pub(super) fn reject_waiting(&self) {
        for p in self.approvals.pending.borrow_mut().drain(..) {
            let _ = p.answer.send((Decision::Rejected, None));
        }
    }

    /// Tells a socket that just caught up what waits for approval.
    pub(super) fn send_waiting(&self, ws: &WebSocket) {
        let agent = attachment(ws).is_some_and(|a| a.kind == AuthorKind::Agent);
        for p in self.approvals.pending.borrow().iter() {
            let frame = match agent {
                true => ServerFrame::ApprovalRequest {
                    call: view(&p.call),
                    expires_at: p.expires_at,
                },
                false => ServerFrame::AwaitingApproval {
                    call_id: &p.call.id,
                    expires_at: p.expires_at,
                },
            };
            send_to(ws, &frame.to_json());
        }
    }
}

impl Running<'_> {
    /// Puts `calls` to the agents and waits for each decision until
    /// `wait_ms` from now.
    pub(super) async fn ask(&self, calls: &[ToolCall], wait_ms: u64) -> Vec<Decision> {
        let core = self.core;
        let expires_at = now_ms() + wait_ms as i64;
        let mut answers = Vec::new();
        for c in calls {
            let (answer, rx) = oneshot::channel();
            core.approvals.pending.borrow_mut().push(Pending {
                call: c.clone(),
                expires_at,
                answer,
            });
            answers.push(rx);
            let to_agents = ServerFrame::ApprovalRequest {
                call: view(c),
                expires_at,
            };
            let to_users = ServerFrame::AwaitingApproval {
                call_id: &c.id,
                expires_at,
            };
            core.broadcast_split(&to_agents.to_json(), Some(&to_users.to_json()));
        }
        let mut out = Vec::new();
        for (c, rx) in calls.iter().zip(answers) {
            let left = (expires_at - now_ms()).max(0) as u64;
            let (d, by) = match timeout(left, rx).await {
                Some(Ok(verdict)) => verdict,
                _ => {
                    core.approvals.take(&c.id);
                    (Decision::TimedOut, None)
                }
            };
            let name = decision_name(d);
            let who = by.as_ref().map(|u| u.id.as_str());
            match core
                .log
                .tool_decided(&c.id, name, who, now_ms(), &core.outbox)
            {
                Ok(()) => core.replicate_soon(),
                Err(e) => core.log_error("tool_decision_not_kept", &e),
            }
            let frame = ServerFrame::Approval {
                call_id: &c.id,
                decision: name,
                by: by.as_ref(),
            };
            core.broadcast_event(&frame.to_json());
            out.push(d);
        }
        out
    }

    /// Makes `calls` at once.
    pub(super) async fn make(&self, calls: &[ToolCall]) -> Vec<ToolResult> {
        futures::future::join_all(calls.iter().map(|c| self.make_one(c))).await
    }

    async fn make_one(&self, c: &ToolCall) -> ToolResult {
        let Some(tool) = self.a.tools.iter().find(|t| t.spec.name == c.name) else {
            return failed(c, crate::llm::driver::NO_SUCH_TOOL);
        };
        match &tool.kind {
            ToolKind::Http { url, timeout_ms } => self.post(c, url, *timeout_ms).await,
            ToolKind::Builtin(b) => self.builtin(c, *b),
        }
    }

    fn builtin(&self, c: &ToolCall, b: Builtin) -> ToolResult {
        let me = UserRef {
            id: ASSISTANT_AUTHOR_ID.into(),
            name: self.a.name.clone(),
        };
        let (action, done) = match b {
            Builtin::EscalateToHuman => (
                Action::Escalate,
                "A person was asked to join; tell the user someone will be with them shortly.",
            ),
            Builtin::EndConversation => (
                Action::Resolve,
                "The conversation is ended; say goodbye briefly.",
            ),
        };
        match self.core.desk_act(action, Actor::Assistant(&me)) {
            Ok(_) => ToolResult {
                call_id: c.id.clone(),
                name: c.name.clone(),
                content: done.into(),
                is_error: false,
            },
            Err(e) => {
                self.core.log_error("builtin_tool_failed", &e);
                failed(c, "That could not be done now.")
            }
        }
    }

    /// An HTTP tool's signed POST, within its timeout and size cap.
    async fn post(&self, c: &ToolCall, url: &str, timeout_ms: u32) -> ToolResult {
        let body = json!({
            "type": "tool.call",
            "call_id": c.id,
            "name": c.name,
            "arguments": c.arguments,
            "session_id": self.core.session_id().as_str(),
            "user_id": self.asked_by().id,
        })
        .to_string();
        let Some(request) = self.signed(url, &body) else {
            return failed(c, "The function is not set up to be called.");
        };
        let controller = AbortController::default();
        let signal = controller.signal();
        let call = async {
            let mut r = Fetch::Request(request)
                .send_with_signal(&signal)
                .await
                .map_err(|_| "The function could not be reached.".to_string())?;
            let status = r.status_code();
            let mut stream = r
                .stream()
                .map_err(|_| "The function's answer could not be read.".to_string())?;
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                bytes.extend(chunk.map_err(|_| "The function's answer broke off.".to_string())?);
                if bytes.len() > MAX_RESULT_BYTES {
                    return Err(format!(
                        "The function's answer was over {MAX_RESULT_BYTES} bytes."
                    ));
                }
            }
            Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
        };
        match timeout(timeout_ms as u64, call).await {
            None => {
                controller.abort();
                failed(
                    c,
                    format!("The function did not answer within {timeout_ms} ms."),
                )
            }
            Some(Err(why)) => failed(c, why),
            Some(Ok((status, text))) if (200..300).contains(&status) => ToolResult {
                call_id: c.id.clone(),
                name: c.name.clone(),
                content: text,
                is_error: false,
            },
            Some(Ok((status, text))) => {
                failed(c, format!("The function failed (HTTP {status}): {text}"))
            }
        }
    }

    /// The request, signed as Standard Webhooks says; None without a key.
    fn signed(&self, url: &str, body: &str) -> Option<Request> {
        let secret = self.a.tool_secret.as_ref()?;
        let key = crate::webhooks::secret_key(secret.expose())?;
        let id = format!("tc_{}", crate::ids::random_hex(12));
        let ts = now_ms() / 1000;
        let headers = Headers::new();
        headers.set("content-type", "application/json").ok()?;
        headers.set("user-agent", "Confab-Tools/1").ok()?;
        headers.set("webhook-id", &id).ok()?;
        headers.set("webhook-timestamp", &ts.to_string()).ok()?;
        let signature = crate::webhooks::signature(&key, &id, ts, body);
        headers.set("webhook-signature", &signature).ok()?;
        if let Some(t) = self.core.turn_span() {
            headers.set("traceparent", &t).ok()?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_redirect(RequestRedirect::Manual)
            .with_body(Some(body.into()));
        Request::new_with_init(url, &init).ok()
    }

    /// How this turn's tool messages are kept: under the assistant's
    /// name, shown to users when the profile says so.
    fn teller(&self) -> Teller<'_> {
        Teller {
            assistant: &self.a.name,
            shown: self.a.show_tools,
        }
    }

    /// Sends kept tool messages to those who see them.
    fn show(&self, kept: Result<Vec<MessageView>, AppError>, what: &str) {
        let core = self.core;
        match kept {
            Ok(views) => {
                core.replicate_soon();
                for v in &views {
                    let frame = ServerFrame::Message(v).to_json();
                    core.broadcast_tool_message(&frame, self.a.show_tools);
                }
            }
            Err(e) => core.log_error(what, &e),
        }
    }

    /// Keeps the calls a reply asked for, as `tool_call` messages.
    pub(super) fn keep_calls(&self, reply: &str, calls: &[ToolCall]) {
        let core = self.core;
        let kept = core.keyring().and_then(|keys| {
            let log = &core.log;
            log.add_tool_calls(keys, (reply, calls), self.teller(), now_ms(), &core.outbox)
        });
        self.show(kept, "tool_calls_not_kept");
    }

    /// Keeps what calls came to, as `tool_result` messages.
    pub(super) fn keep_results(&self, reply: &str, results: &[ToolResult]) {
        let core = self.core;
        let kept = core.keyring().and_then(|keys| {
            let log = &core.log;
            log.tool_results(
                keys,
                (reply, results),
                self.teller(),
                now_ms(),
                &core.outbox,
            )
        });
        self.show(kept, "tool_results_not_kept");
    }
}
