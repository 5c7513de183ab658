//! An archive downloaded and unpacked into a new directory beside its target, as the bytes
//! arrive: the sha256 of the download and the contents against the manifest are both checked
//! before anything can use it ([`fetch_and_stage`]); a differential's bases follow it. Nothing
//! live is touched here: the restore pipeline (`restore/`) decides what happens to a staged
//! archive, and the drill restores into a scratch directory the same way.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tempfile::NamedTempFile;

use crate::logdb::LogDb;
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
        fetched.staged.staging.as_ref().map(|s| s.dir.clone()),
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

/// `<target><suffix>` beside the target (never inside it, whatever slashes the target's path
/// ends with), with `-2`, `-3`... appended when that exists already.
pub fn sibling(target: &Path, suffix: &str) -> PathBuf {
    let name = |n: Option<u32>| {
        let mut s = target.file_name().unwrap_or_default().to_os_string();
        s.push(suffix);
        if let Some(n) = n {
            s.push(format!("-{n}"));
        }
        target.with_file_name(s)
    };
    let mut p = name(None);
    let mut n = 2;
    while p.symlink_metadata().is_ok() {
        p = name(Some(n));
        n += 1;
    }
    p
}

/// A directory removed with what it holds when dropped.
pub struct Staging {
    pub dir: PathBuf,
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An archive unpacked beside its target, not yet in place.
pub struct Staged {
    /// `<target>.restoring-<time>`, holding `files/`; `None` when no files are restored.
    pub staging: Option<Staging>,
    /// `database.sql`, private, in `tmp_dir`; `None` when the database is not restored.
    pub database_sql: Option<NamedTempFile>,
    pub contents: Contents,
}

impl Staged {
    /// The restored site tree, ready to move into place.
    pub fn files(&self) -> Option<PathBuf> {
        self.staging.as_ref().map(|s| s.dir.join("files"))
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
    use std::os::unix::fs::DirBuilderExt;
    let staging = match &to.files_target {
        None => None,
        Some(target) => {
            let dir = sibling(target, &format!(".restoring-{}", to.stamp));
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            Some(Staging { dir })
        }
    };
    let mut database_sql = if to.database {
        Some(
            tempfile::Builder::new()
                .prefix(".wpbackup-database-")
                .suffix(".sql")
                .tempfile_in(&to.tmp_dir)
                .with_context(|| {
                    format!("cannot create a temporary file in {}", to.tmp_dir.display())
                })?,
        )
    } else {
        None
    };
    let contents = unpack::read(
        crate::crypt::open(archive, key, to.identities.as_ref())?,
        unpack::Options {
            extract_to: staging.as_ref().map(|s| s.dir.as_path()),
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
    if staging.is_some()
        && !staging
            .as_ref()
            .is_some_and(|s| s.dir.join("files").is_dir())
    {
        bail!("the archive holds no files/ directory");
    }
    Ok(Staged {
        staging,
        database_sql,
        contents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("site");
        let a = sibling(&t, ".x");
        assert_eq!(a, dir.path().join("site.x"));
        std::fs::create_dir(&a).unwrap();
        assert_eq!(sibling(&t, ".x"), dir.path().join("site.x-2"));
        let slashed = PathBuf::from(format!("{}/", t.display()));
        assert_eq!(sibling(&slashed, ".x"), dir.path().join("site.x-2"));
    }
}
