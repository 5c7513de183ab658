//! SIGTERM and SIGINT during a run (systemd's stop, Ctrl-C): stop cleanly instead of dying
//! with an upload half done.
//!
//! After [`install`], the first signal is remembered and wakes everything waiting in [`wait`]:
//! an upload in progress sees its body end with an error and aborts (multipart upload aborted,
//! partial file removed), a running dump is stopped, the site is recorded as interrupted, no
//! later site starts, and the run exits with 128 + the signal number (130 for SIGINT, 143 for
//! SIGTERM). A second signal exits at once with the same status. The run lock is an `flock`,
//! released by the kernel however the process ends.

use std::sync::atomic::{AtomicI32, Ordering};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

static RECEIVED: AtomicI32 = AtomicI32::new(0);
static NOTIFY: Notify = Notify::const_new();

/// Listen for SIGTERM and SIGINT on `rt` from now on.
pub fn install(rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let _guard = rt.enter();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
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
                "{} received: aborting the upload in progress and stopping (send it again to stop at once)",
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
