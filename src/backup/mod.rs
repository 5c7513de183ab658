//! `wpbackup backup`: for each site, dump the database, stream files + dump as one tar.zst to
//! the storages in priority order until one takes it, and record the outcome.
//!
//! The dump starts on its own thread while the files are walked and compressed; the archive is
//! produced on a blocking thread and streamed through a bounded channel to the storage's
//! upload. When a storage fails mid-upload it aborts, and the archive is produced again for the
//! next storage with the same dump (the database is dumped once per run). One site failing
//! never stops the others.

pub mod archive;
pub mod frames;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cli::BackupArgs;
use crate::commands::{Context, Outcome, UsageError};
use crate::config::{Config, ConfigError, Env, SiteConfig};
use crate::dbtools::{self, Dump};
use crate::lock::RunLock;
use crate::logdb::{ArchiveRecord, LogDb, LogEntry, Status};
use crate::output;
use crate::storage::{self, Body, BodyWriter, Storage};
use archive::{ArchiveSpec, Progress};

/// Chunks handed from the archiver to the upload (bounded channel of `CHANNEL_CHUNKS`).
const CHUNK_SIZE: usize = 1024 * 1024;
const CHANNEL_CHUNKS: usize = 4;

/// One site's result, as printed and as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct SiteResult {
    pub site: String,
    pub status: Status,
    pub details: String,
    pub storage: Option<String>,
    pub key: Option<String>,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub files: Option<u64>,
    pub duration_secs: f64,
}

/// A storage and whether the pre-flight check let it through.
struct Target {
    storage: Box<dyn Storage>,
    skip: Option<String>,
}

