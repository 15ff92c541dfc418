//! Attachments over HTTP (`crate::attachment` has the rules and tokens):
//! an upload slot, the upload itself, a member's download link, and the
//! download. The session object is the authority on who may attach and
//! see what; R2 holds only sealed bytes.

use super::access::Grant;
use crate::attachment::{self as att, Link, Refusal, Stored, Ticket, TokenError};
use crate::contract::{AccessReply, Call, Caller};
use crate::crypto::{aad, Field};
use crate::error::AppError;
use crate::http::{json, read_json, Ctx, HandlerResult};
use crate::ids::SessionId;
use crate::protocol::UserRef;
use crate::session::internal;
use crate::store::now_ms;
use futures::StreamExt;
use serde_json::json;
use worker::{Bucket, Request, Response};

fn bucket(ctx: &Ctx) -> Result<Bucket, AppError> {
    crate::runtime::files(&ctx.env)
}

/// The key signed URLs are made with: derived from the keyring, so it
/// needs no configuration and changes only with the first listed key.
fn secret(ctx: &Ctx) -> Result<Vec<u8>, AppError> {
    let keys = &ctx.require_config()?.keyring;
    Ok(keys.derive_label("confab/attachment-urls").into_bytes())
}

fn checked<C: att::Claims>(ctx: &Ctx, token: &str) -> Result<C, AppError> {
    match att::verify::<C>(&secret(ctx)?, token, now_ms()) {
        Ok(c) => Ok(c),
        Err(TokenError::Invalid) => Err(AppError::NotFound),
        Err(TokenError::Expired) => Err(AppError::Attachment(Refusal::LinkExpired)),
    }
}

/// POST /v1/sessions/:id/attachments `{name, type, size}`
///
/// A member's upload slot: `201 {id, upload_url, expires_at, max_bytes}`.
/// `PUT` the file's bytes to `upload_url` (a path on this origin) before
/// `expires_at`; then name `id` in a `send`.
pub async fn slot(
    mut req: Request,
    ctx: &Ctx,
    session: SessionId<'_>,
    grant: Grant,
) -> HandlerResult {
    let policy = &ctx.require_config()?.attachments;
    let wanted: att::SlotRequest = read_json(&mut req).await?;
    // The object admits the caller first: a stranger learns nothing, not
    // even whether the file would have been accepted.
    let call = Call::Access {
        session: session.as_str().to_string(),
        caller: grant.caller(ctx),
    };
    let _: AccessReply = internal::call_json(ctx, &call).await?;
    let kind = policy.check(&wanted).map_err(AppError::Attachment)?;
    let caller = grant.caller(ctx);
    let ticket = Ticket {
        session: session.as_str().to_string(),
        id: att::new_id(),
        user: caller.user.id,
        user_name: caller.user.name,
        admin: caller.admin,
        name: wanted.name.trim().to_string(),
        kind,
        size: wanted.size,
        expires_at: now_ms() + att::SLOT_TTL_MS,
    };
    let token = att::sign(&secret(ctx)?, &ticket);
    json(
        201,
        &json!({
            "id": ticket.id,
            "upload_url": format!("/v1/uploads/{token}"),
            "expires_at": ticket.expires_at,
            "max_bytes": ticket.size,
        }),
    )
}

