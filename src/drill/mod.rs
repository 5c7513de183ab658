//! `drill`: prove each site restorable, the way the worst day would need it, without touching
//! anything live. For one site ([`drill_site`]):
//!
//! 1. the newest archive is chosen from the buckets themselves (as restore does: no
//!    backups.db needed), and the free space for it is checked;
//! 2. it is downloaded into a private scratch directory ([`scratch`]), its sha256 and its
//!    manifest checked as restore checks them (`reader::stage`);
//! 3. the files on disk are compared with the manifest: count, bytes and the sampled files'
//!    sha256 ([`files`]);
//! 4. `database.sql` is imported into a scratch database of its own ([`database`]), and each
//!    table's rows are compared with those the backup counted in the dump;
//! 5. when the archive records its binary log position and files were shipped after it, the
//!    site's events are replayed onto the scratch database to the newest shipped one
//!    ([`forward`]), their statements and the posts after them counted;
//! 6. WordPress boots from the restored files against that database and answers with its
//!    `home` option and its count of published posts, compared with the recorded ones
//!    ([`boot`]), its php run as a fresh uid without the network ([`sandbox`]), as the scratch
//!    database's own throwaway user;
//! 7. the time from the start to that answer is the site's measured recovery time.
//!
//! Every failure is named; later checks still run where they can (files are checked even
//! when the dump does not load). The scratch directory and database are removed by their
//! guards whatever happens, a signal included ([`child`] stops the import or php at once).
//! Archives made before manifest.json recorded row counts, `home`, posts or file hashes are
//! drilled too: what cannot be compared is said, and the result is then a WARNING.

pub mod boot;
pub mod child;
pub mod database;
pub mod files;
pub mod forward;
pub mod relay;
pub mod sandbox;
pub mod scratch;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::Utc;
use serde::Serialize;

use crate::config::{DatabaseConfig, SiteConfig, Timeouts};
use crate::crypt::Identities;
use crate::logdb::{DrillEntry, LogDb, Status};
use crate::manifest::Manifest;
use crate::reader::stage::{self, Staged};
use crate::storage::Storage;
use crate::storage::catalog::Choice;

/// Where archives come from and how a drill is done, for every site alike.
pub struct Drill<'a> {
    pub rt: &'a tokio::runtime::Runtime,
    pub storages: &'a [Box<dyn Storage>],
    /// backups.db, when it exists: one more place an archive's sha256 is recorded.
    pub logdb: Option<&'a LogDb>,
    pub server_id: String,
    /// Where scratch directories are made (`TMPDIR`, else `/tmp`).
    pub scratch_parent: PathBuf,
    pub timeouts: Timeouts,
    /// `MYSQL_UNIX_PORT`: root's socket, when the site's user may not create databases.
    pub mysql_unix_port: Option<PathBuf>,
    /// config.json's `drill.database`.
    pub server: Option<DatabaseConfig>,
    pub identities: Option<Identities>,
    /// Whose archive signatures are accepted: checked before the drill reads an archive.
    pub trust: crate::sign::Trust,
}

/// One site's drill: what was proven, what failed, and how long it took.
#[derive(Debug, Clone, Serialize)]
pub struct Proof {
    pub site: String,
    pub archive_key: Option<String>,
    pub storage: Option<String>,
    /// `SUCCESS`: every check passed; `WARNING`: passed, but something could not be compared;
    /// `ERROR`: a check failed.
    pub status: Status,
    pub proven: Vec<String>,
    pub failed: Vec<String>,
    pub notes: Vec<String>,
    /// From the start to WordPress's answer (to the failure, for a failed drill).
    pub recovery_secs: f64,
    /// The archive was refused (its signature, or a statement of its dump): exit status 2.
    #[serde(skip)]
    pub refused: bool,
}

impl Proof {
    fn new(site: &str) -> Proof {
        Proof {
            site: site.to_string(),
            archive_key: None,
            storage: None,
            status: Status::Error,
            proven: Vec::new(),
            failed: Vec::new(),
            notes: Vec::new(),
            recovery_secs: 0.0,
            refused: false,
        }
    }

    /// What failed, in one sentence (`None` when nothing did).
    pub fn failed_text(&self) -> Option<String> {
        (!self.failed.is_empty()).then(|| self.failed.join("; "))
    }

    /// What was proven and what could not be compared, in one sentence.
    pub fn details(&self) -> String {
        let mut parts = self.proven.clone();
        parts.extend(self.notes.iter().map(|n| format!("note: {n}")));
        parts.join("; ")
    }
}

