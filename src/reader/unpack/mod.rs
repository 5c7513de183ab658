//! Reading an archive's tar.zst stream the way restore and verify need it: every entry is read
//! and its path checked (absolute paths and `..` are refused, never skipped quietly), `files/`
//! is optionally extracted under a new directory, `database.sql` is hashed and optionally
//! copied out, `parent/wp-config.php` (the site's configuration from the directory above it)
//! is kept in memory with its metadata for the restore to put back, and [`Contents::problems`]
//! compares `manifest.json` with what was actually read.
//!
//! With a [`Selection`] (`restore --only`), only some paths of `files/` are extracted (the
//! rest is still read and checked).
//!
//! Entries may come in any order (formats.md). Directories are created private first and get
//! their own mode, mtime (and owner, when running as root) at the end, deepest first, so a
//! read-only directory in the archive cannot block its own contents.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};
use sha2::{Digest, Sha256};
use tar::EntryType;

use crate::dbtools::COMPLETION_MARKER;
use crate::manifest::paths::{Items, List, ListWriter, walk_order};
use crate::manifest::{
    DELETED_LIST, FORMAT_VERSION, ListMember, Manifest, PARENT_WP_CONFIG, PATH_LIST,
};

mod listing;
mod select;
pub use listing::{FileEntry, Listing};
pub use select::Selection;

/// What to do with the archive's contents besides checking them.
#[derive(Default)]
pub struct Options<'a> {
    /// Extract `files/` into `<dir>/files` (`dir` must exist and hold no `files`).
    pub extract_to: Option<&'a Path>,
    /// Copy `database.sql` into this file.
    pub database_to: Option<&'a mut File>,
    /// Restore the owner and group of every entry (only root can).
    pub preserve_owner: bool,
    /// Extract only these paths of `files/`.
    pub only: Option<&'a mut Selection>,
    /// One archive of a restore point's chain (see [`Chain`]).
    pub chain: Option<&'a mut Chain>,
    /// Keep the entries of `files/` the restore point takes (`ls`).
    pub listing: Option<&'a mut Listing>,
}

/// A restore point of several archives, unpacked newest first into one directory: the newest
/// archive whole; then from each base (a differential's, then its own), only the paths the
/// restore point has (the newest archive's `paths.nul`, or its manifest's `differential.paths`
/// before format 2) that no newer archive provided. So every file is written once, from the
/// newest archive that holds it, and what was deleted since a base never comes back. Symlinks
/// made by any archive of the chain are never written through, and directories get their
/// modes and times once all are in.
///
/// Since format 2 the lists are streams: a base's entries, the paths wanted and the paths the
/// newer archives provided all come in the walk's order and are joined as the base is read
/// (what was provided is spooled to a temporary file for the next base), so memory does not
/// grow with the number of files. A base whose entries are not in that order is refused.
#[derive(Default)]
pub struct Chain {
    /// `None` while the newest archive is read.
    wanted: Option<Wanted>,
    /// Before format 2: the paths a newer archive provided.
    done: HashSet<String>,
    /// The paths the archives read so far provided, in the order read.
    provided: Option<List>,
    /// The same, being written while an archive is read.
    providing: Option<ListWriter>,
    /// `provided` being joined against the archive read.
    provided_items: Option<Items>,
    /// The wanted paths being joined against the archive read.
    wanted_items: Option<Items>,
    /// The last path of `files/` the archive read had (its order checked).
    last: Option<Vec<u8>>,
    /// The newest archive's `paths.nul`, as read.
    listed: Option<List>,
    symlinks: HashSet<PathBuf>,
    dirs: Vec<DirMeta>,
}

/// The paths a restore point has.
enum Wanted {
    /// Archives before format 2: the manifest's list.
    Set(HashSet<String>),
    /// `paths.nul`, in the walk's order.
    Stream(List),
}

impl Chain {
    /// After the newest archive: take from its bases only these paths (the newest
    /// archive's `paths.nul` when it has one, else its manifest's `paths`; a base's own
    /// list, given later, changes nothing).
    pub fn want(&mut self, paths: &[String]) {
        if self.wanted.is_some() {
            return;
        }
        if paths.is_empty()
            && let Some(list) = self.listed.take()
        {
            self.wanted = Some(Wanted::Stream(list));
            return;
        }
        // Format 1: the newest archive's paths in memory, as they were then.
        if let Some(provided) = self.provided.take()
            && let Ok(mut items) = provided.items()
        {
            while let Ok(Some(p)) = items.next_item() {
                self.done.insert(String::from_utf8_lossy(&p).into_owned());
            }
        }
        self.wanted = Some(Wanted::Set(paths.iter().cloned().collect()));
    }

    /// Whether this archive's entry at `rel` (under `files/`) belongs in the restore point.
    fn takes(&mut self, rel: &Path) -> anyhow::Result<bool> {
        let path = rel.to_string_lossy();
        match &self.wanted {
            None => {
                self.provide(path.as_bytes())?;
                Ok(true)
            }
            Some(Wanted::Set(_)) if path.is_empty() || self.done.contains(path.as_ref()) => {
                Ok(false)
            }
            Some(Wanted::Set(w)) if !w.contains(path.as_ref()) => Ok(false),
            Some(Wanted::Set(_)) => {
                self.done.insert(path.into_owned());
                Ok(true)
            }
            Some(Wanted::Stream(_)) if path.is_empty() => Ok(false),
            Some(Wanted::Stream(_)) => self.takes_streamed(path.as_bytes()),
        }
    }

    /// `takes` since format 2: the base's entry joined against what newer archives provided
    /// and against the paths wanted.
    fn takes_streamed(&mut self, path: &[u8]) -> anyhow::Result<bool> {
        if let Some(last) = &self.last
            && walk_order(last, path) != std::cmp::Ordering::Less
        {
            bail!(
                "files/{} comes after files/{} in a base of this restore point, which wpbackup never writes: refusing to restore the chain from it",
                String::from_utf8_lossy(path),
                String::from_utf8_lossy(last)
            );
        }
        self.last = Some(path.to_vec());
        self.open_joins()?;
        let (Some(provided), Some(wanted), Some(out)) = (
            self.provided_items.as_mut(),
            self.wanted_items.as_mut(),
            self.providing.as_mut(),
        ) else {
            bail!("the restore point's lists are not open");
        };
        let spool = "cannot keep the list of paths restored";
        if provided.seek(path, &mut |p| out.push(&p)).context(spool)? {
            out.push(path).context(spool)?;
            return Ok(false);
        }
        let wanted = wanted.seek(path, &mut |_| Ok(())).context(spool)?;
        if wanted {
            out.push(path).context(spool)?;
        }
        Ok(wanted)
    }

