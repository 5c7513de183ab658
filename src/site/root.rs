//! Where WordPress finds a site's `wp-config.php`, by wp-load.php's own rule, and which
//! WordPress root a directory inside a site belongs to.
//!
//! wp-load.php loads `ABSPATH . 'wp-config.php'` when it exists; else
//! `dirname(ABSPATH) . '/wp-config.php'`, but only when that exists and the parent holds no
//! `wp-settings.php` (such a parent is another WordPress install, and its configuration is not
//! this one's). ABSPATH is the real path of the WordPress root (PHP's `__DIR__` resolves
//! symlinks) and `file_exists` follows symlinks: so do these functions.
//!
//! [`open_wp_config`] is the one checked way to read that file: by handle from the site's
//! root (the parent through the root's own `..`), never through a symlink the site's owner
//! could point at another site's file (the rules are in docs/formats.md, "Which wp-config.php
//! wpbackup reads").

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

/// Where WordPress reads a site's `wp-config.php` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigAt {
    /// `<root>/wp-config.php`: inside the site (archived under `files/`).
    Root(PathBuf),
    /// `<parent of root>/wp-config.php`: beside the site (archived as `parent/wp-config.php`).
    Parent(PathBuf),
}

impl ConfigAt {
    pub fn path(&self) -> &Path {
        match self {
            ConfigAt::Root(p) | ConfigAt::Parent(p) => p,
        }
    }
}

/// The `wp-config.php` WordPress would load for the root `site`, by wp-load.php's rule.
pub fn wp_config(site: &Path) -> Option<ConfigAt> {
    let here = site.join("wp-config.php");
    if here.exists() {
        return Some(ConfigAt::Root(here));
    }
    let real = site.canonicalize().unwrap_or_else(|_| site.to_path_buf());
    let parent = real.parent()?;
    let there = parent.join("wp-config.php");
    (there.exists() && !parent.join("wp-settings.php").exists()).then_some(ConfigAt::Parent(there))
}

/// The parent directory's `wp-config.php`, when it is the one WordPress loads for `site`.
pub fn parent_wp_config(site: &Path) -> Option<PathBuf> {
    match wp_config(site)? {
        ConfigAt::Parent(p) => Some(p),
        ConfigAt::Root(_) => None,
    }
}

/// For a directory inside a site (`.../site/wp-content`): the WordPress root above it, the
/// nearest directory holding `wp-settings.php`. `None` when `dir` is a site itself (a
/// WordPress root, or a directory with a `wp-config.php` WordPress would load) or lies in no
/// site.
pub fn root_above(dir: &Path) -> Option<PathBuf> {
    if dir.join("wp-settings.php").exists() || wp_config(dir).is_some() {
        return None;
    }
    let real = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    real.ancestors()
        .skip(1)
        .find(|a| a.join("wp-settings.php").exists())
        .map(Path::to_path_buf)
}

/// The WordPress roots directly in `dir` that load `dir/wp-config.php` (roots without their
/// own, when `dir` is not a root itself): the sites a `wp-config.php` there belongs to.
pub fn roots_reading(dir: &Path) -> Vec<PathBuf> {
    if dir.join("wp-settings.php").exists() {
        return Vec::new();
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut roots: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("wp-settings.php").exists() && !p.join("wp-config.php").exists())
        .collect();
    roots.sort();
    roots
}

/// Why a `wp-config.php` was not read: it could hand the site another site's credentials.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("refusing to read the database credentials from {path}: {why}")]
    Refused { path: PathBuf, why: String },
}

