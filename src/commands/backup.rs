//! `wpbackup backup`: options to config (`--path`, `--site`, `--storage`), the run lock, one
//! call into the backup pipeline ([`crate::backup`]), then the follow-ups (retention, the
//! failure report, the D1 sync, the old restore copies removed, the dead man's switch) and the
//! summary.

use anyhow::Context as _;
use chrono::Utc;

use super::{Context, Outcome, UsageError};
use crate::app::{open_storages, runtime};
use crate::backup::{self, SiteResult, outcome};
use crate::cli::BackupArgs;
use crate::config::{Config, ConfigError, Env, SiteConfig};
use crate::lock::RunLock;
use crate::logdb::{LogDb, LogEntry, Status};
use crate::output;
use crate::restore::copies;
use crate::storage::failover;

pub fn run(ctx: &Context, args: &BackupArgs) -> anyhow::Result<Outcome> {
    let run_started = std::time::Instant::now();
    let paths = &ctx.paths;
    ensure_home(&paths.home)?;
    let env = ctx
        .env()
        .inspect_err(|e| record_run_error(ctx, &Env::default(), &format!("{e:#}")))?;
    let config = ctx
        .config_for(args.path.as_deref(), &env, false)
        .inspect_err(|e| record_run_error(ctx, &env, &format!("{e:#}")))?;
    let sites = select_sites(&config, args)?;
    if args.storage.is_none() && config.storage.is_empty() {
        return Err(ConfigError {
            file: paths.config.display().to_string(),
            path: "storage".into(),
            message: "no storage configured: add one (see config.example.json)".into(),
        }
        .into());
    }
    let storages = open_storages(&config, args.storage.as_deref())?;
    let _lock = RunLock::acquire(&paths.lock)?;
    let db = LogDb::open(&paths.db)?;
    // Every archive is signed: the key is made (and trusted) on the first backup.
    let signer = match args.dry_run {
        true => None,
        false => Some(
            ctx.signing_key()
                .inspect_err(|e| record_run_error(ctx, &env, &format!("{e:#}")))?,
        ),
    };
    let rt = runtime()?;
    crate::interrupt::install(&rt, "aborting the upload in progress and stopping")?;
    // After the handler: a signal during the wait is recorded like one during the run.
    let started = backup::run_time(&paths.home);
    let monitor = crate::report::healthchecks::Monitor::start(
        config.healthchecks.clone().filter(|_| !args.dry_run),
        rt.handle().clone(),
        &format!(
            "wpbackup backup started on {} ({} site(s))",
            config.server_id,
            sites.len()
        ),
    );
    let targets = rt.block_on(failover::preflight(storages));
    let results = backup::Run {
        rt: &rt,
        config: &config,
        targets: &targets,
        db: &db,
        started,
        show_bars: output::interactive() && !ctx.json && !ctx.quiet,
        dry_run: args.dry_run,
        home: &paths.home,
        force_full: args.full,
        signer: signer.as_ref(),
    }
    .sites(&sites);
    let interrupted = crate::interrupt::received();
    let any_failed = results.iter().any(|r| r.status == Status::Error);
    // Interrupted (systemd stopping the unit): exit promptly; the rows reach D1 next time.
    let follow_up = !args.dry_run && interrupted.is_none();
    if follow_up && config.retention.is_some() {
        // Retention for the sites just stored; its failures are warnings, never the result.
        let (sites, live) = (outcome::stored_sites(&results), failover::usable(&targets));
        crate::storage::prune::after_backup(&rt, &config, &db, &sites, &live);
    }
    if follow_up {
        remove_old_restore_copies(&paths.home, &config, &db, &sites);
    }
    let ping = outcome::ping_body(&config.server_id, &results);
    monitor.finish(!any_failed, &ping);
    if follow_up {
        if config.report.on_failure && any_failed {
            crate::report::after_failed_backup(&env, &config, &db);
        }
        if !args.no_sync {
            crate::d1::sync::after_backup(&rt, &env, &db, &config.server_id);
        }
    }
    let total_secs = run_started.elapsed().as_secs_f64();
    print_summary(ctx, &config, &results, total_secs)?;
    Ok(match (interrupted, any_failed) {
        (Some(sig), _) => Outcome::Interrupted(sig),
        (None, true) => Outcome::Failed,
        (None, false) => Outcome::Ok,
    })
}

/// The copies restores kept of what they replaced (`before-restore/`, `*.before-restore-*`)
/// of the sites of this run, older than `restore.keep_copies_days`, removed as `prune` removes
/// them (each a `backup_log` row): no timer runs `prune`, and a default install must not pile
/// them up. A failure is a warning; the run's result is its backups'.
fn remove_old_restore_copies(
    home: &std::path::Path,
    config: &Config,
    db: &LogDb,
    sites: &[SiteConfig],
) {
    let pruned = copies::Pruning {
        db,
        server_id: &config.server_id,
        keep_days: config.restore.keep_copies_days,
        now: Utc::now(),
        dry_run: false,
    }
    .run(copies::find(home, sites));
    for p in &pruned {
        match p.action {
            "deleted" => tracing::info!(
                "removed {} (a copy a restore kept, {})",
                p.copy.path.display(),
                p.why
            ),
            "failed" => tracing::warn!(
                "cannot remove {} (a copy a restore kept): {}",
                p.copy.path.display(),
                p.why
            ),
            _ => {}
        }
    }
}

fn ensure_home(home: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if home.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(home)
        .with_context(|| {
            format!(
                "cannot create the home directory {} (set --home or WPBACKUP_HOME)",
                home.display()
            )
        })
}

/// The enabled sites (every site with `--path`), or those named by `--site`.
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
        .map(|name| Ok(config.site(name)?.clone()))
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

/// The results, and the run's total time (from the start of the command to the summary).
fn print_summary(
    ctx: &Context,
    config: &Config,
    results: &[SiteResult],
    total_secs: f64,
) -> anyhow::Result<()> {
    if ctx.json {
        let doc = serde_json::json!({
            "server_id": config.server_id,
            "sites": results,
            "duration_secs": total_secs,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if !ctx.quiet {
        let head = ["SITE", "STATUS", "STORAGE", "SIZE", "TIME", "DETAILS"];
        print!("{}", output::table(&head, &outcome::table_rows(results)));
        println!("{}", outcome::total_line(results, total_secs));
    }
    Ok(())
}
