//! Looking inside an archive without restoring it (`wpbackup ls`): the archive is streamed
//! from the storage and read entry by entry, nothing written to disk, and the entries under
//! `files/` (or under one path of the site) are listed with their kind, mode, size and time.
//! The download is hashed on the way and checked against the recorded sha256 at the end, so a
//! listing of a damaged or changed archive says so.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;

use crate::crypt::Identities;
use crate::reader::fetch;
use crate::storage::Storage;
use crate::storage::catalog;

/// One entry of the site's tree in an archive.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileEntry {
    /// `d` directory, `f` file, `l` symlink, `h` hard link, `?` anything else.
    pub kind: char,
    pub mode: u32,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: u64,
    /// Relative to the site.
    pub path: String,
    pub link: Option<String>,
}

/// The entries of `key` on `st` under `under` (relative to the site; everything when `None`),
/// and where the sha256 the download was checked against came from.
pub fn list(
    rt: &tokio::runtime::Runtime,
    st: &dyn Storage,
    key: &str,
    recorded: Option<&str>,
    under: Option<&Path>,
    identities: Option<&Identities>,
) -> anyhow::Result<(Vec<FileEntry>, String)> {
    let metadata = rt
        .block_on(st.head(key))
        .with_context(|| format!("{}: cannot read {key}", st.name()))?
        .sha256;
    let expected = catalog::expected(key, metadata.as_deref(), recorded)?;
    let under: Option<PathBuf> = under.map(|p| {
        p.components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect()
    });
    let (name, ids) = (key.to_string(), identities.cloned());
    let (entries, fetched) = fetch::stream(rt, st, key, move |r| {
        let mut r = crate::crypt::open(r, &name, ids.as_ref())?;
        entries(&mut r, under.as_deref())
    })?;
    let entries = entries?;
    if fetched.sha256 != expected.sha256 {
        anyhow::bail!(
            "{key}: sha256 mismatch: the stored object has {} but {} records {}: do not trust this listing (nor the archive)",
            fetched.sha256,
            expected.source,
            expected.sha256
        );
    }
    Ok((entries, expected.source))
}

/// Read the tar.zst stream and keep the entries under `files/` (and `under`).
fn entries(r: &mut dyn Read, under: Option<&Path>) -> anyhow::Result<Vec<FileEntry>> {
    let decoder = zstd::stream::read::Decoder::new(r).context("not a zstd stream")?;
    let mut archive = tar::Archive::new(decoder);
    let mut out = Vec::new();
    for entry in archive.entries().context("not a tar stream")? {
        let entry = entry.context("damaged tar entry")?;
        let path = entry.path().context("damaged tar entry name")?.into_owned();
        let Ok(rel) = path.strip_prefix("files") else {
            continue;
        };
        if under.is_some_and(|u| !rel.starts_with(u)) {
            continue;
        }
        let h = entry.header();
        out.push(FileEntry {
            kind: match h.entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Regular | tar::EntryType::Continuous => 'f',
                tar::EntryType::Symlink => 'l',
                tar::EntryType::Link => 'h',
                _ => '?',
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
        });
    }
    Ok(out)
}