/// Drill `site`: never an error, a [`Proof`] that says how it went.
pub fn drill_site(d: &Drill, site: &SiteConfig) -> Proof {
    let started = Instant::now();
    let mut p = Proof::new(&site.name);
    let result = prove(d, site, &mut p, started);
    if let Err(e) = result {
        p.refused = crate::restore::dumpcheck::is_refusal(&e);
        p.failed.insert(0, format!("{e:#}"));
    }
    if p.recovery_secs == 0.0 {
        p.recovery_secs = started.elapsed().as_secs_f64();
    }
    p.status = match (p.failed.is_empty(), p.notes.is_empty()) {
        (false, _) => Status::Error,
        (true, true) => Status::Success,
        (true, false) => Status::Warning,
    };
    p
}

/// A multisite network's sites (`{prefix}blogs`), read from the restored dump and
/// wp-config.php; `None` for a single site (or a dump that cannot be read again).
fn network_sites(
    staged: &crate::reader::stage::Staged,
    manifest: &crate::manifest::Manifest,
) -> Option<Vec<crate::clone::multisite::Place>> {
    let sql = staged.database_sql.as_ref()?;
    let declared = staged
        .contents
        .any_wp_config()
        .map(|w| crate::restore::declared(&String::from_utf8_lossy(w)))
        .unwrap_or_default();
    let network = crate::clone::multisite::from_dump(
        || {
            let f = std::fs::File::open(sql.path())?;
            Ok(std::io::BufReader::new(f))
        },
        &manifest.table_prefix,
        &declared,
    );
    match network {
        Ok(Some(n)) if !n.sites.is_empty() => Some(n.sites),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!("cannot read the network's sites from database.sql: {e:#}");
            None
        }
    }
}

/// Stop between steps once a signal came.
fn ensure_not_interrupted() -> anyhow::Result<()> {
    match crate::interrupt::received() {
        Some(sig) => bail!("interrupted by {}", crate::interrupt::name(sig)),
        None => Ok(()),
    }
}

/// The steps; an error stops them (the checks that fail but let the next run are in `p`).
fn prove(d: &Drill, site: &SiteConfig, p: &mut Proof, started: Instant) -> anyhow::Result<()> {
    let choice = Choice::Newest;
    let (key, holders) = crate::storage::catalog::choose_archive(
        d.rt,
        d.storages,
        &d.server_id,
        &site.name,
        &choice,
    )?;
    p.archive_key = Some(key.clone());
    crate::crypt::ensure_identity(&key, d.identities.as_ref())?;
    let size = archive_size(d, &key, &holders);
    scratch::remove_leftovers(&d.scratch_parent, Utc::now());
    let dir = scratch::ScratchDir::create(&d.scratch_parent, &site.name, size.saturating_mul(2))?;
    let staged = fetch(d, &key, &holders, dir.path(), p)?;
    ensure_not_interrupted()?;
    let manifest = staged
        .contents
        .manifest
        .clone()
        .context("the archive has no manifest.json")?;
    let files = staged.files().context("no files were restored")?;
    let checked = files::check(&files, &manifest);
    p.proven.extend(checked.proven);
    p.failed.extend(checked.failed);
    p.notes.extend(checked.notes);

    let sql = staged
        .database_sql
        .as_ref()
        .context("database.sql was not extracted")?;
    // Its statements are checked before a scratch database or user exists (see dumpcheck).
    let dump = std::fs::File::open(sql.path()).context("cannot open database.sql")?;
    crate::restore::dumpcheck::check(dump)?;
    ensure_not_interrupted()?;
    let db = scratch_database(d, site, &staged)?;
    db.import(sql.path()).with_context(|| {
        format!(
            "database.sql does not load into the scratch database ({})",
            db.how
        )
    })?;
    ensure_not_interrupted()?;
    compare_rows(&db.rows()?, &manifest, p);
    // WordPress then answers what the replayed database holds.
    let mut expected = manifest.clone();
    if let Some(start) = &manifest.binlog {
        match forward::forward(d, &manifest, start, &db, dir.path()) {
            Ok(Some(f)) => {
                if f.published_after.is_some() {
                    expected.published_posts = f.published_after;
                }
                p.proven.push(f.text());
            }
            Ok(None) => {}
            Err(e) => p.failed.push(format!("point-in-time recovery: {e:#}")),
        }
        ensure_not_interrupted()?;
    }
    let login = db
        .login
        .as_ref()
        .context("the scratch database has no user of its own")?;
    let network = network_sites(&staged, &manifest);
    let booted = boot::check(
        &boot::Boot {
            files: &files,
            scratch: dir.path(),
            site_path: &site.path,
            db_name: &db.name,
            server: d.server.as_ref(),
            login,
            parent_config: staged.contents.parent_wp_config.as_ref(),
            limit: Duration::from_secs(d.timeouts.stall_secs),
            network: network.as_deref(),
        },
        &expected,
    );
    p.proven.extend(booted.proven);
    p.failed.extend(booted.failed);
    p.notes.extend(booted.notes);
    p.recovery_secs = started.elapsed().as_secs_f64();
    Ok(())
}

