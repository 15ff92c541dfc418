//! One round of function calls, pure: which of a reply's calls are made,
//! which wait for a person, and what the model is told of each.
//!
//! A call naming no function the assistant offers is refused at once (the
//! model is told so, and may answer otherwise). Calls to functions marked
//! `needs_approval` are put to the agents together and wait at most
//! `approval_timeout_ms`; a rejection, or no decision in time, is told to
//! the model as a refusal and the function is not called. The rest, and
//! the approved, are made at once (in parallel, by the I/O). A stop while
//! calls wait for a decision makes none of them.

use super::TurnIo;
use crate::llm::config::Assistant;
use crate::llm::tools::{ToolCall, ToolResult};

/// Most rounds of calls in one turn; the reply after the last is offered
/// no functions.
pub const MAX_TOOL_ROUNDS: usize = 4;

/// What a person decided about a call that needs approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approved,
    Rejected,
    /// No decision within the wait: treated as a rejection.
    TimedOut,
}

/// What the model is told of calls that were not made.
pub const NO_SUCH_TOOL: &str = "There is no function of that name; answer without it.";
pub const REJECTED: &str = "A person declined this call; it was not made.";
pub const TIMED_OUT: &str = "No one approved this call in time; it was not made.";
pub const NO_RESULT: &str = "The function gave no result.";
pub const STOPPED: &str = "The turn was stopped; this call was not made.";

fn refused(c: &ToolCall, why: &str) -> ToolResult {
    ToolResult {
        call_id: c.id.clone(),
        name: c.name.clone(),
        content: why.to_string(),
        is_error: true,
    }
}

/// What each of `calls` came to, in their order.
pub(super) async fn run<I: TurnIo>(io: &I, a: &Assistant, calls: &[ToolCall]) -> Vec<ToolResult> {
    let mut results: Vec<Option<ToolResult>> = vec![None; calls.len()];
    let (mut asked, mut runnable) = (Vec::new(), Vec::new());
    for (i, c) in calls.iter().enumerate() {
        match a.tools.iter().find(|t| t.spec.name == c.name) {
            None => results[i] = Some(refused(c, NO_SUCH_TOOL)),
            Some(t) if t.needs_approval => asked.push(i),
            Some(_) => runnable.push(i),
        }
    }
    if !asked.is_empty() {
        let put: Vec<ToolCall> = asked.iter().map(|&i| calls[i].clone()).collect();
        let decisions = io.approvals(&put, a.approval_timeout_ms).await;
        let mut approved = Vec::new();
        for (k, &i) in asked.iter().enumerate() {
            match decisions.get(k).copied().unwrap_or(Decision::TimedOut) {
                Decision::Approved => approved.push(i),
                Decision::Rejected => results[i] = Some(refused(&calls[i], REJECTED)),
                Decision::TimedOut => results[i] = Some(refused(&calls[i], TIMED_OUT)),
            }
        }
        // In the reply's order (no sort linked for it).
        runnable = (0..calls.len())
            .filter(|i| runnable.contains(i) || approved.contains(i))
            .collect();
    }
    // A stop while calls waited: none is made.
    if io.stopped() {
        for i in runnable.drain(..) {
            results[i] = Some(refused(&calls[i], STOPPED));
        }
    }
    if !runnable.is_empty() {
        let made: Vec<ToolCall> = runnable.iter().map(|&i| calls[i].clone()).collect();
        let mut outs = io.run_tools(&made).await.into_iter();
        for &i in &runnable {
            results[i] = Some(outs.next().unwrap_or_else(|| refused(&calls[i], NO_RESULT)));
        }
    }
    results.into_iter().flatten().collect()
}
