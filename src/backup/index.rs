//! The index of each site's bases: what the site's tree looked like (path, kind, size, mtime,
//! ctime, inode) when its newest full archive and its newest level-1 differential were made,
//! and where those archives are (key, storage, size, sha256). A differential archive holds the
//! files whose entry differs from its base's, so the index is what makes one possible.
//!
//! It lives in `<home>/index/`: `<site>.json` (0600, replaced atomically) names the bases and,
//! for each, its tree: a file of `<site>.trees/` holding one record per path in the walk's
//! order ([`crate::manifest::paths::walk_order`]), front-coded and zstd-compressed (about 20
//! bytes a path), with its sha256 in `<site>.json`. A run reads a tree as it walks the site
//! (a merge join: [`Cursor`]), so memory does not grow with the number of files. The trees
//! are written first, `<site>.json` then switches to them, and trees no longer named are
//! removed.
//!
//! It is only a cache of what the bucket holds: when it is missing, unreadable, from another
//! format (the JSON index of format 1 is not read: the next run makes a full archive), a tree
//! does not match its sha256, or it names a base the storage no longer has with that size,
//! the run makes a full archive and a new index.
//!
//! A file counts as unchanged only when its size, mtime, ctime and inode all match. ctime
//! cannot be set from user space (`touch -d` sets mtime, and changes ctime), so a file whose
//! content changed with its mtime put back is still seen; a file that changed while it was
//! read is recorded with an impossible mtime, so the next run sends it again.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, BufRead as _, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::manifest::paths::walk_order;

/// The index's layout version; another one is not read (the run makes a full).
const FORMAT: u32 = 2;

/// `<site>.json` of format 2 is a few hundred bytes; a larger one is format 1's whole tree,
/// not read.
const MAX_HEADER: u64 = 64 * 1024;

/// One entry of the tree: `[kind, size, mtime_ns, ctime_ns, inode]`, kind `d`, `f` or `l`,
/// or `x`: a path the chain's earlier archives hold that the site no longer had.
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

    /// A path gone from the site.
    pub const GONE: Stat = Stat('x', 0, 0, 0, 0);

    /// The same entry, marked so that it never matches: it changed while it was read.
    pub fn unsettled(self) -> Stat {
        Stat(self.0, self.1, i64::MIN, self.3, self.4)
    }
}

/// One base: the archive, and the tree at its time.
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
    /// The file of `<site>.trees/` holding the tree: every path under `files/` then, and the
    /// paths the chain's earlier archives hold that the site no longer had (kind `x`).
    pub tree: String,
    /// Its sha256 and its records.
    pub tree_sha256: String,
    pub paths: u64,
    /// Where `tree` is (set when loaded).
    #[serde(skip)]
    pub dir: PathBuf,
}

impl Snapshot {
    /// Its tree from the start, to join against a walk.
    pub fn cursor(&self) -> anyhow::Result<Cursor> {
        let p = self.dir.join(&self.tree);
        let file =
            File::open(&p).with_context(|| format!("cannot open the index {}", p.display()))?;
        let dec = zstd::stream::read::Decoder::new(file)
            .with_context(|| format!("cannot read the index {}", p.display()))?;
        Ok(Cursor {
            inner: BufReader::new(dec),
            prev: Vec::new(),
            peeked: None,
        })
    }
}

/// A tree read in the walk's order, one record at a time.
pub struct Cursor {
    inner: BufReader<zstd::stream::read::Decoder<'static, BufReader<File>>>,
    prev: Vec<u8>,
    peeked: Option<(String, Stat)>,
}

impl Cursor {
    fn next_record(&mut self) -> io::Result<Option<(String, Stat)>> {
        if let Some(r) = self.peeked.take() {
            return Ok(Some(r));
        }
        if self.inner.fill_buf()?.is_empty() {
            return Ok(None);
        }
        let r = &mut self.inner;
        let shared = varint(r)? as usize;
        let len = varint(r)? as usize;
        if shared > self.prev.len() || len > 1 << 20 {
            return Err(bad());
        }
        self.prev.truncate(shared);
        let start = self.prev.len();
        self.prev.resize(start + len, 0);
        r.read_exact(&mut self.prev[start..])?;
        let mut kind = [0u8];
        r.read_exact(&mut kind)?;
        let stat = Stat(
            char::from(kind[0]),
            varint(r)?,
            unzigzag(varint(r)?),
            unzigzag(varint(r)?),
            varint(r)?,
        );
        let path = String::from_utf8(self.prev.clone()).map_err(|_| bad())?;
        Ok(Some((path, stat)))
    }