    /// The lists joined against the archive being read, opened at its first entry.
    fn open_joins(&mut self) -> anyhow::Result<()> {
        let spool = "cannot keep the list of paths restored";
        if self.providing.is_none() {
            self.providing = Some(ListWriter::new(b"").context(spool)?);
        }
        if self.provided_items.is_none()
            && let Some(p) = &self.provided
        {
            self.provided_items = Some(p.items().context(spool)?);
        }
        if self.wanted_items.is_none()
            && let Some(Wanted::Stream(w)) = &self.wanted
        {
            self.wanted_items = Some(w.items().context(spool)?);
        }
        Ok(())
    }

    /// The newest archive's entry, provided.
    fn provide(&mut self, path: &[u8]) -> anyhow::Result<()> {
        let spool = "cannot keep the list of paths restored";
        if self.providing.is_none() {
            self.providing = Some(ListWriter::new(b"").context(spool)?);
        }
        if let Some(out) = self.providing.as_mut() {
            out.push(path).context(spool)?;
        }
        Ok(())
    }

    /// After an archive: what it and the newer ones provided, for the next base.
    fn end_archive(&mut self) -> anyhow::Result<()> {
        if matches!(self.wanted, Some(Wanted::Set(_))) {
            return Ok(());
        }
        let spool = "cannot keep the list of paths restored";
        self.open_joins()?;
        if let (Some(items), Some(out)) = (self.provided_items.as_mut(), self.providing.as_mut()) {
            while let Some(p) = items.next_item().context(spool)? {
                out.push(&p).context(spool)?;
            }
        }
        if let Some(out) = self.providing.take() {
            self.provided = Some(out.finish().context(spool)?);
        }
        self.provided_items = None;
        self.wanted_items = None;
        self.last = None;
        Ok(())
    }

    /// Give the directories of every archive their modes and times.
    pub fn finish(self) -> anyhow::Result<()> {
        finish_dirs(self.dirs)
    }
}

/// `database.sql` as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseFacts {
    pub sha256: String,
    pub bytes: u64,
    /// Ends with the dump tool's completion line.
    pub complete: bool,
}

/// What the archive holds.
#[derive(Debug, Default)]
pub struct Contents {
    pub manifest: Option<Manifest>,
    pub manifest_error: Option<String>,
    /// Files and symlinks under `files/` (what the manifest's `file_count` counts).
    pub file_count: u64,
    /// Bytes of the regular files under `files/`.
    pub bytes: u64,
    pub database: Option<DatabaseFacts>,
    /// `files/wp-config.php`, when the archive has one.
    pub wp_config: Option<Vec<u8>>,
    /// `parent/wp-config.php`, when the archive has one.
    pub parent_wp_config: Option<ParentConfig>,
    /// `paths.nul` and `deleted.nul` as read (count, bytes, sha256), when the archive has them.
    pub paths_nul: Option<ListMember>,
    pub deleted_nul: Option<ListMember>,
    /// The paths of `deleted.nul` (relative to the site), kept when a listing was asked for.
    pub deleted: Vec<String>,
}

/// `parent/wp-config.php` as read: the site's `wp-config.php` from the directory above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentConfig {
    pub data: Vec<u8>,
    pub sha256: String,
    /// Permission bits, mtime and owner (uid, gid) as archived.
    pub mode: u32,
    pub mtime: std::time::SystemTime,
    pub owner: Option<(u32, u32)>,
}

impl Contents {
    /// The archive's `wp-config.php`, else its parent one: where the site's settings are.
    pub fn any_wp_config(&self) -> Option<&[u8]> {
        self.wp_config
            .as_deref()
            .or(self.parent_wp_config.as_ref().map(|p| p.data.as_slice()))
    }

    /// Everything that does not add up; empty when the archive is whole.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Some(m) = &self.manifest else {
            out.push(match &self.manifest_error {
                Some(e) => format!("manifest.json cannot be read: {e}"),
                None => "manifest.json is missing".into(),
            });
            return out;
        };
        if m.format_version > FORMAT_VERSION {
            out.push(format!(
                "the archive has format version {} and this wpbackup reads up to {FORMAT_VERSION}: upgrade wpbackup",
                m.format_version
            ));
        }
        if m.file_count != self.file_count {
            out.push(format!(
                "manifest.json lists {} files but the archive holds {}",
                m.file_count, self.file_count
            ));
        }
        if m.bytes != self.bytes {
            out.push(format!(
                "manifest.json counts {} bytes of files but the archive holds {}",
                m.bytes, self.bytes
            ));
        }
        out.extend(self.parent_config_problem(m));
        if let Some(d) = &m.differential {
            for (name, want, got) in [
                (PATH_LIST, &d.paths_nul, &self.paths_nul),
                (DELETED_LIST, &d.deleted_nul, &self.deleted_nul),
            ] {
                match (want, got) {
                    (Some(w), Some(g)) if w != g => out.push(format!(
                        "{name} ({} paths, {} bytes, sha256 {}) is not the list manifest.json describes ({} paths, {} bytes, sha256 {})",
                        g.count, g.bytes, g.sha256, w.count, w.bytes, w.sha256
                    )),
                    (Some(_), None) => out.push(format!(
                        "manifest.json lists {name} but the archive does not hold it"
                    )),
                    _ => {}
                }
            }
        }
        match &self.database {
            None => out.push("database.sql is missing".into()),
            Some(db) => {
                if db.sha256 != m.database_sha256 || db.bytes != m.database_bytes {
                    out.push(format!(
                        "database.sql ({} bytes, sha256 {}) is not the dump manifest.json describes ({} bytes, sha256 {})",
                        db.bytes, db.sha256, m.database_bytes, m.database_sha256
                    ));
                }
                if !db.complete {
                    out.push(
                        "database.sql does not end with the dump tool's completion line: the dump is incomplete"
                            .into(),
                    );
                }
            }
        }
        out
    }

    /// `parent/wp-config.php` against the manifest: both or neither, and the same bytes.
    fn parent_config_problem(&self, m: &Manifest) -> Option<String> {
        match (&m.parent_wp_config, &self.parent_wp_config) {
            (None, None) => None,
            (Some(_), None) => Some(format!(
                "manifest.json lists {PARENT_WP_CONFIG} but the archive does not hold it"
            )),
            (None, Some(_)) => Some(format!(
                "the archive holds {PARENT_WP_CONFIG} but manifest.json does not list it"
            )),
            (Some(want), Some(got))
                if want.sha256 != got.sha256 || want.bytes != got.data.len() as u64 =>
            {
                Some(format!(
                    "{PARENT_WP_CONFIG} ({} bytes, sha256 {}) is not the file manifest.json describes ({} bytes, sha256 {})",
                    got.data.len(),
                    got.sha256,
                    want.bytes,
                    want.sha256
                ))
            }
            (Some(_), Some(_)) => None,
        }
    }
}

