//! The restored tree moved into place: the live directory moved aside (kept, named with the
//! time, made private) and the staged one renamed into its place, the old one put back if that
//! fails.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rustix::fs::{FileType, Mode};

use crate::reader::stage::Staging;

/// Move `target` aside to `<target>.before-restore-<time>` (when it exists) and the staged
/// tree into its place. Returns where the old tree went.
///
/// Everything happens relative to the handle of the directory the staging directory was made
/// in (the target's parent, which the site's owner may be able to change): the renames are
/// `renameat`s (a symlink planted at the target's name is moved aside itself, never followed),
/// and the old tree is made private through a handle opened without following a link, only
/// when it is the directory that was there (same inode) and it is the parent's owner's (or the
/// parent is root's): never a directory the parent's owner swapped in.
pub fn swap_into_place(
    staging: Staging,
    target: &Path,
    stamp: &str,
) -> anyhow::Result<Option<PathBuf>> {
    let name = target
        .file_name()
        .with_context(|| format!("{} has no name to restore to", target.display()))?;
    let parent = &staging.parent;
    let shown = |n: &std::ffi::OsStr| parent.path().join(n);
    let live = parent
        .stat(name)
        .with_context(|| format!("cannot look at {}", target.display()))?;
    let aside = match &live {
        Some(_) => {
            let aside = parent.free_name(name, &format!(".before-restore-{stamp}"));
            parent.rename(name, parent, &aside).with_context(|| {
                format!(
                    "cannot move {} aside to {}",
                    target.display(),
                    shown(&aside).display()
                )
            })?;
            Some(aside)
        }
        None => None,
    };
    let moved = staging
        .dir()
        .and_then(|d| Ok(d.rename("files".as_ref(), parent, name)?));
    if let Err(e) = moved {
        if let Some(aside) = &aside {
            let _ = parent.rename(aside, parent, name);
        }
        return Err(e)
            .with_context(|| format!("cannot move the restored files to {}", target.display()));
    }
    // The old tree keeps its PHP: not web-reachable or readable by others from now on. Done
    // once the restored tree is in place, so that a failure here never leaves the site gone.
    if let (Some(a), Some(was)) = (&aside, &live)
        && FileType::from_raw_mode(was.st_mode) == FileType::Directory
        && let Err(e) = make_private(parent, a, was)
    {
        tracing::warn!(
            "cannot make {} private ({e}): its old PHP may still be reachable; run chmod 700 on it or remove it",
            shown(a).display()
        );
    }
    let aside = aside.map(|a| shown(&a));
    drop(staging);
    Ok(aside)
}

/// `name` in `parent` (the tree just moved aside) made 0700 through its own handle, when it is
/// still the directory `was` and its owner is the parent's (or only root can change the parent).
fn make_private(
    parent: &crate::reader::handles::Dir,
    name: &std::ffi::OsStr,
    was: &rustix::fs::Stat,
) -> std::io::Result<()> {
    let dir = parent.open_dir(name)?;
    let st = dir.fstat()?;
    let held = parent.fstat()?;
    let parents_own = (held.st_uid == 0 && held.st_mode & 0o022 == 0) || st.st_uid == held.st_uid;
    if (st.st_dev, st.st_ino) != (was.st_dev, was.st_ino) || !parents_own {
        return Err(std::io::Error::other(
            "another directory was put in its place since it was moved aside",
        ));
    }
    rustix::fs::fchmod(&dir, Mode::from_raw_mode(0o700))?;
    Ok(())
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
        let parent = crate::reader::handles::Dir::open(dir.path()).unwrap();
        let made = Staging::create(parent, "site.restoring-x".as_ref()).unwrap();
        std::fs::create_dir(made.anchored().join("files")).unwrap();
        std::fs::write(made.anchored().join("files/new.txt"), "new").unwrap();
        let staging = made.path();
        let aside = swap_into_place(made, &target, "T").unwrap().unwrap();
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
