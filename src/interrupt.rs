//! SIGTERM and SIGINT during a run (systemd's stop, Ctrl-C): stop cleanly instead of dying
//! with an upload, a download or an import half done.
//!
//! After [`install`], the first signal is remembered and wakes everything waiting in [`wait`]
//! or [`until`]; blocking steps ask [`check`] between pieces of work. In `backup`, an upload in
//! progress sees its body end with an error and aborts (multipart upload aborted, partial file
//! removed), a running dump is stopped, the site is recorded as interrupted and no later site
//! starts; in `restore`, the download or the import stops and what was changed is put back; in
//! `verify`, the check in progress stops. The run exits with 128 + the signal number (130 for
//! SIGINT, 143 for SIGTERM). A second signal exits at once with the same status. The run lock
//! is an `flock`, released by the kernel however the process ends.

use std::sync::atomic::{AtomicI32, Ordering};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

static RECEIVED: AtomicI32 = AtomicI32::new(0);
static NOTIFY: Notify = Notify::const_new();

/// Listen for SIGTERM and SIGINT on `rt` from now on; `stopping` says what the first one does
/// ("aborting the upload in progress").
pub fn install(rt: &tokio::runtime::Runtime, stopping: &'static str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let _guard = rt.enter();
    let cannot = "cannot listen for SIGTERM and SIGINT";
    let mut term = signal(SignalKind::terminate()).context(cannot)?;
    let mut int = signal(SignalKind::interrupt()).context(cannot)?;
    rt.spawn(async move {
        loop {
            let sig = tokio::select! {
                _ = term.recv() => libc::SIGTERM,
                _ = int.recv() => libc::SIGINT,
            };
            if RECEIVED
                .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                tracing::error!("{} again: stopping now", name(sig));
                std::process::exit(128 + RECEIVED.load(Ordering::SeqCst));
            }
            tracing::warn!(
                "{} received: {stopping} (send it again to stop at once)",
                name(sig)
            );
            NOTIFY.notify_waiters();
        }
    });
    Ok(())
}

/// The signal received, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Resolves with the signal number once one has been received (never, without one).
pub async fn wait() -> i32 {
    loop {
        let notified = NOTIFY.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(s) = received() {
            return s;
        }
        notified.await;
    }
}

/// A step stopped because SIGTERM or SIGINT was received (the signal number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {}", name(*.0))]
pub struct Interrupted(pub i32);

/// `Err` once a signal has been received: for blocking work, between two pieces of it.
pub fn check() -> Result<(), Interrupted> {
    match received() {
        Some(sig) => Err(Interrupted(sig)),
        None => Ok(()),
    }
}

/// Run `work` until it ends or a signal is received, whichever comes first (the work is then
/// dropped).
pub async fn until<F: std::future::Future>(work: F) -> Result<F::Output, Interrupted> {
    tokio::select! {
        biased;
        sig = wait() => Err(Interrupted(sig)),
        out = work => Ok(out),
    }
}

/// A line from stdin (a terminal's answer), unless a signal comes first: a read of the
/// terminal is not interrupted by the signal itself, so it runs on a thread of its own.
pub fn read_line() -> anyhow::Result<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = tx.send(std::io::stdin().read_line(&mut line).map(|_| line));
    });
    loop {
        check()?;
        match rx.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(line) => return Ok(line?),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// `SIGTERM`, `SIGINT`.
pub fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "a signal",
    }
}

/// What an interrupted site's row says.
pub fn details(sig: i32, during: &str) -> String {
    format!(
        "interrupted by {} {during}: nothing was stored (the upload in progress was aborted); the next run backs it up",
        name(sig)
    )
}
