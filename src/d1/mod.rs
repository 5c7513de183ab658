//! Cloudflare D1 through its REST API: settings from `.env`, one HTTP client, the request and
//! response shapes, and errors a person can act on. What is pushed, and when, is
//! `sync`'s job (with `site_latest`, the per-site table the dashboard reads); `settings` reads
//! `.env`, `client` talks to the API.
//!
//! `POST {D1_API_BASE}/accounts/{CF_ACCOUNT_ID}/d1/database/{D1_DATABASE_ID}/query` with
//! `Authorization: Bearer {CF_API_TOKEN}` and a body `{"sql": "...", "params": [...]}` or
//! `{"batch": [{"sql", "params"}, ...]}`; the answer is Cloudflare's envelope
//! `{"result": [{"results": [rows as objects], "success": true, "meta": {...}}], "success": true,
//! "errors": [{"code", "message"}], "messages": []}`, one `result` entry per statement.
//!
//! D1's documented limits (developers.cloudflare.com/d1/platform/limits/, and the API's rate
//! limits at developers.cloudflare.com/fundamentals/api/reference/limits/), which callers stay
//! inside:
//! - [`MAX_PARAMS`]: at most 100 bound parameters per query;
//! - [`MAX_STATEMENT_BYTES`]: at most 100 KB (100,000 bytes) of SQL per statement;
//! - 2 MB per row, 30 s per query ([`Limits::request_timeout`] stays at or under it);
//! - 1,200 requests per 5 minutes per API token for the whole Cloudflare API; past it every
//!   call gets 429 (with `retry-after`) for 5 minutes. So rows travel in batches, a 429 is
//!   never retried in a loop, and it is reported with its wait.
//!
//! Cloudflare's API schema types `params` as strings; D1 binds JSON numbers and `null` as
//! SQLite integers, reals and NULL, which is what the columns hold, so values are sent typed.

pub mod client;
mod settings;
mod site_latest;
pub mod sync;

pub use client::{D1Client, Statement};
pub use settings::{D1Settings, DEFAULT_API_BASE, Limits};

/// D1: bound parameters per query.
pub const MAX_PARAMS: usize = 100;
/// D1: bytes of SQL per statement.
pub const MAX_STATEMENT_BYTES: usize = 100_000;
