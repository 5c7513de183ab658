//! Dead man's switch: pings to an outside monitor (healthchecks.io, Uptime Kuma, Cronitor...)
//! when a backup run starts, succeeds or fails, so that a server that stops backing up (or
//! stops altogether) is noticed by something that does not depend on it.
//!
//! `healthchecks` in config.json gives a base `url` in healthchecks.io's style (`{url}/start`,
//! `{url}` on success, `{url}/fail`) and/or explicit `start`, `success` and `fail` URLs, which
//! win. Each ping is a POST whose body says what happened (the fail ping carries the error
//! text, which never holds a secret), with a short timeout. A monitor that is down or slow is
//! a WARNING in the log and never changes the backup's result. Ping URLs often embed a token,
//! so only their host is ever logged.

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

/// Largest body sent (healthchecks.io keeps 100 kB of it).
const MAX_BODY: usize = 10_000;

/// Which ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ping {
    Start,
    Success,
    Fail,
}

impl Ping {
    fn as_str(self) -> &'static str {
        match self {
            Ping::Start => "start",
            Ping::Success => "success",
            Ping::Fail => "fail",
        }
    }
}

fn check_url(u: &str) -> Result<String, String> {
    let u = u.trim();
    if !(u.starts_with("https://") || u.starts_with("http://")) {
        return Err("must start with https:// (or http://)".into());
    }
    reqwest::Url::parse(u).map_err(|e| format!("not a valid URL: {e}"))?;
    Ok(u.to_string())
}

/// The host of a URL, for logs (ping URLs carry tokens in their paths).
fn host_of(u: &str) -> String {
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

impl Healthchecks {
    /// Validate; errors are (JSON path below `healthchecks`, message).
    pub fn from_raw(raw: RawHealthchecks) -> Result<Healthchecks, (String, String)> {
        let field = |name: &str, v: Option<String>| -> Result<Option<String>, (String, String)> {
            v.map(|u| check_url(&u).map_err(|m| (format!(".{name}"), m)))
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
            return Err((
                String::new(),
                "no ping URL: set \"url\" (healthchecks.io style) or \"start\", \"success\", \"fail\""
                    .into(),
            ));
        }
        if !(1..=120).contains(&raw.timeout_secs.unwrap_or(10)) {
            return Err((".timeout_secs".into(), "must be between 1 and 120".into()));
        }
        Ok(h)
    }

    fn url(&self, ping: Ping) -> Option<&str> {
        match ping {
            Ping::Start => self.start.as_deref(),
            Ping::Success => self.success.as_deref(),
            Ping::Fail => self.fail.as_deref(),
        }
    }

    /// Send one ping; any failure is logged as a warning and otherwise ignored.
    pub async fn ping(&self, ping: Ping, body: &str) {
        let Some(url) = self.url(ping) else { return };
        let mut body = body.to_string();
        if body.len() > MAX_BODY {
            let mut end = MAX_BODY;
            while !body.is_char_boundary(end) {
                end -= 1;
            }
            body.truncate(end);
            body.push_str("\n...");
        }
        let client = match reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .user_agent(concat!("wpbackup/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("healthchecks: cannot build an HTTP client: {e}");
                return;
            }
        };
        let host = host_of(url);
        let sent = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                tracing::debug!("healthchecks: {} ping sent to {host}", ping.as_str());
            }
            Ok(r) => tracing::warn!(
                "healthchecks: the {} ping to {host} was answered with HTTP {}; the backup itself is not affected",
                ping.as_str(),
                r.status().as_u16()
            ),
            Err(e) => tracing::warn!(
                "healthchecks: the {} ping to {host} failed ({}); the backup itself is not affected",
                ping.as_str(),
                if e.is_timeout() {
                    format!("no answer within {}s", self.timeout.as_secs())
                } else if e.is_connect() {
                    "cannot connect".to_string()
                } else {
                    "request error".to_string()
                }
            ),
        }
    }
}

/// One run's pings: `start` when created, then `success` or `fail` once. Dropped without
/// [`Monitor::finish`] (an early error), it sends `fail`.
pub struct Monitor {
    checks: Option<Healthchecks>,
    handle: tokio::runtime::Handle,
}

impl Monitor {
    pub fn start(
        checks: Option<Healthchecks>,
        handle: tokio::runtime::Handle,
        body: &str,
    ) -> Monitor {
        if let Some(h) = &checks {
            handle.block_on(h.ping(Ping::Start, body));
        }
        Monitor { checks, handle }
    }

    pub fn finish(mut self, ok: bool, body: &str) {
        if let Some(h) = self.checks.take() {
            let ping = if ok { Ping::Success } else { Ping::Fail };
            self.handle.block_on(h.ping(ping, body));
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Some(h) = self.checks.take() {
            self.handle.block_on(h.ping(
                Ping::Fail,
                "wpbackup stopped before the end of the run (see its log)",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(v: serde_json::Value) -> Result<Healthchecks, (String, String)> {
        Healthchecks::from_raw(serde_json::from_value(v).unwrap())
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
