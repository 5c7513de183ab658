//! The restored tree moved into place: the live directory moved aside (kept, named with the
//! time, made private) and the staged one renamed into its place, the old one put back if that
//! fails.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::reader::stage::{Staging, sibling};

/// Move `target` aside to `<target>.before-restore-<time>` (when it exists) and the staged
/// tree into its place. Returns where the old tree went.
pub fn swap_into_place(
    staging: Staging,
    target: &Path,
    stamp: &str,
) -> anyhow::Result<Option<PathBuf>> {
    let files = staging.dir.join("files");
    let aside = if target.symlink_metadata().is_ok() {
        let aside = sibling(target, &format!(".before-restore-{stamp}"));
        std::fs::rename(target, &aside).with_context(|| {
            format!(
                "cannot move {} aside to {}",
                target.display(),
                aside.display()
            )
        })?;
        Some(aside)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(&files, target) {
        if let Some(aside) = &aside {
            let _ = std::fs::rename(aside, target);
        }
        return Err(e)
            .with_context(|| format!("cannot move the restored files to {}", target.display()));
    }
    drop(staging);
    // The old tree keeps its PHP: not web-reachable or readable by others from now on. Done
    // once the restored tree is in place, so that a failure here never leaves the site gone.
    if let Some(a) = aside
        .as_ref()
        .filter(|a| a.symlink_metadata().is_ok_and(|m| m.is_dir()))
        && let Err(e) = std::fs::set_permissions(a, std::fs::Permissions::from_mode(0o700))
    {
        tracing::warn!(
            "cannot make {} private ({e}): its old PHP may still be reachable; run chmod 700 on it or remove it",
            a.display()
        );
    }
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_keeps_the_old_tree() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("site");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("old.txt"), "old").unwrap();
        let staging = dir.path().join("site.restoring-x");
        std::fs::create_dir_all(staging.join("files")).unwrap();
        std::fs::write(staging.join("files/new.txt"), "new").unwrap();
        let aside = swap_into_place(
            Staging {
                dir: staging.clone(),
            },
            &target,
            "T",
        )
        .unwrap()
        .unwrap();
        assert_eq!(aside, dir.path().join("site.before-restore-T"));
        assert_eq!(
            std::fs::read_to_string(aside.join("old.txt")).unwrap(),
            "old"
        );
        assert_eq!(
            std::fs::read_to_string(target.join("new.txt")).unwrap(),
            "new"
        );
        assert!(!staging.exists());
    }
}
