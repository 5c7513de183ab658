//! What `ls` keeps of an archive's `files/` entries: their kind, mode, size, time, path and
//! link target, under one path of the site or all of them, each marked with the archive of
//! the restore point it comes from. The extractor ([`super::read`]) hands it the entries the
//! restore point takes ([`super::Chain`]), so a listing is what a restore would write.

use std::io::Read;
use std::path::{Path, PathBuf};

/// One entry of the site's tree in a restore point.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileEntry {
    /// `d` directory, `f` file, `l` symlink, `h` hard link.
    pub kind: char,
    pub mode: u32,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: u64,
    /// Relative to the site.
    pub path: String,
    pub link: Option<String>,
    /// Which archive of the restore point it comes from: an index into the keys read, newest
    /// first (0 is the archive asked for).
    #[serde(skip)]
    pub archive: usize,
}

/// The entries kept so far, across the archives of a restore point.
#[derive(Debug, Default)]
pub struct Listing {
    /// Only entries at or under this path of the site (component by component, as
    /// `restore --only` selects); all when `None`.
    pub under: Option<PathBuf>,
    /// The archive being read: set before each one.
    pub archive: usize,
    pub entries: Vec<FileEntry>,
}

impl Listing {
    /// Keep the entry at `rel` (under `files/`) when it is under [`Listing::under`]; the site's
    /// root itself (`files/`) is not listed.
    pub(super) fn add(&mut self, rel: &Path, entry: &tar::Entry<impl Read>) {
        if rel.as_os_str().is_empty() || self.under.as_ref().is_some_and(|u| !rel.starts_with(u)) {
            return;
        }
        let h = entry.header();
        self.entries.push(FileEntry {
            kind: match h.entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                tar::EntryType::Link => 'h',
                _ => 'f',
            },
            mode: h.mode().unwrap_or(0) & 0o7777,
            size: h.size().unwrap_or(0),
            mtime: h.mtime().unwrap_or(0),
            path: rel.display().to_string(),
            link: entry
                .link_name()
                .ok()
                .flatten()
                .map(|l| l.display().to_string()),
            archive: self.archive,
        });
    }

    /// The entries in path order (a directory right before what it holds).
    pub fn sorted(mut self) -> Vec<FileEntry> {
        self.entries
            .sort_by(|a, b| Path::new(&a.path).cmp(Path::new(&b.path)));
        self.entries
    }
}
