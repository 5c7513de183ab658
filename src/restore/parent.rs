//! The site's `wp-config.php` from the directory above it (`parent/wp-config.php` in the
//! archive), put back where WordPress loads it: beside the restored site.
//!
//! In place, into the site's parent directory; with `--to DIR`, into DIR's parent, rewritten
//! as the site's own `wp-config.php` is for a clone (database name, directory, address).
//! Before anything live is touched ([`check`]) a restore refuses a parent directory that is a
//! WordPress root itself (WordPress would not load the file there, and the one there is that
//! install's) and, for a clone, a parent whose `wp-config.php` another WordPress root in it
//! loads (another site's configuration). A different `wp-config.php` already there is named
//! among what the restore replaces (asked on the terminal, or `--yes`) and kept as
//! `wp-config.php.before-restore-<time>`, mode 0600. The new file is written to a temporary
//! file in the same directory, with the archived mode (and owner, as root), then renamed over
//! the old one: never written through a symlink, never seen half-written. That directory
//! may be the site owner's (`/home/alice` for `/home/alice/public_html`): it is opened once by
//! handle ([`Dir::open`]) and everything happens relative to it (`openat` with `O_EXCL` and
//! `O_NOFOLLOW`, `fchown`/`fchmod` on the open file, `renameat`).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use rustix::fs::{FileType, Mode, OFlags};

use crate::reader::handles::Dir;
use crate::reader::unpack::ParentConfig;
use crate::restore::wp_config;
use crate::site::root;

/// What the destination holds before the restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Nothing,
    /// The archived file, byte for byte (an in-place restore leaves it alone).
    Same,
    /// Another file, or a symlink: moved aside, kept.
    Different,
}

/// How a clone's copy is rewritten, as its own `wp-config.php` is.
#[derive(Debug, Clone, Copy)]
pub struct Rewrite<'a> {
    /// Every `DB_NAME` definition set to this database.
    pub db_name: Option<&'a str>,
    /// Every `DB_USER` and `DB_PASSWORD` definition set to the clone's own user.
    pub user: Option<(&'a str, &'a crate::secret::Secret)>,
    /// (old, new) directory and address pairs.
    pub pairs: &'a [(String, String)],
    /// A network's new `DOMAIN_CURRENT_SITE` and `PATH_CURRENT_SITE`.
    pub network: Option<(&'a str, &'a str)>,
}

/// Where the archived parent `wp-config.php` goes, checked.
#[derive(Debug)]
pub struct Placement {
    /// `<parent of the target>/wp-config.php`.
    pub dest: PathBuf,
    pub existing: Existing,
    archived: ParentConfig,
    /// The parent of the target, by handle.
    dir: Dir,
}

const NAME: &str = "wp-config.php";

/// The regular file `name` of `dir`, read without following a link (`None`: anything else).
fn read_file(dir: &Dir, name: &OsStr) -> Option<Vec<u8>> {
    use std::io::Read;
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return None;
    }
    let mut data = Vec::new();
    std::fs::File::from(fd)
        .take(16 * 1024 * 1024)
        .read_to_end(&mut data)
        .ok()?;
    Some(data)
}

/// Where `archived` goes for a restore of the files into `target` (`clone`: not the site's
/// own path), refusing a destination that belongs to another WordPress install.
pub fn check(target: &Path, clone: bool, archived: &ParentConfig) -> anyhow::Result<Placement> {
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .with_context(|| format!("{} has no parent directory", target.display()))?;
    let dest = parent.join("wp-config.php");
    if parent.join("wp-settings.php").exists() {
        bail!(
            "the archive holds the site's wp-config.php from the directory above it, but {} is a WordPress install itself (it holds wp-settings.php): WordPress would not load a wp-config.php there for {}, and the one there is that install's. Restore with --to DIR into a directory whose parent is not a WordPress install; nothing was changed",
            parent.display(),
            target.display()
        );
    }
    if clone {
        let name = target.file_name();
        if let Some(other) = root::roots_reading(parent)
            .into_iter()
            .find(|r| r.file_name() != name)
        {
            bail!(
                "{} is the wp-config.php WordPress loads for the site in {}: the clone's cannot replace it. Restore with --to DIR into a directory whose parent holds no other WordPress site; nothing was changed",
                dest.display(),
                other.display()
            );
        }
    }
    let dir = Dir::open(parent)?;
    let existing = match dir.stat(OsStr::new(NAME)) {
        Ok(None) => Existing::Nothing,
        Err(e) => return Err(e).with_context(|| format!("cannot look at {}", dest.display())),
        Ok(Some(_))
            if !clone && read_file(&dir, OsStr::new(NAME)) == Some(archived.data.clone()) =>
        {
            Existing::Same
        }
        Ok(Some(_)) => Existing::Different,
    };
    Ok(Placement {
        dest,
        existing,
        archived: archived.clone(),
        dir,
    })
}

