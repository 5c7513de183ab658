//! Failover: which storage takes an archive.
//!
//! Before a run every storage is checked at once ([`preflight`]); one that does not answer is
//! skipped, with the reason kept. Then, for each archive, the usable storages are tried in
//! priority order ([`store`]): a *source* error (the archive itself could not be made) stops,
//! since another storage would not help; a storage error moves on to the next storage, and its
//! reason is kept for the result.

use super::Storage;

/// A storage and whether the pre-flight check let it through.
pub struct Target {
    pub storage: Box<dyn Storage>,
    /// Why the pre-flight check failed (the storage is then never tried).
    pub skip: Option<String>,
}

impl Target {
    pub fn usable(&self) -> bool {
        self.skip.is_none()
    }
}

/// Check every storage concurrently; those that fail are kept, marked skipped with the reason.
pub async fn preflight(storages: Vec<Box<dyn Storage>>) -> Vec<Target> {
    let checks = storages.iter().map(|s| s.check());
    let results = futures_util::future::join_all(checks).await;
    storages
        .into_iter()
        .zip(results)
        .map(|(storage, r)| {
            let skip = r.err().map(|e| {
                tracing::warn!(
                    storage = storage.name(),
                    "storage unavailable, skipped: {e}"
                );
                e.to_string()
            });
            Target { storage, skip }
        })
        .collect()
}

/// The storages that passed the pre-flight check, in priority order.
pub fn usable(targets: &[Target]) -> Vec<&dyn Storage> {
    targets
        .iter()
        .filter(|t| t.usable())
        .map(|t| t.storage.as_ref())
        .collect()
}

/// Why one attempt on one storage failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// The archive itself could not be made: no other storage would do better.
    #[error("{0:#}")]
    Source(anyhow::Error),
    /// The run must stop now (a signal); the message is the whole story.
    #[error("{0}")]
    Stop(String),
    /// This storage failed; the next one may take the archive.
    #[error("{0:#}")]
    Storage(anyhow::Error),
}

/// An archive stored: by which storage, at which position, after which failures.
#[derive(Debug)]
pub struct Stored<T> {
    pub value: T,
    pub storage: String,
    /// Index in priority order, counting skipped storages (0: the first choice took it).
    pub position: usize,
    /// `name skipped: why` and `name: why` of the storages before it.
    pub failed_first: Vec<String>,
}

/// Why no storage took the archive.
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    #[error("not stored: no storage available ({})", .0.join("; "))]
    NoneAvailable(Vec<String>),
    #[error("not stored: {0:#}")]
    Source(anyhow::Error),
    #[error("{0}")]
    Stopped(String),
    #[error("not stored on any storage: {}", .0.join("; "))]
    AllFailed(Vec<String>),
}

/// The reasons of the storages the pre-flight check skipped.
pub fn skipped(targets: &[Target]) -> Vec<String> {
    targets
        .iter()
        .filter_map(|t| {
            t.skip
                .as_ref()
                .map(|why| format!("{} skipped: {why}", t.storage.name()))
        })
        .collect()
}

/// Fail early, before any work, when no storage passed the pre-flight check.
pub fn ensure_any(targets: &[Target]) -> Result<(), FailoverError> {
    if targets.iter().any(Target::usable) {
        Ok(())
    } else {
        Err(FailoverError::NoneAvailable(skipped(targets)))
    }
}

