//! `restore --at TIME` to a second: the restore point at or before TIME brought forward by the
//! site's events in the shipped binary log, from the position its manifest records (`binlog`)
//! to TIME. Which files that takes is read from the buckets alone (`binlog/{server_id}/`); a
//! file missing in between is refused by name before anything live changes (exit status 2).
//! Each file is downloaded from the first storage with an intact copy, its sha256 and
//! signature checked as an archive's are, decrypted and decompressed into a private temporary
//! directory; the replay itself is [`crate::binlog::replay`].

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use crate::binlog;
use crate::crypt::Identities;
use crate::error::UsageError;
use crate::manifest::{BinlogPosition, Manifest};
use crate::reader::fetch;
use crate::sign::Trust;
use crate::storage::Storage;

/// A replay to do: from the point's position, these files, up to `at`.
#[derive(Debug, Clone)]
pub struct Plan {
    pub start: BinlogPosition,
    pub selection: binlog::Selection,
    pub at: DateTime<Utc>,
    /// The server whose `binlog/` prefix the files are under.
    pub server: String,
    /// The newest shipped file is among them: events after its end are not in any bucket yet.
    pub to_newest: bool,
}

impl Plan {
    /// The files, by name, for the summary and `--dry-run`.
    pub fn names(&self) -> Vec<String> {
        self.selection
            .files
            .iter()
            .map(|f| f.file.clone())
            .collect()
    }
}

/// The replay `--at` asks for on top of the archive whose manifest is `manifest`, or `None`
/// when the archive records no binary log position (made before, or without `binlog`): then
/// the point alone is restored. A gap in the shipped files is a [`UsageError`].
pub fn plan(
    rt: &tokio::runtime::Runtime,
    storages: &[Box<dyn Storage>],
    server_id: &str,
    manifest: &Manifest,
    at: DateTime<Utc>,
) -> anyhow::Result<Option<Plan>> {
    let Some(start) = &manifest.binlog else {
        tracing::warn!(
            "the restore point records no binary log position (made without config.json's `binlog`): restored to the point alone, not to the second"
        );
        return Ok(None);
    };
    let server = if manifest.server_id.is_empty() {
        server_id
    } else {
        &manifest.server_id
    };
    let shipped = binlog::list(rt, storages, server)?;
    let selection = binlog::files_for(&shipped, server, &start.file, at)
        .map_err(|gap| UsageError(format!("{gap}; nothing was changed")))?;
    let newest = shipped.iter().map(|s| s.file.as_str()).next_back();
    let to_newest = selection.files.last().map(|f| f.file.as_str()) == newest;
    Ok(Some(Plan {
        start: start.clone(),
        selection,
        at,
        server: server.to_string(),
        to_newest,
    }))
}

/// The plan's files downloaded into `dir` (which the caller made private), decrypted and
/// decompressed, in order; when the file after the last is missing, the last one's end must
/// show it began after the time (else a [`UsageError`] names it).
pub fn fetch_files(
    rt: &tokio::runtime::Runtime,
    storages: &[Box<dyn Storage>],
    plan: &Plan,
    trust: &Trust,
    identities: Option<&Identities>,
    dir: &std::path::Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for f in &plan.selection.files {
        crate::crypt::ensure_identity(&f.key, identities)?;
        let holders: Vec<&dyn Storage> = f.storages.iter().map(|i| storages[*i].as_ref()).collect();
        let path = dir.join(&f.file);
        let (key, to, ids) = (f.key.clone(), path.clone(), identities.cloned());
        let consume = move |r: &mut dyn Read| -> anyhow::Result<()> {
            let plain = crate::crypt::open(r, &key, ids.as_ref())?;
            let mut z = zstd::stream::read::Decoder::new(plain)
                .with_context(|| format!("{key}: not zstd"))?;
            let mut file = std::fs::File::create(&to)
                .with_context(|| format!("cannot write {}", to.display()))?;
            std::io::copy(&mut z, &mut file).with_context(|| format!("cannot unpack {key}"))?;
            Ok(())
        };
        fetch::first_intact(rt, &f.key, &holders, None, trust, None, consume)?;
        out.push(path);
    }
    if plan.selection.next_missing.is_some() {
        let rotated = match out.last() {
            Some(last) => binlog::rotated_at(last)?,
            None => None,
        };
        binlog::judge_next(&plan.selection, &plan.server, rotated, plan.at)
            .map_err(|gap| UsageError(format!("{gap}; nothing was changed")))?;
    }
    Ok(out)
}
