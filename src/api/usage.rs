//! GET /v1/admin/usage: the cost ledger by day, user, profile or model
//! (`crate::ledger`), for the console's chart and for finance.

use crate::http::{json, Ctx, HandlerResult};
use crate::ledger::{Group, Query};
use crate::llm::price::Usd;
use crate::store;
use serde::Serialize;
use worker::Request;

/// One group's sums, named by the field of its group. (A struct, not
/// `json!`: the macro's code for these eleven fields cost 3 KiB of bundle.)
#[derive(Serialize)]
struct Item<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    day: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    turns: i64,
    tokens_in: i64,
    tokens_out: i64,
    tokens_cached: i64,
    cost_usd: Usd,
    unpriced_turns: i64,
}

#[derive(Serialize)]
struct Report<'a> {
    by: Group,
    currency: &'static str,
    items: Vec<Item<'a>>,
    next_cursor: Option<String>,
}

/// `?by=day|user|profile|model&from=&to=&user=&profile=&limit=&cursor=`
/// (docs/api.md).
pub async fn report(req: Request, ctx: &Ctx) -> HandlerResult {
    let pairs = crate::uri::query_pairs(&req.inner().url());
    let q = Query::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let config = ctx.require_config()?;
    let home = store::db(&ctx.env, config.shards.home())?;
    let mut rows = store::ledger::report(&home, &q).await?;
    let more = rows.len() > q.limit as usize;
    rows.truncate(q.limit as usize);
    let next_cursor = more
        .then(|| rows.last().map(|r| Query::cursor_after(&r.key)))
        .flatten();
    let items = rows
        .iter()
        .map(|r| {
            let key = Some(r.key.as_str());
            let (provider, model) = match r.key.split_once(':') {
                Some((p, m)) if q.group == Group::Model => (Some(p), Some(m)),
                _ => (None, None),
            };
            Item {
                day: key.filter(|_| q.group == Group::Day),
                user_id: key.filter(|_| q.group == Group::User),
                profile: key.filter(|_| q.group == Group::Profile),
                provider,
                model,
                turns: r.turns,
                tokens_in: r.tokens_in,
                tokens_out: r.tokens_out,
                tokens_cached: r.tokens_cached,
                cost_usd: Usd(r.cost_nanos.max(0) as u64),
                unpriced_turns: r.unpriced,
            }
        })
        .collect();
    json(
        200,
        &Report {
            by: q.group,
            currency: "USD",
            items,
            next_cursor,
        },
    )
}
