//! Cloudflare D1 through its REST API: settings from `.env`, one HTTP client, the request and
//! response shapes, and errors a person can act on. What is pushed, and when, is `d1sync`'s job.
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

pub mod sync;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::Env;
use crate::secret::Secret;

/// D1: bound parameters per query.
pub const MAX_PARAMS: usize = 100;
/// D1: bytes of SQL per statement.
pub const MAX_STATEMENT_BYTES: usize = 100_000;
/// Cloudflare's API, unless `D1_API_BASE` says otherwise (tests point it at a simulator).
pub const DEFAULT_API_BASE: &str = "https://api.cloudflare.com/client/v4";

/// Where the fleet's D1 database is, from `.env`.
#[derive(Debug, Clone)]
pub struct D1Settings {
    pub api_base: String,
    pub account_id: String,
    pub database_id: String,
    pub token: Secret,
    /// `D1_TIMEOUT_SECS`: how long one call may take at the end of a backup.
    pub backup_timeout: Duration,
}

impl D1Settings {
    /// `None` when D1 is not configured at all (none of the three variables set); an error
    /// naming what is missing when it is half configured.
    pub fn from_env(env: &Env) -> anyhow::Result<Option<D1Settings>> {
        // Empty values (as .env.example has them) count as unset.
        let get = |k: &str| env.get(k).filter(|v| !v.trim().is_empty());
        let account = get("CF_ACCOUNT_ID");
        let database = get("D1_DATABASE_ID");
        let token = get("CF_API_TOKEN").map(Secret::new);
        if account.is_none() && database.is_none() && token.is_none() {
            return Ok(None);
        }
        let missing: Vec<&str> = [
            ("CF_ACCOUNT_ID", account.is_none()),
            ("CF_API_TOKEN", token.is_none()),
            ("D1_DATABASE_ID", database.is_none()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(n, _)| *n)
        .collect();
        let (Some(account_id), Some(database_id), Some(token)) = (account, database, token) else {
            anyhow::bail!(
                "D1 is half configured: {} not set in the environment or in {} (set CF_ACCOUNT_ID, CF_API_TOKEN and D1_DATABASE_ID, or none of them)",
                missing.join(", "),
                env.file_path().display()
            );
        };
        let api_base = get("D1_API_BASE")
            .unwrap_or_else(|| DEFAULT_API_BASE.to_string())
            .trim_end_matches('/')
            .to_string();
        // The token travels in a header: plain http only to this machine (a local simulator).
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|p| {
                api_base
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
            });
        if !(api_base.starts_with("https://") || loopback) {
            anyhow::bail!(
                "D1_API_BASE={api_base}: must start with https:// (plain http only to 127.0.0.1 or localhost)"
            );
        }
        let backup_timeout = match get("D1_TIMEOUT_SECS") {
            None => Duration::from_secs(15),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if (1..=30).contains(&n) => Duration::from_secs(n),
                _ => anyhow::bail!(
                    "D1_TIMEOUT_SECS={v}: must be a number of seconds from 1 to 30 (D1 stops a query after 30 s)"
                ),
            },
        };
        Ok(Some(D1Settings {
            backup_timeout,
            api_base,
            account_id,
            database_id,
            token,
        }))
    }

    pub fn query_url(&self) -> String {
        format!(
            "{}/accounts/{}/d1/database/{}/query",
            self.api_base, self.account_id, self.database_id
        )
    }
}

/// How long D1 may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connect_timeout: Duration,
    /// One HTTP call (D1 itself stops a query after 30 s).
    pub request_timeout: Duration,
    /// Attempts per call for transient failures (connection errors, 5xx); a 429 is never retried.
    pub attempts: u32,
    /// All calls together: past it, no new call starts.
    pub deadline: Duration,
}

impl Limits {
    /// `wpbackup sync-d1` on its own: patient.
    pub fn command() -> Limits {
        Limits {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            attempts: 3,
            deadline: Duration::from_secs(600),
        }
    }

    /// At the end of `backup`: short, so that D1 never holds a backup up for long. One call
    /// may take `timeout` (`D1_TIMEOUT_SECS`, default 15 s), everything together three times
    /// that.
    pub fn after_backup(timeout: Duration) -> Limits {
        Limits {
            connect_timeout: timeout.min(Duration::from_secs(5)),
            request_timeout: timeout,
            attempts: 2,
            deadline: timeout * 3,
        }
    }
}

