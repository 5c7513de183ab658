//! The archive: one streamed `tar.zst` per site and run, opened by plain `tar --zstd -xf`.
//!
//! Layout (formats.md): `files/` (the site's tree relative to its path, modes, mtimes and
//! symlinks kept, symlinks not followed, excludes left out), `parent/wp-config.php` (when
//! WordPress loads the site's configuration from the directory above it), `database.sql` (the
//! complete dump) and `manifest.json`. The tar stream goes through a multi-threaded zstd encoder into any
//! `Write` (the upload channel); nothing is staged on disk. Unreadable files are skipped and
//! listed; sockets, fifos and devices are skipped.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use sha2::Digest as _;
use tar::{EntryType, Header, HeaderMode};

use crate::backup::frames::{self, Frames};
use crate::backup::index::{self, Snapshot, Stat, TreeFile, TreeWriter};
use crate::backup::progress::{Phase, Progress};
use crate::backup::sample::Sampler;
use crate::backup::walk;
use crate::config::Compression;
use crate::dbtools::Dump;
use crate::manifest::paths::{List, ListWriter};
use crate::manifest::{
    Base, DELETED_LIST, Differential, FULL_FORMAT_VERSION, FileSample, Kind, ListMember, Member,
    PARENT_WP_CONFIG, PATH_LIST,
};
pub use crate::manifest::{FORMAT_VERSION, Manifest};

/// What goes into one archive besides the files themselves.
#[derive(Debug, Clone)]
pub struct ArchiveSpec {
    pub site: String,
    pub site_path: PathBuf,
    pub exclude: Vec<String>,
    /// Tables dumped without their rows (`sites[].exclude_tables`).
    pub exclude_tables: Vec<String>,
    pub server_id: String,
    pub created_at: DateTime<Utc>,
    pub compression: Compression,
    pub wordpress_version: Option<String>,
    pub database_name: String,
    pub table_prefix: String,
    pub siteurl: Option<String>,
    /// The parent directory's `wp-config.php`, when WordPress loads the site's from there.
    pub parent_wp_config: Option<PathBuf>,
    /// Make a differential archive on this base; `None`: a full one.
    pub differential: Option<DiffBase>,
    /// Where the walk writes the site's tree for the index (`index/<site>.trees`), when
    /// differentials are on.
    pub index_dir: Option<PathBuf>,
}

/// The base a differential archive holds the changes since.
#[derive(Debug, Clone)]
pub struct DiffBase {
    /// 1 (the base is a full archive) or 2 (a level-1 differential).
    pub level: u8,
    pub base: Arc<Snapshot>,
    /// A level-2 differential's full archive (its base's base), which must be there too.
    pub full: Option<Arc<Snapshot>>,
}

/// The site's tree as the archive saw it: what the index keeps for a later differential.
#[derive(Default)]
pub struct Tree {
    /// Written in the walk's order, when the spec asked for it (`index_dir`).
    pub file: Option<TreeFile>,
    /// Bytes of the regular files.
    pub bytes: u64,
}

pub(crate) fn exclude_set(patterns: &[String]) -> anyhow::Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let p = p.trim_start_matches("./").trim_end_matches('/');
        b.add(
            GlobBuilder::new(p)
                .literal_separator(false)
                .build()
                .with_context(|| format!("exclude pattern {p:?}"))?,
        );
    }
    Ok(b.build()?)
}