/// The largest `manifest.json` read. Since format 2 a manifest is a few kilobytes (the paths
/// are in `paths.nul`, streamed); a format-1 differential's lists every path of the site (a
/// million files: about 60 MiB). Anything larger is refused before it is read.
pub const MAX_MANIFEST: u64 = 64 * 1024 * 1024;

/// Where an entry belongs.
#[derive(Debug, PartialEq, Eq)]
enum Place {
    /// Under `files/`: the path relative to the site ("" for `files` itself).
    File(PathBuf),
    Database,
    Manifest,
    ParentConfig,
    /// `paths.nul`, `deleted.nul`.
    PathList,
    DeletedList,
    /// Another top-level entry (a later format's): read and ignored.
    Other,
}

/// An entry path that could land outside the target (absolute, or with `..`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsafe path {path:?} in the archive (absolute or with \"..\"): refusing it")]
pub struct UnsafePath {
    pub path: String,
}

/// Classify an entry path, refusing anything that could land outside the target.
fn place(path: &Path) -> Result<Place, UnsafePath> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::CurDir if parts.is_empty() => {}
            _ => {
                return Err(UnsafePath {
                    path: path.display().to_string(),
                });
            }
        }
    }
    Ok(match parts.as_slice() {
        [] => Place::Other,
        [first, rest @ ..] if *first == "files" => Place::File(rest.iter().collect()),
        [only] if *only == "database.sql" => Place::Database,
        [only] if *only == "manifest.json" => Place::Manifest,
        [only] if *only == PATH_LIST => Place::PathList,
        [only] if *only == DELETED_LIST => Place::DeletedList,
        [dir, name] if *dir == "parent" && *name == "wp-config.php" => Place::ParentConfig,
        _ => Place::Other,
    })
}

/// A directory to finish once everything is in it.
struct DirMeta {
    path: PathBuf,
    meta: Meta,
}

/// Read the whole archive from `reader` (the compressed bytes), doing what `opts` says.
pub fn read(mut reader: impl Read, opts: Options) -> anyhow::Result<Contents> {
    let mut reading = Reading {
        contents: Contents::default(),
        dirs: Vec::new(),
        extractor: opts
            .extract_to
            .map(|root| Extractor::new(root, opts.preserve_owner)),
        database_to: opts.database_to,
        preserve_owner: opts.preserve_owner,
        only: opts.only,
        chain: opts.chain,
        listing: opts.listing,
    };
    if let (Some(chain), Some(ex)) = (reading.chain.as_deref_mut(), reading.extractor.as_mut()) {
        ex.symlinks = std::mem::take(&mut chain.symlinks);
    }
    let decoder =
        zstd::stream::read::Decoder::new(&mut reader).context("cannot start the zstd decoder")?;
    let mut archive = tar::Archive::new(decoder);
    let entries = archive
        .entries()
        .context("cannot read the archive (not a tar.zst?)")?;
    for entry in entries {
        let mut entry = entry.context("the archive is damaged or truncated")?;
        reading.entry(&mut entry)?;
    }
    // The rest of the stream (tar padding, the end of the zstd frame) must decode too.
    let mut decoder = archive.into_inner();
    io::copy(&mut decoder, &mut io::sink()).context("the archive is damaged or truncated")?;
    drop(decoder);
    io::copy(&mut reader, &mut io::sink()).context("cannot read the archive to its end")?;
    if let Some(f) = reading.database_to {
        f.flush().context("cannot write database.sql out")?;
    }
    if let Some(ex) = &reading.extractor {
        for d in &mut reading.dirs {
            d.meta.owner = site_owner(d.meta.owner, ex.root_owner);
        }
    }
    match reading.chain {
        Some(chain) => {
            chain.end_archive()?;
            chain.dirs.append(&mut reading.dirs);
            if let Some(ex) = reading.extractor {
                chain.symlinks = ex.symlinks;
            }
        }
        None => finish_dirs(reading.dirs)?,
    }
    Ok(reading.contents)
}

/// An archive being read: what was found so far, and where its entries go.
struct Reading<'a> {
    contents: Contents,
    /// Directories extracted, to finish at the end.
    dirs: Vec<DirMeta>,
    extractor: Option<Extractor>,
    database_to: Option<&'a mut File>,
    preserve_owner: bool,
    only: Option<&'a mut Selection>,
    chain: Option<&'a mut Chain>,
    listing: Option<&'a mut Listing>,
}

