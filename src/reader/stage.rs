//! An archive downloaded and unpacked into a new directory beside its target, as the bytes
//! arrive: the sha256 of the download and the contents against the manifest are both checked
//! before anything can use it ([`fetch_and_stage`]); a differential's bases follow it. Nothing
//! live is touched here: the restore pipeline (`restore/`) decides what happens to a staged
//! archive, and the drill restores into a scratch directory the same way.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tempfile::NamedTempFile;

use crate::logdb::LogDb;
use crate::reader::handles::Dir;
use crate::reader::{fetch, lock};
use std::sync::{Arc, Mutex};

use crate::reader::unpack::{self, Chain, Contents};
use crate::storage::Storage;
use crate::storage::catalog::Expected;

/// A restore point whose archives' sha256 matched, unpacked beside its target.
pub struct Fetched {
    pub staged: Staged,
    pub storage: String,
    pub expected: Expected,
    /// Bytes downloaded (the stored objects' sizes).
    pub size: u64,
    /// The bases unpacked after the archive itself (a differential's), newest first.
    pub bases: Vec<String>,
}

/// What to unpack an archive into.
#[derive(Clone)]
pub struct StageTo {
    /// The site directory the files will replace: `files/` is unpacked beside it. `None`
    /// when no files are restored.
    pub files_target: Option<PathBuf>,
    /// Extract `database.sql` into a private temporary file in `tmp_dir`.
    pub database: bool,
    pub tmp_dir: PathBuf,
    /// The time in the staging directory's name.
    pub stamp: String,
    pub identities: Option<crate::crypt::Identities>,
    /// Whose signatures are accepted ([`fetch::stream_trusted`]).
    pub trust: crate::sign::Trust,
}

/// Download `key` from the first of `storages` that has an intact copy, unpacking it while it
/// arrives ([`stage`]) and hashing every byte ([`fetch::first_intact`]): nothing may be
/// replaced by an archive that turns out to be damaged, and nothing live is touched here. No
/// compressed copy is kept on disk. A differential archive's bases follow, newest first, from
/// the storage it came from (a differential is only ever stored beside its base), each with
/// the sha256 its successor's manifest names ([`unpack::Chain`]).
pub fn fetch_and_stage(
    rt: &tokio::runtime::Runtime,
    key: &str,
    storages: &[&dyn Storage],
    logdb: Option<&LogDb>,
    to: &StageTo,
) -> anyhow::Result<Fetched> {
    let chain = Arc::new(Mutex::new(Chain::default()));
    let (owned_key, owned_to, c) = (key.to_string(), to.clone(), chain.clone());
    let got = fetch::first_intact(rt, key, storages, logdb, &to.trust, None, move |reader| {
        // A copy refused after unpacking leaves nothing: its staging directory goes with it.
        *lock(&c) = Chain::default();
        stage(reader, &owned_key, &owned_to, Some(&mut lock(&c)))
    })?;
    let mut fetched = Fetched {
        staged: got.value,
        storage: got.storage,
        expected: got.expected,
        size: got.size,
        bases: Vec::new(),
    };
    let first = fetched
        .staged
        .contents
        .manifest
        .as_ref()
        .and_then(|m| m.differential.clone());
    if let Some(d) = &first {
        lock(&chain).want(&d.paths);
    }
    let (dir, ids) = (
        fetched.staged.staging.as_ref().map(Staging::anchored),
        to.identities.clone(),
    );
    let c = chain.clone();
    let bases = fetch::bases(
        rt,
        key,
        &fetch::came_from(storages, &fetched.storage),
        logdb,
        &to.trust,
        first.map(|d| d.base),
        move |r, key| {
            let contents = stage_base(r, key, dir.as_deref(), ids.as_ref(), &mut lock(&c))?;
            let its_base = contents.manifest.as_ref().and_then(|m| m.base().cloned());
            Ok((contents, its_base))
        },
    )?;
    for b in bases {
        fetched.size += b.size;
        fetched.bases.push(b.key);
        if fetched.staged.contents.wp_config.is_none() {
            fetched.staged.contents.wp_config = b.value.wp_config;
        }
    }
    let chain = std::mem::take(&mut *lock(&chain));
    chain.finish()?;
    Ok(fetched)
}

/// Unpack one base of a restore point (read from `archive`, stored under `key`) into `dir`,
/// the staging directory of its newest archive; its contents, checked against its manifest.
fn stage_base(
    archive: &mut dyn std::io::Read,
    key: &str,
    dir: Option<&Path>,
    identities: Option<&crate::crypt::Identities>,
    chain: &mut Chain,
) -> anyhow::Result<Contents> {
    let contents = unpack::read(
        crate::crypt::open(archive, key, identities)?,
        unpack::Options {
            extract_to: dir,
            database_to: None,
            preserve_owner: rustix::process::geteuid().is_root(),
            only: None,
            chain: Some(chain),
            listing: None,
        },
    )?;
    let problems = contents.problems();
    if !problems.is_empty() {
        bail!("its base {key} is not whole: {}", problems.join("; "));
    }
    Ok(contents)
}

/// The time in the names of directories a restore leaves (`20261124T030405Z`).
pub fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The directory `target` is in, opened by handle ([`Dir::open`]), and `target`'s name there.
pub fn beside(target: &Path) -> anyhow::Result<(Dir, std::ffi::OsString)> {
    let abs = std::path::absolute(target).with_context(|| format!("--to {}", target.display()))?;
    let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
        bail!(
            "{} has no parent directory to restore beside",
            target.display()
        );
    };
    Ok((Dir::open(parent)?, name.to_os_string()))
}

