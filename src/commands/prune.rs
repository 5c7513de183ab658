//! `wpbackup prune`: delete old archives by the `retention` policy of config.json, per site per
//! storage, counting as restic's `forget` does (see `retention.rs`), and remove the copies
//! restores kept of what they replaced once they are older than `restore.keep_copies_days`.
//! Only keys that parse as this server's archives of the site are considered; the newest
//! *good* archive of a site on a storage (one with a recorded sha256, which restore would
//! accept) is always kept, whatever the policy says. Without `retention` every archive is
//! kept. `--dry-run` shows the plan. Every deletion is printed and is a `backup_log` row.
//! Then the shipped binary log (point-in-time recovery): the files no archive left on the
//! storages needs are deleted ([`crate::binlog::prune`]), when `binlog` is configured or
//! `retention` is (files shipped under an earlier config).
//!
//! The mechanics live in [`crate::storage::prune`], which `backup` also calls for the sites it
//! stored (its failures there are warnings and never change the backup's result), and in
//! [`crate::restore::copies`].

use std::collections::HashSet;

use chrono::Utc;

use super::{Context, Outcome};
use crate::app::{open_storages, runtime};
use crate::binlog::{self, prune::KeptPoint};
use crate::cli::PruneArgs;
use crate::config::Config;
use crate::lock::RunLock;
use crate::logdb::LogDb;
use crate::output;
use crate::restore::copies::{self, Pruned, Pruning};
use crate::retention::Policy;
use crate::storage::Storage;
use crate::storage::catalog::{self, list_all};
use crate::storage::prune::{Item, Run};

pub fn run(ctx: &Context, args: &PruneArgs) -> anyhow::Result<Outcome> {
    let (_env, config) = ctx.load()?;
    let sites: Vec<String> = match &args.site {
        Some(s) => vec![s.clone()],
        None => config.sites.iter().map(|s| s.name.clone()).collect(),
    };
    let storages = match (config.retention, &config.binlog) {
        (None, None) => Vec::new(),
        _ => open_storages(&config, None)?,
    };
    let _lock = RunLock::acquire(&ctx.paths.lock)?;
    let db = LogDb::open(&ctx.paths.db)?;
    let rt = runtime()?;
    let items = match &config.retention {
        Some(policy) => {
            let refs: Vec<&dyn Storage> = storages.iter().map(|s| s.as_ref()).collect();
            let run = Run {
                rt: &rt,
                config: &config,
                db: &db,
                policy,
                dry_run: args.dry_run,
            };
            run.prune(&sites, &refs)
        }
        None => Vec::new(),
    };
    let binlog = if storages.is_empty() {
        BinlogPass::default()
    } else {
        prune_binlog(&rt, &config, &db, &storages, &items, args.dry_run)
    };
    let copies = restore_copies(ctx, &config, &db, args);
    print(ctx, &config, args.dry_run, &items, &copies, &binlog)?;
    let failed = items.iter().any(|i| i.action == "failed")
        || copies.iter().any(|c| c.action == "failed")
        || binlog.error.is_some()
        || binlog.files.iter().any(|b| b.action == "failed");
    Ok(if failed { Outcome::Failed } else { Outcome::Ok })
}

/// What became of the shipped binary log files.
#[derive(Debug, Default, serde::Serialize)]
struct BinlogPass {
    files: Vec<binlog::prune::Pruned>,
    /// Why none was looked at (a storage that cannot be listed).
    error: Option<String>,
}

/// The binary log files of this server that no archive left on the storages needs, deleted
/// (see [`binlog::prune`]): the points are every archive of the server (every site's) on every
/// storage but those deleted in this pass.
fn prune_binlog(
    rt: &tokio::runtime::Runtime,
    config: &Config,
    db: &LogDb,
    storages: &[Box<dyn Storage>],
    items: &[Item],
    dry_run: bool,
) -> BinlogPass {
    let server = config.server_id.as_str();
    let shipped = match binlog::list(rt, storages, server) {
        Ok(s) => s,
        Err(e) => {
            return BinlogPass {
                files: Vec::new(),
                error: Some(format!("binary log files kept: {e:#}")),
            };
        }
    };
    if shipped.is_empty() {
        return BinlogPass::default();
    }
    let (found, errors) = list_all(rt, storages, &catalog::prefix(server, None));
    if !errors.is_empty() {
        return BinlogPass {
            files: Vec::new(),
            error: Some(format!(
                "binary log files kept: the archives that may need them cannot all be listed ({})",
                errors.join("; ")
            )),
        };
    }
    let gone: HashSet<(&str, &str)> = items
        .iter()
        .filter(|i| matches!(i.action, "deleted" | "delete"))
        .filter_map(|i| Some((i.storage.as_str(), i.key.as_deref()?)))
        .collect();
    let points: Vec<KeptPoint> = found
        .iter()
        .filter(|(i, l)| !gone.contains(&(storages[*i].name(), l.info.key.as_str())))
        .map(|(_, l)| KeptPoint {
            key: l.info.key.clone(),
            created_at: l.name.created_at,
            binlog_file: db.archive_binlog_file(&l.info.key).ok().flatten(),
        })
        .collect();
    let files = binlog::prune::Run {
        rt,
        db,
        server_id: server,
        dry_run,
    }
    .prune(storages, &shipped, &points);
    BinlogPass { files, error: None }
}

