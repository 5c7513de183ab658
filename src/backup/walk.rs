//! The site's tree, walked by handle, so that the site cannot trick the backup into
//! archiving what is not the site.
//!
//! wpbackup runs as root and the site is writable by the web server. A compromised site that
//! swaps `uploads/x.jpg` (or the directory `uploads/2026`) for a symlink to
//! `/opt/wordpress-backup/.env` or `/root/.ssh` between the walk's look and the read would
//! otherwise get root's secrets into the archive, and a restore would drop them into the web
//! root. So every directory is opened relative to its parent's handle and every entry looked at
//! and opened relative to its directory's handle (`openat`, `O_NOFOLLOW`: a symlink is never
//! followed), and what was opened must be what was looked at (same device and inode, same
//! kind); an entry that changed in between is skipped and named. Symlinks are archived as
//! symlinks (their target read with `readlinkat`), never followed. Only the site's root itself
//! may be a symlink, as WordPress installs often are.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat};

/// One entry of the walk, opened (a directory or a regular file) or read (a symlink).
pub enum Entry {
    /// `rel` empty: the site's root.
    Dir {
        rel: PathBuf,
        handle: File,
    },
    File {
        rel: PathBuf,
        handle: File,
    },
    Symlink {
        rel: PathBuf,
        target: PathBuf,
    },
    /// Sockets, fifos, devices: not site content.
    Special {
        rel: PathBuf,
    },
}

/// An entry that could not be read, or that changed between the look and the open.
#[derive(Debug, thiserror::Error)]
#[error("{why}")]
pub struct Skipped {
    pub rel: PathBuf,
    pub why: String,
}

/// Walk `root` in file-name order, directories before their contents, leaving out what
/// `excluded(rel)` says (and, for a directory, everything in it). `visit` gets every entry;
/// its error stops the walk.
pub fn walk(
    root: &Path,
    excluded: &dyn Fn(&Path) -> bool,
    visit: &mut dyn FnMut(Result<Entry, Skipped>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // The root may be a symlink (followed once, here); nothing below it is.
    let fd = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| anyhow::anyhow!(std::io::Error::from(e)))
    .map_err(|e| e.context(format!("cannot open the site directory {}", root.display())))?;
    let handle = File::from(fd.try_clone()?);
    visit(Ok(Entry::Dir {
        rel: PathBuf::new(),
        handle,
    }))?;
    walk_dir(&fd, Path::new(""), excluded, visit)
}

/// The entry `name` of the directory `dir`, looked at and opened as the walk does (never
/// following a symlink, and only if what was opened is what was looked at), for a file that
/// belongs with the site but lies outside its tree (the parent directory's `wp-config.php`).
/// `rel` names it in what is returned; `dir` itself may be reached through symlinks.
pub fn open_beside(dir: &Path, name: &OsStr, rel: &Path) -> Result<Entry, Skipped> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| skipped(rel, &e.into()))?;
    open_entry(&fd, name.as_bytes(), rel).map(|(entry, _)| entry)
}

