//! `verify` on the shipped binary log: each file a restore to a time would read is on the
//! storage that took it (`binlog_files.storage_name`) and no number is missing between the
//! oldest and the newest checked, and each copy is downloaded whole and checked as an
//! archive is: its sha256 against the one recorded (object metadata, `.sha256` on a local
//! storage, or `binlog_files`), its signature (`KEY.minisig`) against the trusted keys, then
//! decrypted and decompressed to a binary log (`\xfebin`). By default the files from the
//! oldest position the newest archive of each site needs (what [`crate::binlog::prune`] would
//! keep for those points), with `--all` every file. Results are [`Checked`] rows of site `*`,
//! recorded in `backup_log` as the archives' are.

use std::collections::BTreeSet;
use std::io::Read;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::binlog::{self, Shipped, prune::KeptPoint};
use crate::crypt::Identities;
use crate::logdb::LogDb;
use crate::reader::fetch;
use crate::reader::verify::Checked;
use crate::sign::Trust;
use crate::storage::Storage;
use crate::storage::catalog;

/// What to check and with what.
pub struct Check<'a> {
    pub rt: &'a tokio::runtime::Runtime,
    pub storages: &'a [Box<dyn Storage>],
    pub server_id: &'a str,
    pub db: &'a LogDb,
    pub identities: Option<&'a Identities>,
    pub trust: &'a Trust,
    /// Every shipped file, not only those the newest archives need.
    pub all: bool,
    /// config.json's `binlog` is set: a storage that cannot be listed is a failure (else
    /// there may be nothing to check).
    pub configured: bool,
}