/// The copies restores kept (of `--site` only, when given), the old ones removed.
fn restore_copies(ctx: &Context, config: &Config, db: &LogDb, args: &PruneArgs) -> Vec<Pruned> {
    let sites: Vec<_> = config
        .sites
        .iter()
        .filter(|s| args.site.as_ref().is_none_or(|only| &s.name == only))
        .cloned()
        .collect();
    let found = copies::find(&ctx.paths.home, &sites)
        .into_iter()
        .filter(|c| args.site.is_none() || c.site == args.site)
        .collect();
    Pruning {
        db,
        server_id: &config.server_id,
        keep_days: config.restore.keep_copies_days,
        now: Utc::now(),
        dry_run: args.dry_run,
    }
    .run(found)
}

fn print(
    ctx: &Context,
    config: &Config,
    dry_run: bool,
    items: &[Item],
    copies: &[Pruned],
    binlog: &BinlogPass,
) -> anyhow::Result<()> {
    if ctx.json {
        let doc = serde_json::json!({
            "server_id": config.server_id,
            "policy": config.retention,
            "dry_run": dry_run,
            "archives": items,
            "restore_copies": copies,
            "binlog": binlog,
            "keep_copies_days": config.restore.keep_copies_days,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    if ctx.quiet {
        return Ok(());
    }
    match &config.retention {
        Some(policy) => print_archives(policy, dry_run, items),
        None => println!(
            "no \"retention\" in {}: every archive is kept (add one to prune them, e.g. \"retention\": {{\"keep_daily\": 7, \"keep_weekly\": 4, \"keep_monthly\": 12}}; see config.example.json)",
            ctx.paths.config.display()
        ),
    }
    print_binlog(dry_run, binlog);
    print_copies(config.restore.keep_copies_days, dry_run, copies);
    Ok(())
}

/// The binary log files deleted (or that would be), and from which one on they are kept.
fn print_binlog(dry_run: bool, pass: &BinlogPass) {
    if let Some(e) = &pass.error {
        eprintln!("wpbackup: {e}");
    }
    if pass.files.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = pass
        .files
        .iter()
        .map(|b| {
            vec![
                b.file.clone(),
                b.storage.clone(),
                b.first_event.replace('T', " ").replace('Z', ""),
                match b.action {
                    "delete" => "would delete",
                    a => a,
                }
                .to_string(),
                b.why.clone(),
            ]
        })
        .collect();
    println!();
    print!(
        "{}",
        output::table(
            &["BINLOG FILE", "STORAGE", "BEGAN (UTC)", "ACTION", "WHY"],
            &rows
        )
    );
    let count = |a: &str| pass.files.iter().filter(|b| b.action == a).count();
    println!(
        "binary log files: {} {}{}",
        if dry_run { "would delete" } else { "deleted" },
        count(if dry_run { "delete" } else { "deleted" }),
        match count("failed") {
            0 => String::new(),
            n => format!(", {n} failed"),
        }
    );
}

fn print_archives(policy: &Policy, dry_run: bool, items: &[Item]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            vec![
                i.site.clone(),
                i.storage.clone(),
                i.created_at
                    .clone()
                    .unwrap_or_else(|| "-".into())
                    .replace('T', " ")
                    .replace('Z', ""),
                match i.action {
                    "delete" => "would delete",
                    a => a,
                }
                .to_string(),
                i.why.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["SITE", "STORAGE", "TIME (UTC)", "ACTION", "WHY"], &rows)
    );
    let count = |a: &str| items.iter().filter(|i| i.action == a).count();
    println!(
        "policy: {}; kept {}, {} {}{}",
        policy.describe(),
        count("keep"),
        if dry_run { "would delete" } else { "deleted" },
        count(if dry_run { "delete" } else { "deleted" }),
        match count("failed") {
            0 => String::new(),
            n => format!(", {n} failed"),
        }
    );
}

/// Every copy restores kept, and what became of it.
fn print_copies(keep_days: u32, dry_run: bool, copies: &[Pruned]) {
    if copies.is_empty() {
        println!("restore copies: none");
        return;
    }
    let head = [
        "KIND",
        "SITE",
        "MADE (UTC)",
        "AGE",
        "SIZE",
        "ACTION",
        "PATH",
    ];
    println!();
    print!(
        "{}",
        output::table(&head, &copies::prune_rows(copies, Utc::now()))
    );
    let count = |a: &str| copies.iter().filter(|c| c.action == a).count();
    println!(
        "restore copies older than {keep_days} days (restore.keep_copies_days): {} {}; kept {}{}",
        if dry_run { "would delete" } else { "deleted" },
        count(if dry_run { "delete" } else { "deleted" }),
        count("keep"),
        match count("failed") {
            0 => String::new(),
            n => format!(", {n} failed"),
        }
    );
}