impl Reading<'_> {
    fn entry(&mut self, entry: &mut tar::Entry<impl Read>) -> anyhow::Result<()> {
        let path = entry
            .path()
            .context("an entry has an unreadable path")?
            .into_owned();
        match place(&path)? {
            Place::File(rel) => self.file(entry, &path, &rel),
            Place::Database => self.database(entry),
            Place::Manifest => {
                // A format-1 differential's lists every path of the site: larger than the rest.
                let size = entry.header().size().unwrap_or(u64::MAX);
                if size > MAX_MANIFEST {
                    bail!(
                        "manifest.json is {size} bytes, more than the {} MiB a manifest can be: this archive was not made by wpbackup; refusing to read it",
                        MAX_MANIFEST >> 20
                    );
                }
                let mut data = Vec::new();
                entry
                    .take(MAX_MANIFEST)
                    .read_to_end(&mut data)
                    .context("cannot read manifest.json from the archive")?;
                match serde_json::from_slice::<Manifest>(&data) {
                    Ok(m) => self.contents.manifest = Some(m),
                    Err(e) => self.contents.manifest_error = Some(e.to_string()),
                }
                Ok(())
            }
            Place::ParentConfig if entry.header().entry_type().is_file() => {
                let data = read_small(entry, PARENT_WP_CONFIG)?;
                let Meta { mode, mtime, owner } = Meta::of(entry.header(), true, 0o640);
                self.contents.parent_wp_config = Some(ParentConfig {
                    sha256: hex::encode(Sha256::digest(&data)),
                    data,
                    mode,
                    mtime,
                    owner,
                });
                Ok(())
            }
            Place::PathList | Place::DeletedList if entry.header().entry_type().is_file() => {
                self.list(entry, place(&path)? == Place::PathList)
            }
            Place::ParentConfig | Place::PathList | Place::DeletedList | Place::Other => Ok(()),
        }
    }

    /// An entry under `files/` (at `rel` within it): counted, and extracted when asked.
    fn file(
        &mut self,
        entry: &mut tar::Entry<impl Read>,
        path: &Path,
        rel: &Path,
    ) -> anyhow::Result<()> {
        let kind = entry.header().entry_type();
        let is_dir = kind == EntryType::Directory;
        if is_dir
            && rel.as_os_str().is_empty()
            && let Some(ex) = self.extractor.as_mut()
        {
            // Whose the site's root was: root-owned entries below it become theirs (also
            // those extracted before it: entries may come in any order).
            ex.set_root_owner(Meta::of(entry.header(), true, 0).owner)?;
        }
        if kind.is_file() || kind == EntryType::Continuous {
            self.contents.file_count += 1;
            self.contents.bytes += entry.size();
        } else if kind == EntryType::Symlink || kind == EntryType::Link {
            self.contents.file_count += 1;
        } else if !is_dir {
            // Devices and fifos are never archived; a foreign archive's are skipped.
            if self.extractor.is_some() {
                tracing::warn!(
                    "files/{} is a device node, fifo or socket in the archive: not restored (a site holds none)",
                    rel.display()
                );
            }
            return Ok(());
        }
        // Counted and read, but a newer archive of the chain has it, or it was deleted since.
        if let Some(chain) = self.chain.as_deref_mut()
            && !chain.takes(rel)?
        {
            return Ok(());
        }
        if let Some(listing) = self.listing.as_deref_mut() {
            listing.add(rel, entry);
        }
        let selected = match self.only.as_deref_mut() {
            Some(only) => only.wants(rel, kind, entry.size()),
            None => true,
        };
        let Some(extractor) = self.extractor.as_mut().filter(|_| selected) else {
            if rel == Path::new("wp-config.php") && kind.is_file() {
                self.contents.wp_config = Some(read_small(entry, "wp-config.php")?);
            }
            return Ok(());
        };
        if is_dir {
            self.dirs.push(DirMeta {
                path: extractor.dir(rel)?,
                meta: Meta::of(entry.header(), self.preserve_owner, 0o755).in_site(
                    extractor.root_owner,
                    rel,
                    true,
                ),
            });
        } else if kind == EntryType::Symlink {
            let target = link_target(entry, path, "symlink")?;
            extractor.symlink(rel, &target, entry.header())?;
        } else if kind == EntryType::Link {
            let target = link_target(entry, path, "hard link")?;
            if let (Some(only), Ok(Place::File(trel))) = (self.only.as_deref(), place(&target)) {
                only.ensure_link_target(rel, &trel)?;
            }
            extractor.hard_link(rel, &target)?;
        } else {
            let dst = extractor.file(entry, rel)?;
            if rel == Path::new("wp-config.php") {
                self.contents.wp_config = Some(
                    std::fs::read(&dst)
                        .with_context(|| format!("cannot read back {}", dst.display()))?,
                );
            }
        }
        Ok(())
    }

    /// `paths.nul` or `deleted.nul`: counted and hashed; the newest archive's `paths.nul` is
    /// kept (spooled) for its chain, and `deleted.nul`'s paths for a listing.
    fn list(&mut self, entry: &mut tar::Entry<impl Read>, paths: bool) -> anyhow::Result<()> {
        let name = if paths { PATH_LIST } else { DELETED_LIST };
        let spool = || format!("cannot keep {name} of the archive");
        let mut keep = match &self.chain {
            Some(c) if paths && c.wanted.is_none() => {
                Some(ListWriter::new(b"").with_context(spool)?)
            }
            _ => None,
        };
        let keep_deleted = !paths && self.listing.is_some();
        let mut hasher = Sha256::new();
        let (mut bytes, mut count) = (0u64, 0u64);
        let mut reader = io::BufReader::new(entry);
        let mut item = Vec::new();
        loop {
            item.clear();
            let n = io::BufRead::read_until(&mut reader, 0, &mut item)
                .with_context(|| format!("cannot read {name} from the archive"))?;
            if n == 0 {
                break;
            }
            hasher.update(&item);
            bytes += n as u64;
            count += 1;
            let path = item
                .strip_suffix(b"\0")
                .unwrap_or(&item)
                .strip_prefix(b"files/")
                .unwrap_or_default();
            if let Some(k) = keep.as_mut() {
                k.push(path).with_context(spool)?;
            }
            if keep_deleted {
                self.contents
                    .deleted
                    .push(String::from_utf8_lossy(path).into_owned());
            }
        }
        let facts = ListMember {
            count,
            bytes,
            sha256: hex::encode(hasher.finalize()),
        };
        if paths {
            self.contents.paths_nul = Some(facts);
        } else {
            self.contents.deleted_nul = Some(facts);
        }
        if let (Some(k), Some(chain)) = (keep, self.chain.as_deref_mut()) {
            chain.listed = Some(k.finish().with_context(spool)?);
        }
        Ok(())
    }

    /// `database.sql`: hashed, its end kept, and copied out when asked.
    fn database(&mut self, entry: &mut impl Read) -> anyhow::Result<()> {
        let mut tap = Tap::default();
        let mut out = self.database_to.as_deref_mut();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = entry
                .read(&mut buf)
                .context("cannot read database.sql from the archive")?;
            if n == 0 {
                break;
            }
            tap.update(&buf[..n]);
            if let Some(f) = out.as_mut() {
                f.write_all(&buf[..n])
                    .context("cannot write database.sql out")?;
            }
        }
        self.contents.database = Some(tap.finish());
        Ok(())
    }
}

/// The target of the link entry at `path` (`what`: "symlink" or "hard link").
fn link_target(entry: &tar::Entry<impl Read>, path: &Path, what: &str) -> anyhow::Result<PathBuf> {
    Ok(entry
        .link_name()
        .with_context(|| format!("a {what} has an unreadable target"))?
        .ok_or_else(|| anyhow::anyhow!("the {what} {} has no target", path.display()))?
        .into_owned())
}

