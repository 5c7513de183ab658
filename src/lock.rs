//! The run lock: one `backup`, `restore` or `prune` at a time per home directory (and
//! `restore --only` when it writes into a site's directory; `drill` has a lock of its own).
//!
//! An advisory `flock` on `<home>/wpbackup.lock`, taken without waiting. The kernel releases it
//! when the process ends, however it ends (even SIGKILL), so a stale lock cannot block later
//! runs; the file's content (pid and start time) is only there to tell a person who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Another run holds the lock (exit status 75).
#[derive(Debug, thiserror::Error)]
#[error(
    "another wpbackup run holds the lock {path} ({holder}); wait for it to finish, or check it with `cat {path}`"
)]
pub struct LockedError {
    pub path: PathBuf,
    pub holder: String,
}

/// Held while alive; released on drop (or by the kernel when the process dies).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    pub fn acquire(path: &Path) -> anyhow::Result<RunLock> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(path)
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                return Err(LockedError {
                    path: path.to_path_buf(),
                    holder: if holder.is_empty() {
                        "unknown holder".into()
                    } else {
                        holder
                    },
                }
                .into());
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        file.set_len(0).ok();
        let _ = write!(
            file,
            "pid {} since {}",
            std::process::id(),
            chrono::Utc::now().to_rfc3339()
        );
        Ok(RunLock { _file: file })
    }
}