/// PUT /v1/uploads/:token (the body is the file)
///
/// Reads at most the slot's size, checks the bytes against the type, seals
/// them and stores them in R2; the session object records the attachment.
/// `201` with the attachment (`id`, `name`, `type`, `size`, and `width`,
/// `height` for images).
pub async fn upload(mut req: Request, ctx: &Ctx, token: &str) -> HandlerResult {
    let t: Ticket = checked(ctx, token)?;
    let too_large = AppError::Attachment(Refusal::TooLarge(t.size));
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > t.size) {
        return Err(too_large);
    }
    let bytes = read_at_most(&mut req, t.size as usize)
        .await?
        .ok_or(too_large)?;
    if bytes.is_empty() {
        return Err(AppError::Attachment(Refusal::Empty));
    }
    if !att::sniff(t.kind, &bytes) {
        return Err(AppError::Attachment(Refusal::ContentMismatch));
    }
    let dims = att::dimensions(t.kind, &bytes);
    let size = bytes.len() as u64;
    let keys = &ctx.require_config()?.keyring;
    let sealed = keys.seal_bytes(&aad(Field::AttachmentBody, &t.session, Some(&t.id)), &bytes);
    drop(bytes);
    let key = att::object_key(&t.session, &t.id);
    let files = bucket(ctx)?;
    files
        .put(key.clone(), sealed)
        .execute()
        .await
        .map_err(AppError::internal)?;
    let stored = Stored {
        view: att::AttachmentView {
            id: t.id.clone(),
            name: t.name.clone(),
            kind: t.kind,
            size,
            width: dims.map(|d| d.0),
            height: dims.map(|d| d.1),
        },
        key: key.clone(),
    };
    let call = Call::Upload {
        session: t.session.clone(),
        caller: Caller {
            user: UserRef {
                id: t.user.clone(),
                name: t.user_name.clone(),
            },
            admin: t.admin,
            need: crate::router::Access::Member,
        },
        file: stored,
    };
    match internal::call_json::<att::AttachmentView>(ctx, &call).await {
        Ok(view) => json(201, &view),
        Err(e) => {
            // Refused (a replayed URL, or the uploader lost access): the
            // object this upload wrote is nobody's.
            let _ = files.delete(key).await;
            Err(e)
        }
    }
}

/// The body, or None when it is longer than `cap` (the rest unread).
async fn read_at_most(req: &mut Request, cap: usize) -> Result<Option<Vec<u8>>, AppError> {
    let unreadable = || AppError::bad_request("invalid_body", "request body could not be read");
    // No body at all is an empty file.
    let Ok(mut stream) = req.stream() else {
        return Ok(Some(Vec::new()));
    };
    let mut bytes: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| unreadable())?;
        if bytes.len() + chunk.len() > cap {
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(bytes))
}

/// GET /v1/sessions/:id/attachments/:attachment
///
/// A member's download link: the attachment's fields and
/// `{url, expires_at}`, a signed path on this origin that works for
/// `LINK_TTL_MS` without a token (so that `<img src>` can use it).
pub async fn link(ctx: &Ctx, session: SessionId<'_>, id: &str, grant: Grant) -> HandlerResult {
    let call = Call::File {
        session: session.as_str().to_string(),
        caller: grant.caller(ctx),
        id: id.to_string(),
    };
    let file: Stored = internal::call_json(ctx, &call).await?;
    let claims = Link {
        session: session.as_str().to_string(),
        id: file.view.id.clone(),
        key: file.key,
        name: file.view.name.clone(),
        kind: file.view.kind,
        expires_at: now_ms() + att::LINK_TTL_MS,
    };
    let token = att::sign(&secret(ctx)?, &claims);
    let mut body = serde_json::to_value(&file.view).map_err(AppError::internal)?;
    body["url"] = json!(format!("/v1/files/{token}"));
    body["expires_at"] = json!(claims.expires_at);
    json(200, &body)
}

/// GET /v1/files/:token
///
/// The opened bytes. Images are shown inline; anything else is a
/// download. A sandboxing policy keeps any file from running as a page.
pub async fn download(ctx: &Ctx, token: &str) -> HandlerResult {
    let l: Link = checked(ctx, token)?;
    let keys = &ctx.require_config()?.keyring;
    // NotFound once erased with its session or its message.
    let object = (l.session.as_str(), l.id.as_str(), l.key.clone());
    let bytes = crate::runtime::read_file(&bucket(ctx)?, keys, object).await?;
    let mut r = Response::from_bytes(bytes).map_err(AppError::internal)?;
    let h = r.headers_mut();
    let _ = h.set("content-type", l.kind.content_type());
    let disposition = if l.kind.is_image() {
        "inline"
    } else {
        "attachment"
    };
    let _ = h.set(
        "content-disposition",
        &format!(
            "{disposition}; filename*=UTF-8''{}",
            crate::uri::encode(&l.name)
        ),
    );
    let _ = h.set("content-security-policy", "default-src 'none'; sandbox");
    Ok(r)
}