/// One SQL statement and its bound values.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Value>,
}

impl Statement {
    pub fn new(sql: impl Into<String>, params: Vec<Value>) -> Statement {
        Statement {
            sql: sql.into(),
            params,
        }
    }
}

/// One statement's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct QueryResult {
    #[serde(default)]
    pub results: Vec<Map<String, Value>>,
    #[serde(default)]
    pub success: bool,
    #[serde(default)]
    pub meta: Map<String, Value>,
}

impl QueryResult {
    /// Rows the statement changed (`meta.changes`).
    pub fn changes(&self) -> u64 {
        self.meta
            .get("changes")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    result: Option<Vec<QueryResult>>,
    success: bool,
    #[serde(default)]
    errors: Vec<ApiError>,
}

/// Why a D1 call failed.
#[derive(Debug, thiserror::Error)]
pub enum D1Error {
    #[error(
        "D1 refused the API token (HTTP {status}: {message}): check CF_API_TOKEN (it needs the D1 Edit permission) and CF_ACCOUNT_ID in .env"
    )]
    Auth { status: u16, message: String },
    #[error(
        "D1 rate limit reached (HTTP 429: {message}); Cloudflare allows 1,200 API requests per 5 minutes per token{}",
        retry_after.map(|s| format!(", retry after {s} s")).unwrap_or_default()
    )]
    RateLimited {
        retry_after: Option<u64>,
        message: String,
    },
    #[error("D1 answered HTTP {status}: {message}")]
    Api { status: u16, message: String },
    #[error("D1 answered something that is not its JSON envelope (HTTP {status}): {snippet:?}")]
    Garbage { status: u16, snippet: String },
    #[error("cannot reach D1 at {url}: {cause}")]
    Transport { url: String, cause: String },
    #[error("D1 at {url} did not answer within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("D1 did not answer within {0:?}")]
    Deadline(Duration),
}

impl D1Error {
    fn transient(&self) -> bool {
        match self {
            D1Error::Transport { .. } | D1Error::Timeout { .. } => true,
            D1Error::Api { status, .. } | D1Error::Garbage { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// A D1 database to query.
pub struct D1Client {
    http: reqwest::Client,
    url: String,
    token: Secret,
    limits: Limits,
    started: Instant,
}

impl D1Client {
    pub fn new(settings: &D1Settings, limits: Limits) -> anyhow::Result<D1Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.request_timeout)
            .user_agent(concat!("wpbackup/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot set up the HTTP client for D1")?;
        Ok(D1Client {
            http,
            url: settings.query_url(),
            token: settings.token.clone(),
            limits,
            started: Instant::now(),
        })
    }

    /// One statement; its rows.
    pub async fn query(&self, stmt: Statement) -> Result<QueryResult, D1Error> {
        let body = json!({ "sql": stmt.sql, "params": stmt.params });
        let mut results = self.call(&body, 1).await?;
        Ok(results.remove(0))
    }

    /// Several statements in one request (`batch`), one result each, in order.
    pub async fn batch(&self, stmts: &[Statement]) -> Result<Vec<QueryResult>, D1Error> {
        if stmts.len() == 1 {
            return Ok(vec![self.query(stmts[0].clone()).await?]);
        }
        let body = json!({ "batch": stmts });
        self.call(&body, stmts.len()).await
    }

    async fn call(&self, body: &Value, expected: usize) -> Result<Vec<QueryResult>, D1Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let left = self
                .limits
                .deadline
                .checked_sub(self.started.elapsed())
                .filter(|d| !d.is_zero())
                .ok_or(D1Error::Deadline(self.limits.deadline))?;
            let result = match tokio::time::timeout(left, self.call_once(body, expected)).await {
                Ok(r) => r,
                Err(_) => Err(D1Error::Deadline(self.limits.deadline)),
            };
            match result {
                Err(e) if e.transient() && attempt < self.limits.attempts => {
                    tracing::debug!("D1 call failed (attempt {attempt}), retrying: {e}");
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                }
                other => return other,
            }
        }
    }

    async fn call_once(&self, body: &Value, expected: usize) -> Result<Vec<QueryResult>, D1Error> {
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                D1Error::Timeout {
                    url: self.url.clone(),
                    after: self.limits.request_timeout,
                }
            } else {
                D1Error::Transport {
                    url: self.url.clone(),
                    cause: describe_reqwest(&e),
                }
            }
        };
        let resp = self
            .http
            .post(&self.url)
            .bearer_auth(self.token.expose())
            .json(body)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let text = resp.text().await.map_err(transport)?;
        answer(status, retry_after, &text, expected)
    }
}