/// Try `attempt` on each usable storage in priority order until one takes the archive.
pub fn store<T>(
    targets: &[Target],
    mut attempt: impl FnMut(&dyn Storage) -> Result<T, AttemptError>,
) -> Result<Stored<T>, FailoverError> {
    ensure_any(targets)?;
    let mut reasons = skipped(targets);
    for (position, target) in targets.iter().enumerate().filter(|(_, t)| t.usable()) {
        let st = target.storage.as_ref();
        match attempt(st) {
            Ok(value) => {
                return Ok(Stored {
                    value,
                    storage: st.name().to_string(),
                    position,
                    failed_first: reasons,
                });
            }
            Err(AttemptError::Source(e)) => return Err(FailoverError::Source(e)),
            Err(AttemptError::Stop(why)) => return Err(FailoverError::Stopped(why)),
            Err(AttemptError::Storage(e)) => reasons.push(format!("{}: {e:#}", st.name())),
        }
    }
    Err(FailoverError::AllFailed(reasons))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::local::LocalStorage;
    use crate::storage::{Body, StorageError};
    use bytes::Bytes;
    use tokio::io::AsyncReadExt;

    /// A storage that cannot work: its root is a regular file.
    fn broken(dir: &std::path::Path, name: &str) -> Box<dyn Storage> {
        let file = dir.join(format!("{name}-is-a-file"));
        std::fs::write(&file, b"x").unwrap();
        Box::new(LocalStorage::new(name, file.join("archives")))
    }

    fn good(dir: &std::path::Path, name: &str) -> Box<dyn Storage> {
        Box::new(LocalStorage::new(name, dir.join(name)))
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// The attempt the backup makes, reduced: stream `data` into the storage.
    fn put(
        rt: &tokio::runtime::Runtime,
        st: &dyn Storage,
        data: &[u8],
    ) -> Result<u64, AttemptError> {
        let (tx, body) = Body::channel(2);
        let data = Bytes::copy_from_slice(data);
        rt.spawn(async move {
            let _ = tx.send(Ok(data)).await;
        });
        match rt.block_on(st.put("srv/site/site_1.tar.zst", body)) {
            Ok(out) => Ok(out.size),
            Err(StorageError::Source(e)) => Err(AttemptError::Source(e.into())),
            Err(e) => Err(AttemptError::Storage(e.into())),
        }
    }

    fn read(rt: &tokio::runtime::Runtime, st: &dyn Storage) -> Vec<u8> {
        let mut got = Vec::new();
        rt.block_on(async {
            let mut r = st.get("srv/site/site_1.tar.zst").await.unwrap();
            r.read_to_end(&mut got).await.unwrap();
        });
        got
    }

    #[test]
    fn a_failing_primary_hands_over_to_the_secondary() {
        let dir = tempfile::tempdir().unwrap();
        let rt = rt();
        // The primary passes the check only when its root is checked lazily; mark it usable
        // by hand so the upload itself fails.
        let targets = vec![
            Target {
                storage: broken(dir.path(), "primary"),
                skip: None,
            },
            Target {
                storage: good(dir.path(), "secondary"),
                skip: None,
            },
        ];
        let stored = store(&targets, |st| put(&rt, st, b"archive bytes")).unwrap();
        assert_eq!(stored.storage, "secondary");
        assert_eq!(stored.position, 1);
        assert_eq!(stored.value, 13);
        assert_eq!(stored.failed_first.len(), 1);
        assert!(
            stored.failed_first[0].starts_with("primary: "),
            "{:?}",
            stored.failed_first
        );
        assert_eq!(read(&rt, targets[1].storage.as_ref()), b"archive bytes");
    }

    #[test]
    fn preflight_skips_the_broken_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let rt = rt();
        let storages = vec![broken(dir.path(), "primary"), good(dir.path(), "secondary")];
        let targets = rt.block_on(preflight(storages));
        assert!(!targets[0].usable());
        assert!(targets[1].usable());
        let stored = store(&targets, |st| put(&rt, st, b"abc")).unwrap();
        assert_eq!((stored.storage.as_str(), stored.position), ("secondary", 1));
        assert!(
            stored.failed_first[0].starts_with("primary skipped: "),
            "{:?}",
            stored.failed_first
        );
        assert_eq!(read(&rt, targets[1].storage.as_ref()), b"abc");
    }

    #[test]
    fn all_failing_gives_each_reason() {
        let dir = tempfile::tempdir().unwrap();
        let rt = rt();
        let targets: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|n| Target {
                storage: broken(dir.path(), n),
                skip: None,
            })
            .collect();
        let err = store(&targets, |st| put(&rt, st, b"abc")).unwrap_err();
        let FailoverError::AllFailed(reasons) = &err else {
            panic!("{err}");
        };
        assert_eq!(reasons.len(), 2);
        assert!(reasons[0].starts_with("a: ") && reasons[1].starts_with("b: "));
        assert!(
            err.to_string()
                .starts_with("not stored on any storage: a: ")
        );

        let skipped = rt.block_on(preflight(vec![broken(dir.path(), "c")]));
        let err = store(&skipped, |st| put(&rt, st, b"abc")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("not stored: no storage available (c skipped: "),
            "{err}"
        );
    }

    #[test]
    fn a_source_error_stops_at_the_first_storage() {
        let dir = tempfile::tempdir().unwrap();
        let targets: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|n| Target {
                storage: good(dir.path(), n),
                skip: None,
            })
            .collect();
        let mut tried = Vec::new();
        let err = store::<()>(&targets, |st| {
            tried.push(st.name().to_string());
            Err(AttemptError::Source(
                anyhow::anyhow!("access denied").context("database dump failed"),
            ))
        })
        .unwrap_err();
        assert_eq!(tried, vec!["a"]);
        assert_eq!(
            err.to_string(),
            "not stored: database dump failed: access denied"
        );
    }
}