pub fn run(ctx: &Context, args: &BackupArgs) -> anyhow::Result<Outcome> {
    let paths = &ctx.paths;
    ensure_home(&paths.home)?;
    let env = ctx.env()?;
    let config = match load_config(ctx, args, &env) {
        Ok(c) => c,
        Err(e) => {
            record_run_error(ctx, &env, &format!("{e:#}"));
            return Err(e);
        }
    };
    let sites = select_sites(&config, args)?;
    let storages: Vec<_> = match &args.storage {
        None => config.storage.clone(),
        Some(name) => {
            let found: Vec<_> = config
                .storage
                .iter()
                .filter(|s| &s.name == name)
                .cloned()
                .collect();
            if found.is_empty() {
                return Err(UsageError(format!(
                    "--storage {name}: no storage of that name in config.json"
                ))
                .into());
            }
            found
        }
    };
    if storages.is_empty() {
        return Err(ConfigError {
            file: paths.config.display().to_string(),
            path: "storage".into(),
            message: "no storage configured: add one (see config.example.json)".into(),
        }
        .into());
    }
    let _lock = RunLock::acquire(&paths.lock)?;
    let db = LogDb::open(&paths.db)?;
    let rt = crate::app::runtime()?;
    crate::interrupt::install(&rt).context("cannot listen for SIGTERM and SIGINT")?;
    crate::dbtools::set_timeouts(config.database);

    let monitor = crate::report::healthchecks::Monitor::start(
        config.healthchecks.clone().filter(|_| !args.dry_run),
        rt.handle().clone(),
        &format!(
            "wpbackup backup started on {} ({} site(s))",
            config.server_id,
            sites.len()
        ),
    );
    let mut targets = Vec::new();
    for cfg in &storages {
        targets.push(Target {
            storage: storage::open(cfg)?,
            skip: None,
        });
    }
    rt.block_on(async {
        let checks = targets.iter().map(|t| t.storage.check());
        let results = futures_util::future::join_all(checks).await;
        for (t, r) in targets.iter_mut().zip(results) {
            if let Err(e) = r {
                tracing::warn!(
                    storage = t.storage.name(),
                    "storage unavailable, skipped: {e}"
                );
                t.skip = Some(e.to_string());
            }
        }
    });

    let run_started = Utc::now();
    let show_bars = output::interactive() && !ctx.json && !ctx.quiet;
    let mut results = Vec::new();
    for site in &sites {
        let result = if let Some(sig) = crate::interrupt::received() {
            failed(
                &site.name,
                Instant::now(),
                format!(
                    "not backed up: the run was interrupted by {} before this site",
                    crate::interrupt::name(sig)
                ),
            )
        } else if args.dry_run {
            dry_run_site(site, &targets)
        } else {
            backup_site(&rt, &config, site, &targets, run_started, show_bars)
        };
        if !args.dry_run {
            record(&db, &config, &targets, &result, run_started);
        }
        match result.status {
            Status::Error => tracing::error!(site = %result.site, "{}", result.details),
            Status::Warning => tracing::warn!(site = %result.site, "{}", result.details),
            Status::Success => tracing::info!(site = %result.site, "{}", result.details),
        }
        results.push(result);
    }
    let interrupted = crate::interrupt::received();
    if !args.dry_run && config.retention.is_some() && interrupted.is_none() {
        // Retention for the sites just stored; its failures are warnings, never the run's result.
        let stored: Vec<&str> = results
            .iter()
            .filter(|r| r.status != Status::Error)
            .map(|r| r.site.as_str())
            .collect();
        let live: Vec<&dyn Storage> = targets
            .iter()
            .filter(|t| t.skip.is_none())
            .map(|t| t.storage.as_ref())
            .collect();
        crate::commands::prune::after_backup(&rt, &config, &db, &stored, &live);
    }
    let any_failed = results.iter().any(|r| r.status == Status::Error);
    monitor.finish(!any_failed, &ping_body(&config, &results));
    // Interrupted (systemd stopping the unit): exit promptly; the rows reach D1 next time.
    if !args.dry_run && interrupted.is_none() {
        if config.report.on_failure && any_failed {
            crate::report::after_failed_backup(&env, &config, &db);
        }
        if !args.no_sync {
            crate::d1::sync::after_backup(&rt, &env, &db, &config.server_id);
        }
    }
    print_summary(ctx, &config, &results)?;
    if let Some(sig) = interrupted {
        return Ok(Outcome::Interrupted(sig));
    }
    Ok(if any_failed {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}

fn ensure_home(home: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !home.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(home)
            .with_context(|| {
                format!(
                    "cannot create the home directory {} (set --home or WPBACKUP_HOME)",
                    home.display()
                )
            })?;
    }
    Ok(())
}

fn load_config(ctx: &Context, args: &BackupArgs, env: &Env) -> anyhow::Result<Config> {
    let paths = &ctx.paths;
    let Some(path) = &args.path else {
        if !paths.config.exists() && paths.home.join("sites.json").exists() {
            return Err(ConfigError {
                file: paths.config.display().to_string(),
                path: "(file)".into(),
                message: "not found, but the deprecated sites.json is there: run `wpbackup configure` to migrate it".into(),
            }
            .into());
        }
        return Ok(Config::load(&paths.config, env)?);
    };
    if !path.is_dir() {
        return Err(UsageError(format!("--path {}: not a directory", path.display())).into());
    }
    let mut config = Config::for_path(path, &paths.home, env);
    if ctx.config_given || paths.config.exists() {
        let loaded = Config::load(&paths.config, env)?;
        config.server_id = loaded.server_id;
        if !loaded.storage.is_empty() {
            config.storage = loaded.storage;
        }
        config.compression = loaded.compression;
        config.upload = loaded.upload;
        config.retention = loaded.retention;
        config.report = loaded.report;
        config.encryption = loaded.encryption;
        config.healthchecks = loaded.healthchecks;
    }
    Ok(config)
}

fn select_sites(config: &Config, args: &BackupArgs) -> anyhow::Result<Vec<SiteConfig>> {
    if args.path.is_some() || args.sites.is_empty() {
        let sites: Vec<_> = config
            .sites
            .iter()
            .filter(|s| s.enabled || args.path.is_some())
            .cloned()
            .collect();
        if sites.is_empty() {
            return Err(UsageError(
                "no enabled site in config.json: add one, or use --path DIR".into(),
            )
            .into());
        }
        return Ok(sites);
    }
    args.sites
        .iter()
        .map(|name| {
            config
                .sites
                .iter()
                .find(|s| &s.name == name)
                .cloned()
                .ok_or_else(|| {
                    let known: Vec<_> = config.sites.iter().map(|s| s.name.as_str()).collect();
                    UsageError(format!(
                        "--site {name}: no such site in config.json (known: {})",
                        known.join(", ")
                    ))
                    .into()
                })
        })
        .collect()
}

/// A config that cannot be read still leaves a trace in backups.db, when there is one to write.
fn record_run_error(ctx: &Context, env: &Env, details: &str) {
    if let Ok(db) = LogDb::open(&ctx.paths.db) {
        let _ = db.log(&LogEntry {
            timestamp: Utc::now(),
            status: Status::Error,
            details,
            site_name: "*",
            server_id: &crate::config::default_server_id(env),
            action: "backup",
            storage_name: None,
            archive_key: None,
            duration_secs: None,
        });
    }
}

fn failed(site: &str, started: Instant, details: String) -> SiteResult {
    SiteResult {
        site: site.to_string(),
        status: Status::Error,
        details,
        storage: None,
        key: None,
        size: None,
        sha256: None,
        files: None,
        duration_secs: started.elapsed().as_secs_f64(),
    }
}

fn dry_run_site(site: &SiteConfig, targets: &[Target]) -> SiteResult {
    let started = Instant::now();
    let resolved = match crate::site::resolve(site) {
        Ok(r) => r,
        Err(e) => return failed(&site.name, started, format!("{e:#}")),
    };
    if let Err(e) = crate::site::siteurl(&resolved) {
        return failed(&site.name, started, format!("{e:#}"));
    }
    let usable: Vec<_> = targets
        .iter()
        .filter(|t| t.skip.is_none())
        .map(|t| t.storage.name())
        .collect();
    let mut r = failed(&site.name, started, String::new());
    if usable.is_empty() {
        r.details = "dry run: database reachable, but no storage is".into();
    } else {
        r.status = Status::Success;
        r.details = format!("dry run: database reachable; would store on {}", usable[0]);
        r.storage = Some(usable[0].to_string());
    }
    r
}

/// The run's dump of one site: started once, shared by every upload attempt.
struct DumpCell {
    state: Mutex<DumpState>,
}

enum DumpState {
    Running(std::thread::JoinHandle<anyhow::Result<Dump>>),
    Done(Result<Arc<Dump>, String>),
    Taken,
}

impl DumpCell {
    fn start(db: crate::config::DatabaseConfig) -> DumpCell {
        let handle = std::thread::spawn(move || dbtools::run_dump(&db, &std::env::temp_dir()));
        DumpCell {
            state: Mutex::new(DumpState::Running(handle)),
        }
    }

    /// Wait for the dump (the first caller joins the thread; later ones get the cached result).
    fn get(&self) -> anyhow::Result<Arc<Dump>> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| anyhow::anyhow!("dump state poisoned"))?;
        if let DumpState::Running(_) = &*state
            && let DumpState::Running(handle) = std::mem::replace(&mut *state, DumpState::Taken)
        {
            let result = match handle.join() {
                Ok(Ok(d)) => Ok(Arc::new(d)),
                Ok(Err(e)) => Err(format!("database dump failed: {e:#}")),
                Err(_) => Err("database dump thread panicked".to_string()),
            };
            *state = DumpState::Done(result);
        }
        match &*state {
            DumpState::Done(Ok(d)) => Ok(d.clone()),
            DumpState::Done(Err(e)) => Err(anyhow::anyhow!("{e}")),
            _ => Err(anyhow::anyhow!("database dump state lost")),
        }
    }
}

