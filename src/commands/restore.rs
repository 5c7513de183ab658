//! `wpbackup restore`: bring a site back from an archive, or clone it elsewhere.
//!
//! This file is the command: it checks the command line (`--archive`, `--at` or the newest;
//! `--to`, `--db-name`, `--url`, `--files-only`, `--db-only`), loads the configuration, opens
//! the storages, holds the lock, and asks on the terminal (unless `--yes`) before anything live
//! is replaced. The restore itself, in the order that keeps a failed one from changing
//! anything, is `crate::restore`. The result is printed and recorded in `backup_log` (action
//! `restore`); a SIGTERM or SIGINT (at the prompt too) exits with 128 + the signal.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use chrono::Utc;

use super::{Context, Outcome, UsageError};
use crate::app::{open_storages, runtime};
use crate::cli::RestoreArgs;
use crate::config::{Config, SiteConfig};
use crate::interrupt;
use crate::lock::RunLock;
use crate::logdb::{LogDb, LogEntry, Status};
use crate::restore::{self, Report, Request, Sources, rollback, wp_config};
use crate::storage::catalog::Choice;

/// The checked command line.
struct Plan {
    choice: Choice,
    files: bool,
    database: bool,
    url: Option<String>,
    maps: Vec<(String, String)>,
}

fn plan(args: &RestoreArgs) -> Result<Plan, UsageError> {
    let choice = super::choice(args.archive.as_deref(), args.at.as_deref())?;
    if args.files_only && args.url.is_some() {
        return Err(UsageError(
            "--url rewrites the database: it cannot go with --files-only".into(),
        ));
    }
    if args.db_only && args.to.is_some() {
        return Err(UsageError(
            "--to restores files: it cannot go with --db-only".into(),
        ));
    }
    if args.to.is_some() && args.url.is_some() && args.db_name.is_none() && !args.files_only {
        return Err(UsageError(
            "--to with --url would rewrite the addresses in the live site's database: give the clone its own database with --db-name".into(),
        ));
    }
    let url = args.url.as_deref().map(clone_url).transpose()?;
    if let Some(name) = &args.db_name
        && (name.is_empty() || name.len() > 64 || name.contains(['/', '\\', '.', '`']))
    {
        return Err(UsageError(format!(
            "--db-name {name:?}: not a usable database name"
        )));
    }
    if let Some(user) = &args.db_user
        && (user.is_empty() || user.chars().count() > 80 || user.chars().any(char::is_control))
    {
        return Err(UsageError(format!(
            "--db-user {user:?}: not a usable database user name"
        )));
    }
    let mut maps = Vec::new();
    for m in &args.map {
        match m.split_once('=') {
            Some((old, new)) if !old.trim().is_empty() && !new.trim().is_empty() => {
                maps.push((old.trim().to_string(), new.trim().to_string()));
            }
            _ => {
                return Err(UsageError(format!(
                    "--map {m}: give OLD=NEW, two domains, e.g. --map shop.example.com=shop.staging.example.com"
                )));
            }
        }
    }
    Ok(Plan {
        choice,
        files: !args.db_only,
        database: !args.files_only,
        url,
        maps,
    })
}

/// `--url`: a full address with a host (`https://staging.example.com`), without the
/// trailing slash.
fn clone_url(u: &str) -> Result<String, UsageError> {
    let host = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .map(|rest| rest.trim_end_matches('/'));
    match host {
        Some(h) if !h.is_empty() && !h.starts_with('/') && !h.contains(char::is_whitespace) => {
            Ok(u.trim_end_matches('/').to_string())
        }
        _ => Err(UsageError(format!(
            "--url {u}: give the full address, e.g. https://staging.example.com"
        ))),
    }
}

pub fn run(ctx: &Context, args: &RestoreArgs) -> anyhow::Result<Outcome> {
    if args.put_back {
        return put_back(ctx, args.site.as_deref().unwrap_or_default());
    }
    let started = Instant::now();
    let plan = plan(args)?;
    let env = ctx.env()?;
    let config = ctx.config_for(args.path.as_deref(), &env, args.site.is_some())?;
    let site = match &args.site {
        Some(name) if !ctx.has_config() => super::quick_start_site(name, args.to.as_deref())?,
        _ => find_site(&config, args.site.as_deref())?,
    };
    let storages = open_storages(&config, args.storage.as_deref())?;
    let request = Request {
        site,
        server_id: config.server_id.clone(),
        choice: plan.choice,
        files: plan.files,
        database: plan.database,
        url: plan.url,
        maps: plan.maps,
        to: args.to.as_deref().map(crate::config::normalize),
        db_name: args.db_name.clone(),
        db_user: args.db_user.clone(),
        db_password: env.secret(restore::db_user::PASSWORD_ENV),
        identity: args.identity.clone(),
        trust: ctx.trust(&config, &args.trust)?,
        home: ctx.paths.home.clone(),
        timeouts: config.database,
        mysql_unix_port: env.get("MYSQL_UNIX_PORT").map(PathBuf::from),
        confirm_early: !args.yes && !std::io::stdin().is_terminal(),
    };
    if args.dry_run {
        // Reads only: no lock, no backups.db row (nor a backups.db created).
        let rt = runtime()?;
        let logdb = ctx.existing_logdb();
        let plan = restore::dry_run::dry_run(&rt, &storages, logdb.as_ref(), &request)?;
        if ctx.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else if !ctx.quiet {
            println!("{}", plan.text(&ctx.paths.home));
        }
        return Ok(Outcome::Ok);
    }
    let _lock = RunLock::acquire(&ctx.paths.lock)?;
    let logdb = LogDb::open(&ctx.paths.db)?;
    let rt = runtime()?;
    interrupt::install(&rt, "stopping; what was changed is put back")?;
    let mut report = Report {
        site: request.site.name.clone(),
        ..Report::default()
    };
    let sources = Sources {
        rt: &rt,
        storages: &storages,
        logdb: &logdb,
    };
    let confirm = |live: &[String]| confirm(live, args.yes);
    let result = match restore::restore(&sources, &request, &confirm, &mut report) {
        Err(e) if e.downcast_ref::<UsageError>().is_some() => return Err(e),
        result => result,
    };
    report.duration_secs = started.elapsed().as_secs_f64();
    let interrupted = interrupt::received().filter(|_| result.is_err());
    let how = interrupted.map_or("failed".into(), |s| interrupt::Interrupted(s).to_string());
    let (status, details) = match &result {
        Ok(()) if report.hook_failure.is_some() => (Status::Warning, report.summary()),
        Ok(()) => (Status::Success, report.summary()),
        Err(e) => (Status::Error, format!("restore {how}: {e:#}")),
    };
    record(&logdb, &config.server_id, &report, status, &details);
    if let Some(sig) = interrupted {
        eprintln!("wpbackup: {}", crate::output::printable_message(&details));
        rt.shutdown_background(); // a read blocked on a local storage must not hold the exit
        return Ok(Outcome::Interrupted(sig));
    }
    result?;
    if let Some(failure) = &report.hook_failure {
        tracing::warn!("the restore is done, but {failure}");
    }
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !ctx.quiet {
        println!("{}", report.summary());
    }
    Ok(Outcome::Ok)
}