/// Write the whole archive to `out`. `dump` is called after the files are in, so the database
/// dump can run meanwhile; an error from it fails the archive. Also returns the site's tree as
/// walked, for the index.
pub fn write_archive<W: Write>(
    out: W,
    spec: &ArchiveSpec,
    dump: impl FnOnce() -> anyhow::Result<Arc<Dump>>,
    progress: &Progress,
) -> anyhow::Result<(W, Manifest, Tree)> {
    let enc = Frames::new(out, spec.compression).context("cannot start zstd")?;
    let mut tar = tar::Builder::new(enc);
    tar.mode(HeaderMode::Complete);
    tar.follow_symlinks(false);

    let mut walked = append_files(&mut tar, spec, progress)?;
    let parent_wp_config = append_parent_config(&mut tar, spec, &mut walked.skipped)?;
    let differential = match &spec.differential {
        Some(d) => Some(append_lists(&mut tar, spec, d, &mut walked)?),
        None => None,
    };
    let tree = Tree {
        file: match walked.tree.take() {
            Some(t) => Some(t.finish()?),
            None => None,
        },
        bytes: walked.site_bytes,
    };

    progress.enter(Phase::Dump);
    let dump = dump()?;
    append_dump(&mut tar, spec, &dump)?;

    let wordpress = dump.facts.wordpress(&spec.table_prefix);
    let manifest = Manifest {
        format_version: if differential.is_some() {
            FORMAT_VERSION
        } else {
            FULL_FORMAT_VERSION
        },
        wpbackup_version: env!("CARGO_PKG_VERSION").to_string(),
        site: spec.site.clone(),
        server_id: spec.server_id.clone(),
        created_at: spec
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        wordpress_version: spec.wordpress_version.clone(),
        database_name: spec.database_name.clone(),
        table_prefix: spec.table_prefix.clone(),
        siteurl: spec.siteurl.clone(),
        file_count: walked.count,
        bytes: walked.bytes,
        database_sha256: dump.sha256.clone(),
        database_bytes: dump.size,
        skipped: walked.skipped,
        changed: walked.changed,
        parent_wp_config,
        table_rows: Some(dump.facts.rows.clone()),
        home: wordpress.and_then(|w| w.home.clone()),
        published_posts: wordpress.map(|w| w.published_posts),
        binlog: dump.facts.binlog.as_ref().map(|(file, position)| {
            crate::manifest::BinlogPosition {
                file: file.clone(),
                position: *position,
            }
        }),
        file_samples: walked.samples,
        kind: Some(if differential.is_some() {
            Kind::Differential
        } else {
            Kind::Full
        }),
        differential,
        excluded_tables: spec
            .exclude_tables
            .iter()
            .filter(|t| dump.facts.rows.contains_key(*t))
            .cloned()
            .collect(),
        network_sites: network_sites(&dump.facts, &spec.table_prefix),
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    let mut header = Header::new_gnu();
    header.set_entry_type(EntryType::Regular);
    header.set_size(json.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(spec.created_at.timestamp().max(0) as u64);
    tar.append_data(&mut header, "manifest.json", json.as_slice())
        .context("cannot add manifest.json")?;

    let enc = tar.into_inner().context("cannot finish the tar stream")?;
    let out = enc.finish().context("cannot finish the zstd stream")?;
    Ok((out, manifest, tree))
}

/// `database.sql`: the dump is zstd-compressed already, so its header goes into the current
/// frame, then its frames are spliced in unchanged, then the tar padding starts a new frame.
/// `verify` and `restore` check the result against the manifest's sha256 of database.sql.
fn append_dump<W: Write>(
    tar: &mut tar::Builder<Frames<W>>,
    spec: &ArchiveSpec,
    dump: &Dump,
) -> anyhow::Result<()> {
    let mut header = Header::new_gnu();
    header.set_entry_type(EntryType::Regular);
    header.set_size(dump.size);
    header.set_mode(0o600);
    header.set_mtime(spec.created_at.timestamp().max(0) as u64);
    header
        .set_path("database.sql")
        .context("cannot add database.sql")?;
    header.set_cksum();
    let frames = tar.get_mut();
    frames
        .write_all(header.as_bytes())
        .context("cannot add database.sql")?;
    frames
        .splice(&mut dump.compressed()?)
        .context("cannot add database.sql")?;
    let padding = (512 - dump.size % 512) % 512;
    frames
        .write_all(&[0u8; 512][..padding as usize])
        .context("cannot add database.sql")?;
    Ok(())
}

/// A differential archive's `deleted.nul` (the paths of its chain's earlier archives the site
/// no longer has, as `files/...` each ended by a NUL byte, for `xargs -0 rm -rf --`) and
/// `paths.nul` (every path the site has, the same way), both in the walk's order as the walk
/// spooled them, and the manifest's description of them.
fn append_lists<W: Write>(
    tar: &mut tar::Builder<Frames<W>>,
    spec: &ArchiveSpec,
    d: &DiffBase,
    walked: &mut Walked,
) -> anyhow::Result<Differential> {
    let deleted = walked.finish_join()?;
    let paths = walked
        .paths
        .take()
        .context("no list of paths was kept")?
        .finish()
        .context("cannot keep the list of paths")?;
    let mut member = |name: &str, list: &List| -> anyhow::Result<ListMember> {
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_size(list.bytes);
        header.set_mode(0o644);
        header.set_mtime(spec.created_at.timestamp().max(0) as u64);
        let reader = list
            .reader()
            .with_context(|| format!("cannot read back {name}"))?;
        tar.append_data(&mut header, name, reader)
            .with_context(|| format!("cannot add {name}"))?;
        Ok(ListMember {
            count: list.count,
            bytes: list.bytes,
            sha256: list.sha256.clone(),
        })
    };
    let deleted_nul = member(DELETED_LIST, &deleted)?;
    let paths_nul = member(PATH_LIST, &paths)?;
    Ok(Differential {
        level: d.level,
        base: Base {
            key: d.base.key.clone(),
            sha256: d.base.sha256.clone(),
            size: d.base.size,
            created_at: d
                .base
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
        paths: Vec::new(),
        deleted: Vec::new(),
        paths_nul: Some(paths_nul),
        deleted_nul: Some(deleted_nul),
        site_file_count: walked.site_file_count,
        site_bytes: walked.site_bytes,
    })
}

/// The largest parent `wp-config.php` stored (a real one is a few KiB).
const MAX_PARENT_CONFIG: u64 = 1024 * 1024;

/// The parent directory's `wp-config.php`, when WordPress loads the site's from there
/// (`spec.parent_wp_config`): opened as the walk opens files (never through a symlink) and
/// appended as `parent/wp-config.php` with its mode, owner and mtime. One that cannot be read
/// is left out and listed in `skipped` as `../wp-config.php`. Its content is never logged:
/// it holds the database password.
fn append_parent_config<W: Write>(
    tar: &mut tar::Builder<Frames<W>>,
    spec: &ArchiveSpec,
    skipped: &mut Vec<String>,
) -> anyhow::Result<Option<Member>> {
    let Some(path) = &spec.parent_wp_config else {
        return Ok(None);
    };
    let rel = Path::new("../wp-config.php");
    let (dir, name) = (
        path.parent().unwrap_or(Path::new("/")),
        path.file_name().unwrap_or_default(),
    );
    let why = match walk::open_beside(dir, name, rel) {
        Ok(walk::Entry::File { handle, .. }) => match read_parent_config(&handle) {
            Ok((data, meta)) => {
                let mut header = Header::new_gnu();
                header.set_metadata_in_mode(&meta, HeaderMode::Complete);
                header.set_size(data.len() as u64);
                let mode = frames::choose(rel, data.len() as u64, &[], tar.get_ref().mode());
                tar.get_mut()
                    .set_mode(mode)
                    .context("cannot start a new zstd frame")?;
                tar.append_data(&mut header, PARENT_WP_CONFIG, data.as_slice())
                    .with_context(|| format!("cannot archive {}", path.display()))?;
                use sha2::Digest as _;
                return Ok(Some(Member {
                    sha256: hex::encode(sha2::Sha256::digest(&data)),
                    bytes: data.len() as u64,
                }));
            }
            Err(e) => e.to_string(),
        },
        Ok(walk::Entry::Symlink { target, .. }) => format!(
            "it is a symlink to {}, which the backup does not follow (a compromised site could point it anywhere): make it a regular file, or keep a copy of {} yourself",
            target.display(),
            target.display()
        ),
        Ok(_) => "it is not a regular file".into(),
        Err(s) => s.why,
    };
    tracing::warn!(
        site = %spec.site,
        path = %path.display(),
        "the site's wp-config.php (in the parent directory) is not in the archive: {why}"
    );
    skipped.push(rel.display().to_string());
    Ok(None)
}

/// The content and metadata of the opened parent `wp-config.php`, refused when too large.
fn read_parent_config(file: &std::fs::File) -> io::Result<(Vec<u8>, std::fs::Metadata)> {
    let meta = file.metadata()?;
    let mut data = Vec::new();
    file.take(MAX_PARENT_CONFIG + 1).read_to_end(&mut data)?;
    if data.len() as u64 > MAX_PARENT_CONFIG {
        return Err(io::Error::other(format!(
            "it is larger than {MAX_PARENT_CONFIG} bytes, which no wp-config.php is"
        )));
    }
    Ok((data, meta))
}

/// What the walk put in and left out.
struct Walked {
    count: u64,
    bytes: u64,
    skipped: Vec<String>,
    changed: Vec<String>,
    /// A few files' sha256 (see [`crate::backup::sample`]).
    samples: Vec<FileSample>,
    /// Files and symlinks, and bytes of regular files, of the whole site (a differential's
    /// unchanged files too).
    site_file_count: u64,
    site_bytes: u64,
    /// The tree for the index, every entry walked (archived or not) in the walk's order.
    tree: Option<TreeWriter>,
    /// A differential's base's tree, joined against the walk as both go.
    base: Option<index::Cursor>,
    /// A differential's `paths.nul` and `deleted.nul`, spooled as the walk goes.
    paths: Option<ListWriter>,
    deleted: Option<ListWriter>,
    /// The path whose record of the base the last look-up consumed.
    matched: Option<String>,
}

/// A path of the base the site no longer has: listed as deleted, and kept in the new tree
/// (kind `x`) so that a differential on this one deletes it too.
fn gone(
    deleted: &mut Option<ListWriter>,
    tree: &mut Option<TreeWriter>,
    path: &str,
) -> io::Result<()> {
    if let Some(d) = deleted {
        d.push(path.as_bytes())?;
    }
    if let Some(t) = tree {
        t.push(path, Stat::GONE)?;
    }
    Ok(())
}

impl Walked {
    fn new(spec: &ArchiveSpec) -> anyhow::Result<Walked> {
        let tree = match &spec.index_dir {
            Some(dir) => Some(TreeWriter::new(dir)?),
            None => None,
        };
        let (base, paths, deleted) = match &spec.differential {
            Some(d) => (
                Some(d.base.cursor()?),
                Some(ListWriter::new(b"files/").context("cannot keep the list of paths")?),
                Some(ListWriter::new(b"files/").context("cannot keep the list of paths")?),
            ),
            None => (None, None, None),
        };
        Ok(Walked {
            count: 0,
            bytes: 0,
            skipped: Vec::new(),
            changed: Vec::new(),
            samples: Vec::new(),
            site_file_count: 0,
            site_bytes: 0,
            tree,
            base,
            paths,
            deleted,
            matched: None,
        })
    }

    /// The base's record of `path`, the base's paths before it listed as deleted.
    fn look(&mut self, path: &str) -> anyhow::Result<Option<Stat>> {
        let Walked {
            base,
            deleted,
            tree,
            ..
        } = self;
        let Some(base) = base else {
            return Ok(None);
        };
        let found = base
            .seek(path, &mut |p, _| gone(deleted, tree, &p))
            .context("cannot read the index while walking")?;
        self.matched = found.map(|_| path.to_string());
        Ok(found)
    }

    /// An entry walked and archived (or left out as unchanged): in the tree and the paths.
    fn record(&mut self, path: &str, stat: Stat) -> anyhow::Result<()> {
        self.matched = None;
        if let Some(t) = &mut self.tree {
            t.push(path, stat).context("cannot write the index")?;
        }
        if let Some(p) = &mut self.paths {
            p.push(path.as_bytes())
                .context("cannot keep the list of paths")?;
        }
        if stat.0 != 'd' {
            self.site_file_count += 1;
        }
        if stat.0 == 'f' {
            self.site_bytes += stat.1;
        }
        Ok(())
    }

    /// An entry left out after its look-up: deleted, as far as this archive's chain knows.
    fn unrecord(&mut self, path: &str) -> io::Result<()> {
        if self.matched.as_deref() == Some(path) {
            self.matched = None;
            return gone(&mut self.deleted, &mut self.tree, path);
        }
        Ok(())
    }

    /// After the walk: the base's paths it did not see are deleted; the list of them.
    fn finish_join(&mut self) -> anyhow::Result<List> {
        let Walked {
            base,
            deleted,
            tree,
            ..
        } = self;
        if let Some(base) = base {
            base.rest(&mut |p, _| gone(deleted, tree, &p))
                .context("cannot read the index while walking")?;
        }
        self.deleted
            .take()
            .context("no list of deleted paths was kept")?
            .finish()
            .context("cannot keep the list of deleted paths")
    }
}

/// Walk the site (by handle: see [`walk`]) and append its entries under `files/`.
fn append_files<W: Write>(
    tar: &mut tar::Builder<Frames<W>>,
    spec: &ArchiveSpec,
    progress: &Progress,
) -> anyhow::Result<Walked> {
    let root = &spec.site_path;
    let meta = std::fs::metadata(root)
        .with_context(|| format!("cannot read the site directory {}", root.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    let excludes = exclude_set(&spec.exclude)?;
    let mut walk = FileWalk {
        tar,
        spec,
        progress,
        sampler: Sampler::default(),
        done: Walked::new(spec)?,
    };
    walk::walk(
        root,
        &|rel| excludes.is_match(rel),
        &mut |entry| match entry {
            Ok(e) => walk.append(e),
            Err(s) => walk.skip(s.rel.display().to_string(), &s),
        },
    )?;
    walk.done.samples = walk.sampler.finish();
    Ok(walk.done)
}

/// The file walk in progress: where entries go and what was counted and skipped so far.
struct FileWalk<'a, W: Write> {
    tar: &'a mut tar::Builder<Frames<W>>,
    spec: &'a ArchiveSpec,
    progress: &'a Progress,
    sampler: Sampler,
    done: Walked,
}

impl<W: Write> FileWalk<'_, W> {
    /// An entry that cannot be read is left out and listed.
    fn skip(&mut self, rel: String, why: &dyn std::fmt::Display) -> anyhow::Result<()> {
        tracing::warn!(site = %self.spec.site, path = %crate::output::printable(&rel), "skipped: {why}");
        self.done
            .unrecord(&rel)
            .context("cannot keep the list of deleted paths")?;
        self.done.skipped.push(rel);
        Ok(())
    }

    /// Append one entry of the walk (directory, symlink or regular file).
    fn append(&mut self, entry: walk::Entry) -> anyhow::Result<()> {
        let name = |rel: &Path| Path::new("files").join(rel);
        match entry {
            walk::Entry::Dir { rel, handle } => {
                let meta = handle.metadata();
                let (stat, _) = self.note(&rel, 'd', &meta)?;
                let Some(mut header) = self.header(&rel, meta)? else {
                    return Ok(());
                };
                header.set_entry_type(EntryType::Directory);
                header.set_size(0);
                self.tar.append_data(&mut header, name(&rel), io::empty())?;
                self.record(&rel, stat)?;
            }
            walk::Entry::Symlink { rel, target } => {
                let meta = std::fs::symlink_metadata(self.spec.site_path.join(&rel));
                let (stat, _) = self.note(&rel, 'l', &meta)?;
                let Some(mut header) = self.header(&rel, meta)? else {
                    return Ok(());
                };
                header.set_entry_type(EntryType::Symlink);
                header.set_size(0);
                self.tar.append_link(&mut header, name(&rel), &target)?;
                self.done.count += 1;
                self.record(&rel, stat)?;
            }
            walk::Entry::File { rel, handle } => {
                let meta = handle.metadata();
                let size = meta.as_ref().map(|m| m.len()).unwrap_or_default();
                let (stat, unchanged) = self.note(&rel, 'f', &meta)?;
                if unchanged {
                    return self.record(&rel, stat);
                }
                let Some(header) = self.header(&rel, meta)? else {
                    return Ok(());
                };
                match self.file(handle, &rel, &name(&rel), header, size)? {
                    Some(true) => self.record(&rel, stat.map(|(p, s)| (p, s.unsettled())))?,
                    Some(false) => self.record(&rel, stat)?,
                    None => {}
                }
            }
            // Sockets, fifos and devices: not site content, and reading a fifo would block.
            walk::Entry::Special { rel } => {
                tracing::debug!(site = %self.spec.site, path = %rel.display(), "skipped special file");
            }
        }
        Ok(())
    }

    /// The entry's record for the tree (`None` when its metadata cannot be read or its path
    /// is not UTF-8: it is then not recorded, and a restore of this archive's chain will not
    /// have it from a base), and whether it is a file unchanged since the differential's
    /// base (left out of the archive).
    fn note(
        &mut self,
        rel: &Path,
        kind: char,
        meta: &io::Result<std::fs::Metadata>,
    ) -> anyhow::Result<(Option<(String, Stat)>, bool)> {
        let (Ok(meta), Some(path)) = (meta, rel.to_str()) else {
            return Ok((None, false));
        };
        if path.is_empty() {
            return Ok((None, false));
        }
        let stat = Stat::of(kind, meta);
        let base = self.done.look(path)?;
        Ok((
            Some((path.to_string(), stat)),
            kind == 'f' && base == Some(stat),
        ))
    }

    /// Record an entry in the tree and the list of paths.
    fn record(&mut self, _rel: &Path, stat: Option<(String, Stat)>) -> anyhow::Result<()> {
        match stat {
            Some((path, stat)) => self.done.record(&path, stat),
            None => Ok(()),
        }
    }

    /// A tar header with the entry's mode, owner and mtime; `None` (and the entry listed as
    /// skipped) when its metadata cannot be read.
    fn header(
        &mut self,
        rel: &Path,
        meta: io::Result<std::fs::Metadata>,
    ) -> anyhow::Result<Option<Header>> {
        match meta {
            Ok(meta) => {
                let mut header = Header::new_gnu();
                header.set_metadata_in_mode(&meta, HeaderMode::Complete);
                Ok(Some(header))
            }
            Err(e) => {
                self.skip(rel.display().to_string(), &e)?;
                Ok(None)
            }
        }
    }

    /// Append a regular file, in the kind of zstd frame its name and first bytes call for:
    /// `None` when it could not be read (left out), else whether it changed while read.
    fn file(
        &mut self,
        file: std::fs::File,
        rel: &Path,
        name: &Path,
        mut header: Header,
        size: u64,
    ) -> anyhow::Result<Option<bool>> {
        // A large file's first bytes tell which kind of zstd frame it goes into.
        let mut sample = Vec::new();
        if size >= frames::DECIDING_SIZE
            && let Err(e) = (&file)
                .take(frames::SAMPLE_SIZE as u64)
                .read_to_end(&mut sample)
        {
            self.skip(rel.display().to_string(), &e)?;
            return Ok(None);
        }
        let mode = frames::choose(rel, size, &sample, self.tar.get_ref().mode());
        self.tar
            .get_mut()
            .set_mode(mode)
            .context("cannot start a new zstd frame")?;
        header.set_size(size);
        let before = file.metadata().ok().and_then(|m| m.modified().ok());
        // Sampled: hashed as it is archived.
        let rank = rel.to_str().and_then(|p| self.sampler.wants(p));
        let mut reader = Counting {
            inner: SizedReader::new(io::Cursor::new(sample).chain(&file), size),
            progress: self.progress,
            hasher: rank.map(|_| sha2::Sha256::new()),
        };
        self.tar
            .append_data(&mut header, name, &mut reader)
            .with_context(|| format!("cannot archive files/{}", rel.display()))?;
        if let (Some(rank), Some(hasher), Some(path)) = (rank, reader.hasher, rel.to_str()) {
            let sha256 = hex::encode(hasher.finalize());
            let bytes = size;
            let path = path.to_string();
            self.sampler.add(
                rank,
                FileSample {
                    path,
                    sha256,
                    bytes,
                },
            );
        }
        // Written while it was read (a log, a cache, an upload in progress): said, not hidden.
        let mut changed = false;
        let after = file.metadata().ok();
        if after.as_ref().map(|m| m.len()) != Some(size)
            || after.and_then(|m| m.modified().ok()) != before
        {
            let rel = rel.display().to_string();
            tracing::warn!(site = %self.spec.site, path = %crate::output::printable(&rel), "changed while it was read");
            self.done.changed.push(rel);
            changed = true;
        }
        self.done.count += 1;
        self.done.bytes += size;
        self.progress.files.fetch_add(1, Ordering::Relaxed);
        Ok(Some(changed))
    }
}

/// Reads exactly `size` bytes: a file that shrank while being read is padded with zeros and
/// one that grew is cut, so the tar header stays true and the archive stays readable.
struct SizedReader<R> {
    inner: io::Take<R>,
    remaining: u64,
}

impl<R: Read> SizedReader<R> {
    fn new(inner: R, size: u64) -> Self {
        SizedReader {
            inner: inner.take(size),
            remaining: size,
        }
    }
}

impl<R: Read> Read for SizedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        let n = if n == 0 {
            let pad = buf.len().min(self.remaining as usize);
            buf[..pad].fill(0);
            pad
        } else {
            n
        };
        self.remaining -= n as u64;
        Ok(n)
    }
}

struct Counting<'a, R> {
    inner: R,
    progress: &'a Progress,
    /// Hashes what passes, for a sampled file.
    hasher: Option<sha2::Sha256>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.progress
            .bytes_read
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A network's other sites in the dump: the installs whose prefix is the site's followed by
/// a number and `_` (`wp_2_`), with their `home` and published posts.
fn network_sites(
    facts: &crate::dbtools::facts::DumpFacts,
    prefix: &str,
) -> std::collections::BTreeMap<String, crate::manifest::SiteFacts> {
    facts
        .wordpress
        .iter()
        .filter(|(p, _)| {
            p.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix('_'))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|(p, w)| {
            (
                p.clone(),
                crate::manifest::SiteFacts {
                    home: w.home.clone(),
                    published_posts: w.published_posts,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_match_paths_and_names() {
        let set =
            exclude_set(&["wp-content/cache".into(), "*.log".into(), "./tmp/".into()]).unwrap();
        assert!(set.is_match("wp-content/cache"));
        assert!(set.is_match("debug.log"));
        assert!(set.is_match("wp-content/uploads/x.log"));
        assert!(set.is_match("tmp"));
        assert!(!set.is_match("wp-content/cache2"));
        assert!(!set.is_match("wp-content/uploads/a.jpg"));
    }

    #[test]
    fn sized_reader_pads_and_cuts() {
        let mut out = Vec::new();
        SizedReader::new(&b"abc"[..], 5)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"abc\0\0");
        out.clear();
        SizedReader::new(&b"abcdef"[..], 2)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"ab");
    }
}