/// The entries of the directory `fd` (at `rel` in the site), each visited, directories
/// recursed into.
fn walk_dir(
    fd: &OwnedFd,
    rel: &Path,
    excluded: &dyn Fn(&Path) -> bool,
    visit: &mut dyn FnMut(Result<Entry, Skipped>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let names = match names(fd) {
        Ok(n) => n,
        Err(e) => return visit(Err(skipped(rel, &e))),
    };
    for name in names {
        let rel = rel.join(OsStr::from_bytes(&name));
        if excluded(&rel) {
            continue;
        }
        match open_entry(fd, &name, &rel) {
            Err(s) => visit(Err(s))?,
            Ok((entry, Some(dir))) => {
                visit(Ok(entry))?;
                walk_dir(&dir, &rel, excluded, visit)?;
            }
            Ok((entry, None)) => visit(Ok(entry))?,
        }
    }
    Ok(())
}

/// The names in the directory, sorted, without `.` and `..`.
fn names(fd: &OwnedFd) -> std::io::Result<Vec<Vec<u8>>> {
    let mut dir = Dir::read_from(fd)?;
    let mut names = Vec::new();
    while let Some(e) = dir.read() {
        let name = e?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Look at `name` in `dir` without following it, open it the same way, and check that what
/// was opened is what was looked at. A directory also comes back as a handle to walk.
fn open_entry(dir: &OwnedFd, name: &[u8], rel: &Path) -> Result<(Entry, Option<OwnedFd>), Skipped> {
    let name = OsStr::from_bytes(name);
    let looked = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| skipped(rel, &e.into()))?;
    let rel = rel.to_path_buf();
    let open = |flags: OFlags| -> Result<OwnedFd, Skipped> {
        let fd = rustix::fs::openat(
            dir,
            name,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| skipped(&rel, &e.into()))?;
        let opened = rustix::fs::fstat(&fd).map_err(|e| skipped(&rel, &e.into()))?;
        if !same(&looked, &opened) {
            return Err(Skipped {
                rel: rel.clone(),
                why: "replaced while the backup read it (left out: it is not what the walk saw)"
                    .into(),
            });
        }
        Ok(fd)
    };
    match FileType::from_raw_mode(looked.st_mode) {
        FileType::Directory => {
            let fd = open(OFlags::RDONLY | OFlags::DIRECTORY)?;
            let handle = File::from(fd.try_clone().map_err(|e| skipped(&rel, &e))?);
            Ok((Entry::Dir { rel, handle }, Some(fd)))
        }
        // Non-blocking: a file swapped for a fifo must not hang the open (the check then
        // refuses it anyway).
        FileType::RegularFile => {
            let fd = open(OFlags::RDONLY | OFlags::NONBLOCK)?;
            Ok((
                Entry::File {
                    rel,
                    handle: File::from(fd),
                },
                None,
            ))
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(dir, name, Vec::new())
                .map_err(|e| skipped(&rel, &e.into()))?;
            let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
            Ok((Entry::Symlink { rel, target }, None))
        }
        _ => Ok((Entry::Special { rel }, None)),
    }
}

/// The same object, of the same kind.
fn same(a: &Stat, b: &Stat) -> bool {
    a.st_dev == b.st_dev
        && a.st_ino == b.st_ino
        && FileType::from_raw_mode(a.st_mode) == FileType::from_raw_mode(b.st_mode)
}

fn skipped(rel: &Path, e: &std::io::Error) -> Skipped {
    Skipped {
        rel: rel.to_path_buf(),
        why: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walked(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        walk(root, &|rel| rel == Path::new("skip"), &mut |e| {
            out.push(match e {
                Ok(Entry::Dir { rel, .. }) => format!("d {}", rel.display()),
                Ok(Entry::File { rel, .. }) => format!("f {}", rel.display()),
                Ok(Entry::Symlink { rel, target }) => {
                    format!("l {} -> {}", rel.display(), target.display())
                }
                Ok(Entry::Special { rel }) => format!("s {}", rel.display()),
                Err(s) => format!("! {}", s.rel.display()),
            });
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn a_file_beside_the_site_is_opened_but_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::write(r.join("wp-config.php"), "<?php").unwrap();
        std::fs::write(r.join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(r.join("secret"), r.join("linked.php")).unwrap();
        let rel = Path::new("../x");
        let open = |name: &str| open_beside(r, OsStr::new(name), rel);
        assert!(matches!(open("wp-config.php"), Ok(Entry::File { .. })));
        match open("linked.php") {
            Ok(Entry::Symlink { target, .. }) => assert_eq!(target, r.join("secret")),
            _ => panic!("a symlink must come back as one, unfollowed"),
        }
        assert!(open("missing").is_err_and(|s| s.rel == rel));
    }

    #[test]
    fn walks_in_name_order_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("b/c")).unwrap();
        std::fs::create_dir_all(r.join("skip/x")).unwrap();
        std::fs::write(r.join("b/c/f.txt"), "x").unwrap();
        std::fs::write(r.join("a.txt"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), r.join("b/out")).unwrap();
        assert_eq!(
            walked(r),
            [
                "d ".to_string(),
                "f a.txt".into(),
                "d b".into(),
                "d b/c".into(),
                "f b/c/f.txt".into(),
                format!("l b/out -> {}", outside.path().display()),
            ]
        );
    }
}