impl Check<'_> {
    /// One result per file per storage, and one per file missing; empty when nothing was
    /// ever shipped.
    pub fn run(&self) -> Vec<Checked> {
        let shipped = match binlog::list(self.rt, self.storages, self.server_id) {
            Ok(s) => s,
            Err(_) if !self.configured => return Vec::new(),
            Err(e) => return vec![failed(None, None, format!("{e:#}"))],
        };
        let recorded = self.db.binlog_keys(self.server_id).unwrap_or_default();
        let pruned = self.db.pruned_keys(self.server_id).unwrap_or_default();
        let from = if self.all {
            None
        } else {
            self.newest_points_need(&shipped)
        };
        let wanted = |file: &str| {
            from.as_deref()
                .is_none_or(|f| match (binlog::number(f), binlog::number(file)) {
                    (Some((b, n, _)), Some((c, m, _))) => b != c || m >= n,
                    _ => true,
                })
        };
        let mut out = Vec::new();
        // Recorded as shipped, not deleted by prune, and not where it was stored.
        for (file, key, storage) in &recorded {
            if !wanted(file) || pruned.contains(key) {
                continue;
            }
            let there = shipped.iter().any(|s| {
                s.key == *key
                    && s.storages
                        .iter()
                        .any(|&i| self.storages[i].name() == storage)
            });
            let configured = self.storages.iter().any(|s| s.name() == storage);
            if !there && configured {
                out.push(failed(
                    Some(storage),
                    Some(key),
                    format!(
                        "binary log file {file} is missing from {storage}, which took it (backups.db's binlog_files): a restore to a time after it fails; put it back from another copy"
                    ),
                ));
            }
        }
        // A gap in the numbers between the files checked.
        let checked: Vec<&Shipped> = shipped.iter().filter(|s| wanted(&s.file)).collect();
        for name in gaps(&checked) {
            out.push(failed(
                None,
                None,
                format!(
                    "binary log file {name} is on no storage ({}), though later ones are: a restore to a time after it fails; put it back",
                    binlog::prefix(self.server_id)
                ),
            ));
        }
        for s in checked {
            for &i in &s.storages {
                crate::interrupt::check().ok();
                if crate::interrupt::received().is_some() {
                    return out;
                }
                out.push(self.one(self.storages[i].as_ref(), s));
            }
        }
        out
    }

    /// The oldest file the newest archive of each site (on any storage) replays from.
    fn newest_points_need(&self, shipped: &[Shipped]) -> Option<String> {
        let prefix = catalog::prefix(self.server_id, None);
        let (found, _) = catalog::list_all(self.rt, self.storages, &prefix);
        let mut sites = BTreeSet::new();
        let points: Vec<KeptPoint> = found
            .iter()
            .filter(|(_, l)| sites.insert(l.name.site.clone()))
            .map(|(_, l)| KeptPoint {
                key: l.info.key.clone(),
                created_at: l.name.created_at,
                binlog_file: self.db.archive_binlog_file(&l.info.key).ok().flatten(),
            })
            .collect();
        binlog::prune::first_needed(&points, shipped).map(|(file, _)| file)
    }

    /// One copy, downloaded and checked.
    fn one(&self, st: &dyn Storage, s: &Shipped) -> Checked {
        let started = Instant::now();
        let result = self.check_copy(st, s);
        let (ok, details, untrusted) = match result {
            Ok(d) => (true, d, false),
            Err(e) => {
                let untrusted = e.downcast_ref::<crate::sign::Refused>().is_some();
                (
                    false,
                    format!("binary log file {}: {e:#}", s.file),
                    untrusted,
                )
            }
        };
        if ok {
            tracing::info!(storage = st.name(), "{}: {details}", s.key);
        } else {
            tracing::error!(storage = st.name(), "{}: {details}", s.key);
        }
        Checked {
            site: "*".into(),
            storage: Some(st.name().to_string()),
            key: Some(s.key.clone()),
            ok,
            details,
            duration_secs: started.elapsed().as_secs_f64(),
            untrusted,
        }
    }

    fn check_copy(&self, st: &dyn Storage, s: &Shipped) -> anyhow::Result<String> {
        let head = self
            .rt
            .block_on(st.head(&s.key))
            .map_err(|e| anyhow::anyhow!("cannot read its metadata: {e}"))?;
        let recorded = self.db.binlog_sha256(&s.key).ok().flatten();
        let expected = catalog::expected(&s.key, head.sha256.as_deref(), recorded.as_deref())?;
        let (key, ids) = (s.key.clone(), self.identities.cloned());
        // Encrypted and no --identity: its sha256 and signature are checked, not what it holds.
        let sealed = crate::crypt::is_encrypted(&s.key) && ids.is_none();
        let (read, got) = fetch::stream_trusted(
            self.rt,
            st,
            &s.key,
            self.trust,
            Some(&expected.sha256),
            move |r| {
                if sealed {
                    std::io::copy(r, &mut std::io::sink())?;
                    return Ok(None);
                }
                let plain = crate::crypt::open(r, &key, ids.as_ref())?;
                let mut z = zstd::stream::read::Decoder::new(plain)
                    .with_context(|| format!("{key}: not zstd"))?;
                let mut magic = [0u8; 4];
                z.read_exact(&mut magic)
                    .with_context(|| format!("cannot decompress {key}"))?;
                if &magic != b"\xfebin" {
                    bail!("{key} does not hold a binary log file");
                }
                let bytes = std::io::copy(&mut z, &mut std::io::sink())
                    .with_context(|| format!("cannot decompress {key}"))?;
                Ok(Some(bytes + 4))
            },
        )
        .map_err(|e| e.into_anyhow())?;
        if !got.sha256.eq_ignore_ascii_case(&expected.sha256) {
            bail!(
                "sha256 mismatch: the stored object ({} bytes) has sha256 {} but the sha256 recorded in {} is {}",
                got.size,
                got.sha256,
                expected.source,
                expected.sha256
            );
        }
        let inside = match read? {
            Some(bytes) => format!(
                "binary log file {} ({}) complete",
                s.file,
                crate::output::human_bytes(bytes)
            ),
            None => format!(
                "{} encrypted: its contents not read (no --identity)",
                s.file
            ),
        };
        Ok(format!(
            "ok: signature and sha256 match ({}), {inside}",
            expected.source
        ))
    }
}

/// The numbers missing between the first and the last of `files` (one base name's).
fn gaps(files: &[&Shipped]) -> Vec<String> {
    let mut out = Vec::new();
    let mut by_base: std::collections::BTreeMap<&str, (BTreeSet<u64>, usize)> = Default::default();
    for s in files {
        if let Some((base, n, width)) = binlog::number(&s.file) {
            let e = by_base.entry(base).or_default();
            e.0.insert(n);
            e.1 = width;
        }
    }
    for (base, (numbers, width)) in by_base {
        let (Some(&lo), Some(&hi)) = (numbers.first(), numbers.last()) else {
            continue;
        };
        out.extend(
            (lo..hi)
                .filter(|n| !numbers.contains(n))
                .map(|n| format!("{base}.{n:0width$}")),
        );
    }
    out
}

fn failed(storage: Option<&str>, key: Option<&str>, details: String) -> Checked {
    Checked {
        site: "*".into(),
        storage: storage.map(str::to_string),
        key: key.map(str::to_string),
        ok: false,
        details,
        duration_secs: 0.0,
        untrusted: false,
    }
}
