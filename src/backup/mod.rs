//! The backup pipeline: for each site, dump the database, stream files + dump as one tar.zst
//! to the storages in priority order until one takes it, and record the outcome.
//!
//! The dump starts on its own thread while the files are walked and compressed ([`dump`]); the
//! archive is produced on a blocking thread and streamed to the storage's upload ([`upload`]).
//! Which storage takes it is [`crate::storage::failover`]'s decision: when a storage fails
//! mid-upload it aborts, and the archive is produced again for the next storage with the same
//! dump (the database is dumped once per run). One site failing never stops the others.

pub mod archive;
pub mod clock;
pub mod dump;
pub mod frames;
pub mod index;
pub mod outcome;
pub mod plan;
pub mod progress;
pub mod sample;
pub mod upload;
pub mod walk;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::config::{Config, SiteConfig};
use crate::logdb::{ArchiveRecord, LogDb, LogEntry, Status};
use crate::output;
use crate::site::hooks;
use crate::storage::failover::{self, Target};
use archive::ArchiveSpec;
pub use clock::run_time;
use dump::DumpCell;
pub use outcome::SiteResult;
use outcome::failed;
use plan::Plan;
use upload::Upload;

/// The site's `after_backup` hooks, told how its backup went; their failure is added to the
/// result (a success becomes a warning: the archive is stored, but what the hook should have
/// undone may not be).
fn after_backup(site: &SiteConfig, mut result: SiteResult) -> SiteResult {
    if !hooks::any(site, hooks::Phase::AfterBackup) {
        return result;
    }
    let vars = hooks::Vars {
        status: Some(result.status.as_str().to_ascii_lowercase()),
        archive_key: result.key.clone(),
        storage: result.storage.clone(),
        restore_to: None,
    };
    if let Err(e) = hooks::run(site, hooks::Phase::AfterBackup, &vars) {
        if result.status == Status::Success {
            result.status = Status::Warning;
        }
        result.details.push_str("; ");
        result.details.push_str(&e);
    }
    result
}

/// The site's `exclude_tables` its database does not have (a typo leaves a big table's rows
/// in every archive): the warning that names them, or `None`.
fn unknown_tables(site: &SiteConfig, manifest: &archive::Manifest) -> Option<String> {
    let rows = manifest.table_rows.as_ref()?;
    let unknown: Vec<&str> = site
        .exclude_tables
        .iter()
        .filter(|t| !rows.contains_key(*t))
        .map(String::as_str)
        .collect();
    (!unknown.is_empty()).then(|| {
        format!(
            "exclude_tables: database {} has no table {} (check the name and its prefix in config.json)",
            manifest.database_name,
            unknown.join(", ")
        )
    })
}

/// One backup run over a list of sites.
pub struct Run<'a> {
    pub rt: &'a tokio::runtime::Runtime,
    pub config: &'a Config,
    /// The storages in priority order, as the pre-flight check left them.
    pub targets: &'a [Target],
    pub db: &'a LogDb,
    /// The run's time: in every key and manifest of the run.
    pub started: DateTime<Utc>,
    pub show_bars: bool,
    /// Check the sites and storages only; store and record nothing.
    pub dry_run: bool,
    /// wpbackup's home: each site's index of its bases is in `index/`.
    pub home: &'a std::path::Path,
    /// Make full archives whatever the differential policy says (`backup --full`).
    pub force_full: bool,
    /// The server's signing key (`None` only for a dry run, which stores nothing).
    pub signer: Option<&'a crate::sign::SecretKey>,
}