impl Drop for DumpCell {
    /// A dump still running when the site is given up (every storage failed before it ended)
    /// is waited for, so its temporary files (the dump, the defaults file with the password)
    /// are removed before the process can exit.
    fn drop(&mut self) {
        if let Ok(state) = self.state.get_mut()
            && let DumpState::Running(handle) = std::mem::replace(state, DumpState::Taken)
        {
            let _ = handle.join();
        }
    }
}

fn backup_site(
    rt: &tokio::runtime::Runtime,
    config: &Config,
    site: &SiteConfig,
    targets: &[Target],
    run_started: DateTime<Utc>,
    show_bars: bool,
) -> SiteResult {
    let started = Instant::now();
    let name = site.name.as_str();
    let mut reasons: Vec<String> = targets
        .iter()
        .filter_map(|t| {
            t.skip
                .as_ref()
                .map(|why| format!("{} skipped: {why}", t.storage.name()))
        })
        .collect();
    if targets.iter().all(|t| t.skip.is_some()) {
        return failed(
            name,
            started,
            format!("not stored: no storage available ({})", reasons.join("; ")),
        );
    }
    let resolved = match crate::site::resolve(site) {
        Ok(r) => r,
        Err(e) => return failed(name, started, format!("{e:#}")),
    };
    let siteurl = match crate::site::siteurl(&resolved) {
        Ok(u) => u,
        Err(e) => return failed(name, started, format!("{e:#}")),
    };
    let dump = Arc::new(DumpCell::start(resolved.db.clone()));
    let spec = Arc::new(ArchiveSpec {
        site: site.name.clone(),
        site_path: site.path.clone(),
        exclude: site.exclude.clone(),
        server_id: config.server_id.clone(),
        created_at: run_started,
        compression: config.compression,
        wordpress_version: resolved.wordpress_version.clone(),
        database_name: resolved.db.name.clone(),
        table_prefix: resolved.table_prefix.clone(),
        siteurl,
    });
    let key = crate::storage::catalog::object_key(
        &config.server_id,
        name,
        run_started,
        config.encryption.is_some(),
    );
    let bar = output::site_bar(name, show_bars);

    for (i, target) in targets.iter().enumerate() {
        if target.skip.is_some() {
            continue;
        }
        let st = target.storage.as_ref();
        bar.set_message(format!("→ {}", st.name()));
        let progress = Arc::new(Progress::default());
        let (tx, body) = Body::channel(CHANNEL_CHUNKS);
        let producer = {
            let (spec, dump, progress) = (spec.clone(), dump.clone(), progress.clone());
            let encryption = config.encryption.clone();
            std::thread::spawn(move || {
                let writer = BodyWriter::new(tx, CHUNK_SIZE);
                // The writer went down with any error; its drop told the storage to abort.
                match &encryption {
                    None => archive::write_archive(writer, &spec, || dump.get(), &progress)
                        .map_err(|e| format!("{e:#}"))
                        .and_then(|(writer, manifest)| {
                            writer.finish().map(|_| manifest).map_err(|e| e.to_string())
                        }),
                    // tar | zstd | age: the stored object is the encrypted stream.
                    Some(enc) => enc
                        .encrypt(writer)
                        .map_err(|e| e.to_string())
                        .and_then(|sealed| {
                            archive::write_archive(sealed, &spec, || dump.get(), &progress)
                                .map_err(|e| format!("{e:#}"))
                        })
                        .and_then(|(sealed, manifest)| {
                            sealed
                                .finish()
                                .and_then(|writer| writer.finish())
                                .map(|_| manifest)
                                .map_err(|e| e.to_string())
                        }),
                }
            })
        };
        let ticker = {
            let (bar, progress) = (bar.clone(), progress.clone());
            let store = st.name().to_string();
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    let read = progress
                        .bytes_read
                        .load(std::sync::atomic::Ordering::Relaxed);
                    let files = progress.files.load(std::sync::atomic::Ordering::Relaxed);
                    bar.set_message(format!(
                        "→ {store}: {files} files, {} read",
                        output::human_bytes(read)
                    ));
                }
            })
        };
        let put = rt.block_on(st.put(&key, body));
        ticker.abort();
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err("the archiver panicked".into()));
        if let (Some(sig), Err(_)) = (crate::interrupt::received(), &put) {
            bar.finish_and_clear();
            let during = format!("while storing on {}", st.name());
            return failed(name, started, crate::interrupt::details(sig, &during));
        }
        match (put, produced) {
            (Ok(out), Ok(manifest)) => {
                bar.finish_and_clear();
                let mut notes = Vec::new();
                if !reasons.is_empty() {
                    notes.push(format!(
                        "{} failed first: {}",
                        if reasons.len() == 1 {
                            "a storage"
                        } else {
                            "storages"
                        },
                        reasons.join("; ")
                    ));
                }
                if !manifest.skipped.is_empty() {
                    let shown: Vec<_> = manifest.skipped.iter().take(10).cloned().collect();
                    notes.push(format!(
                        "{} unreadable file(s) skipped: {}{}",
                        manifest.skipped.len(),
                        shown.join(", "),
                        if manifest.skipped.len() > 10 {
                            ", ..."
                        } else {
                            ""
                        }
                    ));
                }
                let status = if i == 0 && notes.is_empty() {
                    Status::Success
                } else {
                    Status::Warning
                };
                let mut details = format!(
                    "stored {key} on {} ({}, {} files, database {})",
                    st.name(),
                    output::human_bytes(out.size),
                    manifest.file_count,
                    output::human_bytes(manifest.database_bytes)
                );
                if !notes.is_empty() {
                    details.push_str("; ");
                    details.push_str(&notes.join("; "));
                }
                return SiteResult {
                    site: name.to_string(),
                    status,
                    details,
                    storage: Some(st.name().to_string()),
                    key: Some(key),
                    size: Some(out.size),
                    sha256: Some(out.sha256),
                    files: Some(manifest.file_count),
                    duration_secs: started.elapsed().as_secs_f64(),
                };
            }
            (Err(e), Err(why)) if e.is_source() => {
                bar.finish_and_clear();
                return failed(name, started, format!("not stored: {why}"));
            }
            (Ok(_), Err(why)) => {
                // The archive itself could not be made (dump failed, site unreadable): another
                // storage would not help. (Ok with a producer error cannot happen: the writer
                // aborts the upload; if it ever did, the object is removed.)
                let _ = rt.block_on(st.delete(&key));
                bar.finish_and_clear();
                return failed(name, started, format!("not stored: {why}"));
            }
            (Err(e), _) => {
                tracing::warn!(
                    site = name,
                    storage = st.name(),
                    "upload failed, trying the next storage: {e}"
                );
                reasons.push(format!("{}: {e}", st.name()));
            }
        }
    }
    bar.finish_and_clear();
    failed(
        name,
        started,
        format!("not stored on any storage: {}", reasons.join("; ")),
    )
}

