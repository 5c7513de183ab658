//! The drill's scratch directory: `wpbackup-drill-<site>-<time>-<pid>` in the temporary
//! directory (`TMPDIR`, else `/tmp`; the systemd unit sets `/var/tmp`), private (`0700`),
//! created only after the free space was checked, and removed with everything in it when
//! dropped, whether the drill passed, failed or was interrupted. One a killed drill left behind
//! is removed by the next drill once it is a day old.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chrono::{DateTime, NaiveDateTime, Utc};

/// Names of scratch directories (and the time format in them).
const PREFIX: &str = "wpbackup-drill-";
const TIME: &str = "%Y%m%dT%H%M%SZ";

/// A scratch directory, removed when dropped.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Create the scratch directory of `site` in `parent` once `needed` bytes are free there.
    pub fn create(parent: &Path, site: &str, needed: u64) -> anyhow::Result<ScratchDir> {
        ensure_space(parent, needed)?;
        let name = format!(
            "{PREFIX}{site}-{}-{}",
            Utc::now().format(TIME),
            std::process::id()
        );
        let path = parent.join(name);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("cannot create the scratch directory {}", path.display()))?;
        Ok(ScratchDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::error!(
                "cannot remove the drill's scratch directory {}: {e}; remove it by hand",
                self.path.display()
            );
        }
    }
}

/// Bytes free for us in the file system of `dir`.
fn free_bytes(dir: &Path) -> anyhow::Result<u64> {
    let st = rustix::fs::statvfs(dir)
        .with_context(|| format!("cannot read the free space of {}", dir.display()))?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Refuse to start when `dir` has less than `needed` bytes free.
pub fn ensure_space(dir: &Path, needed: u64) -> anyhow::Result<()> {
    let free = free_bytes(dir)?;
    if free < needed {
        bail!(
            "not enough disk space for the drill in {}: {} free, about {} needed (twice the archive's size); free some, or point TMPDIR at a larger disk; nothing was restored",
            dir.display(),
            crate::output::human_bytes(free),
            crate::output::human_bytes(needed)
        );
    }
    Ok(())
}

/// The time in a scratch name (`wpbackup-drill-<site>-<time>-<pid>`, or a database's).
pub fn stamp_of(name: &str) -> Option<DateTime<Utc>> {
    name.split(['-', '_']).find_map(|part| {
        NaiveDateTime::parse_from_str(&part.to_ascii_uppercase(), TIME)
            .ok()
            .map(|t| t.and_utc())
    })
}

/// Remove the scratch directories in `parent` that killed drills left, once a day old.
/// Returns what was removed.
pub fn remove_leftovers(parent: &Path, now: DateTime<Utc>) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let old = name.starts_with(PREFIX)
            && stamp_of(&name).is_some_and(|t| now - t > chrono::Duration::days(1));
        // A directory of our own making, never a link to one.
        if old && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let path = entry.path();
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {
                    tracing::warn!(
                        "removed {}, left by a drill that was killed",
                        path.display()
                    );
                    removed.push(path);
                }
                Err(e) => tracing::warn!("cannot remove {}: {e}", path.display()),
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_private_removed_on_drop_and_refused_without_space() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let s = ScratchDir::create(dir.path(), "blog", 1).unwrap();
        let path = s.path().to_path_buf();
        std::fs::create_dir(path.join("x")).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        drop(s);
        assert!(!path.exists());
        let e = ScratchDir::create(dir.path(), "blog", u64::MAX).unwrap_err();
        assert!(e.to_string().contains("not enough disk space"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn only_old_leftovers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let old = dir.path().join(format!(
            "{PREFIX}blog-{}-12",
            (now - chrono::Duration::days(2)).format(TIME)
        ));
        let young = dir
            .path()
            .join(format!("{PREFIX}blog-{}-13", now.format(TIME)));
        let other = dir.path().join("wpbackup-drill-notes");
        for d in [&old, &young, &other] {
            std::fs::create_dir(d).unwrap();
        }
        assert_eq!(remove_leftovers(dir.path(), now), vec![old.clone()]);
        assert!(!old.exists() && young.exists() && other.exists());
        assert_eq!(
            stamp_of("wpbdrill_blog_20261125t030000z_00ab").map(|t| t.to_rfc3339()),
            Some("2026-11-25T03:00:00+00:00".into())
        );
    }
}
