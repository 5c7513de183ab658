//! `wpbackup prune`: delete old archives by the `retention` policy of config.json, per site per
//! storage, counting as restic's `forget` does (see `retention.rs`). Only keys that parse as
//! this server's archives of the site are considered; the newest *good* archive of a site on a
//! storage (one with a recorded sha256, which restore would accept) is always kept, whatever
//! the policy says. `--dry-run` shows the plan. Every deletion is a `backup_log` row.
//!
//! `backup` calls [`after_backup`] for the sites it stored, when `retention` is set; failures
//! there are warnings and never change the backup's result.

use chrono::Utc;
use serde::Serialize;

use super::{Context, Outcome, UsageError};
use crate::app::{open_storages, runtime};
use crate::cli::PruneArgs;
use crate::config::Config;
use crate::lock::RunLock;
use crate::logdb::{LogDb, LogEntry, Status};
use crate::output;
use crate::retention::{self, Policy};
use crate::storage::Storage;
use crate::storage::catalog;

/// What happens to one archive (or why a storage could not be pruned).
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub site: String,
    pub storage: String,
    pub key: Option<String>,
    pub created_at: Option<String>,
    /// `keep`, `delete` (dry run), `deleted`, `failed`.
    pub action: &'static str,
    pub why: String,
}

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
    let items = prune(&rt, &config, &db, &policy, &sites, &refs, args.dry_run);
    print(ctx, &config, &policy, args.dry_run, &items)?;
    Ok(if items.iter().any(|i| i.action == "failed") {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}

/// Prune `sites` on `storages` after a backup run; everything that goes wrong is a warning.
pub fn after_backup(
    rt: &tokio::runtime::Runtime,
    config: &Config,
    db: &LogDb,
    sites: &[&str],
    storages: &[&dyn Storage],
) {
    let Some(policy) = config.retention else {
        return;
    };
    let sites: Vec<String> = sites.iter().map(|s| s.to_string()).collect();
    for item in prune(rt, config, db, &policy, &sites, storages, false) {
        match item.action {
            "deleted" => tracing::info!(
                site = %item.site,
                storage = %item.storage,
                "pruned {}: {}",
                item.key.unwrap_or_default(),
                item.why
            ),
            "failed" => tracing::warn!(
                site = %item.site,
                storage = %item.storage,
                "prune: {}",
                item.why
            ),
            _ => {}
        }
    }
}

/// Apply `policy` to each site on each storage; delete unless `dry_run`.
fn prune(
    rt: &tokio::runtime::Runtime,
    config: &Config,
    db: &LogDb,
    policy: &Policy,
    sites: &[String],
    storages: &[&dyn Storage],
    dry_run: bool,
) -> Vec<Item> {
    let mut items = Vec::new();
    for site in sites {
        for st in storages {
            let item = |key: Option<&str>, at: Option<String>, action, why: String| Item {
                site: site.clone(),
                storage: st.name().to_string(),
                key: key.map(str::to_string),
                created_at: at,
                action,
                why,
            };
            let prefix = catalog::prefix(&config.server_id, Some(site));
            let archives = match rt.block_on(catalog::list(*st, &prefix)) {
                Ok(a) => a,
                Err(e) => {
                    items.push(item(None, None, "failed", format!("cannot list: {e}")));
                    continue;
                }
            };
            let times: Vec<_> = archives.iter().map(|a| a.name.created_at).collect();
            let mut reasons = retention::apply(&times, policy);
            // Never delete the newest archive restore would accept (newest first).
            for (i, a) in archives.iter().enumerate() {
                let recorded = db
                    .archive_sha256(&a.info.key, st.name())
                    .ok()
                    .flatten()
                    .is_some();
                let good = a.info.size > 0
                    && (recorded
                        || rt
                            .block_on(st.head(&a.info.key))
                            .is_ok_and(|h| h.sha256.is_some()));
                if good {
                    if reasons[i].is_empty() {
                        reasons[i].push("newest good archive".into());
                    }
                    break;
                }
            }
            for (a, why) in archives.iter().zip(reasons) {
                let at = Some(
                    a.name
                        .created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                );
                let key = Some(a.info.key.as_str());
                if !why.is_empty() {
                    items.push(item(key, at, "keep", why.join(", ")));
                    continue;
                }
                if dry_run {
                    items.push(item(key, at, "delete", policy.describe()));
                    continue;
                }
                let (action, status, details) = match rt.block_on(st.delete(&a.info.key)) {
                    Ok(()) => (
                        "deleted",
                        Status::Success,
                        format!(
                            "deleted {} from {} by retention ({})",
                            a.info.key,
                            st.name(),
                            policy.describe()
                        ),
                    ),
                    Err(e) => (
                        "failed",
                        Status::Error,
                        format!("cannot delete {} from {}: {e}", a.info.key, st.name()),
                    ),
                };
                let logged = db.log(&LogEntry {
                    timestamp: Utc::now(),
                    status,
                    details: &details,
                    site_name: site,
                    server_id: &config.server_id,
                    action: "prune",
                    storage_name: Some(st.name()),
                    archive_key: Some(&a.info.key),
                    duration_secs: None,
                });
                if let Err(e) = logged {
                    tracing::error!("cannot record the deletion in backups.db: {e:#}");
                }
                items.push(item(key, at, action, details));
            }
        }
    }
    items
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
