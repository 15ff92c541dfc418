//! HTTP handlers, one file per resource. Each starts with a `/// METHOD /path`
//! doc line; the URLs themselves live only in `router.rs`.

pub mod admin;
pub mod dev;
pub mod health;
pub mod members;
pub mod messages;
pub mod sessions;
