//! Directories reached by handle, for writing where a site's owner can change things while
//! root writes: the directory a restore stages beside (a site's parent, `/home/alice` for
//! `/home/alice/public_html`), the `--to DIR` of `restore --only`, the directory of the parent
//! `wp-config.php`.
//!
//! [`Dir::open`] walks the path from `/` one component at a time without following a symlink,
//! except one its directory's owner could not have planted to reach another's directory: a
//! symlink in a directory only root can change (root-owned, not group- or world-writable), or a
//! root-owned one in a sticky directory (`/tmp`); and, in a directory a user can change, a
//! symlink to a directory of that same user (`public_html -> www`, or the running user's own).
//! Anything else is refused, naming the link. From then on, everything is reached from the
//! handle: names are looked at with `AT_SYMLINK_NOFOLLOW`, moved with `renameat`, and
//! [`Dir::private_dir`] makes the staging directory (0700, the running user's, checked after
//! opening) that the extractor then writes into through [`Dir::anchored`] (`/proc/self/fd/N`):
//! its owner may rename it away or plant a link in its place, but can neither enter it nor
//! redirect what root writes.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

/// How many symlinks one [`Dir::open`] follows at most (the kernel's own limit).
const MAX_LINKS: usize = 40;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// An open directory and the path it was opened as (for messages and for other processes).
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Dir {
    /// `path` (made absolute), opened by the walk the module describes.
    pub fn open(path: &Path) -> anyhow::Result<Dir> {
        let abs =
            std::path::absolute(path).with_context(|| format!("cannot find {}", path.display()))?;
        let mut links = 0;
        let root = rustix::fs::open("/", DIR_FLAGS, Mode::empty())
            .map_err(std::io::Error::from)
            .context("cannot open /")?;
        let fd = walk(root, &abs, &abs, &mut links)?;
        Ok(Dir { fd, path: abs })
    }

    /// The path this directory was opened as. Another process, or a path operation of this
    /// one, may reach something else there now: use [`Dir::anchored`] in this process.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path that reaches this very directory from this process, whatever it is named now.
    pub fn anchored(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// What `name` in this directory is, without following a symlink (`None`: nothing).
    pub fn stat(&self, name: &OsStr) -> std::io::Result<Option<Stat>> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The directory itself.
    pub fn fstat(&self) -> std::io::Result<Stat> {
        Ok(rustix::fs::fstat(&self.fd)?)
    }

    /// `<base><suffix>`, with `-2`, `-3`... appended while that name is taken here.
    pub fn free_name(&self, base: &OsStr, suffix: &str) -> OsString {
        let name = |n: Option<u32>| {
            let mut s = base.to_os_string();
            s.push(suffix);
            if let Some(n) = n {
                s.push(format!("-{n}"));
            }
            s
        };
        let mut p = name(None);
        let mut n = 2;
        while !matches!(self.stat(&p), Ok(None)) && n < 10_000 {
            p = name(Some(n));
            n += 1;
        }
        p
    }

    /// Another handle of the same directory.
    pub fn try_clone(&self) -> std::io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
        })
    }

    /// The directory `name` here, opened without following a symlink.
    pub fn open_dir(&self, name: &OsStr) -> std::io::Result<Dir> {
        let fd = rustix::fs::openat(&self.fd, name, DIR_FLAGS, Mode::empty())?;
        Ok(Dir {
            fd,
            path: self.path.join(name),
        })
    }

    /// A new directory `name` here, mode 0700, opened without following a link and checked to
    /// be a fresh one of the running user's that nobody else can enter (its owner may have
    /// swapped something in between mkdir and open: refused then).
    pub fn private_dir(&self, name: &OsStr) -> anyhow::Result<Dir> {
        let shown = self.path.join(name);
        let cannot = || format!("cannot create {}", shown.display());
        rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o700))
            .map_err(std::io::Error::from)
            .with_context(cannot)?;
        let dir = self.open_dir(name).with_context(cannot)?;
        let st = dir.fstat().with_context(cannot)?;
        let empty = std::fs::read_dir(dir.anchored())
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if st.st_uid != rustix::process::geteuid().as_raw() || st.st_mode & 0o077 != 0 || !empty {
            bail!(
                "{}: something else was put in its place as it was made (by the owner of {}?); nothing was changed",
                cannot(),
                self.path.display()
            );
        }
        Ok(dir)
    }

    /// `from` here renamed to `to` in `into` (a symlink is moved itself, never followed).
    pub fn rename(&self, from: &OsStr, into: &Dir, to: &OsStr) -> std::io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, from, &into.fd, to)?)
    }

    /// `name` here removed (an empty directory when `dir`).
    pub fn remove(&self, name: &OsStr, dir: bool) -> std::io::Result<()> {
        let flags = if dir {
            AtFlags::REMOVEDIR
        } else {
            AtFlags::empty()
        };
        Ok(rustix::fs::unlinkat(&self.fd, name, flags)?)
    }
}

/// Whether only root can change the directory `st` (add, remove or rename its entries).
fn only_root(st: &Stat) -> bool {
    st.st_uid == 0 && st.st_mode & 0o022 == 0
}