/// A private directory beside the target, made by handle ([`Dir::private_dir`]: 0700, the
/// running user's) and written only through its handle ([`Staging::anchored`]): the owner of
/// the directory it is in may rename it or plant something in its place, but cannot enter it
/// nor redirect what is written. Removed with what it holds when dropped.
pub struct Staging {
    /// The directory it was made in (the target's parent).
    pub parent: Dir,
    /// Its name there, as made.
    pub name: std::ffi::OsString,
    dir: Option<Dir>,
}

impl Staging {
    /// A new private directory `name` (or `name-2`... when raced) in `parent`.
    pub fn create(parent: Dir, name: &std::ffi::OsStr) -> anyhow::Result<Staging> {
        let (name, dir) = parent.private_dir(name)?;
        Ok(Staging {
            parent,
            name,
            dir: Some(dir),
        })
    }

    /// Where it was made, by path: for messages, and for other processes (the drill's php)
    /// when the parent is a directory only root can change.
    pub fn path(&self) -> PathBuf {
        self.parent.path().join(&self.name)
    }

    /// A path that reaches it from this process through its handle, whatever it is named now.
    pub fn anchored(&self) -> PathBuf {
        match &self.dir {
            Some(d) => d.anchored(),
            None => self.path(),
        }
    }

    /// Its handle.
    pub fn dir(&self) -> anyhow::Result<&Dir> {
        self.dir.as_ref().context("the staging directory is gone")
    }

    /// Kept (not removed when dropped); where it was made.
    pub fn keep(mut self) -> PathBuf {
        self.dir = None;
        self.path()
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else {
            return;
        };
        // What it holds, through its handle; then the directory itself, only if the name
        // still is that directory (else it is left empty wherever its parent's owner put it).
        if let Ok(entries) = std::fs::read_dir(dir.anchored()) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = match e.file_type() {
                    Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
                    _ => std::fs::remove_file(&p),
                };
            }
        }
        if let (Ok(Some(now)), Ok(made)) = (self.parent.stat(&self.name), dir.fstat())
            && (now.st_dev, now.st_ino) == (made.st_dev, made.st_ino)
        {
            let _ = self.parent.remove(&self.name, true);
        }
    }
}

/// An archive unpacked beside its target, not yet in place.
pub struct Staged {
    /// `<target>.restoring-<time>`, holding `files/`; `None` when no files are restored.
    pub staging: Option<Staging>,
    /// `database.sql`, private, in the staging directory (else in `tmp_dir`); `None` when the
    /// database is not restored.
    pub database_sql: Option<NamedTempFile>,
    pub contents: Contents,
}

impl Staged {
    /// The restored site tree, ready to move into place, by path: for other processes (the
    /// drill's php, in its scratch directory only root can change).
    pub fn files(&self) -> Option<PathBuf> {
        self.staging.as_ref().map(|s| s.path().join("files"))
    }

    /// The same, reached through the staging directory's handle (this process only): what a
    /// restore reads and rewrites, wherever the target's parent is.
    pub fn files_anchored(&self) -> Option<PathBuf> {
        self.staging.as_ref().map(|s| s.anchored().join("files"))
    }
}

/// Unpack the archive read from `archive` (stored under `key`; decrypted with `to.identities`
/// when the key says it is encrypted): `files/` under a new directory beside
/// `to.files_target`, `database.sql` into a private temporary file in `to.tmp_dir`; fails
/// (leaving nothing) unless the contents match the manifest.
pub fn stage(
    archive: &mut dyn std::io::Read,
    key: &str,
    to: &StageTo,
    chain: Option<&mut Chain>,
) -> anyhow::Result<Staged> {
    let staging = match &to.files_target {
        None => None,
        Some(target) => {
            let (parent, name) = beside(target)?;
            let name = parent.free_name(&name, &format!(".restoring-{}", to.stamp));
            Some(Staging::create(parent, &name)?)
        }
    };
    let mut database_sql = if to.database {
        let tmp_dir = staging
            .as_ref()
            .map_or_else(|| to.tmp_dir.clone(), Staging::anchored);
        Some(
            tempfile::Builder::new()
                .prefix(".wpbackup-database-")
                .suffix(".sql")
                .tempfile_in(&tmp_dir)
                .with_context(|| {
                    format!("cannot create a temporary file in {}", to.tmp_dir.display())
                })?,
        )
    } else {
        None
    };
    let anchored = staging.as_ref().map(Staging::anchored);
    let contents = unpack::read(
        crate::crypt::open(archive, key, to.identities.as_ref())?,
        unpack::Options {
            extract_to: anchored.as_deref(),
            database_to: database_sql.as_mut().map(|f| f.as_file_mut()),
            preserve_owner: rustix::process::geteuid().is_root(),
            only: None,
            chain,
            listing: None,
        },
    )?;
    let problems = contents.problems();
    if !problems.is_empty() {
        bail!("the archive is not whole: {}", problems.join("; "));
    }
    if let Some(a) = &anchored
        && !a.join("files").is_dir()
    {
        bail!("the archive holds no files/ directory");
    }
    Ok(Staged {
        staging,
        database_sql,
        contents,
    })
}
