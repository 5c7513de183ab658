//! The dead man's switch settings: `healthchecks` in config.json, validated into ping URLs
//! (`report::healthchecks` sends the pings).
//!
//! `url` is a base in healthchecks.io's style (`{url}/start`, `{url}` on success,
//! `{url}/fail`); explicit `start`, `success` and `fail` URLs win. Ping URLs often embed a
//! token, so only their host is ever shown ([`host_of`]).

use std::time::Duration;

use serde::Deserialize;

/// `healthchecks` as written in config.json.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthchecks {
    url: Option<String>,
    start: Option<String>,
    success: Option<String>,
    fail: Option<String>,
    timeout_secs: Option<u64>,
}

/// Validated ping URLs.
#[derive(Clone)]
pub struct Healthchecks {
    pub start: Option<String>,
    pub success: Option<String>,
    pub fail: Option<String>,
    pub timeout: Duration,
}

impl std::fmt::Debug for Healthchecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = |u: &Option<String>| u.as_deref().map(host_of);
        f.debug_struct("Healthchecks")
            .field("start", &host(&self.start))
            .field("success", &host(&self.success))
            .field("fail", &host(&self.fail))
            .field("timeout", &self.timeout)
            .finish()
    }
}
/// Why a ping URL was refused.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("must start with https:// (or http://)")]
    NotHttp,
    #[error("not a valid URL: {0}")]
    Invalid(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn check_url(u: &str) -> Result<String, UrlError> {
    let u = u.trim();
    if !(u.starts_with("https://") || u.starts_with("http://")) {
        return Err(UrlError::NotHttp);
    }
    reqwest::Url::parse(u).map_err(|e| UrlError::Invalid(Box::new(e)))?;
    Ok(u.to_string())
}

/// The host of a URL, for logs (ping URLs carry tokens in their paths).
pub fn host_of(u: &str) -> String {
    reqwest::Url::parse(u)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_else(|| "?".into())
}

/// Why the `healthchecks` block was refused; [`HealthchecksError::path`] is the JSON path
/// below `healthchecks`.
#[derive(Debug, thiserror::Error)]
pub enum HealthchecksError {
    #[error("{source}")]
    Url {
        field: &'static str,
        source: UrlError,
    },
    #[error("no ping URL: set \"url\" (healthchecks.io style) or \"start\", \"success\", \"fail\"")]
    NoUrl,
    #[error("must be between 1 and 120")]
    Timeout,
}

impl HealthchecksError {
    /// The JSON path below `healthchecks` (empty: the block itself).
    pub fn path(&self) -> String {
        match self {
            HealthchecksError::Url { field, .. } => format!(".{field}"),
            HealthchecksError::NoUrl => String::new(),
            HealthchecksError::Timeout => ".timeout_secs".into(),
        }
    }
}

impl Healthchecks {
    /// Validate the block as written.
    pub fn from_raw(raw: RawHealthchecks) -> Result<Healthchecks, HealthchecksError> {
        let field = |field: &'static str, v: Option<String>| {
            v.map(|u| check_url(&u).map_err(|source| HealthchecksError::Url { field, source }))
                .transpose()
        };
        let base = field("url", raw.url)?.map(|u| u.trim_end_matches('/').to_string());
        let mut h = Healthchecks {
            start: field("start", raw.start)?,
            success: field("success", raw.success)?,
            fail: field("fail", raw.fail)?,
            timeout: Duration::from_secs(raw.timeout_secs.unwrap_or(10)),
        };
        if let Some(base) = base {
            h.start.get_or_insert_with(|| format!("{base}/start"));
            h.success.get_or_insert_with(|| base.clone());
            h.fail.get_or_insert_with(|| format!("{base}/fail"));
        }
        if h.start.is_none() && h.success.is_none() && h.fail.is_none() {
            return Err(HealthchecksError::NoUrl);
        }
        if !(1..=120).contains(&raw.timeout_secs.unwrap_or(10)) {
            return Err(HealthchecksError::Timeout);
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checks, or the error's (JSON path, message).
    fn raw(v: serde_json::Value) -> Result<Healthchecks, (String, String)> {
        Healthchecks::from_raw(serde_json::from_value(v).unwrap())
            .map_err(|e| (e.path(), e.to_string()))
    }

    #[test]
    fn base_url_and_overrides() {
        let h = raw(serde_json::json!({"url": "https://hc-ping.com/abc/"})).unwrap();
        assert_eq!(h.start.as_deref(), Some("https://hc-ping.com/abc/start"));
        assert_eq!(h.success.as_deref(), Some("https://hc-ping.com/abc"));
        assert_eq!(h.fail.as_deref(), Some("https://hc-ping.com/abc/fail"));
        assert!(!format!("{h:?}").contains("abc"), "{h:?}");
        let h = raw(serde_json::json!({"url": "https://a/x", "fail": "https://b/alert"})).unwrap();
        assert_eq!(h.fail.as_deref(), Some("https://b/alert"));
        let h = raw(serde_json::json!({"success": "http://k/api/push/T?status=up"})).unwrap();
        assert!(h.start.is_none() && h.fail.is_none());
        assert_eq!(raw(serde_json::json!({})).unwrap_err().0, "");
        let (path, msg) = raw(serde_json::json!({"fail": "hc-ping.com/x"})).unwrap_err();
        assert_eq!(path, ".fail");
        assert!(msg.contains("https://"), "{msg}");
        let (path, _) =
            raw(serde_json::json!({"url": "https://a", "timeout_secs": 0})).unwrap_err();
        assert_eq!(path, ".timeout_secs");
    }
}
