//! `restore --only PATH... --to DIR`: take some files back from an archive (one deleted
//! upload, one plugin's folder) without restoring the site, from the buckets alone.
//!
//! The archive is streamed from the first storage whose copy has its recorded sha256, and only
//! the chosen paths (with the directories on the way to them) are extracted, by the same
//! extractor as a full restore (no `..`, symlinks made as links and never followed, modes and
//! times kept), into a private staging directory inside DIR. Only once the download's sha256
//! matched, the archive was checked against its manifest, and every path was found is
//! anything moved into DIR (a rename, within one file system). An existing file is replaced
//! only when the caller's [`Confirm`](super::Confirm) allows it; a file where DIR has a
//! directory (or the reverse) is always refused. The database is never touched.
//!
//! DIR is usually the site, which its owner can change while root writes into it. So DIR is
//! opened once ([`Dir::open`]: no symlink a user could have planted is followed on the way)
//! and reached only through that handle; the staging directory is created there root-owned
//! and 0700, checked after opening, and written only through its own handle
//! ([`Staging`]: renaming it away or planting a link in its place changes nothing); and each
//! entry moves in with `renameat` into a directory opened from DIR's handle one component at a
//! time without following a symlink (one planted on the way is refused).

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};
use rustix::fs::{Mode, OFlags};
use serde::Serialize;

use crate::crypt::Identities;
use crate::error::UsageError;
use crate::logdb::LogDb;
use crate::output;
use std::sync::{Arc, Mutex};

use crate::manifest::Base;
use crate::reader::handles::Dir;
use crate::reader::stage::Staging;
use crate::reader::unpack::{self, Chain, Selection};
use crate::reader::{fetch, lock};
use crate::restore::Confirm;
use crate::storage::Storage;
use crate::storage::catalog::Choice;
use crate::storage::catalog::choose_archive;

/// What to take back, and where to.
pub struct OnlyRequest {
    pub site: String,
    /// The server whose archives are looked for first.
    pub server_id: String,
    pub choice: Choice,
    /// Paths of the site as `ls` shows them ([`site_path`]).
    pub paths: Vec<PathBuf>,
    /// Where they go (absolute).
    pub to: PathBuf,
    /// The age identity file of an encrypted archive.
    pub identity: Option<PathBuf>,
    /// Whose signatures are accepted.
    pub trust: crate::sign::Trust,
}

/// What was taken back, as printed (`--json` too).
#[derive(Debug, Default, Serialize)]
pub struct OnlyReport {
    pub site: String,
    pub key: String,
    pub storage: String,
    pub archive_bytes: u64,
    pub sha256_source: String,
    pub to: PathBuf,
    pub paths: Vec<PathBuf>,
    /// Files, symlinks and hard links restored, and the bytes of the files.
    pub files: u64,
    pub bytes: u64,
    /// Files of DIR that were replaced (after confirmation).
    pub replaced: Vec<PathBuf>,
    pub duration_secs: f64,
}

impl OnlyReport {
    pub fn summary(&self) -> String {
        let paths: Vec<String> = self.paths.iter().map(|p| p.display().to_string()).collect();
        let mut s = format!(
            "restored {} files ({}) of {} from {} ({}, sha256 verified against {}) into {}",
            self.files,
            output::human_bytes(self.bytes),
            paths.join(", "),
            self.key,
            self.storage,
            self.sha256_source,
            self.to.display()
        );
        if !self.replaced.is_empty() {
            s.push_str(&format!(
                "; {} existing files replaced",
                self.replaced.len()
            ));
        }
        format!("{s}; took {:.1}s", self.duration_secs)
    }
}

/// A `--only` path as the user typed it, as a path of the site: `/`, `./` and a trailing `/`
/// are dropped; `..` and the site itself are refused.
pub fn site_path(typed: &Path) -> Result<PathBuf, UsageError> {
    let mut out = PathBuf::new();
    for c in typed.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(UsageError(format!(
                    "--only {}: give a path inside the site, without \"..\", as `wpbackup ls` shows it",
                    typed.display()
                )));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(UsageError(format!(
            "--only {}: give a file or directory of the site (for all of it: restore --files-only --to DIR)",
            typed.display()
        )));
    }
    Ok(out)
}

