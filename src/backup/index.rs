//! The index of each site's bases: what the site's tree looked like (path, kind, size, mtime,
//! ctime, inode) when its newest full archive and its newest level-1 differential were made,
//! and where those archives are (key, storage, size, sha256). A differential archive holds the
//! files whose entry differs from its base's, so the index is what makes one possible.
//!
//! It lives in `<home>/index/<site>.json` (0600, replaced atomically). It is only a cache of
//! what the bucket holds: when it is missing, unreadable, from another format or names a base
//! the storage no longer has with that size, the run makes a full archive and a new index.
//!
//! A file counts as unchanged only when its size, mtime, ctime and inode all match. ctime
//! cannot be set from user space (`touch -d` sets mtime, and changes ctime), so a file whose
//! content changed with its mtime put back is still seen; a file that changed while it was
//! read is recorded with an impossible mtime, so the next run sends it again.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The index's layout version; another one is not read (the run makes a full).
const FORMAT: u32 = 1;

/// One entry of the tree: `[kind, size, mtime_ns, ctime_ns, inode]`, kind `d`, `f` or `l`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat(pub char, pub u64, pub i64, pub i64, pub u64);

impl Stat {
    /// The entry as `meta` describes it (`kind`: `d`, `f` or `l`).
    pub fn of(kind: char, meta: &std::fs::Metadata) -> Stat {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Stat(
            kind,
            meta.len(),
            ns(meta.mtime(), meta.mtime_nsec()),
            ns(meta.ctime(), meta.ctime_nsec()),
            meta.ino(),
        )
    }

    /// The same entry, marked so that it never matches: it changed while it was read.
    pub fn unsettled(self) -> Stat {
        Stat(self.0, self.1, i64::MIN, self.3, self.4)
    }
}

/// The tree at the time of one archive, and the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub key: String,
    pub storage: String,
    pub sha256: String,
    /// The stored object's size.
    pub size: u64,
    pub created_at: DateTime<Utc>,
    /// 0: a full archive; 1: a level-1 differential.
    pub level: u8,
    /// Bytes of the site's regular files then.
    pub bytes: u64,
    /// Every path under `files/` then.
    pub entries: BTreeMap<String, Stat>,
    /// Paths the chain's earlier archives hold that the site no longer had then.
    #[serde(default)]
    pub gone: Vec<String>,
}

impl Snapshot {
    /// Whether the file at `path` with metadata `meta` is the one this snapshot recorded
    /// (same size, mtime, ctime and inode): a differential on this base leaves it out.
    pub fn has_unchanged_file(&self, path: &str, meta: &std::fs::Metadata) -> bool {
        self.entries.get(path) == Some(&Stat::of('f', meta))
    }

    /// Every path a restore of this snapshot's chain unpacks before removing what is gone.
    pub fn seen(&self) -> impl Iterator<Item = &str> {
        self.entries
            .keys()
            .map(String::as_str)
            .chain(self.gone.iter().map(String::as_str))
    }
}

/// `<home>/index/<site>.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub format: u32,
    /// The newest full archive.
    pub full: Option<Snapshot>,
    /// The newest level-1 differential on that full.
    pub level1: Option<Snapshot>,
}

/// Where the site's index is kept.
pub fn path(home: &Path, site: &str) -> PathBuf {
    home.join("index").join(format!("{site}.json"))
}

/// The site's index; `None` (and the reason logged) when there is none that can be used.
pub fn load(home: &Path, site: &str) -> Option<Index> {
    let p = path(home, site);
    let data = match std::fs::read(&p) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(site, "cannot read the index {}: {e}", p.display());
            return None;
        }
    };
    match serde_json::from_slice::<Index>(&data) {
        Ok(i) if i.format == FORMAT => Some(i),
        Ok(i) => {
            tracing::warn!(site, "the index {} has format {}", p.display(), i.format);
            None
        }
        Err(e) => {
            tracing::warn!(site, "the index {} cannot be read: {e}", p.display());
            None
        }
    }
}

/// Write the site's index (private, replacing the old one only once complete).
pub fn save(home: &Path, site: &str, index: &Index) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    let p = path(home, site);
    let dir = p.parent().unwrap_or(home);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    // What a killed run left half-written (runs are one at a time: the run lock).
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".index-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".index-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let index = Index {
        format: FORMAT,
        ..index.clone()
    };
    serde_json::to_writer(std::io::BufWriter::new(tmp.as_file_mut()), &index)
        .with_context(|| format!("cannot write {}", p.display()))?;
    tmp.as_file_mut()
        .flush()
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", p.display()))?;
    tmp.persist(&p)
        .with_context(|| format!("cannot write {}", p.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            key: "s/a/a_20260101T000000Z.tar.zst".into(),
            storage: "primary".into(),
            sha256: "ab".repeat(32),
            size: 10,
            created_at: Utc::now(),
            level: 0,
            bytes: 3,
            entries: BTreeMap::from([("x".to_string(), Stat('f', 3, 1, 2, 3))]),
            gone: vec!["y".into()],
        }
    }

    #[test]
    fn an_index_is_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let home = tempfile::tempdir().unwrap();
        let index = Index {
            format: FORMAT,
            full: Some(snapshot()),
            level1: None,
        };
        save(home.path(), "blog", &index).unwrap();
        let mode = std::fs::metadata(path(home.path(), "blog"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load(home.path(), "blog"), Some(index));
        let snap = snapshot();
        let seen: Vec<&str> = snap.seen().collect();
        assert_eq!(seen, ["x", "y"]);
    }

    #[test]
    fn a_damaged_or_foreign_index_is_no_index() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("index")).unwrap();
        std::fs::write(path(home.path(), "a"), b"{not json").unwrap();
        assert_eq!(load(home.path(), "a"), None);
        std::fs::write(path(home.path(), "a"), br#"{"format": 99}"#).unwrap();
        assert_eq!(load(home.path(), "a"), None);
        assert_eq!(load(home.path(), "missing"), None);
    }
}