/// `<file><suffix>`, the name the replaced file is kept under.
fn kept_suffix(stamp: &str) -> String {
    format!(".before-restore-{stamp}")
}

impl Placement {
    /// What placing it replaces, in words (for the confirmation).
    pub fn replaces(&self, stamp: &str) -> Option<String> {
        (self.existing == Existing::Different).then(|| {
            format!(
                "{} (kept as wp-config.php{})",
                self.dest.display(),
                kept_suffix(stamp)
            )
        })
    }

    /// Write the file to a temporary file beside its destination: the archived content, or
    /// that content rewritten for a clone. `None` when the destination holds exactly that
    /// already.
    pub fn prepare(&self, rewrite: Option<Rewrite>) -> anyhow::Result<Option<Prepared>> {
        use std::io::Write;
        let a = &self.archived;
        let content = match rewrite {
            Some(r) => {
                let text = String::from_utf8_lossy(&a.data);
                let point = wp_config::Point {
                    db_name: r.db_name,
                    user: r.user,
                    network: r.network,
                };
                wp_config::rewrite_wp_config_to(&text, point, r.pairs)
                    .context("cannot rewrite the archive's parent/wp-config.php for the copy")?
                    .into_bytes()
            }
            None => a.data.clone(),
        };
        if read_file(&self.dir, OsStr::new(NAME)).as_ref() == Some(&content) {
            return Ok(None);
        }
        let cannot = || format!("cannot write a new {}", self.dest.display());
        let dir = self.dir.try_clone().with_context(cannot)?;
        let tmp = dir.free_name(
            OsStr::new(".wp-config.php.wpbackup-"),
            &format!("{}", std::process::id()),
        );
        // Created new (never an existing file, never through a link), private until it is
        // complete; owner and mode set on the open file.
        let fd = rustix::fs::openat(
            &dir,
            &tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(std::io::Error::from)
        .with_context(cannot)?;
        let prepared = Prepared {
            dir,
            tmp,
            dest: self.dest.clone(),
            placed: false,
        };
        let mut f = std::fs::File::from(fd);
        f.write_all(&content).with_context(cannot)?;
        if let Some((uid, gid)) = a.owner.filter(|_| rustix::process::geteuid().is_root()) {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).with_context(cannot)?;
        }
        // Never setuid nor setgid (see unpack's `in_site`).
        rustix::fs::fchmod(&f, Mode::from_raw_mode(a.mode & 0o1777))
            .map_err(std::io::Error::from)
            .with_context(cannot)?;
        let _ = f.set_modified(a.mtime);
        f.sync_all().with_context(cannot)?;
        Ok(Some(prepared))
    }
}

/// The new parent `wp-config.php`, written beside its destination, not yet in place.
pub struct Prepared {
    /// The destination's directory, by handle.
    dir: Dir,
    /// The new file's temporary name there.
    tmp: OsString,
    dest: PathBuf,
    placed: bool,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.placed {
            let _ = self.dir.remove(&self.tmp, false);
        }
    }
}

impl Prepared {
    /// Move what is at the destination aside (kept as `wp-config.php.before-restore-<stamp>`,
    /// mode 0600 unless it is a symlink) and the new file into its place. Returns where the
    /// old one went.
    pub fn put(mut self, stamp: &str) -> anyhow::Result<Option<PathBuf>> {
        let (dir, name) = (&self.dir, OsStr::new(NAME));
        let dest = self.dest.clone();
        let shown = |n: &OsStr| dest.with_file_name(n);
        let aside = match dir.stat(name) {
            Ok(None) => None,
            Err(e) => return Err(e).with_context(|| format!("cannot look at {}", dest.display())),
            Ok(Some(_)) => {
                let aside = dir.free_name(name, &kept_suffix(stamp));
                dir.rename(name, dir, &aside).with_context(|| {
                    format!(
                        "cannot move {} aside to {}",
                        dest.display(),
                        shown(&aside).display()
                    )
                })?;
                make_private(dir, &aside, &shown(&aside))?;
                Some(aside)
            }
        };
        // A rename replaces a symlink itself, never what it points to.
        if let Err(e) = dir.rename(&self.tmp, dir, name) {
            if let Some(aside) = &aside {
                let _ = dir.rename(aside, dir, name);
            }
            return Err(e).with_context(|| format!("cannot put {} in place", dest.display()));
        }
        self.placed = true;
        Ok(aside.map(|a| shown(&a)))
    }
}