/// Writes `files/` entries under `<dir>/files` without ever following a symlink: the directory
/// is new and private, so the only symlinks in it are the ones the archive itself made, and an
/// entry whose path runs through one of them is refused (it could point anywhere, `/etc`
/// included). Files are created new (never overwriting), then get their owner, mode and mtime
/// through their open handle. Parent directories are remembered, so each is created once.
///
/// This replaces `tar::Entry::unpack_in`, whose symlink guard canonicalizes every entry's parent
/// directory and the target (two `realpath` walks per file): restoring 100,000 small files took
/// 3.4 times the floor with it (BENCHMARKS.md).
struct Extractor {
    files: PathBuf,
    /// Paths (relative to `files`) of the symlinks made so far.
    symlinks: HashSet<PathBuf>,
    /// Directories (relative to `files`) known to exist.
    dirs: HashSet<PathBuf>,
    preserve_owner: bool,
    /// The owner of the site's root in the archive (`files/`), once read.
    root_owner: Option<(u32, u32)>,
    /// Files and symlinks given uid or gid 0 before the site's root was read, with that owner.
    rooted: Vec<(PathBuf, (u32, u32))>,
    buf: Vec<u8>,
}

impl Extractor {
    fn new(root: &Path, preserve_owner: bool) -> Extractor {
        Extractor {
            files: root.join("files"),
            symlinks: HashSet::new(),
            dirs: HashSet::new(),
            preserve_owner,
            root_owner: None,
            rooted: Vec::new(),
            buf: vec![0u8; 256 * 1024],
        }
    }

    /// The archived owner of the site's root, once read: the root-owned files and symlinks
    /// extracted before it become that owner's (see [`Meta::in_site`]).
    fn set_root_owner(&mut self, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
        self.root_owner = owner;
        for (rel, was) in std::mem::take(&mut self.rooted) {
            if let Some((uid, gid)) = site_owner(Some(was), owner).filter(|o| *o != was) {
                let dst = self.files.join(&rel);
                std::os::unix::fs::lchown(&dst, Some(uid), Some(gid))
                    .with_context(|| format!("cannot set the owner of {}", dst.display()))?;
            }
        }
        Ok(())
    }

    /// `owner` given to `rel`: remembered when it is root's and the site's root is not read yet.
    fn note_owner(&mut self, rel: &Path, owner: Option<(u32, u32)>) {
        if let Some((uid, gid)) = owner
            && self.root_owner.is_none()
            && (uid == 0 || gid == 0)
        {
            self.rooted.push((rel.to_path_buf(), (uid, gid)));
        }
    }

    /// Refuse `rel` when it, or a directory on its way, is a symlink the archive made.
    fn guard(&self, rel: &Path) -> anyhow::Result<()> {
        if let Some(link) = rel.ancestors().find(|a| self.symlinks.contains(*a)) {
            bail!(
                "refusing to extract files/{}: it goes through the symlink files/{} made by the archive itself, which could point outside the restore",
                rel.display(),
                link.display()
            );
        }
        Ok(())
    }

    /// Make sure the directory `rel` is in will exist.
    fn parent_of(&mut self, rel: &Path) -> anyhow::Result<()> {
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        if self.dirs.contains(parent) {
            return Ok(());
        }
        let dst = self.files.join(parent);
        std::fs::create_dir_all(&dst)
            .with_context(|| format!("cannot create {}", dst.display()))?;
        for a in parent.ancestors() {
            self.dirs.insert(a.to_path_buf());
        }
        Ok(())
    }

    fn dir(&mut self, rel: &Path) -> anyhow::Result<PathBuf> {
        self.guard(rel)?;
        self.parent_of(rel)?;
        let dst = self.files.join(rel);
        if !self.dirs.contains(rel) {
            match std::fs::create_dir(&dst) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && is_real_dir(&dst) => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", dst.display()));
                }
            }
            self.dirs.insert(rel.to_path_buf());
        }
        Ok(dst)
    }

    fn file(&mut self, entry: &mut tar::Entry<impl Read>, rel: &Path) -> anyhow::Result<PathBuf> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        self.guard(rel)?;
        self.parent_of(rel)?;
        let dst = self.files.join(rel);
        let Meta { mode, mtime, owner } = Meta::of(entry.header(), self.preserve_owner, 0o644)
            .in_site(self.root_owner, rel, false);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&dst)
            .with_context(|| format!("cannot create {}", dst.display()))?;
        let mut copy = || -> io::Result<()> {
            loop {
                let n = entry.read(&mut self.buf)?;
                if n == 0 {
                    return Ok(());
                }
                f.write_all(&self.buf[..n])?;
            }
        };
        copy().with_context(|| format!("cannot extract {}", dst.display()))?;
        self.note_owner(rel, owner);
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
                .with_context(|| format!("cannot set the owner of {}", dst.display()))?;
        }
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", dst.display()))?;
        f.set_modified(mtime)
            .with_context(|| format!("cannot set the time of {}", dst.display()))?;
        Ok(dst)
    }

    fn symlink(&mut self, rel: &Path, target: &Path, header: &tar::Header) -> anyhow::Result<()> {
        self.guard(rel)?;
        self.parent_of(rel)?;
        let dst = self.files.join(rel);
        std::os::unix::fs::symlink(target, &dst)
            .with_context(|| format!("cannot create the symlink {}", dst.display()))?;
        self.symlinks.insert(rel.to_path_buf());
        let Meta { mtime, owner, .. } =
            Meta::of(header, self.preserve_owner, 0o777).in_site(self.root_owner, rel, false);
        self.note_owner(rel, owner);
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(&dst, Some(uid), Some(gid))
                .with_context(|| format!("cannot set the owner of {}", dst.display()))?;
        }
        let t = filetime::FileTime::from_system_time(mtime);
        // A symlink's own time is cosmetic: not being able to set it is no reason to stop.
        let _ = filetime::set_symlink_file_times(&dst, t, t);
        Ok(())
    }

    /// A hard link to an entry extracted earlier (`target` is its path in the archive).
    fn hard_link(&mut self, rel: &Path, target: &Path) -> anyhow::Result<()> {
        let Ok(Place::File(trel)) = place(target) else {
            bail!(
                "refusing to extract files/{}: it is a hard link to {}, outside files/",
                rel.display(),
                target.display()
            );
        };
        self.guard(&trel)?;
        self.guard(rel)?;
        self.parent_of(rel)?;
        let (src, dst) = (self.files.join(&trel), self.files.join(rel));
        std::fs::hard_link(&src, &dst)
            .with_context(|| format!("cannot link {} to {}", dst.display(), src.display()))?;
        // A hard link to a symlink is that symlink again.
        if self.symlinks.contains(&trel) {
            self.symlinks.insert(rel.to_path_buf());
        }
        Ok(())
    }
}