/// `restore --put-back --site NAME`: what a restore of the site killed outright moved aside,
/// put back from the plan in the home, as the site's database user.
fn put_back(ctx: &Context, name: &str) -> anyhow::Result<Outcome> {
    let env = ctx.env()?;
    let config = ctx.config_for(None, &env, false)?;
    let site = config.site(name)?.clone();
    let _lock = RunLock::acquire(&ctx.paths.lock)?;
    let plan = rollback::plan_path(&ctx.paths.home, &site.name);
    let credentials = || wp_config::credentials(&site, None, config.database);
    if !plan.exists() {
        // Only to point at a table an older release left: the answer is the same without it.
        let old = credentials().ok().map(|(c, _)| c).filter(|c| {
            rollback::lookalikes(c, &c.name)
                .unwrap_or_default()
                .iter()
                .any(|t| t == rollback::OLD_MAP_TABLE)
        });
        let hint = if let Some(creds) = old {
            // A name to paste into a shell: only when it holds nothing a shell would read.
            let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$');
            let db = match creds.name.chars().all(plain) {
                true => creds.name.clone(),
                false => "DATABASE".to_string(),
            };
            format!(
                "; database {db} holds a table {t}, which a release before 2026-12 wrote (or the site's user did): wpbackup never runs it. Read it as the site's user without running anything: mariadb --binary-mode {db} -e \"SELECT step, kind, name, aside FROM {t} ORDER BY step\", and rename the tables it lists back by hand (README, \"A restore that was killed outright\")",
                t = rollback::OLD_MAP_TABLE
            )
        } else {
            String::new()
        };
        anyhow::bail!(
            "no restore of site {} is waiting to be put back: there is no plan {}{hint}",
            site.name,
            plan.display()
        );
    }
    let (creds, source) = credentials()?;
    tracing::info!("database credentials from {source}");
    let said = rollback::put_back_plan(&creds, &plan)?;
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({ "site": site.name, "put_back": said })
        );
    } else if !ctx.quiet {
        println!("{}", crate::output::printable(&said));
    }
    Ok(Outcome::Ok)
}

/// The site `name` of config.json.
pub fn find_site(config: &Config, name: Option<&str>) -> Result<SiteConfig, UsageError> {
    match (name, config.sites.first()) {
        (Some(name), _) => config.site(name).cloned(),
        (None, Some(first)) => Ok(first.clone()), // --path: the one site it stands for
        (None, None) => config.site("").cloned(), // none: the same error, with no name
    }
}

/// Ask on the terminal before replacing `live` things; without one, --yes is needed.
pub fn confirm(live: &[String], yes: bool) -> anyhow::Result<()> {
    if live.is_empty() || yes {
        return Ok(());
    }
    // Names of files in the archive among them: shown, never acted on by the terminal.
    let what = crate::output::printable(&live.join(" and ")).into_owned();
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "this restore replaces {what}: run it again with --yes to confirm (nothing was changed)"
        ))
        .into());
    }
    eprint!("This restore replaces {what}. Continue? [y/N] "); // stderr is not buffered
    let answer = interrupt::read_line()?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(UsageError("restore cancelled; nothing was changed".into()).into())
    }
}

/// The restore's row in backups.db (a failure to write it is logged, not fatal).
fn record(logdb: &LogDb, server_id: &str, report: &Report, status: Status, details: &str) {
    let logged = logdb.log(&LogEntry {
        timestamp: Utc::now(),
        status,
        details,
        site_name: &report.site,
        server_id,
        action: "restore",
        storage_name: (!report.storage.is_empty()).then_some(report.storage.as_str()),
        archive_key: (!report.key.is_empty()).then_some(report.key.as_str()),
        duration_secs: Some(report.duration_secs),
    });
    if let Err(e) = logged {
        tracing::error!("cannot record the restore in backups.db: {e:#}");
    }
}