/// Write the site's rows to backups.db; a failure to log is reported but not fatal.
fn record(
    db: &LogDb,
    config: &Config,
    targets: &[Target],
    r: &SiteResult,
    run_started: DateTime<Utc>,
) {
    let entry = LogEntry {
        timestamp: Utc::now(),
        status: r.status,
        details: &r.details,
        site_name: &r.site,
        server_id: &config.server_id,
        action: "backup",
        storage_name: r.storage.as_deref(),
        archive_key: r.key.as_deref(),
        duration_secs: Some(r.duration_secs),
    };
    if let Err(e) = db.log(&entry) {
        tracing::error!(site = %r.site, "cannot record the result in backups.db: {e:#}");
    }
    if let (Some(storage), Some(key), Some(size), Some(sha)) =
        (&r.storage, &r.key, r.size, &r.sha256)
    {
        let (endpoint, bucket) = targets
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
            server_id: &config.server_id,
            site_name: &r.site,
            created_at: run_started,
            sha256: sha,
            duration_secs: r.duration_secs,
        };
        if let Err(e) = db.record_archive(&rec) {
            tracing::error!(site = %r.site, "cannot record the archive in backups.db: {e:#}");
        }
    }
}

/// What the dead man's switch is told at the end: one line per site, failures first.
fn ping_body(config: &Config, results: &[SiteResult]) -> String {
    let mut lines: Vec<String> = results
        .iter()
        .filter(|r| r.status == Status::Error)
        .chain(results.iter().filter(|r| r.status != Status::Error))
        .map(|r| format!("{} {}: {}", r.status.as_str(), r.site, r.details))
        .collect();
    lines.insert(0, format!("wpbackup backup on {}", config.server_id));
    lines.join("\n")
}

fn print_summary(ctx: &Context, config: &Config, results: &[SiteResult]) -> anyhow::Result<()> {
    if ctx.json {
        let doc = serde_json::json!({ "server_id": config.server_id, "sites": results });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    if ctx.quiet {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                r.site.clone(),
                r.status.as_str().to_string(),
                r.storage.clone().unwrap_or_else(|| "-".into()),
                r.size
                    .map(output::human_bytes)
                    .unwrap_or_else(|| "-".into()),
                format!("{:.1}s", r.duration_secs),
                r.details.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(
            &["SITE", "STATUS", "STORAGE", "SIZE", "TIME", "DETAILS"],
            &rows
        )
    );
    Ok(())
}