/// Take `req.paths` back from the archive `req.choice` picks into `req.to`; `confirm` is asked
/// before an existing file is replaced. backups.db, when there is one, only adds the sha256 it
/// recorded. A DIR made for this and left empty by a failure is removed.
pub fn restore_only(
    rt: &tokio::runtime::Runtime,
    storages: &[Box<dyn Storage>],
    logdb: Option<&LogDb>,
    req: &OnlyRequest,
    confirm: Confirm,
) -> anyhow::Result<OnlyReport> {
    let (key, holding) = choose_archive(rt, storages, &req.server_id, &req.site, &req.choice)?;
    let identities = match &req.identity {
        Some(path) => Some(Identities::load(path)?),
        None => None,
    };
    crate::crypt::ensure_identity(&key, identities.as_ref())?;
    let made = !req.to.exists();
    std::fs::create_dir_all(&req.to)
        .with_context(|| format!("cannot create {}", req.to.display()))?;
    let holders: Vec<&dyn Storage> = holding.iter().map(|i| storages[*i].as_ref()).collect();
    // Opened once, by handle (a link planted on the way by a user is refused); from here on
    // DIR is this directory, whatever is renamed.
    let to_fd = Dir::open(&req.to)?;
    let job = Extract {
        key,
        site: req.site.clone(),
        paths: req.paths.clone(),
        to: req.to.clone(),
        to_fd: Arc::new(to_fd),
        identities,
    };
    let done = job.restore(rt, &holders, logdb, &req.trust, confirm);
    if done.is_err() && made {
        let _ = std::fs::remove_dir(&req.to);
    }
    done
}

/// The extraction of one archive: what it needs on the thread that reads the download.
#[derive(Clone)]
struct Extract {
    key: String,
    site: String,
    paths: Vec<PathBuf>,
    to: PathBuf,
    /// DIR, opened once: everything in it is reached from here.
    to_fd: Arc<Dir>,
    identities: Option<Identities>,
}

/// What the extraction has found so far, across the archives of a restore point.
#[derive(Default)]
struct Found {
    selection: Option<Selection>,
    chain: Chain,
}

type Shared = Arc<Mutex<Found>>;

impl Extract {
    /// Download, extract, check, and move into place (asking `confirm` first when files of
    /// DIR would be replaced). A differential archive's bases follow, newest first, from the
    /// storage it came from, for the paths it does not hold itself.
    fn restore(
        self,
        rt: &tokio::runtime::Runtime,
        holders: &[&dyn Storage],
        logdb: Option<&LogDb>,
        trust: &crate::sign::Trust,
        confirm: Confirm,
    ) -> anyhow::Result<OnlyReport> {
        let (key, site, to, paths) = (
            self.key.clone(),
            self.site.clone(),
            self.to.clone(),
            self.paths.clone(),
        );
        let found: Shared = Arc::default();
        let (job, f) = (self.clone(), found.clone());
        let got = fetch::first_intact(rt, &key, holders, logdb, trust, None, move |r| {
            job.run(r, &f)
        })?;
        let (staging, first) = got.value;
        let (job, f, dir) = (self.clone(), found.clone(), staging.anchored());
        let bases = fetch::bases(
            rt,
            &key,
            &fetch::came_from(holders, &got.storage),
            logdb,
            trust,
            first,
            move |r, k| Ok(((), job.run_base(r, k, &dir, &f)?)),
        )?;
        let size = got.size + bases.iter().map(|b| b.size).sum::<u64>();
        let found = std::mem::take(&mut *lock(&found));
        found.chain.finish()?;
        let selection = found
            .selection
            .unwrap_or_else(|| Selection::new(Vec::new()));
        self.ensure_found(&selection)?;
        let moves = plan_moves(
            &staging.anchored().join("files"),
            &self.to_fd.anchored(),
            &to,
        )?;
        if !moves.replacing.is_empty() {
            confirm(&[replacing(&moves.replacing, &to)])?;
        }
        move_into_place(staging, &moves, &self.to_fd, &to)?;
        Ok(OnlyReport {
            site,
            key,
            storage: got.storage,
            archive_bytes: size,
            sha256_source: got.expected.source,
            to,
            paths,
            files: selection.files,
            bytes: selection.bytes,
            replaced: moves.replacing,
            duration_secs: 0.0,
        })
    }