/// `path`'s components opened from `cur` (a handle of `/` for an absolute path), following a
/// symlink only by the module's rules (`shown`: the path as given, for messages).
fn walk(mut cur: OwnedFd, path: &Path, shown: &Path, links: &mut usize) -> anyhow::Result<OwnedFd> {
    let cannot = |e: std::io::Error| {
        anyhow::Error::from(e).context(format!("cannot open {}", shown.display()))
    };
    for c in path.components() {
        let name: &OsStr = match c {
            Component::Normal(n) => n,
            Component::ParentDir => OsStr::new(".."),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
        };
        match rustix::fs::openat(&cur, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => cur = fd,
            Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
                let st = rustix::fs::statat(&cur, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| cannot(e.into()))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                    return Err(cannot(e.into()));
                }
                *links += 1;
                if *links > MAX_LINKS {
                    return Err(cannot(Errno::LOOP.into()));
                }
                cur = follow(&cur, name, &st, shown, links)?;
            }
            Err(e) => return Err(cannot(e.into())),
        }
    }
    Ok(cur)
}

/// The symlink `name` of `dir` (`link`: its own stat), followed when its directory's owner
/// could not have pointed it at someone else's directory.
fn follow(
    dir: &OwnedFd,
    name: &OsStr,
    link: &Stat,
    shown: &Path,
    links: &mut usize,
) -> anyhow::Result<OwnedFd> {
    let held = rustix::fs::fstat(dir).map_err(std::io::Error::from)?;
    let target = rustix::fs::readlinkat(dir, name, Vec::new()).map_err(std::io::Error::from)?;
    let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
    let start = if target.is_absolute() {
        rustix::fs::open("/", DIR_FLAGS, Mode::empty())
    } else {
        rustix::fs::openat(dir, ".", DIR_FLAGS, Mode::empty())
    }
    .map_err(std::io::Error::from)?;
    let reached = walk(start, &target, shown, links)?;
    let st = rustix::fs::fstat(&reached).map_err(std::io::Error::from)?;
    let me = rustix::process::geteuid().as_raw();
    let sticky_roots = held.st_mode & 0o1000 != 0 && link.st_uid == 0;
    let same_user = held.st_uid != 0 && st.st_uid == held.st_uid;
    if only_root(&held) || sticky_roots || same_user || held.st_uid == me {
        return Ok(reached);
    }
    bail!(
        "refusing to write into {}: on the way, {} is a symlink to {} (a directory of user {}) in a directory user {} can change, who could point it anywhere; give the real path, or make the link root's in a directory only root can change; nothing was changed",
        shown.display(),
        name.to_string_lossy(),
        target.display(),
        st.st_uid,
        held.st_uid
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn links_of_the_directorys_owner_to_their_own_are_followed_others_refused() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().canonicalize().unwrap();
        let home = top.join("home");
        let www = home.join("www");
        std::fs::create_dir_all(&www).unwrap();
        symlink(&www, home.join("public_html")).unwrap();
        // Root's own links (the tests run as root, or as the directories' owner) are followed.
        let dir = Dir::open(&home.join("public_html")).unwrap();
        assert_eq!(
            dir.fstat().unwrap().st_ino,
            std::fs::metadata(&www)
                .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
                .unwrap()
        );
        if !rustix::process::geteuid().is_root() {
            return;
        }
        // A user's directory: their link to their own directory is followed, to root's not.
        let other = top.join("etc");
        std::fs::create_dir(&other).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
        let chown = |p: &Path, uid: u32| {
            rustix::fs::chownat(
                rustix::fs::CWD,
                p,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(uid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .unwrap()
        };
        chown(&home, 33);
        chown(&www, 33);
        chown(&home.join("public_html"), 33);
        assert!(Dir::open(&home.join("public_html")).is_ok());
        std::fs::remove_file(home.join("public_html")).unwrap();
        symlink(&other, home.join("public_html")).unwrap();
        chown(&home.join("public_html"), 33);
        let e = format!("{:#}", Dir::open(&home.join("public_html/x")).unwrap_err());
        assert!(e.contains("public_html") && e.contains("symlink"), "{e}");
    }

    #[test]
    fn a_private_dir_is_fresh_and_reached_by_its_handle() {
        let d = tempfile::tempdir().unwrap();
        let parent = Dir::open(d.path()).unwrap();
        let name = parent.free_name(OsStr::new("site"), ".restoring-T");
        assert_eq!(name, "site.restoring-T");
        let staging = parent.private_dir(&name).unwrap();
        assert_eq!(
            parent.free_name(OsStr::new("site"), ".restoring-T"),
            "site.restoring-T-2"
        );
        // Renamed away and replaced by a link: the handle still reaches the one made.
        std::fs::rename(d.path().join(&name), d.path().join("moved")).unwrap();
        symlink("/", d.path().join(&name)).unwrap();
        std::fs::write(staging.anchored().join("f"), "x").unwrap();
        assert!(d.path().join("moved/f").is_file());
        // A name taken in between: refused.
        assert!(parent.private_dir(OsStr::new("moved")).is_err());
    }
}
