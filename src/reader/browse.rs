//! Looking inside a restore point without restoring it (`wpbackup ls`): the archive is
//! streamed from the storage and read entry by entry, nothing written to disk, and the entries
//! under `files/` (or under one path of the site) are listed with their kind, mode, size and
//! time. A differential archive is listed with its bases, as a restore makes the site of
//! them: its bases are read after it, newest first, from the same storage, each with the
//! sha256 its successor's manifest names ([`fetch::bases`]), and [`unpack::Chain`] decides
//! which archive each path comes from and leaves out what was deleted. Every download is
//! hashed on the way and checked against its recorded sha256, and every archive against its
//! manifest, so a listing of a damaged or changed archive says so.

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, bail};

use crate::crypt::Identities;
use crate::logdb::LogDb;
use crate::reader::unpack::{self, Chain, Listing};
use crate::reader::{fetch, lock};
use crate::storage::Storage;
use crate::storage::catalog;

pub use crate::reader::unpack::FileEntry;

/// What to list.
pub struct Request<'a> {
    pub key: &'a str,
    /// The sha256 backups.db recorded for `key` on `st`, when it has one.
    pub recorded: Option<&'a str>,
    /// Only what is under this path of the site; everything when `None`.
    pub under: Option<&'a Path>,
    pub identities: Option<&'a Identities>,
    /// Whose signatures are accepted.
    pub trust: &'a crate::sign::Trust,
    /// Only what the archive itself holds (for a differential: its changes), not the restore
    /// point it makes with its bases.
    pub changes: bool,
    /// Copy the archive's `database.sql` into this file (`restore --dry-run` reads it).
    pub database_to: Option<&'a std::fs::File>,
}

/// A listing, every archive of it checked.
pub struct Listed {
    /// In path order; [`FileEntry::archive`] indexes `archives`.
    pub entries: Vec<FileEntry>,
    /// The archives read: the one asked for, then its bases, newest first.
    pub archives: Vec<String>,
    /// Where the sha256 the archive asked for was checked against came from.
    pub source: String,
    /// With [`Request::changes`], the paths (under `under`) a differential archive records
    /// as deleted since its base; empty otherwise.
    pub deleted: Vec<String>,
    /// The manifest of the archive asked for.
    pub manifest: Option<crate::manifest::Manifest>,
    /// Its `wp-config.php` (the site's, else `parent/wp-config.php`), when it has one.
    pub wp_config: Option<Vec<u8>>,
}

/// The extractor's state across the archives of the restore point.
#[derive(Default)]
struct State {
    chain: Chain,
    listing: Listing,
}

type Shared = Arc<Mutex<State>>;

/// The entries of `req.key` on `st` (with its bases, unless `req.changes`), checked.
pub fn list(
    rt: &tokio::runtime::Runtime,
    st: &dyn Storage,
    logdb: Option<&LogDb>,
    req: &Request,
) -> anyhow::Result<Listed> {
    let key = req.key;
    let metadata = rt
        .block_on(st.head(key))
        .with_context(|| format!("{}: cannot read {key}", st.name()))?
        .sha256;
    let expected = catalog::expected(key, metadata.as_deref(), req.recorded)?;
    let under: Option<PathBuf> = req.under.map(|p| {
        p.components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect()
    });
    let state: Shared = Arc::new(Mutex::new(State {
        chain: Chain::default(),
        listing: Listing {
            under: under.clone(),
            ..Listing::default()
        },
    }));
    let (name, ids, s) = (key.to_string(), req.identities.cloned(), state.clone());
    let mut database_to = req
        .database_to
        .map(std::fs::File::try_clone)
        .transpose()
        .context("cannot copy database.sql")?;
    let recorded = Some(expected.sha256.as_str());
    let (contents, fetched) = fetch::stream_trusted(rt, st, key, req.trust, recorded, move |r| {
        read(r, &name, ids.as_ref(), &mut lock(&s), database_to.as_mut())
    })
    .map_err(fetch::Rejected::into_anyhow)?;
    if fetched.sha256 != expected.sha256 {
        bail!(
            "{key}: sha256 mismatch: the stored object has {} but {} records {}: do not trust this listing (nor the archive)",
            fetched.sha256,
            expected.source,
            expected.sha256
        );
    }
    let facts = contents?;
    let (manifest, wp_config) = (facts.manifest, facts.wp_config);
    let differential = manifest.as_ref().and_then(|m| m.differential.clone());
    let mut archives = vec![key.to_string()];
    let mut deleted = Vec::new();
    match differential {
        Some(d) if req.changes => {
            // Format 1 lists them in the manifest, format 2 in deleted.nul.
            let listed = if d.deleted.is_empty() {
                facts.deleted
            } else {
                d.deleted
            };
            deleted = listed
                .into_iter()
                .filter(|p| under.as_ref().is_none_or(|u| Path::new(p).starts_with(u)))
                .collect();
        }
        Some(d) => {
            lock(&state).chain.want(&d.paths);
            let (ids, s) = (req.identities.cloned(), state.clone());
            let bases = fetch::bases(
                rt,
                key,
                &[st],
                logdb,
                req.trust,
                Some(d.base),
                move |r, k| {
                    let mut s = lock(&s);
                    s.listing.archive += 1;
                    let its = read(r, k, ids.as_ref(), &mut s, None)?.manifest;
                    Ok(((), its.and_then(|m| m.differential).map(|d| d.base)))
                },
            )?;
            archives.extend(bases.into_iter().map(|b| b.key));
        }
        None => {}
    }
    let state = std::mem::take(&mut *lock(&state));
    state.chain.finish()?;
    Ok(Listed {
        entries: state.listing.sorted(),
        archives,
        source: expected.source,
        deleted,
        manifest,
        wp_config,
    })
}

/// What a listing needs of an archive: its manifest (a differential's base and paths), its
/// `wp-config.php`.
struct Facts {
    manifest: Option<crate::manifest::Manifest>,
    /// `deleted.nul`'s paths (format 2).
    deleted: Vec<String>,
    wp_config: Option<Vec<u8>>,
}

/// Read one archive of the restore point (`key`, from `archive`), its entries into
/// `state.listing` as `state.chain` takes them; fails unless it matches its manifest.
fn read(
    archive: &mut dyn std::io::Read,
    key: &str,
    identities: Option<&Identities>,
    state: &mut State,
    database_to: Option<&mut std::fs::File>,
) -> anyhow::Result<Facts> {
    let State { chain, listing } = state;
    let contents = unpack::read(
        crate::crypt::open(archive, key, identities)?,
        unpack::Options {
            chain: Some(chain),
            listing: Some(listing),
            database_to,
            ..unpack::Options::default()
        },
    )?;
    let problems = contents.problems();
    if !problems.is_empty() {
        bail!(
            "the archive {key} is not whole: {}: do not trust this listing (nor the archive)",
            problems.join("; ")
        );
    }
    let wp_config = contents
        .wp_config
        .or(contents.parent_wp_config.map(|p| p.data));
    Ok(Facts {
        manifest: contents.manifest,
        deleted: contents.deleted,
        wp_config,
    })
}