    /// Extract the selected paths of the archive read from `archive` into a new private
    /// directory inside DIR (removed when dropped); fails unless the archive matches its
    /// manifest. Also its base, when it is a differential archive.
    fn run(
        &self,
        archive: &mut dyn Read,
        found: &Mutex<Found>,
    ) -> anyhow::Result<(Staging, Option<Base>)> {
        let staging = self.staging()?;
        let mut found = lock(found);
        *found = Found {
            selection: Some(Selection::new(self.paths.clone())),
            chain: Chain::default(),
        };
        let base = self.read(archive, &self.key, &staging.anchored(), &mut found)?;
        Ok((staging, base))
    }

    /// A new private directory in DIR (created 0700 by this process), opened without
    /// following a link and checked to be the one made: the owner of DIR may rename it or
    /// plant something in its place, but cannot enter it.
    fn staging(&self) -> anyhow::Result<Staging> {
        let cannot = || format!("cannot create a staging directory in {}", self.to.display());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = self.to_fd.free_name(
            ".wpbackup-only-".as_ref(),
            &format!("{}-{nanos:09}", std::process::id()),
        );
        Staging::create(self.to_fd.try_clone().with_context(cannot)?, &name)
    }

    /// A base of the restore point, into the staging directory `dir`; and its own base.
    fn run_base(
        &self,
        archive: &mut dyn Read,
        key: &str,
        dir: &Path,
        found: &Mutex<Found>,
    ) -> anyhow::Result<Option<Base>> {
        self.read(archive, key, dir, &mut lock(found))
    }

    /// Read one archive of the chain into `dir`, checked against its manifest.
    fn read(
        &self,
        archive: &mut dyn Read,
        key: &str,
        dir: &Path,
        found: &mut Found,
    ) -> anyhow::Result<Option<Base>> {
        let Found { selection, chain } = found;
        let contents = unpack::read(
            crate::crypt::open(archive, key, self.identities.as_ref())?,
            unpack::Options {
                extract_to: Some(dir),
                database_to: None,
                preserve_owner: rustix::process::geteuid().is_root(),
                only: selection.as_mut(),
                chain: Some(chain),
                listing: None,
            },
        )?;
        let problems = contents.problems();
        if !problems.is_empty() {
            bail!("the archive {key} is not whole: {}", problems.join("; "));
        }
        let differential = contents.manifest.and_then(|m| m.differential);
        if let Some(d) = &differential {
            chain.want(&d.paths);
        }
        Ok(differential.map(|d| d.base))
    }

    /// Every path asked for was in the restore point.
    fn ensure_found(&self, selection: &Selection) -> anyhow::Result<()> {
        let missing: Vec<String> = selection
            .missing()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        if let Some(first) = missing.first() {
            let under = Path::new(first).parent().unwrap_or(Path::new(""));
            bail!(
                "not in archive {}: {} (`wpbackup ls --site {} --archive {} {}` shows what it holds there); nothing was restored",
                self.key,
                missing.join(", "),
                self.site,
                self.key,
                under.display()
            );
        }
        Ok(())
    }
}

/// How the staged tree goes into DIR: the entries (relative) renamed into place, deepest
/// where DIR already has the directory, and which of them replace a file of DIR.
#[derive(Debug, Default, PartialEq, Eq)]
struct Moves {
    renames: Vec<PathBuf>,
    replacing: Vec<PathBuf>,
}

/// Compare the staged tree `staged` with `to`, changing nothing in `to`: where `to` has no
/// such entry the staged one moves in whole; where both have a directory, their contents are
/// merged; where both have a file (or symlink) it is replaced; a directory against a file is
/// refused. The staged directories merged from are made writable, so that their entries can be
/// moved out whatever mode the archive gave them.
/// (`shown`: how `to` is named in errors.)
fn plan_moves(staged: &Path, to: &Path, shown: &Path) -> anyhow::Result<Moves> {
    use std::os::unix::fs::PermissionsExt;
    let mut moves = Moves::default();
    let mut clashes = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        let dir = staged.join(&rel);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot open up {}", dir.display()))?;
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
            let rel = rel.join(entry.file_name());
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let dst = to.join(&rel);
            match dst.symlink_metadata() {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => moves.renames.push(rel),
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot read {}", shown.join(&rel).display()));
                }
                Ok(m) if m.is_dir() && is_dir => dirs.push(rel),
                Ok(m) if !m.is_dir() && !is_dir => {
                    moves.replacing.push(rel.clone());
                    moves.renames.push(rel);
                }
                Ok(_) => clashes.push(shown.join(&rel).display().to_string()),
            }
        }
    }
    if !clashes.is_empty() {
        clashes.sort();
        bail!(
            "cannot restore over {}: a directory where the archive has a file, or the reverse (move it out of the way and run again); nothing was restored",
            clashes.join(", ")
        );
    }
    moves.renames.sort();
    moves.replacing.sort();
    Ok(moves)
}

