//! One HTTP client for D1's query endpoint: the request and response shapes, retries of
//! transient failures within a deadline, and errors a person can act on.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{D1Settings, Limits};
use crate::secret::Secret;

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
