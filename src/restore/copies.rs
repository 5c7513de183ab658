//! What restores keep of what they replaced, so a restore can be undone, found by their exact
//! names only:
//!
//! - `<home>/before-restore/<site>_<database>_<time>.sql.zst`: a database's content, saved
//!   before it was replaced;
//! - `<dir>.before-restore-<time>` beside a site's directory `<dir>` (`-2`, `-3`... when that
//!   name was taken): the previous files, moved aside;
//! - `wp-config.php.before-restore-<time>` (same suffixes) in a site's parent directory: the
//!   `wp-config.php` kept above the site, replaced.
//!
//! `<time>` is the restore's (`YYYYMMDDTHHMMSSZ`, UTC, as [`crate::reader::stage::stamp`] writes it)
//! and a copy's age is counted from it: a directory's own mtime says when its content last
//! changed, not when it was moved aside. `status` lists them; `prune` removes those older than
//! `restore.keep_copies_days`, each one printed and recorded in backups.db. Anything whose name
//! does not match exactly is never touched. A directory is removed by handle: a symlink inside
//! is removed itself, never followed, and a mount point inside stops the removal.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use serde::Serialize;

use crate::config::SiteConfig;
use crate::logdb::{LogDb, LogEntry, Status};
use crate::output;

/// What a copy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A saved database (`.sql.zst`).
    Database,
    /// A site's previous directory.
    Files,
    /// A `wp-config.php` kept above the site.
    WpConfig,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Database => "database",
            Kind::Files => "files",
            Kind::WpConfig => "wp-config",
        }
    }
}

/// One copy a restore kept.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreCopy {
    pub kind: Kind,
    pub path: PathBuf,
    /// The configured site it belongs to, when its name tells.
    pub site: Option<String>,
    /// When the restore made it (the time in its name), UTC `YYYY-MM-DD HH:MM:SS`.
    pub made_at: String,
    #[serde(skip)]
    made: DateTime<Utc>,
    /// Bytes of the regular files it holds.
    pub bytes: u64,
}

impl RestoreCopy {
    fn new(kind: Kind, path: PathBuf, site: Option<String>, made: DateTime<Utc>) -> RestoreCopy {
        RestoreCopy {
            kind,
            bytes: size_of(&path),
            path,
            site,
            made_at: crate::logdb::sql_time(made),
            made,
        }
    }

    pub fn age(&self, now: DateTime<Utc>) -> TimeDelta {
        now - self.made
    }

    /// Older than `keep_days`: the next `prune` removes it.
    pub fn is_old(&self, now: DateTime<Utc>, keep_days: u32) -> bool {
        self.age(now) >= TimeDelta::days(i64::from(keep_days))
    }
}

/// The copies kept in `home` and beside `sites`, oldest first (each path once).
pub fn find(home: &Path, sites: &[SiteConfig]) -> Vec<RestoreCopy> {
    let mut copies = saved_databases(&home.join("before-restore"), sites);
    for site in sites {
        let (Some(parent), Some(dir)) = (site.path.parent(), site.path.file_name()) else {
            continue;
        };
        let mut files = OsString::from(dir);
        files.push(".before-restore-");
        for (name, made) in named(parent, |n| stamp_after(n, files.as_bytes())) {
            copies.push(RestoreCopy::new(
                Kind::Files,
                parent.join(name),
                Some(site.name.clone()),
                made,
            ));
        }
        let wp = b"wp-config.php.before-restore-";
        for (name, made) in named(parent, |n| stamp_after(n, wp)) {
            let path = parent.join(name);
            if !copies.iter().any(|c| c.path == path) {
                copies.push(RestoreCopy::new(
                    Kind::WpConfig,
                    path,
                    Some(site.name.clone()),
                    made,
                ));
            }
        }
    }
    copies.sort_by(|a, b| (a.made, &a.path).cmp(&(b.made, &b.path)));
    copies
}

/// `<site>_<database>_<time>.sql.zst` in `dir`, regular files only.
fn saved_databases(dir: &Path, sites: &[SiteConfig]) -> Vec<RestoreCopy> {
    let parse = |name: &[u8]| {
        let stem = name.strip_suffix(b".sql.zst")?;
        let at = stem.iter().rposition(|&b| b == b'_')?;
        let made = parse_stamp(&stem[at + 1..])?;
        (at > 0).then_some(made)
    };
    named(dir, parse)
        .into_iter()
        .filter(|(name, _)| dir.join(name).symlink_metadata().is_ok_and(|m| m.is_file()))
        .map(|(name, made)| {
            // The longest configured name followed by `_` (names may hold `_` themselves).
            let site = sites
                .iter()
                .filter(|s| {
                    let prefix = format!("{}_", s.name);
                    name.as_bytes().starts_with(prefix.as_bytes())
                })
                .max_by_key(|s| s.name.len())
                .map(|s| s.name.clone());
            RestoreCopy::new(Kind::Database, dir.join(&name), site, made)
        })
        .collect()
}

