//! The product backend's API (`crate::service`): post a message, set the
//! desk status, read the transcript. The route level (`Access::Service`)
//! has admitted the caller; the session object serves them as an admin.

use super::access::Grant;
use super::admin::desk_reply;
use crate::contract::{Call, Caller, HistoryReply};
use crate::desk::View;
use crate::error::AppError;
use crate::http::{query_param, read_json, Ctx, HandlerResult};
use crate::ids::SessionId;
use crate::protocol::{MessageView, UserRef};
use crate::router::{Access, ServiceVerb};
use crate::service::{transcript_text, Post, SetStatus};
use crate::session::internal;
use serde_json::json;
use worker::{Request, Response};

/// History pages read for one transcript (of `model::MAX_PAGE` each):
/// 100 × 100 = 10,000 messages at most, then `truncated`.
const MAX_TRANSCRIPT_PAGES: usize = 100;

/// POST /v1/service/sessions/{id}/messages, POST …/status,
/// GET …/transcript?format=json|text
pub async fn serve(
    mut req: Request,
    ctx: &Ctx,
    session: SessionId<'_>,
    verb: ServiceVerb,
    grant: Grant,
) -> HandlerResult {
    let session = session.as_str().to_string();
    let by = UserRef {
        id: grant.who.user_id.clone(),
        name: grant.who.name.clone(),
    };
    match verb {
        ServiceVerb::Post => {
            let body: Post = read_json(&mut req).await?;
            let max = ctx.require_config()?.max_message_chars;
            let (client_id, author, text) = body.checked(max)?;
            let call = Call::Post {
                session,
                client_id: client_id.as_str().to_string(),
                author,
                text,
            };
            let reply: crate::contract::PostReply = internal::call_json(ctx, &call).await?;
            let status = if reply.duplicate { 200 } else { 201 };
            crate::http::json(status, &reply)
        }
        ServiceVerb::Status => {
            let body: SetStatus = read_json(&mut req).await?;
            let call = Call::Desk {
                session: session.clone(),
                action: body.action()?,
                by: by.clone(),
            };
            let view: View = internal::call_json(ctx, &call).await?;
            desk_reply(&session, &view, &by)
        }
        ServiceVerb::Transcript => {
            let text = match query_param(&req, "format").as_deref() {
                None | Some("json") => false,
                Some("text") => true,
                Some(_) => {
                    return Err(AppError::bad_request(
                        "invalid_format",
                        "format must be json or text",
                    ))
                }
            };
            let caller = Caller {
                user: by,
                admin: true,
                need: Access::Service,
            };
            let (messages, last_seq, truncated) = transcript(ctx, &session, caller).await?;
            if text {
                let mut r = Response::ok(transcript_text(&messages)).map_err(AppError::internal)?;
                let _ = r
                    .headers_mut()
                    .set("content-type", "text/plain; charset=utf-8");
                return Ok(r);
            }
            crate::http::json(
                200,
                &json!({"session_id": session, "messages": messages, "last_seq": last_seq, "truncated": truncated}),
            )
        }
    }
}

/// Every message, oldest first, read from the session object (the record)
/// page by page from the newest; at most `MAX_TRANSCRIPT_PAGES` pages.
async fn transcript(
    ctx: &Ctx,
    session: &str,
    caller: Caller,
) -> Result<(Vec<MessageView>, u64, bool), AppError> {
    let mut pages: Vec<Vec<MessageView>> = Vec::new();
    let mut before = None;
    let mut last_seq = 0;
    for _ in 0..MAX_TRANSCRIPT_PAGES {
        let call = Call::History {
            session: session.to_string(),
            caller: caller.clone(),
            before,
            limit: crate::model::MAX_PAGE,
            thread: None,
        };
        let page: HistoryReply = internal::call_json(ctx, &call).await?;
        last_seq = last_seq.max(page.last_seq);
        before = page.next_before;
        let done = before.is_none();
        pages.push(page.messages);
        if done {
            pages.reverse();
            return Ok((pages.concat(), last_seq, false));
        }
    }
    pages.reverse();
    Ok((pages.concat(), last_seq, true))
}