/// The `wp-config.php` WordPress would load for `site` (as [`wp_config`]), opened by handle and
/// checked: `None` when there is none. The file is looked at and opened relative to the handle
/// of the directory holding it, without following symlinks; the parent is reached through the
/// site root's own `..` (as PHP's real `ABSPATH`). Who may have put it there decides what is
/// accepted:
/// - in a directory only root can change (root-owned, not group- or world-writable): a regular
///   file, or a symlink followed by handle, component by component, through no other symlink;
/// - in a directory its owner (or a group) can change: a regular file owned by that owner, or
///   a root-owned one with a single link (a hard link could bring in another site's); a symlink
///   only when what it reaches is a regular file owned by that same, non-root owner (a
///   Capistrano-style `shared/wp-config.php` of the same user). A link to a file of another
///   user, or to a root-owned file, is refused, naming the link.
pub fn open_wp_config(site: &Path) -> Result<Option<(ConfigAt, File)>, OpenError> {
    let unreadable = |path: &Path, e: rustix::io::Errno| OpenError::Unreadable {
        path: path.to_path_buf(),
        source: e.into(),
    };
    // The root may be a symlink (followed once, here), as in the backup walk.
    let root = rustix::fs::open(
        site,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| unreadable(site, e))?;
    let here = site.join("wp-config.php");
    if let Some(f) = open_checked(&root, OsStr::new("wp-config.php"), &here)? {
        return Ok(Some((ConfigAt::Root(here), f)));
    }
    let parent = rustix::fs::openat(
        &root,
        "..",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| unreadable(site, e))?;
    // A parent that is a WordPress install itself holds another site's configuration.
    if rustix::fs::statat(&parent, "wp-settings.php", AtFlags::empty()).is_ok() {
        return Ok(None);
    }
    let real = site.canonicalize().unwrap_or_else(|_| site.to_path_buf());
    let there = real
        .parent()
        .unwrap_or(Path::new("/"))
        .join("wp-config.php");
    Ok(open_checked(&parent, OsStr::new("wp-config.php"), &there)?
        .map(|f| (ConfigAt::Parent(there), f)))
}