fn is_real_dir(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

/// An entry's mode (permission bits), mtime and (when kept) owner.
struct Meta {
    mode: u32,
    mtime: std::time::SystemTime,
    owner: Option<(u32, u32)>,
}

impl Meta {
    /// From `h`; `default_mode` when the header's mode cannot be read.
    fn of(h: &tar::Header, preserve_owner: bool, default_mode: u32) -> Meta {
        Meta {
            mode: h.mode().unwrap_or(default_mode) & 0o7777,
            mtime: std::time::UNIX_EPOCH + std::time::Duration::from_secs(h.mtime().unwrap_or(0)),
            owner: match (preserve_owner, h.uid(), h.gid()) {
                (true, Ok(u), Ok(g)) => Some((u as u32, g as u32)),
                _ => None,
            },
        }
    }
}

impl Meta {
    /// What an entry of a site may be: never setuid or setgid (a directory keeps its setgid,
    /// which only passes its group on), and never root's inside a site whose root is not
    /// root's (`root`: the archived owner of the site's root): uid and gid 0 become the
    /// root's. Stripped bits are named in a WARNING (`rel`: the entry's path in `files/`).
    fn in_site(mut self, root: Option<(u32, u32)>, rel: &Path, dir: bool) -> Meta {
        let strip = if dir { 0o4000 } else { 0o6000 };
        if self.mode & strip != 0 {
            tracing::warn!(
                "files/{} is setuid or setgid in the archive: restored without those bits (mode {:o})",
                rel.display(),
                self.mode & !strip
            );
            self.mode &= !strip;
        }
        self.owner = site_owner(self.owner, root);
        self
    }
}

/// `owner` of an entry of a site whose root is `root`'s: uid and gid 0 become the root's,
/// unless the root is root's.
fn site_owner(owner: Option<(u32, u32)>, root: Option<(u32, u32)>) -> Option<(u32, u32)> {
    match (owner, root) {
        (Some((uid, gid)), Some((ruid, rgid))) if ruid != 0 => Some((
            if uid == 0 { ruid } else { uid },
            if gid == 0 { rgid } else { gid },
        )),
        _ => owner,
    }
}

fn read_small(entry: &mut impl Read, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut data = Vec::new();
    entry
        .take(4 * 1024 * 1024)
        .read_to_end(&mut data)
        .with_context(|| format!("cannot read {what} from the archive"))?;
    Ok(data)
}

/// Give directories their archived mode, mtime and owner, deepest first.
fn finish_dirs(mut dirs: Vec<DirMeta>) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    dirs.sort_by_key(|d| std::cmp::Reverse(d.path.components().count()));
    for d in dirs {
        if let Some((uid, gid)) = d.meta.owner {
            std::os::unix::fs::chown(&d.path, Some(uid), Some(gid))
                .with_context(|| format!("cannot set the owner of {}", d.path.display()))?;
        }
        if let Ok(f) = File::open(&d.path) {
            let _ = f.set_modified(d.meta.mtime);
        }
        std::fs::set_permissions(&d.path, std::fs::Permissions::from_mode(d.meta.mode))
            .with_context(|| format!("cannot set the mode of {}", d.path.display()))?;
    }
    Ok(())
}

/// Hash, count and keep the end of `database.sql`.
#[derive(Default)]
struct Tap {
    hasher: Sha256,
    bytes: u64,
    tail: Vec<u8>,
}