    /// Walk past the records before `path` (in walk order), giving each to `passed`; the
    /// record of `path` itself when there is one (consumed).
    pub fn seek(
        &mut self,
        path: &str,
        passed: &mut dyn FnMut(String, Stat) -> io::Result<()>,
    ) -> io::Result<Option<Stat>> {
        while let Some((p, stat)) = self.next_record()? {
            match walk_order(p.as_bytes(), path.as_bytes()) {
                Ordering::Less => passed(p, stat)?,
                Ordering::Equal => return Ok(Some(stat)),
                Ordering::Greater => {
                    self.peeked = Some((p, stat));
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    /// Every record left.
    pub fn rest(
        &mut self,
        passed: &mut dyn FnMut(String, Stat) -> io::Result<()>,
    ) -> io::Result<()> {
        while let Some((p, stat)) = self.next_record()? {
            passed(p, stat)?;
        }
        Ok(())
    }
}

fn bad() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "the index's tree is damaged")
}

fn varint(r: &mut impl Read) -> io::Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let mut b = [0u8];
        r.read_exact(&mut b)?;
        v |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(bad())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A tree being written during a walk, into a temporary file of `<site>.trees/`.
pub struct TreeWriter {
    enc: zstd::stream::write::Encoder<'static, BufWriter<Hashing>>,
    prev: String,
    paths: u64,
    buf: Vec<u8>,
}

/// The file under the encoder, hashed as it is written.
struct Hashing {
    file: tempfile::NamedTempFile,
    hasher: sha2::Sha256,
}

impl Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A finished tree, not yet in the index (dropped: removed).
pub struct TreeFile {
    file: tempfile::NamedTempFile,
    pub sha256: String,
    pub paths: u64,
}

impl TreeWriter {
    /// A new tree in `dir` (created private when missing).
    pub fn new(dir: &Path) -> anyhow::Result<TreeWriter> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let file = tempfile::Builder::new()
            .prefix(".tree-")
            .tempfile_in(dir)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        let hashing = Hashing {
            file,
            hasher: sha2::Sha256::new(),
        };
        let mut enc = zstd::stream::write::Encoder::new(BufWriter::new(hashing), 3)
            .context("cannot start zstd")?;
        enc.include_checksum(true)?;
        Ok(TreeWriter {
            enc,
            prev: String::new(),
            paths: 0,
            buf: Vec::new(),
        })
    }

    /// The next record; paths must come in the walk's order.
    pub fn push(&mut self, path: &str, stat: Stat) -> io::Result<()> {
        if self.paths > 0 && walk_order(self.prev.as_bytes(), path.as_bytes()) != Ordering::Less {
            return Err(io::Error::other(format!(
                "the index's tree would not be in the walk's order ({path:?} after {:?})",
                self.prev
            )));
        }
        let shared = self
            .prev
            .bytes()
            .zip(path.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        let b = &mut self.buf;
        b.clear();
        put_varint(b, shared as u64);
        put_varint(b, (path.len() - shared) as u64);
        b.extend_from_slice(&path.as_bytes()[shared..]);
        b.push(u8::try_from(stat.0).unwrap_or(b'?'));
        put_varint(b, stat.1);
        put_varint(b, zigzag(stat.2));
        put_varint(b, zigzag(stat.3));
        put_varint(b, stat.4);
        self.enc.write_all(b)?;
        self.prev.clear();
        self.prev.push_str(path);
        self.paths += 1;
        Ok(())
    }

    pub fn finish(self) -> anyhow::Result<TreeFile> {
        let hashing = self
            .enc
            .finish()
            .and_then(|w| w.into_inner().map_err(io::IntoInnerError::into_error))
            .context("cannot write the index's tree")?;
        let Hashing { mut file, hasher } = hashing;
        file.flush()
            .and_then(|()| file.as_file().sync_all())
            .context("cannot write the index's tree")?;
        Ok(TreeFile {
            file,
            sha256: hex::encode(hasher.finalize()),
            paths: self.paths,
        })
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

/// Where the site's trees are kept.
pub fn trees(home: &Path, site: &str) -> PathBuf {
    home.join("index").join(format!("{site}.trees"))
}

/// The site's index; `None` (and the reason logged) when there is none that can be used.
pub fn load(home: &Path, site: &str) -> Option<Index> {
    let p = path(home, site);
    let data = match read_header(&p) {
        Ok(Some(d)) => d,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(site, "cannot read the index {}: {e}", p.display());
            return None;
        }
    };
    let mut index = match serde_json::from_slice::<Index>(&data) {
        Ok(i) if i.format == FORMAT => i,
        Ok(i) => {
            tracing::warn!(site, "the index {} has format {}", p.display(), i.format);
            return None;
        }
        Err(e) => {
            tracing::warn!(site, "the index {} cannot be read: {e}", p.display());
            return None;
        }
    };
    let dir = trees(home, site);
    for snap in [index.full.as_mut(), index.level1.as_mut()]
        .into_iter()
        .flatten()
    {
        snap.dir = dir.clone();
        if let Err(e) = check_tree(snap) {
            tracing::warn!(site, "the index {} cannot be used: {e:#}", p.display());
            return None;
        }
    }
    Some(index)
}

/// `<site>.json`'s bytes; `None` when there is none. One too large to be of this format (the
/// whole tree of format 1) is refused without being read.
fn read_header(p: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let file = match File::open(p) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut data = Vec::new();
    file.take(MAX_HEADER + 1).read_to_end(&mut data)?;
    if data.len() as u64 > MAX_HEADER {
        anyhow::bail!(
            "it is larger than an index of format {FORMAT} is (an older wpbackup's, format 1): it is not read, and this run makes a full archive"
        );
    }
    Ok(Some(data))
}

/// The snapshot's tree is there with the sha256 recorded.
fn check_tree(snap: &Snapshot) -> anyhow::Result<()> {
    let p = snap.dir.join(&snap.tree);
    let mut file = File::open(&p).with_context(|| format!("cannot open {}", p.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", p.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    if hex::encode(hasher.finalize()) != snap.tree_sha256 {
        anyhow::bail!("{} is not the tree it records (damaged)", p.display());
    }
    Ok(())
}

/// Write the site's index (private, replacing the old one only once complete). `tree`, when
/// given, is the new snapshot's tree: it is kept as `snapshot.tree` in `<site>.trees/`. Trees
/// the new index does not name are removed.
pub fn save(home: &Path, site: &str, index: &Index, tree: Option<TreeFile>) -> anyhow::Result<()> {
    let p = path(home, site);
    let dir = p.parent().unwrap_or(home);
    let tdir = trees(home, site);
    if let Some(t) = tree {
        // The snapshot naming it is the one with its sha256.
        let name = [index.full.as_ref(), index.level1.as_ref()]
            .into_iter()
            .flatten()
            .find(|s| s.tree_sha256 == t.sha256)
            .map(|s| s.tree.clone())
            .context("the index names no snapshot of this tree")?;
        let to = tdir.join(&name);
        t.file
            .persist(&to)
            .with_context(|| format!("cannot write {}", to.display()))?;
    }
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
    serde_json::to_writer(BufWriter::new(tmp.as_file_mut()), &index)
        .with_context(|| format!("cannot write {}", p.display()))?;
    tmp.as_file_mut()
        .flush()
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", p.display()))?;
    tmp.persist(&p)
        .with_context(|| format!("cannot write {}", p.display()))?;
    // Trees no longer named, and what killed runs left.
    let named: Vec<&str> = [index.full.as_ref(), index.level1.as_ref()]
        .into_iter()
        .flatten()
        .map(|s| s.tree.as_str())
        .collect();
    if let Ok(entries) = std::fs::read_dir(&tdir) {
        for e in entries.flatten() {
            let name = e.file_name();
            if !named.iter().any(|n| name == **n) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

/// The name of the tree of the archive made at `created_at` at `level`.
pub fn tree_name(created_at: DateTime<Utc>, level: u8) -> String {
    format!("{}-{level}.zst", created_at.format("%Y%m%dT%H%M%SZ"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(home: &Path, entries: &[(&str, Stat)]) -> (Snapshot, TreeFile) {
        let mut w = TreeWriter::new(&trees(home, "blog")).unwrap();
        for (p, s) in entries {
            w.push(p, *s).unwrap();
        }
        let t = w.finish().unwrap();
        let created_at = Utc::now();
        (
            Snapshot {
                key: "s/a/a_20260101T000000Z.tar.zst".into(),
                storage: "primary".into(),
                sha256: "ab".repeat(32),
                size: 10,
                created_at,
                level: 0,
                bytes: 3,
                tree: tree_name(created_at, 0),
                tree_sha256: t.sha256.clone(),
                paths: t.paths,
                dir: trees(home, "blog"),
            },
            t,
        )
    }

    #[test]
    fn an_index_is_private_and_its_tree_joins_a_walk() {
        use std::os::unix::fs::PermissionsExt as _;
        let home = tempfile::tempdir().unwrap();
        let f = |n| Stat('f', n, -5, 2, 3);
        let (snap, tree) = snapshot(
            home.path(),
            &[
                ("a", Stat('d', 0, 1, 1, 1)),
                ("a/x", f(1)),
                ("a.txt", f(2)),
                ("b", Stat::GONE),
            ],
        );
        let index = Index {
            format: FORMAT,
            full: Some(snap),
            level1: None,
        };
        save(home.path(), "blog", &index, Some(tree)).unwrap();
        let mode = std::fs::metadata(path(home.path(), "blog"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let loaded = load(home.path(), "blog").unwrap();
        assert_eq!(loaded, index);
        let mut c = loaded.full.unwrap().cursor().unwrap();
        let mut passed = Vec::new();
        let mut note = |p: String, s: Stat| {
            passed.push((p, s.0));
            Ok(())
        };
        assert_eq!(c.seek("a/x", &mut note).unwrap(), Some(f(1)));
        assert_eq!(c.seek("a/y", &mut note).unwrap(), None);
        c.rest(&mut note).unwrap();
        assert_eq!(
            passed,
            [
                ("a".to_string(), 'd'),
                ("a.txt".into(), 'f'),
                ("b".into(), 'x')
            ]
        );
        // Out of the walk's order: refused.
        let mut w = TreeWriter::new(&trees(home.path(), "blog")).unwrap();
        w.push("b", f(1)).unwrap();
        assert!(w.push("a", f(1)).is_err());
    }

    #[test]
    fn a_damaged_foreign_or_old_index_is_no_index() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("index")).unwrap();
        std::fs::write(path(home.path(), "a"), b"{not json").unwrap();
        assert_eq!(load(home.path(), "a"), None);
        std::fs::write(path(home.path(), "a"), br#"{"format": 99}"#).unwrap();
        assert_eq!(load(home.path(), "a"), None);
        assert_eq!(load(home.path(), "missing"), None);
        // Format 1: the whole tree in JSON.
        let old = format!(
            r#"{{"format":1,"full":{{"entries":{{{}}}}}}}"#,
            (0..5000)
                .map(|i| format!(r#""wp-content/uploads/{i}.jpg":["f",1,2,3,4]"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        std::fs::write(path(home.path(), "a"), old).unwrap();
        assert_eq!(load(home.path(), "a"), None);
        // A tree that is not the one recorded.
        let (snap, tree) = snapshot(home.path(), &[("a", Stat('f', 1, 1, 1, 1))]);
        let index = Index {
            format: FORMAT,
            full: Some(snap.clone()),
            level1: None,
        };
        save(home.path(), "blog", &index, Some(tree)).unwrap();
        assert!(load(home.path(), "blog").is_some());
        std::fs::write(snap.dir.join(&snap.tree), b"x").unwrap();
        assert_eq!(load(home.path(), "blog"), None);
    }
}