/// A file of the site read by handle from its root (`rel`, no `..`), never through a symlink:
/// `None` when it is absent, a link, or not a regular file.
pub fn open_in_site(site: &Path, rel: &Path) -> Option<File> {
    let mut dir = rustix::fs::open(
        site,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let parts: Vec<&OsStr> = rel
        .components()
        .map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let (last, dirs) = parts.split_last()?;
    for d in dirs {
        dir = rustix::fs::openat(
            &dir,
            *d,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
    }
    let fd = rustix::fs::openat(
        &dir,
        *last,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile).then(|| File::from(fd))
}

/// `name` in `dir` (shown as `path`), opened and checked by [`open_wp_config`]'s rules.
fn open_checked(dir: &OwnedFd, name: &OsStr, path: &Path) -> Result<Option<File>, OpenError> {
    let refuse = |why: String| OpenError::Refused {
        path: path.to_path_buf(),
        why,
    };
    let unreadable = |e: rustix::io::Errno| OpenError::Unreadable {
        path: path.to_path_buf(),
        source: e.into(),
    };
    let looked = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(unreadable(e)),
    };
    let held = rustix::fs::fstat(dir).map_err(unreadable)?;
    let only_root = held.st_uid == 0 && held.st_mode & 0o022 == 0;
    let owner = held.st_uid;
    match FileType::from_raw_mode(looked.st_mode) {
        FileType::RegularFile => {
            let fd = open_file(dir, name).map_err(unreadable)?;
            let st = regular(&fd).map_err(&refuse)?;
            if st.st_dev != looked.st_dev || st.st_ino != looked.st_ino {
                return Err(refuse("it was replaced while wpbackup opened it".into()));
            }
            let hard_link = st.st_uid == 0 && st.st_nlink > 1;
            if only_root || st.st_uid == owner || (st.st_uid == 0 && !hard_link) {
                return Ok(Some(File::from(fd)));
            }
            Err(refuse(if hard_link {
                format!(
                    "it is a root-owned file with {} hard links in a directory user {} can change (a hard link can bring in another site's configuration): make it a file of its own (cp it, then mv the copy over it)",
                    st.st_nlink,
                    user(owner)
                )
            } else {
                format!(
                    "it belongs to user {}, but its directory belongs to user {}: a site's configuration must be its owner's or root's (chown it)",
                    user(st.st_uid),
                    user(owner)
                )
            }))
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(dir, name, Vec::new()).map_err(unreadable)?;
            let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
            let fix = "replace the link by the file itself, or add a \"database\" block for this site to config.json";
            let fd = follow(dir, &target).map_err(|e| {
                refuse(format!(
                    "it is a symlink to {}, which cannot be reached without following another symlink or is not there ({e}): {fix}",
                    target.display()
                ))
            })?;
            let st = regular(&fd).map_err(&refuse)?;
            if only_root || (owner != 0 && st.st_uid == owner) {
                return Ok(Some(File::from(fd)));
            }
            Err(refuse(format!(
                "it is a symlink to {}, a file of user {}, and user {} can change where the link points: it could be another site's configuration; {fix}",
                target.display(),
                user(st.st_uid),
                user(owner)
            )))
        }
        _ => Err(refuse("it is not a regular file".into())),
    }
}

/// Open a file of `dir` for reading: never through a symlink, never blocking on a fifo.
fn open_file(dir: &OwnedFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// What `fd` is, when it is a regular file.
fn regular(fd: &OwnedFd) -> Result<Stat, String> {
    let st = rustix::fs::fstat(fd).map_err(|e| std::io::Error::from(e).to_string())?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err("it is not a regular file".into());
    }
    Ok(st)
}

/// The file a symlink of `dir` points to (`target`, relative to `dir` or absolute), reached by
/// handle one component at a time, following no further symlink.
fn follow(dir: &OwnedFd, target: &Path) -> std::io::Result<OwnedFd> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut cur = if target.is_absolute() {
        rustix::fs::open("/", dir_flags, Mode::empty())?
    } else {
        rustix::fs::openat(dir, ".", dir_flags, Mode::empty())?
    };
    let parts: Vec<&OsStr> = target
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            Component::ParentDir => Some(OsStr::new("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    let Some((last, dirs)) = parts.split_last() else {
        return Err(std::io::Error::other("the link has no file name"));
    };
    for d in dirs {
        cur = rustix::fs::openat(&cur, *d, dir_flags, Mode::empty())?;
    }
    Ok(open_file(&cur, last)?)
}

/// A user's name for messages (the number when it has none).
fn user(uid: u32) -> String {
    let name = std::fs::read_to_string("/etc/passwd").ok().and_then(|t| {
        t.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
        })
    });
    match name {
        Some(n) => format!("{n} ({uid})"),
        None => uid.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "<?php\n").unwrap();
    }

    #[test]
    fn wp_load_rule() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().canonicalize().unwrap();
        let site = top.join("example.com/htdocs");
        touch(&site.join("wp-settings.php"));
        assert_eq!(wp_config(&site), None);
        // In the parent: used.
        touch(&top.join("example.com/wp-config.php"));
        let parent = top.join("example.com/wp-config.php");
        assert_eq!(wp_config(&site), Some(ConfigAt::Parent(parent.clone())));
        assert_eq!(parent_wp_config(&site), Some(parent.clone()));
        // Reached through a symlink: the parent is the real directory's, as PHP's __DIR__.
        std::os::unix::fs::symlink(&site, top.join("link")).unwrap();
        assert_eq!(parent_wp_config(&top.join("link")), Some(parent.clone()));
        // A parent that is a WordPress root itself (a nested install): not this site's.
        touch(&top.join("example.com/wp-settings.php"));
        assert_eq!(wp_config(&site), None);
        std::fs::remove_file(top.join("example.com/wp-settings.php")).unwrap();
        // The site's own wins.
        touch(&site.join("wp-config.php"));
        assert_eq!(
            wp_config(&site),
            Some(ConfigAt::Root(site.join("wp-config.php")))
        );
        assert_eq!(parent_wp_config(&site), None);
    }

    #[test]
    fn a_directory_inside_a_site_names_its_root() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().canonicalize().unwrap();
        let site = top.join("site");
        touch(&site.join("wp-settings.php"));
        touch(&site.join("wp-config.php"));
        touch(&site.join("wp-content/uploads/a.jpg"));
        assert_eq!(root_above(&site.join("wp-content")), Some(site.clone()));
        assert_eq!(
            root_above(&site.join("wp-content/uploads")),
            Some(site.clone())
        );
        assert_eq!(root_above(&site), None);
        assert_eq!(root_above(&top), None);
        // A nested install inside a site is a site of its own.
        touch(&site.join("blog/wp-settings.php"));
        assert_eq!(root_above(&site.join("blog")), None);
    }

    #[test]
    fn the_roots_a_parent_config_belongs_to() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path();
        touch(&top.join("wp-config.php"));
        touch(&top.join("a/wp-settings.php"));
        touch(&top.join("b/wp-settings.php"));
        touch(&top.join("b/wp-config.php"));
        touch(&top.join("c/index.html"));
        assert_eq!(roots_reading(top), vec![top.join("a")]);
        touch(&top.join("wp-settings.php"));
        assert!(roots_reading(top).is_empty());
    }
}
