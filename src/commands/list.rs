//! `wpbackup list`: every archive on every configured storage (or `--storage`), for all sites
//! or `--site`, newest first, read from the buckets themselves so that it works on a new server
//! with only config.json and the credentials; backups.db, when there is one, adds whether it
//! knows each archive. Also the helpers that restore, verify and prune share: loading the
//! config and opening the storages.

use std::collections::HashSet;

use anyhow::Context as _;
use serde::Serialize;

use super::{Context, Outcome, UsageError};
use crate::cli::ListArgs;
use crate::config::{Config, Env};
use crate::logdb::LogDb;
use crate::output;
use crate::storage::catalog::{self, Listed};
use crate::storage::{self, Storage};

/// `.env` and config.json, with `.env`'s warnings logged.
pub(crate) fn load(ctx: &Context) -> anyhow::Result<(Env, Config)> {
    let (env, warnings) = Env::load(&ctx.paths.env_file)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    let config = Config::load(&ctx.paths.config, &env)?;
    crate::dbtools::set_timeouts(config.database);
    Ok((env, config))
}

/// The configured storages in priority order, or only `--storage NAME`.
pub(crate) fn open_storages(
    config: &Config,
    only: Option<&str>,
) -> anyhow::Result<Vec<Box<dyn Storage>>> {
    let chosen: Vec<_> = config
        .storage
        .iter()
        .filter(|s| only.is_none_or(|n| n == s.name))
        .collect();
    if chosen.is_empty() {
        return Err(UsageError(match only {
            Some(n) => format!("--storage {n}: no storage of that name in config.json"),
            None => "no storage configured in config.json".into(),
        })
        .into());
    }
    chosen.into_iter().map(storage::open).collect()
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// backups.db if it exists (reading must not create one in a home that has none).
pub(crate) fn existing_logdb(ctx: &Context) -> Option<LogDb> {
    if !ctx.paths.db.exists() {
        return None;
    }
    match LogDb::open(&ctx.paths.db) {
        Ok(db) => Some(db),
        Err(e) => {
            tracing::warn!("{e:#}");
            None
        }
    }
}

/// The archives under `prefix` on each storage; a storage that cannot be listed is reported.
pub(crate) fn list_all(
    rt: &tokio::runtime::Runtime,
    storages: &[Box<dyn Storage>],
    prefix: &str,
) -> (Vec<(usize, Listed)>, Vec<String>) {
    let results = rt.block_on(futures_util::future::join_all(
        storages.iter().map(|st| catalog::list(st.as_ref(), prefix)),
    ));
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(v) => found.extend(v.into_iter().map(|l| (i, l))),
            Err(e) => {
                tracing::warn!(storage = storages[i].name(), "cannot list: {e}");
                errors.push(format!("{}: cannot list: {e}", storages[i].name()));
            }
        }
    }
    // Newest first; the same archive on several storages in priority order.
    found.sort_by(|(ia, a), (ib, b)| {
        b.name
            .created_at
            .cmp(&a.name.created_at)
            .then_with(|| a.info.key.cmp(&b.info.key))
            .then_with(|| ia.cmp(ib))
    });
    (found, errors)
}

#[derive(Debug, Serialize)]
struct Row {
    key: String,
    site: String,
    server_id: String,
    storage: String,
    size: u64,
    created_at: String,
    in_backups_db: bool,
}

pub fn run(ctx: &Context, args: &ListArgs) -> anyhow::Result<Outcome> {
    let (_env, config) = load(ctx)?;
    let storages = open_storages(&config, args.storage.as_deref())?;
    let rt = runtime()?;
    let prefix = catalog::prefix(&config.server_id, args.site.as_deref());
    let (found, errors) = list_all(&rt, &storages, &prefix);
    let known: HashSet<(String, String)> = existing_logdb(ctx)
        .and_then(|db| db.known_archives().ok())
        .unwrap_or_default();
    let rows: Vec<Row> = found
        .iter()
        .map(|(i, l)| {
            let storage = storages[*i].name().to_string();
            Row {
                in_backups_db: known.contains(&(l.info.key.clone(), storage.clone())),
                key: l.info.key.clone(),
                site: l.name.site.clone(),
                server_id: l.name.server_id.clone(),
                storage,
                size: l.info.size,
                created_at: l
                    .name
                    .created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            }
        })
        .collect();
    // Nothing for this server: say which servers the buckets do hold archives of.
    let mut others: Vec<String> = Vec::new();
    if rows.is_empty() && errors.is_empty() {
        let (all, _) = list_all(&rt, &storages, "");
        others = all
            .iter()
            .filter(|(_, l)| args.site.as_deref().is_none_or(|s| s == l.name.site))
            .map(|(_, l)| l.name.server_id.clone())
            .collect();
        others.sort();
        others.dedup();
    }
    if ctx.json {
        let doc = serde_json::json!({
            "server_id": config.server_id,
            "archives": rows,
            "errors": errors,
            "other_servers": others,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if rows.is_empty() {
        let what = match &args.site {
            Some(s) => format!("site {s} of server {}", config.server_id),
            None => format!("server {}", config.server_id),
        };
        println!("no archives of {what} on the storages");
        if !others.is_empty() {
            println!(
                "the buckets hold archives of server(s) {}: set \"server_id\" in config.json (or SERVER_ID in .env) to that name to list and restore them",
                others.join(", ")
            );
        }
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.created_at.replace('T', " ").replace('Z', ""),
                    r.site.clone(),
                    r.storage.clone(),
                    output::human_bytes(r.size),
                    if r.in_backups_db { "yes" } else { "no" }.into(),
                    r.key.clone(),
                ]
            })
            .collect();
        print!(
            "{}",
            output::table(
                &["TIME (UTC)", "SITE", "STORAGE", "SIZE", "IN DB", "KEY"],
                &table
            )
        );
    }
    for e in &errors {
        eprintln!("wpbackup: {e}");
    }
    Ok(if errors.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}