impl Run<'_> {
    /// Back up each site in turn; one result per site, each recorded in backups.db.
    pub fn sites(&self, sites: &[SiteConfig]) -> Vec<SiteResult> {
        if !self.dry_run {
            // What a killed run of this server left (unfinished multipart uploads, partial
            // files): removed once per run, before the first site; failures are warnings.
            let usable = failover::usable(self.targets);
            let server_id = &self.config.server_id;
            self.rt.block_on(crate::storage::leftovers::after_crash(
                &usable, server_id, self.home,
            ));
        }
        let mut results = Vec::new();
        for site in sites {
            let result = if let Some(sig) = crate::interrupt::received() {
                failed(
                    &site.name,
                    Instant::now(),
                    format!(
                        "not backed up: the run was interrupted by {} before this site",
                        crate::interrupt::name(sig)
                    ),
                )
            } else if self.dry_run {
                self.dry_run_site(site)
            } else {
                self.backup_site(site)
            };
            if !self.dry_run {
                self.record(&result);
            }
            match result.status {
                Status::Error => tracing::error!(site = %result.site, "{}", result.details),
                Status::Warning => tracing::warn!(site = %result.site, "{}", result.details),
                Status::Success => tracing::info!(site = %result.site, "{}", result.details),
            }
            results.push(result);
        }
        results
    }

    fn dry_run_site(&self, site: &SiteConfig) -> SiteResult {
        let started = Instant::now();
        let resolved = match crate::site::resolve(site, self.config.database) {
            Ok(r) => r,
            Err(e) => return failed(&site.name, started, format!("{e:#}")),
        };
        if let Err(e) = crate::site::siteurl(&resolved) {
            return failed(&site.name, started, format!("{e:#}"));
        }
        let first = self.targets.iter().find(|t| t.usable());
        let skipped = failover::skipped(self.targets);
        outcome::dry_run(
            &site.name,
            started,
            first.map(|t| t.storage.name()),
            &skipped,
        )
    }

    /// The site's backup between its hooks: a failing `before_backup` hook stops it (an
    /// ERROR with the hook's output); `after_backup` runs whatever happened after that, and
    /// its failure makes a success a WARNING.
    fn backup_site(&self, site: &SiteConfig) -> SiteResult {
        let started = Instant::now();
        if let Err(e) = failover::ensure_any(self.targets) {
            return failed(&site.name, started, e.to_string());
        }
        let result = match hooks::run(site, hooks::Phase::BeforeBackup, &hooks::Vars::default()) {
            Err(e) => failed(&site.name, started, format!("not backed up: {e}")),
            Ok(()) => self.store_site(site, started),
        };
        after_backup(site, result)
    }

    fn store_site(&self, site: &SiteConfig, started: Instant) -> SiteResult {
        let name = site.name.as_str();
        let Some(signer) = self.signer else {
            return failed(
                name,
                started,
                "no signing key: nothing is stored unsigned".into(),
            );
        };
        let spec = match self.spec(site) {
            Ok(s) => s,
            Err(e) => return failed(name, started, format!("{e:#}")),
        };
        let index = self.index(name);
        let plan = self.plan(site, index.as_ref());
        let dump = Arc::new(DumpCell::start(
            spec.1,
            site.exclude_tables.clone(),
            self.config.binlog.is_some(),
        ));
        let bar = output::site_bar(name, self.show_bars);
        let upload = Upload {
            rt: self.rt,
            spec: Arc::new(spec.0),
            dump,
            encryption: self.config.encryption.clone(),
            plan: &plan,
            bar: &bar,
            limit: self.config.upload.max_bytes_per_sec,
            signer,
        };
        let stored = failover::store(self.targets, |st| upload.attempt(st));
        bar.finish_and_clear();
        match stored {
            Ok(s) => {
                let mut a = s.value;
                self.update_index(name, index, &mut a, &s.storage);
                let unknown = unknown_tables(site, &a.manifest);
                let s = failover::Stored {
                    value: (a.out, a.manifest),
                    storage: s.storage,
                    position: s.position,
                    failed_first: s.failed_first,
                };
                let mut result = outcome::stored(name, started, a.key, s);
                if let Some(note) = unknown {
                    result.status = Status::Warning;
                    result.details.push_str("; ");
                    result.details.push_str(&note);
                }
                result
            }
            Err(e) => failed(name, started, e.to_string()),
        }
    }

    /// The site's index of its bases, when differentials are on.
    fn index(&self, site: &str) -> Option<index::Index> {
        self.config
            .differential
            .as_ref()
            .and_then(|_| index::load(self.home, site))
    }

    /// Full or differential, as the policy, the index and the site's changes say.
    fn plan(&self, site: &SiteConfig, index: Option<&index::Index>) -> Plan {
        let policy = self.config.differential.as_ref();
        let plan = plan::choose(policy, index, self.started, self.force_full);
        let plan = match archive::exclude_set(&site.exclude) {
            Ok(ex) => plan::within_share(plan, policy, index, &site.path, &|p| ex.is_match(p)),
            Err(_) => plan,
        };
        if let Plan::Full { why: Some(why) } = &plan {
            tracing::info!(site = %site.name, "a full archive: {why}");
        }
        plan
    }

    /// After a stored archive: a full or level-1 one becomes a base in the index. A failure
    /// is a warning (the next run makes a full archive).
    fn update_index(
        &self,
        site: &str,
        index: Option<index::Index>,
        a: &mut upload::Attempted,
        storage: &str,
    ) {
        if self.config.differential.is_none() {
            return;
        }
        let level = a.manifest.differential.as_ref().map_or(0, |d| d.level);
        if level > 1 {
            return;
        }
        let Some(tree) = a.tree.file.take() else {
            return;
        };
        let snapshot = index::Snapshot {
            key: a.key.clone(),
            storage: storage.to_string(),
            sha256: a.out.sha256.clone(),
            size: a.out.size,
            created_at: self.started,
            level,
            bytes: a.tree.bytes,
            tree: index::tree_name(self.started, level),
            tree_sha256: tree.sha256.clone(),
            paths: tree.paths,
            dir: index::trees(self.home, site),
        };
        let index = match (level, index) {
            (0, _) => index::Index {
                full: Some(snapshot),
                ..Default::default()
            },
            (1, Some(i)) => index::Index {
                level1: Some(snapshot),
                ..i
            },
            _ => return,
        };
        if let Err(e) = index::save(self.home, site, &index, Some(tree)) {
            tracing::warn!(
                site,
                "cannot keep the index of this archive (the next run makes a full archive): {e:#}"
            );
        }
    }

    /// What goes into the site's archive, and its database (which also proves it answers).
    fn spec(
        &self,
        site: &SiteConfig,
    ) -> anyhow::Result<(ArchiveSpec, crate::config::DatabaseConfig)> {
        let resolved = crate::site::resolve(site, self.config.database)?;
        let siteurl = crate::site::siteurl(&resolved)?;
        let spec = ArchiveSpec {
            site: site.name.clone(),
            site_path: site.path.clone(),
            exclude: site.exclude.clone(),
            exclude_tables: site.exclude_tables.clone(),
            server_id: self.config.server_id.clone(),
            created_at: self.started,
            compression: self.config.compression,
            wordpress_version: resolved.wordpress_version.clone(),
            database_name: resolved.db.name.clone(),
            table_prefix: resolved.table_prefix.clone(),
            siteurl,
            parent_wp_config: resolved.parent_wp_config.clone(),
            differential: None,
            index_dir: self
                .config
                .differential
                .as_ref()
                .map(|_| index::trees(self.home, &site.name)),
        };
        Ok((spec, resolved.db))
    }

    /// Write the site's rows to backups.db; a failure to log is reported but not fatal.
    fn record(&self, r: &SiteResult) {
        let entry = LogEntry {
            timestamp: Utc::now(),
            status: r.status,
            details: &r.details,
            site_name: &r.site,
            server_id: &self.config.server_id,
            action: "backup",
            storage_name: r.storage.as_deref(),
            archive_key: r.key.as_deref(),
            duration_secs: Some(r.duration_secs),
        };
        if let Err(e) = self.db.log(&entry) {
            tracing::error!(site = %r.site, "cannot record the result in backups.db: {e:#}");
        }
        if let (Some(storage), Some(key), Some(size), Some(sha)) =
            (&r.storage, &r.key, r.size, &r.sha256)
        {
            let (endpoint, bucket) = self
                .targets
                .iter()
                .find(|t| t.storage.name() == storage)
                .map(|t| t.storage.location())
                .unwrap_or_default();
            let rec = ArchiveRecord {
                filename: key,
                storage_name: storage,
                s3_endpoint: &endpoint,
                s3_bucket: &bucket,
                file_size: size,
                server_id: &self.config.server_id,
                site_name: &r.site,
                created_at: self.started,
                sha256: sha,
                duration_secs: r.duration_secs,
                kind: if r.base_key.is_some() {
                    "differential"
                } else {
                    "full"
                },
                base_key: r.base_key.as_deref(),
                binlog: r.binlog.as_ref().map(|b| (b.file.as_str(), b.position)),
            };
            if let Err(e) = self.db.record_archive(&rec) {
                tracing::error!(site = %r.site, "cannot record the archive in backups.db: {e:#}");
            }
        }
    }
}
