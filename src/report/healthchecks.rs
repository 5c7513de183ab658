//! Dead man's switch: pings to an outside monitor (healthchecks.io, Uptime Kuma, Cronitor...)
//! when a backup run starts, succeeds or fails, so that a server that stops backing up (or
//! stops altogether) is noticed by something that does not depend on it.
//!
//! The URLs come from `healthchecks` in config.json ([`Healthchecks`], validated in
//! `config::healthchecks`). Each ping is a POST whose body says what happened (the fail ping carries the error
//! text, which never holds a secret), with a short timeout. A monitor that is down or slow is
//! a WARNING in the log and never changes the backup's result. Ping URLs often embed a token,
//! so only their host is ever logged.

use crate::config::healthchecks::{Healthchecks, host_of};

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

fn url(checks: &Healthchecks, ping: Ping) -> Option<&str> {
    match ping {
        Ping::Start => checks.start.as_deref(),
        Ping::Success => checks.success.as_deref(),
        Ping::Fail => checks.fail.as_deref(),
    }
}

/// Send one ping; any failure is logged as a warning and otherwise ignored.
pub async fn ping(checks: &Healthchecks, ping: Ping, body: &str) {
    let Some(url) = url(checks, ping) else { return };
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
        .timeout(checks.timeout)
        .connect_timeout(checks.timeout)
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
                format!("no answer within {}s", checks.timeout.as_secs())
            } else if e.is_connect() {
                "cannot connect".to_string()
            } else {
                "request error".to_string()
            }
        ),
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
            handle.block_on(ping(h, Ping::Start, body));
        }
        Monitor { checks, handle }
    }

    pub fn finish(mut self, ok: bool, body: &str) {
        if let Some(h) = self.checks.take() {
            let which = if ok { Ping::Success } else { Ping::Fail };
            self.handle.block_on(ping(&h, which, body));
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Some(h) = self.checks.take() {
            self.handle.block_on(ping(
                &h,
                Ping::Fail,
                "wpbackup stopped before the end of the run (see its log)",
            ));
        }
    }
}