impl Tap {
    fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        self.tail.extend_from_slice(data);
        if self.tail.len() > 4096 {
            self.tail.drain(..self.tail.len() - 256);
        }
    }

    fn finish(self) -> DatabaseFacts {
        let tail = &self.tail[self.tail.len().saturating_sub(256)..];
        DatabaseFacts {
            sha256: hex::encode(self.hasher.finalize()),
            bytes: self.bytes,
            complete: tail
                .windows(COMPLETION_MARKER.len())
                .any(|w| w == COMPLETION_MARKER),
        }
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use tar::Header;

    pub(super) const DUMP: &[u8] = b"CREATE TABLE t (id int);\n-- Dump completed on 2026-11-24\n";

    /// manifest.json for an archive of `files` files of `bytes` bytes and dump `db`.
    pub(super) fn manifest(files: u64, bytes: u64, db: &[u8]) -> Vec<u8> {
        let m = Manifest {
            format_version: 1,
            wpbackup_version: "0".into(),
            site: "s".into(),
            server_id: "x".into(),
            created_at: "2026-11-24T00:00:00Z".into(),
            wordpress_version: None,
            database_name: "d".into(),
            table_prefix: "wp_".into(),
            siteurl: None,
            file_count: files,
            bytes,
            database_sha256: hex::encode(Sha256::digest(db)),
            database_bytes: db.len() as u64,
            skipped: vec![],
            changed: vec![],
            parent_wp_config: None,
            table_rows: None,
            home: None,
            published_posts: None,
            binlog: None,
            file_samples: Vec::new(),
            kind: None,
            differential: None,
            excluded_tables: Vec::new(),
            network_sites: Default::default(),
        };
        serde_json::to_vec(&m).unwrap()
    }

    /// A tar.zst with raw entry names (the tar crate refuses to write unsafe ones itself).
    fn archive(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(if *kind == EntryType::Directory {
                0o755
            } else {
                0o644
            });
            h.set_mtime(1_700_000_000);
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            h.set_cksum();
            tar.append(&h, *data).unwrap();
        }
        zstd::encode_all(tar.into_inner().unwrap().as_slice(), 3).unwrap()
    }

    fn good() -> Vec<u8> {
        let m = manifest(2, 5, DUMP);
        archive(&[
            ("files", EntryType::Directory, b""),
            ("files/wp-content", EntryType::Directory, b""),
            ("files/wp-content/a.txt", EntryType::Regular, b"hello"),
            ("files/wp-config.php", EntryType::Regular, b""),
            ("database.sql", EntryType::Regular, DUMP),
            ("manifest.json", EntryType::Regular, &m),
        ])
    }

    #[test]
    fn entries_of_a_users_site_are_never_setuid_nor_roots_whatever_their_order() {
        use std::os::unix::fs::MetadataExt;
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let m = manifest(2, 4, DUMP);
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |name: &str, kind: EntryType, mode: u32, uid: u64, data: &[u8]| {
            let mut h = Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(mode);
            h.set_uid(uid);
            h.set_gid(uid);
            h.set_mtime(1_700_000_000);
            h.set_path(name).unwrap();
            h.set_cksum();
            tar.append(&h, data).unwrap();
        };
        // Root's setuid file before the root entry (a user's, 33), a setgid directory after.
        add("files/tool", EntryType::Regular, 0o6755, 0, b"ab");
        add("files", EntryType::Directory, 0o755, 33, b"");
        add("files/up", EntryType::Directory, 0o2775, 0, b"");
        add("files/up/x", EntryType::Regular, 0o4644, 33, b"cd");
        add("database.sql", EntryType::Regular, 0o644, 0, DUMP);
        add("manifest.json", EntryType::Regular, 0o644, 0, &m);
        let bytes = zstd::encode_all(tar.into_inner().unwrap().as_slice(), 3).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let c = read(
            bytes.as_slice(),
            Options {
                extract_to: Some(dir.path()),
                preserve_owner: true,
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(c.problems(), Vec::<String>::new());
        let meta = |p: &str| std::fs::symlink_metadata(dir.path().join(p)).unwrap();
        let tool = meta("files/tool");
        assert_eq!(
            (tool.uid(), tool.gid(), tool.mode() & 0o7777),
            (33, 33, 0o755)
        );
        let up = meta("files/up");
        assert_eq!((up.uid(), up.mode() & 0o7777), (33, 0o2775));
        assert_eq!(meta("files/up/x").mode() & 0o7777, 0o644);
    }

    #[test]
    fn a_manifest_larger_than_the_limit_is_refused_before_it_is_read() {
        // The header claims more than the limit; the bytes are never read (nor allocated).
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_size(MAX_MANIFEST + 1);
        h.set_mode(0o644);
        h.set_path("manifest.json").unwrap();
        h.set_cksum();
        tar.append(&h, &b"{}"[..]).unwrap();
        let z = zstd::encode_all(tar.into_inner().unwrap().as_slice(), 3).unwrap();
        let Err(e) = read(z.as_slice(), Options::default()) else {
            panic!("a manifest.json over the limit was read");
        };
        assert!(
            format!("{e:#}").contains("more than the 64 MiB a manifest can be"),
            "{e:#}"
        );
    }

    #[test]
    fn a_whole_archive_has_no_problems_and_extracts() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = tempfile::tempfile().unwrap();
        let c = read(
            good().as_slice(),
            Options {
                extract_to: Some(dir.path()),
                database_to: Some(&mut db),
                preserve_owner: false,
                only: None,
                chain: None,
                listing: None,
            },
        )
        .unwrap();
        assert_eq!(c.problems(), Vec::<String>::new());
        assert_eq!(
            std::fs::read(dir.path().join("files/wp-content/a.txt")).unwrap(),
            b"hello"
        );
        assert_eq!(c.wp_config.as_deref(), Some(&b""[..]));
        use std::io::Seek;
        db.rewind().unwrap();
        let mut back = Vec::new();
        db.read_to_end(&mut back).unwrap();
        assert_eq!(back, DUMP);
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(dir.path().join("files/wp-content")).unwrap();
        assert_eq!(meta.mtime(), 1_700_000_000);
        assert_eq!(meta.mode() & 0o777, 0o755);
    }

    #[test]
    fn the_parent_config_is_read_and_checked_against_the_manifest() {
        let config = b"<?php define('DB_NAME', 'wp');\n";
        let listed = |sha: String| {
            let mut m: serde_json::Value = serde_json::from_slice(&manifest(0, 0, DUMP)).unwrap();
            m["parent_wp_config"] = serde_json::json!({ "sha256": sha, "bytes": config.len() });
            m.to_string().into_bytes()
        };
        let with = |m: &[u8], parent: Option<&[u8]>| {
            let mut entries = vec![
                ("files", EntryType::Directory, &b""[..]),
                ("database.sql", EntryType::Regular, DUMP),
                ("manifest.json", EntryType::Regular, m),
            ];
            if let Some(p) = parent {
                entries.push(("parent/wp-config.php", EntryType::Regular, p));
            }
            read(archive(&entries).as_slice(), Options::default()).unwrap()
        };
        let good = listed(hex::encode(Sha256::digest(config)));
        let c = with(&good, Some(config));
        assert_eq!(c.problems(), Vec::<String>::new());
        let parent = c.parent_wp_config.unwrap();
        assert_eq!((parent.data.as_slice(), parent.mode), (&config[..], 0o644));
        assert_eq!(c.file_count, 0, "it is not one of the site's files");

        let p = with(&good, None).problems();
        assert!(p[0].contains("does not hold it"), "{p:?}");
        let p = with(&listed("00".into()), Some(config)).problems();
        assert!(
            p[0].contains("is not the file manifest.json describes"),
            "{p:?}"
        );
        let p = with(&manifest(0, 0, DUMP), Some(config)).problems();
        assert!(p[0].contains("does not list it"), "{p:?}");
        // An old archive has neither.
        assert_eq!(
            with(&manifest(0, 0, DUMP), None).problems(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_selection_extracts_only_its_paths() {
        let dir = tempfile::tempdir().unwrap();
        let mut only = Selection::new(vec!["wp-content".into(), "gone.txt".into()]);
        let c = read(
            good().as_slice(),
            Options {
                extract_to: Some(dir.path()),
                only: Some(&mut only),
                chain: None,
                ..Options::default()
            },
        )
        .unwrap();
        // The whole archive was read and checked.
        assert_eq!(c.problems(), Vec::<String>::new());
        assert_eq!(
            fixture_tree(&dir.path().join("files")),
            ["wp-content", "wp-content/a.txt"]
        );
        assert_eq!((only.files, only.bytes), (1, 5));
        assert_eq!(only.missing(), [Path::new("gone.txt")]);

        // A hard link to a file that is not extracted: refused, naming what to add.
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        tar.append_data(&mut h, "files/a", &b"x"[..]).unwrap();
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Link);
        h.set_size(0);
        tar.append_link(&mut h, "files/d/b", "files/a").unwrap();
        let a = zstd::encode_all(tar.into_inner().unwrap().as_slice(), 3).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut only = Selection::new(vec!["d".into()]);
        let err = read(
            a.as_slice(),
            Options {
                extract_to: Some(dir.path()),
                only: Some(&mut only),
                chain: None,
                ..Options::default()
            },
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("add --only a"), "{err:#}");
    }

    /// Every path under `root`, relative, sorted.
    fn fixture_tree(root: &Path) -> Vec<String> {
        let mut out: Vec<String> = walkdir::WalkDir::new(root)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                e.path().strip_prefix(root).unwrap().display().to_string()
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn mismatches_are_problems() {
        let m = manifest(3, 5, DUMP);
        let cut = &DUMP[..20];
        let a = archive(&[
            ("files/a.txt", EntryType::Regular, b"hello"),
            ("database.sql", EntryType::Regular, cut),
            ("manifest.json", EntryType::Regular, &m),
        ]);
        let p = read(a.as_slice(), Options::default()).unwrap().problems();
        assert!(p.iter().any(|s| s.contains("lists 3 files")), "{p:?}");
        assert!(p.iter().any(|s| s.contains("is not the dump")), "{p:?}");
        assert!(p.iter().any(|s| s.contains("completion line")), "{p:?}");

        let a = archive(&[("files/a.txt", EntryType::Regular, b"x")]);
        let p = read(a.as_slice(), Options::default()).unwrap().problems();
        assert_eq!(p, vec!["manifest.json is missing".to_string()]);
    }

    #[test]
    fn traversal_is_refused() {
        for bad in [
            "files/../../evil",
            "/etc/evil",
            "../evil",
            "files/a/../../x",
        ] {
            let a = archive(&[(bad, EntryType::Regular, b"x")]);
            let dir = tempfile::tempdir().unwrap();
            let err = read(
                a.as_slice(),
                Options {
                    extract_to: Some(&dir.path().join("t")),
                    ..Options::default()
                },
            )
            .unwrap_err();
            assert!(format!("{err:#}").contains("unsafe path"), "{bad}: {err:#}");
        }
    }

    /// A world-writable directory entry at `path`.
    fn dir_entry(t: &mut tar::Builder<Vec<u8>>, path: &str) {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o777);
        t.append_data(&mut h, path, io::empty()).unwrap();
    }

    #[test]
    fn nothing_is_written_through_a_symlink_the_archive_made() {
        // Each case: a symlink files/link -> a directory outside, then one more entry.
        type Add = fn(&mut tar::Builder<Vec<u8>>);
        let cases: [(&str, Add); 5] = [
            ("a file inside it", |t| {
                let mut h = Header::new_gnu();
                h.set_size(1);
                h.set_mode(0o644);
                t.append_data(&mut h, "files/link/evil", &b"x"[..]).unwrap();
            }),
            ("a directory inside it", |t| dir_entry(t, "files/link/d")),
            ("a directory entry at its own path", |t| {
                dir_entry(t, "files/link")
            }),
            ("a hard link into it", |t| {
                let mut h = Header::new_gnu();
                h.set_entry_type(EntryType::Link);
                h.set_size(0);
                t.append_link(&mut h, "files/stolen", "files/link/secret")
                    .unwrap();
            }),
            (
                "a hard link to the symlink, then a file through that",
                |t| {
                    let mut h = Header::new_gnu();
                    h.set_entry_type(EntryType::Link);
                    h.set_size(0);
                    t.append_link(&mut h, "files/link2", "files/link").unwrap();
                    let mut h = Header::new_gnu();
                    h.set_size(1);
                    h.set_mode(0o644);
                    t.append_data(&mut h, "files/link2/evil", &b"x"[..])
                        .unwrap();
                },
            ),
        ];
        for (what, add) in cases {
            let out = tempfile::tempdir().unwrap();
            std::fs::write(out.path().join("secret"), b"s").unwrap();
            use std::os::unix::fs::PermissionsExt;
            let mode_of = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
            let mode = mode_of(out.path());
            let mut tar = tar::Builder::new(Vec::new());
            let mut h = Header::new_gnu();
            h.set_entry_type(EntryType::Symlink);
            h.set_size(0);
            tar.append_link(&mut h, "files/link", out.path()).unwrap();
            add(&mut tar);
            let a = zstd::encode_all(tar.into_inner().unwrap().as_slice(), 3).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let err = read(
                a.as_slice(),
                Options {
                    extract_to: Some(dir.path()),
                    ..Options::default()
                },
            )
            .unwrap_err();
            let err = format!("{err:#}");
            assert!(
                err.contains("refusing") && err.contains("outside"),
                "{what}: {err}"
            );
            let outside: Vec<_> = std::fs::read_dir(out.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(outside, vec![std::ffi::OsString::from("secret")], "{what}");
            assert_eq!(
                mode_of(out.path()),
                mode,
                "{what}: the outside directory's mode changed"
            );
        }
    }

    #[test]
    fn links_modes_and_times_are_restored() {
        use std::os::unix::fs::MetadataExt;
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o640);
        h.set_mtime(1_600_000_000);
        tar.append_data(&mut h, "files/deep/er/a.php", &b"hello"[..])
            .unwrap();
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Link);
        h.set_size(0);
        tar.append_link(&mut h, "files/b.php", "files/deep/er/a.php")
            .unwrap();
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Symlink);
        h.set_size(0);
        tar.append_link(&mut h, "files/c.php", "deep/er/a.php")
            .unwrap();
        let a = zstd::encode_all(tar.into_inner().unwrap().as_slice(), 3).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let c = read(
            a.as_slice(),
            Options {
                extract_to: Some(dir.path()),
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(c.file_count, 3);
        let f = dir.path().join("files");
        let m = std::fs::metadata(f.join("deep/er/a.php")).unwrap();
        assert_eq!(
            (m.mode() & 0o7777, m.mtime(), m.nlink()),
            (0o640, 1_600_000_000, 2)
        );
        assert_eq!(std::fs::read(f.join("b.php")).unwrap(), b"hello");
        assert_eq!(std::fs::read(f.join("c.php")).unwrap(), b"hello");
        assert_eq!(
            std::fs::read_link(f.join("c.php")).unwrap(),
            Path::new("deep/er/a.php")
        );
    }

    #[test]
    fn truncated_or_garbage_is_an_error() {
        let a = good();
        assert!(read(&a[..a.len() / 2], Options::default()).is_err());
        assert!(read(&b"not an archive"[..], Options::default()).is_err());
        let mut extra = a.clone();
        extra.extend_from_slice(b"trailing garbage");
        assert!(read(extra.as_slice(), Options::default()).is_err());
    }
}