/// The entries of `dir` whose name `parse` accepts, with the time it read in it. A directory
/// that cannot be read holds nothing (a site's parent that is gone; a real error is logged).
fn named(
    dir: &Path,
    parse: impl Fn(&[u8]) -> Option<DateTime<Utc>>,
) -> Vec<(OsString, DateTime<Utc>)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("cannot look for restore copies in {}: {e}", dir.display());
            }
            return Vec::new();
        }
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            parse(name.as_bytes()).map(|made| (name, made))
        })
        .collect()
}

/// The time in `name` after `prefix`: `<time>`, or `<time>-<n>` with n from 2 (as
/// `reader::handles::Dir::free_name` numbers a name already taken).
fn stamp_after(name: &[u8], prefix: &[u8]) -> Option<DateTime<Utc>> {
    let rest = name.strip_prefix(prefix)?;
    let (stamp, n) = match rest.iter().position(|&b| b == b'-') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if let Some(n) = n {
        let plain = !n.is_empty() && n[0] != b'0' && n.iter().all(u8::is_ascii_digit);
        let n: u32 = std::str::from_utf8(n).ok()?.parse().ok()?;
        if !plain || n < 2 {
            return None;
        }
    }
    parse_stamp(stamp)
}

/// `YYYYMMDDTHHMMSSZ`, exactly.
fn parse_stamp(s: &[u8]) -> Option<DateTime<Utc>> {
    let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
    if s.len() != 16 || s[8] != b'T' || s[15] != b'Z' || !digits(&s[..8]) || !digits(&s[9..15]) {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// Bytes of the regular files under `path` (not following symlinks, not leaving its
/// filesystem); what cannot be read counts as nothing.
fn size_of(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .follow_links(false)
        .follow_root_links(false)
        .same_file_system(true)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Remove one copy: a directory by handle ([`remove_tree`]), anything else unlinked (a
/// symlink itself, never what it points to).
pub fn remove(copy: &RestoreCopy) -> anyhow::Result<()> {
    let path = &copy.path;
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        bail!("{} is not a restore copy", path.display());
    };
    if let Some(mount) = mount_inside(path) {
        bail!(
            "{} holds a mount point, {}: unmount it, then run prune again",
            path.display(),
            mount.display()
        );
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let dir = rustix::fs::open(parent, flags, Mode::empty())
        .with_context(|| format!("cannot open {}", parent.display()))?;
    let st = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        remove_tree(dir.as_fd(), name, st.st_dev, path)
    } else {
        rustix::fs::unlinkat(&dir, name, AtFlags::empty())
            .with_context(|| format!("cannot remove {}", path.display()))
    }
}

/// Remove the directory `name` of `parent` and everything in it, each entry relative to its
/// directory's handle (`O_NOFOLLOW`): a symlink is unlinked, never followed, and a directory
/// on another device than `dev` (a mount point) stops the removal. `shown` names it in errors.
fn remove_tree(parent: BorrowedFd, name: &OsStr, dev: u64, shown: &Path) -> anyhow::Result<()> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(parent, name, flags, Mode::empty())
        .with_context(|| format!("cannot open {}", shown.display()))?;
    let st = rustix::fs::fstat(&fd).with_context(|| format!("cannot read {}", shown.display()))?;
    if st.st_dev != dev {
        bail!(
            "{} is another filesystem (a mount point): unmount it, then run prune again",
            shown.display()
        );
    }
    let mut entries = Vec::new();
    for entry in Dir::read_from(&fd).with_context(|| format!("cannot list {}", shown.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", shown.display()))?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            entries.push((OsStr::from_bytes(n).to_os_string(), entry.file_type()));
        }
    }
    for (n, ty) in entries {
        let inner = shown.join(&n);
        let ty = match ty {
            FileType::Unknown => rustix::fs::statat(&fd, &n, AtFlags::SYMLINK_NOFOLLOW)
                .map(|s| FileType::from_raw_mode(s.st_mode))
                .with_context(|| format!("cannot read {}", inner.display()))?,
            known => known,
        };
        if ty == FileType::Directory {
            remove_tree(fd.as_fd(), &n, dev, &inner)?;
        } else {
            rustix::fs::unlinkat(&fd, &n, AtFlags::empty())
                .with_context(|| format!("cannot remove {}", inner.display()))?;
        }
    }
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)
        .with_context(|| format!("cannot remove {}", shown.display()))
}

/// A mount point at or under `path` (bind mounts of the same filesystem included), from
/// `/proc/self/mountinfo`; `None` when there is none or it cannot be read.
fn mount_inside(path: &Path) -> Option<PathBuf> {
    let real = path.parent()?.canonicalize().ok()?.join(path.file_name()?);
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mount_path(p)))
        .find(|p| p.starts_with(&real))
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo`.
fn unescape_mount_path(p: &str) -> OsString {
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let code = b.get(i + 1..i + 4).and_then(|o| {
            let o = std::str::from_utf8(o).ok()?;
            u8::from_str_radix(o, 8).ok()
        });
        match (b[i], code) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    OsString::from(std::ffi::OsStr::from_bytes(&out))
}

/// A copy's age in words: `12 days`, `5 hours`, `less than an hour`.
pub fn human_age(age: TimeDelta) -> String {
    match (age.num_days(), age.num_hours()) {
        (d, _) if d >= 2 => format!("{d} days"),
        (_, h) if h >= 2 => format!("{h} hours"),
        (_, 1) => "1 hour".into(),
        _ if age < TimeDelta::zero() => "made in the future (check the clock)".into(),
        _ => "less than an hour".into(),
    }
}

/// The rows `status` shows: kind, site, time made, age, size, what `prune` does, path.
pub fn status_rows(copies: &[RestoreCopy], keep_days: u32, now: DateTime<Utc>) -> Vec<Vec<String>> {
    copies
        .iter()
        .map(|c| {
            let prune = if c.is_old(now, keep_days) {
                "removes it".to_string()
            } else {
                let left = TimeDelta::days(i64::from(keep_days)) - c.age(now);
                format!("keeps it {} more", human_age(left))
            };
            row(c, now, prune)
        })
        .collect()
}

fn row(c: &RestoreCopy, now: DateTime<Utc>, last: String) -> Vec<String> {
    vec![
        c.kind.as_str().to_string(),
        c.site.clone().unwrap_or_else(|| "-".into()),
        c.made_at.clone(),
        human_age(c.age(now)),
        output::human_bytes(c.bytes),
        last,
        c.path.display().to_string(),
    ]
}

/// What `prune` did, or would do, with one copy.
#[derive(Debug, Clone, Serialize)]
pub struct Pruned {
    #[serde(flatten)]
    pub copy: RestoreCopy,
    /// `keep`, `delete` (dry run), `deleted`, `failed`.
    pub action: &'static str,
    pub why: String,
}

/// One pass of `prune` over the copies: by which age, recorded where, for real or not.
pub struct Pruning<'a> {
    pub db: &'a LogDb,
    pub server_id: &'a str,
    pub keep_days: u32,
    pub now: DateTime<Utc>,
    /// Only say what would be removed.
    pub dry_run: bool,
}

impl Pruning<'_> {
    /// Remove (unless `dry_run`) every copy older than `keep_days`; each removal, and each
    /// failure, is a `backup_log` row (action `prune`).
    pub fn run(&self, copies: Vec<RestoreCopy>) -> Vec<Pruned> {
        copies.into_iter().map(|c| self.one(c)).collect()
    }

    fn one(&self, copy: RestoreCopy) -> Pruned {
        let age = human_age(copy.age(self.now));
        let rule = format!("restore.keep_copies_days {}", self.keep_days);
        let (action, why) = if !copy.is_old(self.now, self.keep_days) {
            ("keep", format!("{age} old ({rule})"))
        } else if self.dry_run {
            ("delete", format!("{age} old ({rule})"))
        } else {
            match remove(&copy) {
                Ok(()) => ("deleted", format!("{age} old ({rule})")),
                Err(e) => ("failed", format!("{e:#}")),
            }
        };
        if matches!(action, "deleted" | "failed") {
            self.record(&copy, action, &why);
        }
        Pruned { copy, action, why }
    }

    fn record(&self, copy: &RestoreCopy, action: &str, why: &str) {
        let what = format!(
            "the {} copy {} a restore kept on {} UTC",
            copy.kind.as_str(),
            copy.path.display(),
            copy.made_at
        );
        let (status, details) = match action {
            "deleted" => (Status::Success, format!("removed {what}: {why}")),
            _ => (Status::Error, format!("cannot remove {what}: {why}")),
        };
        let logged = self.db.log(&LogEntry {
            timestamp: Utc::now(),
            status,
            details: &details,
            site_name: copy.site.as_deref().unwrap_or("*"),
            server_id: self.server_id,
            action: "prune",
            storage_name: None,
            archive_key: None,
            duration_secs: None,
        });
        if let Err(e) = logged {
            tracing::error!("cannot record in backups.db that prune {details}: {e:#}");
        }
    }
}

/// The rows `prune` prints: kind, site, time made, age, size, action, path.
pub fn prune_rows(items: &[Pruned], now: DateTime<Utc>) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|i| {
            let action = match i.action {
                "delete" => "would delete".to_string(),
                "failed" => format!("FAILED: {}", i.why),
                a => a.to_string(),
            };
            row(&i.copy, now, action)
        })
        .collect()
}

#[cfg(test)]
mod tests;