/// What a D1 answer says: its results when every statement succeeded, else why not.
fn answer(
    status: u16,
    retry_after: Option<u64>,
    text: &str,
    expected: usize,
) -> Result<Vec<QueryResult>, D1Error> {
    let envelope: Envelope = match serde_json::from_str(text) {
        Ok(e) => e,
        Err(_) => {
            if status == 429 {
                return Err(D1Error::RateLimited {
                    retry_after,
                    message: snippet(text),
                });
            }
            return Err(D1Error::Garbage {
                status,
                snippet: snippet(text),
            });
        }
    };
    let message = envelope
        .errors
        .iter()
        .map(|e| format!("{} (code {})", e.message, e.code))
        .collect::<Vec<_>>()
        .join("; ");
    if status == 401 || status == 403 || envelope.errors.iter().any(|e| e.code == 10000) {
        return Err(D1Error::Auth { status, message });
    }
    if status == 429 {
        return Err(D1Error::RateLimited {
            retry_after,
            message,
        });
    }
    if !(200..300).contains(&status) || !envelope.success {
        return Err(D1Error::Api {
            status,
            message: if message.is_empty() {
                "no error message".into()
            } else {
                message
            },
        });
    }
    let results = envelope.result.unwrap_or_default();
    if results.len() != expected || results.iter().any(|r| !r.success) {
        return Err(D1Error::Api {
            status,
            message: format!(
                "{} of {expected} statements reported success",
                results.iter().filter(|r| r.success).count()
            ),
        });
    }
    Ok(results)
}

/// reqwest's error and its causes, which say what actually happened (refused, timed out...).
fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut parts = vec![if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        "request failed".to_string()
    }];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn snippet(text: &str) -> String {
    let t: String = text.chars().take(120).collect();
    if text.chars().count() > 120 {
        format!("{t}...")
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_pairs(vars)
    }

    #[test]
    fn settings_from_env() {
        assert!(D1Settings::from_env(&env(&[])).unwrap().is_none());
        let empty = env(&[
            ("CF_ACCOUNT_ID", ""),
            ("CF_API_TOKEN", ""),
            ("D1_DATABASE_ID", ""),
        ]);
        assert!(
            D1Settings::from_env(&empty).unwrap().is_none(),
            "as in .env.example"
        );
        let err = D1Settings::from_env(&env(&[("CF_ACCOUNT_ID", "a")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CF_API_TOKEN, D1_DATABASE_ID not set"),
            "{err}"
        );
        let s = D1Settings::from_env(&env(&[
            ("CF_ACCOUNT_ID", "acc"),
            ("D1_DATABASE_ID", "db"),
            ("CF_API_TOKEN", "tok"),
            ("D1_API_BASE", "http://127.0.0.1:1/client/v4/"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            s.query_url(),
            "http://127.0.0.1:1/client/v4/accounts/acc/d1/database/db/query"
        );
        assert!(!format!("{s:?}").contains("tok\""));
        assert_eq!(s.backup_timeout, Duration::from_secs(15));
        for (base, ok) in [
            ("http://example.com/client/v4", false),
            ("http://127.0.0.1.example.com/v4", false),
            ("http://localhost:8787/client/v4", true),
            ("https://api.cloudflare.com/client/v4", true),
        ] {
            let r = D1Settings::from_env(&env(&[
                ("CF_ACCOUNT_ID", "acc"),
                ("D1_DATABASE_ID", "db"),
                ("CF_API_TOKEN", "tok"),
                ("D1_API_BASE", base),
            ]));
            assert_eq!(r.is_ok(), ok, "{base}");
        }
        let err = D1Settings::from_env(&env(&[
            ("CF_ACCOUNT_ID", "acc"),
            ("D1_DATABASE_ID", "db"),
            ("CF_API_TOKEN", "tok"),
            ("D1_TIMEOUT_SECS", "90"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("D1_TIMEOUT_SECS=90: must be a number of seconds from 1 to 30"),
            "{err}"
        );
    }
}