/// Mode 0600 for a kept regular file (`name` in `dir`, shown as `path`), set through a handle
/// opened without following a link (a symlink keeps pointing where it did; what it points to
/// is not touched), and only on a file with one link (a hard link the directory's owner
/// planted could be another's file).
fn make_private(dir: &Dir, name: &OsStr, path: &Path) -> anyhow::Result<()> {
    let fd = match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(f) => f,
        Err(rustix::io::Errno::LOOP) => return Ok(()),
        Err(e) => {
            return Err(std::io::Error::from(e))
                .with_context(|| format!("cannot open {}", path.display()));
        }
    };
    let st = rustix::fs::fstat(&fd).map_err(std::io::Error::from)?;
    if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && st.st_nlink == 1 {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o600))
            .map_err(std::io::Error::from)
            .with_context(|| format!("cannot make {} private", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn archived(text: &str) -> ParentConfig {
        ParentConfig {
            data: text.as_bytes().to_vec(),
            sha256: String::new(),
            mode: 0o640,
            mtime: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000),
            owner: None,
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn in_place_replaces_and_keeps_the_old_one() {
        let d = tempfile::tempdir().unwrap();
        let site = d.path().join("htdocs");
        let dest = d.path().join("wp-config.php");
        let a = archived("<?php define('DB_NAME', 'wp');\n");
        let p = check(&site, false, &a).unwrap();
        assert_eq!((p.existing, p.replaces("T")), (Existing::Nothing, None));
        assert_eq!(p.prepare(None).unwrap().unwrap().put("T").unwrap(), None);
        assert_eq!(std::fs::read(&dest).unwrap(), a.data);
        assert_eq!(mode(&dest), 0o640);
        // The same file again: nothing to replace, nothing written.
        let p = check(&site, false, &a).unwrap();
        assert_eq!(p.existing, Existing::Same);
        assert!(p.prepare(None).unwrap().is_none());
        // Another one: named, then kept aside, private.
        std::fs::write(&dest, "<?php // changed").unwrap();
        let p = check(&site, false, &a).unwrap();
        let said = p.replaces("T").unwrap();
        assert!(said.contains("wp-config.php.before-restore-T"), "{said}");
        let kept = p.prepare(None).unwrap().unwrap().put("T").unwrap().unwrap();
        assert_eq!(kept, d.path().join("wp-config.php.before-restore-T"));
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "<?php // changed");
        assert_eq!(mode(&kept), 0o600);
        assert_eq!(std::fs::read(&dest).unwrap(), a.data);
    }

    #[test]
    fn a_clone_never_writes_through_a_link_nor_over_another_site() {
        let d = tempfile::tempdir().unwrap();
        let shared = d.path().join("shared.php");
        std::fs::write(&shared, "<?php // production").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
        let parent = d.path().join("staging");
        std::fs::create_dir(&parent).unwrap();
        std::os::unix::fs::symlink(&shared, parent.join("wp-config.php")).unwrap();
        // The path in code is rewritten (a comment keeps the old one: see wp_config.rs).
        let a = archived("<?php define('DB_NAME', 'wp_live'); define('UPLOADS', '/srv/live');\n");
        let target = parent.join("htdocs");
        let p = check(&target, true, &a).unwrap();
        assert_eq!(p.existing, Existing::Different);
        let pairs = [("/srv/live".to_string(), target.display().to_string())];
        let rewrite = Rewrite {
            db_name: Some("wp_stg"),
            user: None,
            pairs: &pairs,
            network: None,
        };
        let prepared = p.prepare(Some(rewrite)).unwrap().unwrap();
        let kept = prepared.put("T").unwrap().unwrap();
        assert_eq!(std::fs::read_link(&kept).unwrap(), shared);
        assert_eq!(
            std::fs::read_to_string(&shared).unwrap(),
            "<?php // production"
        );
        assert_eq!(mode(&shared), 0o644);
        let new = std::fs::read_to_string(parent.join("wp-config.php")).unwrap();
        assert!(new.contains("'wp_stg'") && new.contains(&target.display().to_string()));

        // Another WordPress root in that parent loads its wp-config.php: refused.
        std::fs::create_dir(parent.join("live")).unwrap();
        std::fs::write(parent.join("live/wp-settings.php"), "<?php").unwrap();
        let e = check(&target, true, &a).unwrap_err().to_string();
        assert!(
            e.contains("live") && e.contains("nothing was changed"),
            "{e}"
        );
        // A parent that is a WordPress root itself: refused, in place too.
        std::fs::write(parent.join("wp-settings.php"), "<?php").unwrap();
        let e = check(&target, false, &a).unwrap_err().to_string();
        assert!(e.contains("holds wp-settings.php"), "{e}");
    }
}
