//! `wpbackup prune`: delete old archives by the `retention` policy of config.json, per site per
//! storage, counting as restic's `forget` does (see `retention.rs`). Only keys that parse as
//! this server's archives of the site are considered; the newest *good* archive of a site on a
//! storage (one with a recorded sha256, which restore would accept) is always kept, whatever
//! the policy says. `--dry-run` shows the plan. Every deletion is a `backup_log` row.
//!
//! The mechanics live in [`crate::storage::prune`], which `backup` also calls for the sites it
//! stored (its failures there are warnings and never change the backup's result).

use super::{Context, Outcome, UsageError};
use crate::app::{open_storages, runtime};
use crate::cli::PruneArgs;
use crate::config::Config;
use crate::lock::RunLock;
use crate::logdb::LogDb;
use crate::output;
use crate::retention::Policy;
use crate::storage::Storage;
use crate::storage::prune::{Item, Run};

pub fn run(ctx: &Context, args: &PruneArgs) -> anyhow::Result<Outcome> {
    let (_env, config) = ctx.load()?;
    let Some(policy) = config.retention else {
        return Err(UsageError(format!(
            "no \"retention\" in {}: add one, e.g. \"retention\": {{\"keep_daily\": 7, \"keep_weekly\": 4, \"keep_monthly\": 12}} (see config.example.json)",
            ctx.paths.config.display()
        ))
        .into());
    };
    let sites: Vec<String> = match &args.site {
        Some(s) => vec![s.clone()],
        None => config.sites.iter().map(|s| s.name.clone()).collect(),
    };
    let storages = open_storages(&config, None)?;
    let _lock = RunLock::acquire(&ctx.paths.lock)?;
    let db = LogDb::open(&ctx.paths.db)?;
    let rt = runtime()?;
    let refs: Vec<&dyn Storage> = storages.iter().map(|s| s.as_ref()).collect();
    let items = Run {
        rt: &rt,
        config: &config,
        db: &db,
        policy: &policy,
        dry_run: args.dry_run,
    }
    .prune(&sites, &refs);
    print(ctx, &config, &policy, args.dry_run, &items)?;
    Ok(if items.iter().any(|i| i.action == "failed") {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}

fn print(
    ctx: &Context,
    config: &Config,
    policy: &Policy,
    dry_run: bool,
    items: &[Item],
) -> anyhow::Result<()> {
    if ctx.json {
        let doc = serde_json::json!({
            "server_id": config.server_id,
            "policy": policy,
            "dry_run": dry_run,
            "archives": items,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    if ctx.quiet {
        return Ok(());
    }
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
        if dry_run {
            count("delete")
        } else {
            count("deleted")
        },
        match count("failed") {
            0 => String::new(),
            n => format!(", {n} failed"),
        }
    );
    Ok(())
}
