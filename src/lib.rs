//! Confab: an edge-deployed chat backend on Cloudflare Workers.
//!
//! The pure core (no `worker` imports) builds everywhere and is tested
//! natively; the runtime half only exists on wasm32.

pub mod attachment;
pub mod audit;
pub mod auth;
pub mod bindings;
pub mod config;
pub mod contract;
pub mod crypto;
pub mod csp;
pub mod desk;
pub mod error;
pub mod ids;
pub mod join;
pub mod ledger;
pub mod limits;
pub mod listing;
pub mod llm;
pub mod mention;
pub mod metrics;
pub mod model;
pub mod moderation;
pub mod origins;
pub mod poll;
pub mod preview;
pub mod protocol;
pub mod router;
pub mod search;
pub mod service;
pub mod shards;
pub mod signed;
pub mod sort;
#[cfg(target_arch = "wasm32")]
mod store;
pub mod tagged;
pub mod tally;
pub mod trace;
pub mod uri;
pub mod webhooks;

#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
mod http;
#[cfg(target_arch = "wasm32")]
pub mod hub;
#[cfg(target_arch = "wasm32")]
mod identity;
#[cfg(target_arch = "wasm32")]
pub mod inbox;
#[cfg(target_arch = "wasm32")]
mod runtime;
#[cfg(target_arch = "wasm32")]
pub mod session;

#[cfg(target_arch = "wasm32")]
mod entry {
    use worker::{event, Context, Env, MessageBatch, Request, Response, Result};

    #[event(start)]
    fn start() {
        console_error_panic_hook::set_once();
    }

    #[event(fetch)]
    async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
        crate::router::handle(req, env, ctx).await
    }

    /// The webhook queue (`crate::webhooks::deliver`).
    #[event(queue)]
    async fn queue(batch: MessageBatch<String>, env: Env, _ctx: Context) -> Result<()> {
        crate::webhooks::deliver::consume(batch, env).await;
        Ok(())
    }
}
