//! `wpbackup list`: every archive on every configured storage (or `--storage`), for all sites
//! or `--site`, newest first, read from the buckets themselves so that it works on a new server
//! with only config.json and the credentials; backups.db, when there is one, adds whether it
//! knows each archive. Each archive is `full` or `differential`; a differential one names its
//! base (found in the same listing: same storage, site and time), or says the base is missing
//! from that storage. With `binlog` on, each site's point-in-time window follows
//! ([`crate::binlog::window`]): from the buckets, with backups.db's positions when it has them.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::{Context, Outcome};
use crate::app::{open_storages, runtime};
use crate::binlog::{
    self,
    window::{self, Window},
};
use crate::cli::ListArgs;
use crate::config::Config;
use crate::output;
use crate::storage::catalog::list_all;
use crate::storage::catalog::{self};

#[derive(Debug, Serialize)]
struct Row {
    key: String,
    site: String,
    server_id: String,
    storage: String,
    size: u64,
    created_at: String,
    in_backups_db: bool,
    /// `full` or `differential`.
    kind: &'static str,
    /// A differential archive's base: its key on the same storage (`None`: a full archive, or
    /// the base is not there).
    base: Option<String>,
    /// The time in the key of a differential archive's base.
    base_created_at: Option<String>,
    /// A differential archive whose base is not on this storage: it cannot be restored from
    /// here.
    base_missing: bool,
}

pub fn run(ctx: &Context, args: &ListArgs) -> anyhow::Result<Outcome> {
    let env = ctx.env()?;
    let config = ctx.config_for(None, &env, true)?;
    let listing = listing(ctx, &config, args)?;
    if ctx.json {
        let doc = serde_json::json!({
            "server_id": config.server_id,
            "archives": listing.rows,
            "pitr": listing.windows,
            "errors": listing.errors,
            "other_servers": listing.others,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if listing.rows.is_empty() {
        print_none(&config.server_id, args.site.as_deref(), &listing.others);
    } else {
        print_table(&listing.rows);
        let now = chrono::Utc::now();
        for (site, w) in &listing.windows {
            println!("{site}: point in time: {}", w.text(now));
            if let Some(flag) = w.stale_text() {
                println!("{site}: {flag}");
            }
        }
    }
    for e in &listing.errors {
        eprintln!("wpbackup: {e}");
    }
    Ok(if listing.errors.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

/// What the storages hold of this server (or `--site`).
struct Listing {
    rows: Vec<Row>,
    /// Storages that could not be listed.
    errors: Vec<String>,
    /// When nothing is found: the servers the buckets do hold archives of.
    others: Vec<String>,
    /// Each site's point-in-time window (config.json's `binlog` set).
    windows: BTreeMap<String, Window>,
}

fn listing(ctx: &Context, config: &Config, args: &ListArgs) -> anyhow::Result<Listing> {
    let storages = open_storages(config, args.storage.as_deref())?;
    let rt = runtime()?;
    let prefix = catalog::prefix(&config.server_id, args.site.as_deref());
    let (found, errors) = list_all(&rt, &storages, &prefix);
    let logdb = ctx.existing_logdb();
    let known: HashSet<(String, String)> = logdb
        .as_ref()
        .and_then(|db| db.known_archives().ok())
        .unwrap_or_default();
    // Each archive by (storage, server, site, time): where a differential one finds its base.
    let mut by_time = HashMap::new();
    for (i, l) in &found {
        let n = &l.name;
        by_time
            .entry((*i, n.server_id.as_str(), n.site.as_str(), n.created_at))
            .or_insert(l.info.key.as_str());
    }
    let rfc3339 =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let rows: Vec<Row> = found
        .iter()
        .map(|(i, l)| {
            let storage = storages[*i].name().to_string();
            let n = &l.name;
            let base = n.base.and_then(|b| {
                by_time
                    .get(&(*i, n.server_id.as_str(), n.site.as_str(), b))
                    .map(|k| k.to_string())
            });
            Row {
                in_backups_db: known.contains(&(l.info.key.clone(), storage.clone())),
                key: l.info.key.clone(),
                site: n.site.clone(),
                server_id: n.server_id.clone(),
                storage,
                size: l.info.size,
                created_at: rfc3339(n.created_at),
                kind: n.kind(),
                base_missing: n.base.is_some() && base.is_none(),
                base,
                base_created_at: n.base.map(rfc3339),
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
    let windows = match &config.binlog {
        Some(b) => windows(
            &rt,
            config,
            &storages,
            &found,
            logdb.as_ref(),
            b.every_minutes,
        )?,
        None => BTreeMap::new(),
    };
    Ok(Listing {
        rows,
        errors,
        others,
        windows,
    })
}

/// Each listed site's window: the binary log files from the buckets, positions and the
/// newest shipped second from backups.db when there is one.
fn windows(
    rt: &tokio::runtime::Runtime,
    config: &Config,
    storages: &[Box<dyn crate::storage::Storage>],
    found: &[(usize, catalog::Listed)],
    logdb: Option<&crate::logdb::LogDb>,
    every_minutes: u32,
) -> anyhow::Result<BTreeMap<String, Window>> {
    let shipped = binlog::list(rt, storages, &config.server_id)?;
    let newest = logdb.and_then(|db| db.binlog_newest(&config.server_id).ok().flatten());
    let mut by_site: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for (_, l) in found {
        let file = logdb.and_then(|db| db.archive_binlog_file(&l.info.key).ok().flatten());
        by_site
            .entry(l.name.site.clone())
            .or_default()
            .push((l.name.created_at, file));
    }
    let now = chrono::Utc::now();
    Ok(by_site
        .into_iter()
        .map(|(site, points)| {
            let w = window::from_listing(&points, &shipped, newest.clone(), every_minutes, now);
            (site, w)
        })
        .collect())
}

fn print_none(server_id: &str, site: Option<&str>, others: &[String]) {
    let what = match site {
        Some(s) => format!("site {s} of server {server_id}"),
        None => format!("server {server_id}"),
    };
    println!("no archives of {what} on the storages");
    if !others.is_empty() {
        println!(
            "the buckets hold archives of server(s) {}: set \"server_id\" in config.json (or SERVER_ID in .env) to that name to list and restore them",
            others.join(", ")
        );
    }
}

fn print_table(rows: &[Row]) {
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.created_at.replace('T', " ").replace('Z', ""),
                r.site.clone(),
                r.kind.into(),
                r.storage.clone(),
                output::human_bytes(r.size),
                if r.in_backups_db { "yes" } else { "no" }.into(),
                base_cell(r),
                r.key.clone(),
            ]
        })
        .collect();
    let header = [
        "TIME (UTC)",
        "SITE",
        "KIND",
        "STORAGE",
        "SIZE",
        "IN DB",
        "BASE",
        "KEY",
    ];
    print!("{}", output::table(&header, &table));
}

/// `-` for a full archive, the base's file name, or `MISSING (time)` when the base is not on
/// the archive's storage.
fn base_cell(r: &Row) -> String {
    match (&r.base, &r.base_created_at) {
        (Some(key), _) => key.rsplit('/').next().unwrap_or(key).to_string(),
        (None, Some(at)) => format!("MISSING ({})", at.replace('T', " ").replace('Z', "")),
        (None, None) => "-".into(),
    }
}