/// The files `replacing` would replace in `to`, in words (for the confirmation).
fn replacing(replacing: &[PathBuf], to: &Path) -> String {
    let shown: Vec<String> = replacing
        .iter()
        .take(5)
        .map(|p| p.display().to_string())
        .collect();
    let more = replacing.len().saturating_sub(shown.len());
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let files = if replacing.len() == 1 {
        "file"
    } else {
        "files"
    };
    format!(
        "{} existing {files} in {} ({}{more})",
        replacing.len(),
        to.display(),
        shown.join(", ")
    )
}

/// Rename every entry of `moves` from the staging directory into `to`. Should one fail, the
/// staging directory is kept (what was not moved is there) and the error says where.
fn move_into_place(staging: Staging, moves: &Moves, to_fd: &Dir, to: &Path) -> anyhow::Result<()> {
    let files = staging.anchored().join("files");
    for (done, rel) in moves.renames.iter().enumerate() {
        let (src, dst) = (files.join(rel), to.join(rel));
        if let Err(e) = rename_into(&src, to_fd, rel) {
            let kept = staging.keep();
            return Err(e).with_context(|| {
                format!(
                    "cannot move {} into place; {done} of {} entries were moved into {}, the others are still in {}",
                    dst.display(),
                    moves.renames.len(),
                    to.display(),
                    kept.join("files").display()
                )
            });
        }
    }
    Ok(())
}

/// Rename `src` to `rel` under the directory `to_fd`: the directories on the way are opened
/// from the handle one at a time, never through a symlink, and the entry is renamed relative
/// to the last one (a link planted on the way is an error, never followed).
fn rename_into(src: &Path, to_fd: &Dir, rel: &Path) -> std::io::Result<()> {
    let names: Vec<&std::ffi::OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let Some((name, dirs)) = names.split_last() else {
        return Err(std::io::Error::other("nothing to move"));
    };
    let mut dir = rustix::fs::openat(
        to_fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for d in dirs {
        dir = rustix::fs::openat(
            &dir,
            *d,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
    }
    rustix::fs::renameat(rustix::fs::CWD, src, &dir, *name)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_paths_become_site_paths() {
        let p = |s: &str| site_path(Path::new(s));
        assert_eq!(
            p("wp-content/uploads/").unwrap(),
            Path::new("wp-content/uploads")
        );
        assert_eq!(p("/robots.txt").unwrap(), Path::new("robots.txt"));
        assert_eq!(p("./a//b").unwrap(), Path::new("a/b"));
        for bad in ["../etc", "a/../../b", "", ".", "/"] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn moves_merge_into_existing_directories_and_refuse_clashes() {
        let staged = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        let (s, t) = (staged.path(), to.path());
        for d in ["a/new", "a/old", "c"] {
            std::fs::create_dir_all(s.join(d)).unwrap();
        }
        for f in ["a/new/1", "a/old/2", "a/3", "b"] {
            std::fs::write(s.join(f), "archive").unwrap();
        }
        std::fs::create_dir_all(t.join("a/old")).unwrap();
        std::fs::write(t.join("a/3"), "live").unwrap();
        let moves = plan_moves(s, t, t).unwrap();
        let paths = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(
            moves,
            Moves {
                renames: paths(&["a/3", "a/new", "a/old/2", "b", "c"]),
                replacing: paths(&["a/3"]),
            }
        );
        // Planning changed nothing in DIR.
        assert_eq!(std::fs::read_to_string(t.join("a/3")).unwrap(), "live");
        assert!(!t.join("b").exists());

        // A file where DIR has a directory, a symlink where the archive has a directory.
        std::fs::create_dir(t.join("b")).unwrap();
        std::os::unix::fs::symlink(t.join("a"), t.join("c")).unwrap();
        let err = plan_moves(s, t, t).unwrap_err().to_string();
        assert!(
            err.contains(&t.join("b").display().to_string())
                && err.contains(&t.join("c").display().to_string())
                && err.contains("nothing was restored"),
            "{err}"
        );
    }
}
