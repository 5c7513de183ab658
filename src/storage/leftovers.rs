//! What a dead run left on a storage, removed by the next run.
//!
//! A run killed in the middle of an upload (SIGKILL, out of memory, power lost), or a provider
//! that failed the abort, leaves an S3 multipart upload that was never completed: its parts are
//! kept, and billed, until someone aborts it. A local storage leaves a hidden partial file. Once
//! per run, before the first site, [`after_crash`] asks each usable storage to remove what runs
//! of *this* server left ([`Storage::clean_leftovers`]): only keys that parse as this server's
//! archives ([`super::catalog::is_ours`]), only uploads older than [`min_age`], so that a run still
//! uploading elsewhere under the same server id is not cut off. A failure is a warning; the
//! backup goes on.
//!
//! A storage that cannot list unfinished uploads at all (its server answers `NotImplemented`
//! to ListMultipartUploads: s3s-fs, some providers) is said once, as a WARN, and remembered in
//! [`NOTED_FILE`] in wpbackup's home (by storage name, endpoint and bucket); later runs say it
//! at DEBUG. A storage that lists them again is forgotten, so a later regression warns again.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Storage, StorageError};

/// How old an unfinished upload must be before a run removes it: 12 hours. wpbackup runs daily
/// (`BACKUP_TIME`), so the next day's run removes what a killed run left; an upload of its own
/// still running after 12 hours would be hundreds of gigabytes on a 10 MB/s line, far beyond
/// the sites it backs up, so a live run of the same server id on another host is left alone.
pub const MIN_AGE: Duration = Duration::from_secs(12 * 3600);

/// [`MIN_AGE`]; debug builds (the integration tests) may set it with
/// `WPBACKUP_TEST_LEFTOVER_AGE_SECS`.
pub fn min_age() -> Duration {
    #[cfg(debug_assertions)]
    if let Some(n) = std::env::var("WPBACKUP_TEST_LEFTOVER_AGE_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        return Duration::from_secs(n);
    }
    MIN_AGE
}

/// One leftover removed: its key (relative to the storage's prefix) and its age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub key: String,
    pub age: Duration,
}

/// What one storage's cleanup did.
#[derive(Debug, Default)]
pub struct Cleanup {
    pub removed: Vec<Removed>,
    /// One line per leftover that could not be removed (it is tried again next run).
    pub failed: Vec<String>,
    /// The storage cannot list unfinished uploads at all (NotImplemented): why, in one line.
    pub unsupported: Option<String>,
}

/// The file in wpbackup's home where storages that cannot list unfinished uploads are
/// remembered (JSON: `"name endpoint bucket"` -> the first time it was seen, UTC).
pub const NOTED_FILE: &str = "storages-without-upload-listing.json";

/// The storages already noted in `home`'s [`NOTED_FILE`] (none when it is missing or
/// unreadable: then the warning is said again, which is harmless).
fn noted(home: &Path) -> BTreeMap<String, String> {
    std::fs::read(home.join(NOTED_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Write `noted` to `home`'s [`NOTED_FILE`] atomically (a temporary file, 0600, renamed).
fn save_noted(home: &Path, noted: &BTreeMap<String, String>) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let mut tmp = tempfile::NamedTempFile::new_in(home)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    tmp.write_all(&serde_json::to_vec_pretty(noted).map_err(std::io::Error::other)?)?;
    tmp.as_file().sync_all()?;
    tmp.persist(home.join(NOTED_FILE)).map_err(|e| e.error)?;
    Ok(())
}

/// The key a storage is remembered by: its name, endpoint and bucket.
fn storage_key(st: &dyn Storage) -> String {
    let (endpoint, bucket) = st.location();
    format!("{} {endpoint} {bucket}", st.name())
}

/// The age of something started at `started`, when it is at least `min_age` (else `None`).
pub fn stale(started: DateTime<Utc>, now: DateTime<Utc>, min_age: Duration) -> Option<Duration> {
    let age = (now - started).to_std().ok()?;
    (age >= min_age).then_some(age)
}

/// A duration as a person reads it: `3d 4h`, `5h 12m`, `42m`, `17s`.
pub fn human(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// Ask each storage (those the pre-flight check let through), concurrently, to remove what
/// dead runs of `server_id` left; log each removal and each failure (a warning: the backup
/// goes on). A storage that cannot list them is warned about once per `home` ([`NOTED_FILE`]).
pub async fn after_crash(usable: &[&dyn Storage], server_id: &str, home: &Path) {
    let min_age = min_age();
    let runs = usable
        .iter()
        .map(|st| st.clean_leftovers(server_id, min_age));
    let results = futures_util::future::join_all(runs).await;
    let before = noted(home);
    let mut now_noted = before.clone();
    for (st, result) in usable.iter().zip(results) {
        let key = storage_key(*st);
        match &result {
            Ok(Cleanup {
                unsupported: Some(why),
                ..
            }) => {
                if before.contains_key(&key) {
                    tracing::debug!(
                        storage = st.name(),
                        "cannot look for uploads earlier runs left unfinished: {why} (said once, \
                         noted in {NOTED_FILE})"
                    );
                } else {
                    tracing::warn!(
                        storage = st.name(),
                        "cannot look for uploads earlier runs left unfinished: {why}; the backup \
                         goes on. A lifecycle rule on the bucket that expires incomplete \
                         multipart uploads removes them instead (see README). Said once: later \
                         runs log this at DEBUG"
                    );
                    now_noted.insert(key, Utc::now().format("%Y-%m-%d %H:%M:%S").to_string());
                }
            }
            Ok(_) => {
                now_noted.remove(&key);
            }
            Err(_) => {}
        }
        log(st.name(), result);
    }
    if now_noted != before
        && let Err(e) = save_noted(home, &now_noted)
    {
        tracing::debug!("cannot write {}: {e}", home.join(NOTED_FILE).display());
    }
}

fn log(storage: &str, result: Result<Cleanup, StorageError>) {
    match result {
        Ok(cleanup) => {
            for r in &cleanup.removed {
                tracing::info!(
                    storage,
                    key = %r.key,
                    age = %human(r.age),
                    "removed an upload a run of this server left unfinished"
                );
            }
            for why in &cleanup.failed {
                tracing::warn!(storage, "{why} (tried again next run)");
            }
        }
        Err(e) => tracing::warn!(
            storage,
            "cannot look for uploads earlier runs left unfinished: {e}; the backup goes on. \
             A lifecycle rule on the bucket that expires incomplete multipart uploads removes \
             them instead (see README)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn only_uploads_older_than_the_minimum_are_stale() {
        let now = Utc.with_ymd_and_hms(2026, 1, 2, 3, 0, 0).unwrap();
        let min = Duration::from_secs(12 * 3600);
        let day_before = Utc.with_ymd_and_hms(2026, 1, 1, 3, 0, 5).unwrap();
        assert_eq!(
            stale(day_before, now, min),
            Some(Duration::from_secs(24 * 3600 - 5))
        );
        let hour_before = Utc.with_ymd_and_hms(2026, 1, 2, 2, 0, 0).unwrap();
        assert_eq!(stale(hour_before, now, min), None);
        // A clock that runs behind the provider's: the upload looks new, and is kept.
        let future = Utc.with_ymd_and_hms(2026, 1, 2, 4, 0, 0).unwrap();
        assert_eq!(stale(future, now, min), None);
        assert_eq!(human(Duration::from_secs(24 * 3600 - 5)), "23h 59m");
        assert_eq!(human(Duration::from_secs(3 * 86400 + 7200)), "3d 2h");
    }
}
