//! Search over encrypted history (`crate::search` has the index's rules):
//! a user searches the sessions they own or are a member of, an admin
//! every session. Query words are hashed as the index's are; snippets are
//! opened only for the caller, as text pieces.

use super::access::Grant;
use crate::error::AppError;
use crate::http::{json, query_param, Ctx, HandlerResult};
use crate::model::page_limit;
use crate::search::{query_words, Cursor};
use crate::store;
use serde_json::json;
use worker::Request;

/// GET /v1/search?q=&limit=&cursor=
///
/// `200 {"results": [{session_id, session_title, seq, message_id, author,
/// created_at, snippet: [{text, hit}]}], "next_cursor"}`, newest first.
/// 404 when `SEARCH_KEY_ID` is unset (as link previews when off); 400
/// `invalid_query`, `query_too_long`, `invalid_limit`, `invalid_cursor`.
pub async fn get(req: Request, ctx: &Ctx, grant: Grant) -> HandlerResult {
    let config = ctx.require_config()?;
    let Some(index) = &config.search else {
        return Err(AppError::NotFound);
    };
    let words = query_words(&query_param(&req, "q").unwrap_or_default())?;
    let limit = page_limit(query_param(&req, "limit").as_deref())? as usize;
    let after = query_param(&req, "cursor")
        .map(|c| Cursor::decode(&c))
        .transpose()?;
    let terms: Vec<String> = words.iter().map(|w| index.term(w)).collect();
    let user = (!ctx.is_admin(&grant.who)).then_some(grant.who.user_id.as_str());
    let dbs = store::all(&ctx.env, &config.shards)?;
    let found = store::search::find(
        &dbs,
        &config.keyring,
        (&terms, &words),
        user,
        (after.as_ref(), limit),
    )
    .await?;
    json(
        200,
        &json!({
            "results": found.hits,
            "next_cursor": found.next.map(|c| c.encode()),
        }),
    )
}