/// The stored size of `key` (0 when no storage says).
fn archive_size(d: &Drill, key: &str, holders: &[usize]) -> u64 {
    holders
        .iter()
        .find_map(|i| d.rt.block_on(d.storages[*i].head(key)).ok())
        .map(|info| info.size)
        .unwrap_or(0)
}

/// Download and unpack `key` into `dir` (its sha256 and manifest checked).
fn fetch(
    d: &Drill,
    key: &str,
    holders: &[usize],
    dir: &std::path::Path,
    p: &mut Proof,
) -> anyhow::Result<Staged> {
    let to = stage::StageTo {
        files_target: Some(dir.join("site")),
        database: true,
        tmp_dir: dir.to_path_buf(),
        stamp: stage::stamp(Utc::now()),
        identities: d.identities.clone(),
        trust: d.trust.clone(),
    };
    let holders: Vec<&dyn Storage> = holders.iter().map(|i| d.storages[*i].as_ref()).collect();
    let fetched = stage::fetch_and_stage(d.rt, key, &holders, d.logdb, &to)?;
    p.storage = Some(fetched.storage.clone());
    p.proven.push(format!(
        "downloaded from {} ({}), sha256 as recorded in {}",
        fetched.storage,
        crate::output::human_bytes(fetched.size),
        fetched.expected.source
    ));
    if !fetched.bases.is_empty() {
        p.proven.push(format!(
            "a differential archive: its bases {} each matched the sha256 its successor names",
            fetched.bases.join(", ")
        ));
    }
    Ok(fetched.staged)
}

/// The scratch database for `site`, on the server and as the user its credentials allow.
fn scratch_database(
    d: &Drill,
    site: &SiteConfig,
    staged: &Staged,
) -> anyhow::Result<database::ScratchDb> {
    let archived = staged.contents.any_wp_config();
    let creds = match &d.server {
        Some(s) => s.clone(),
        None => crate::restore::wp_config::credentials(site, archived, d.timeouts)?.0,
    };
    let name = database::scratch_name(&site.name, Utc::now());
    database::ScratchDb::create(
        &name,
        &database::Placement {
            site: &creds,
            admin_socket: d.mysql_unix_port.clone(),
            server: d.server.as_ref(),
        },
    )
}

/// Each table's rows against those the backup counted in the dump.
fn compare_rows(got: &std::collections::BTreeMap<String, u64>, m: &Manifest, p: &mut Proof) {
    let Some(want) = &m.table_rows else {
        p.notes.push(format!(
            "the archive records no row counts (made before wpbackup recorded them): {} tables loaded, their rows not compared",
            got.len()
        ));
        return;
    };
    let mut bad = Vec::new();
    for (table, n) in want {
        match got.get(table) {
            Some(g) if g == n => {}
            Some(g) => bad.push(format!("{table} has {g} rows, the backup counted {n}")),
            None => bad.push(format!("{table} is missing")),
        }
    }
    if bad.is_empty() {
        p.proven.push(format!(
            "the dump loads: {} tables, {} rows as counted at backup time",
            want.len(),
            want.values().sum::<u64>()
        ));
    } else {
        p.failed.push(format!(
            "the restored database differs from the dump the backup counted: {}",
            bad.join("; ")
        ));
    }
}

/// The drill's row in backups.db (a failure to write it is logged, not fatal).
pub fn record(db: &LogDb, server_id: &str, p: &Proof) {
    let failed = p.failed_text();
    let logged = db.log_drill(&DrillEntry {
        timestamp: Utc::now(),
        server_id,
        site_name: &p.site,
        archive_key: p.archive_key.as_deref(),
        storage_name: p.storage.as_deref(),
        result: p.status,
        failed: failed.as_deref(),
        recovery_secs: p.recovery_secs,
        details: &p.details(),
    });
    if let Err(e) = logged {
        tracing::error!("cannot record the drill of {} in backups.db: {e:#}", p.site);
    }
}
