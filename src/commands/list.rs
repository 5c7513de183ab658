//! `wpbackup list`: every archive on every configured storage (or `--storage`), for all sites
//! or `--site`, newest first, read from the buckets themselves so that it works on a new server
//! with only config.json and the credentials; backups.db, when there is one, adds whether it
//! knows each archive.

use std::collections::HashSet;

use serde::Serialize;

use super::{Context, Outcome};
use crate::app::{open_storages, runtime};
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
}

pub fn run(ctx: &Context, args: &ListArgs) -> anyhow::Result<Outcome> {
    let env = ctx.env()?;
    let config = ctx.config_for(None, &env, true)?;
    let listing = listing(ctx, &config, args)?;
    if ctx.json {
        let doc = serde_json::json!({
            "server_id": config.server_id,
            "archives": listing.rows,
            "errors": listing.errors,
            "other_servers": listing.others,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if listing.rows.is_empty() {
        print_none(&config.server_id, args.site.as_deref(), &listing.others);
    } else {
        print_table(&listing.rows);
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
}

fn listing(ctx: &Context, config: &Config, args: &ListArgs) -> anyhow::Result<Listing> {
    let storages = open_storages(config, args.storage.as_deref())?;
    let rt = runtime()?;
    let prefix = catalog::prefix(&config.server_id, args.site.as_deref());
    let (found, errors) = list_all(&rt, &storages, &prefix);
    let known: HashSet<(String, String)> = ctx
        .existing_logdb()
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
    Ok(Listing {
        rows,
        errors,
        others,
    })
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
