//! `wpbackup restore`: bring a site back from an archive, or clone it elsewhere.
//!
//! The order is what makes it safe on the worst day: pick the archive from the buckets
//! themselves (`--archive`, `--at`, or the newest) and the first storage that has it; download
//! it, unpacking it beside the target as it arrives, and check its sha256 and its manifest
//! (`stage::fetch_and_stage`); only then ask (unless `--yes`), save the live
//! database's content to `<home>/before-restore/`, import, move the site to `--url`, and finally
//! move the live directory aside and the restored one into its place. A refused or failed
//! restore before that point changes nothing. The result is printed and recorded in
//! `backup_log` (action `restore`).

pub mod database;
pub mod fetch;
pub mod serialized;
pub mod stage;
pub mod unpack;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use chrono::Utc;
use serde::Serialize;

use crate::app::{open_storages, runtime};
use crate::cli::RestoreArgs;
use crate::commands::{Context, Outcome, UsageError};
use crate::config::{Config, DatabaseConfig, DbHost, Env, SiteConfig};
use crate::lock::RunLock;
use crate::logdb::{LogDb, LogEntry, Status};
use crate::output;
use crate::storage::Storage;
use crate::storage::catalog::list_all;
use crate::storage::catalog::{self, Choice};
use database::DbState;

/// What a restore did, as printed and recorded.
#[derive(Debug, Default, Serialize)]
struct Report {
    site: String,
    key: String,
    storage: String,
    archive_bytes: u64,
    sha256_source: String,
    files_to: Option<PathBuf>,
    previous_files: Option<PathBuf>,
    database: Option<String>,
    database_note: Option<String>,
    previous_database: Option<PathBuf>,
    url: Option<String>,
    replaced_values: Option<u64>,
    duration_secs: f64,
}

impl Report {
    fn summary(&self) -> String {
        let mut parts = vec![format!(
            "restored {} ({}) from {}, sha256 verified against {}",
            self.key,
            output::human_bytes(self.archive_bytes),
            self.storage,
            self.sha256_source
        )];
        if let Some(to) = &self.files_to {
            let mut s = format!("files to {}", to.display());
            if let Some(p) = &self.previous_files {
                s.push_str(&format!(
                    " (the previous directory is kept at {})",
                    p.display()
                ));
            }
            parts.push(s);
        }
        if let Some(db) = &self.database {
            let mut s = format!("database {db}");
            if let Some(n) = &self.database_note {
                s.push_str(&format!(" ({n})"));
            }
            if let Some(p) = &self.previous_database {
                s.push_str(&format!(
                    " (its previous content is saved in {})",
                    p.display()
                ));
            }
            parts.push(s);
        }
        if let (Some(url), Some(n)) = (&self.url, self.replaced_values) {
            parts.push(format!("moved to {url} ({n} values rewritten)"));
        }
        format!("{}; took {:.1}s", parts.join("; "), self.duration_secs)
    }
}

/// The checked command line.
struct Plan {
    choice: Choice,
    files: bool,
    database: bool,
    url: Option<String>,
}

fn plan(args: &RestoreArgs) -> Result<Plan, UsageError> {
    let choice = match (&args.archive, &args.at) {
        (Some(k), _) => Choice::Key(k.clone()),
        (None, Some(t)) => {
            Choice::At(catalog::parse_time(t).map_err(|e| UsageError(format!("--at: {e}")))?)
        }
        (None, None) => Choice::Newest,
    };
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
    let url = match &args.url {
        None => None,
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
            Some(u.trim_end_matches('/').to_string())
        }
        Some(u) => {
            return Err(UsageError(format!(
                "--url {u}: give the full address, e.g. https://staging.example.com"
            )));
        }
    };
    if let Some(name) = &args.db_name
        && (name.is_empty() || name.len() > 64 || name.contains(['/', '\\', '.', '`']))
    {
        return Err(UsageError(format!(
            "--db-name {name:?}: not a usable database name"
        )));
    }
    Ok(Plan {
        choice,
        files: !args.db_only,
        database: !args.files_only,
        url,
    })
}

pub fn run(ctx: &Context, args: &RestoreArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let plan = plan(args)?;
    let (env, config) = ctx.load()?;
    let site = config
        .sites
        .iter()
        .find(|s| s.name == args.site)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<_> = config.sites.iter().map(|s| s.name.as_str()).collect();
            UsageError(format!(
                "--site {}: no such site in config.json (known: {})",
                args.site,
                known.join(", ")
            ))
        })?;
    let storages = open_storages(&config, args.storage.as_deref())?;
    let _lock = RunLock::acquire(&ctx.paths.lock)?;
    let logdb = LogDb::open(&ctx.paths.db)?;
    let rt = runtime()?;
    let mut report = Report {
        site: site.name.clone(),
        ..Report::default()
    };
    let result = restore_site(
        ctx,
        args,
        &plan,
        &env,
        &config,
        &site,
        &storages,
        &logdb,
        &rt,
        &mut report,
    );
    report.duration_secs = started.elapsed().as_secs_f64();
    let (status, details) = match &result {
        Ok(()) => (Status::Success, report.summary()),
        Err(e) if e.downcast_ref::<UsageError>().is_some() => return Err(result.unwrap_err()),
        Err(e) => (Status::Error, format!("restore failed: {e:#}")),
    };
    let logged = logdb.log(&LogEntry {
        timestamp: Utc::now(),
        status,
        details: &details,
        site_name: &site.name,
        server_id: &config.server_id,
        action: "restore",
        storage_name: (!report.storage.is_empty()).then_some(report.storage.as_str()),
        archive_key: (!report.key.is_empty()).then_some(report.key.as_str()),
        duration_secs: Some(report.duration_secs),
    });
    if let Err(e) = logged {
        tracing::error!("cannot record the restore in backups.db: {e:#}");
    }
    result?;
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !ctx.quiet {
        println!("{}", report.summary());
    }
    Ok(Outcome::Ok)
}

#[allow(clippy::too_many_arguments)]
fn restore_site(
    ctx: &Context,
    args: &RestoreArgs,
    plan: &Plan,
    env: &Env,
    config: &Config,
    site: &SiteConfig,
    storages: &[Box<dyn Storage>],
    logdb: &LogDb,
    rt: &tokio::runtime::Runtime,
    report: &mut Report,
) -> anyhow::Result<()> {
    let stamp = stage::stamp(Utc::now());
    let files_target = match (plan.files, &args.to) {
        (false, _) => None,
        (true, Some(to)) => Some(std::path::absolute(to).context("--to")?),
        (true, None) => Some(site.path.clone()),
    };

    // 1. The archive, and the storages that hold it, in priority order.
    let (key, holding) = choose_archive(rt, config, site, storages, &plan.choice)?;
    let holders: Vec<&dyn Storage> = holding.iter().map(|i| storages[*i].as_ref()).collect();
    report.key = key.clone();
    tracing::info!("restoring {key}");
    let identities = match &args.identity {
        Some(path) => Some(crate::crypt::Identities::load(path)?),
        None => None,
    };
    crate::crypt::ensure_identity(&key, identities.as_ref())?;

    // Not on a terminal and no --yes: refuse before downloading when the answer is known.
    if !args.yes && !std::io::stdin().is_terminal() {
        let early = stage::credentials(site, None, config.database)
            .ok()
            .map(|c| c.0);
        let target_db = args
            .db_name
            .clone()
            .or_else(|| early.as_ref().map(|c| c.name.clone()));
        let live = live_targets(
            files_target.as_deref(),
            early.as_ref().filter(|_| plan.database),
            target_db.as_deref(),
        );
        confirm(&live, false)?;
    }

    // 2. Download and verify; 3. unpack beside the target and check against the manifest.
    let tmp_dir = match &files_target {
        Some(t) => {
            let parent = t.parent().unwrap_or(Path::new("/")).to_path_buf();
            std::fs::create_dir_all(&parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
            parent
        }
        None => ctx.paths.home.clone(),
    };
    let fetched = stage::fetch_and_stage(
        rt,
        &key,
        &holders,
        Some(logdb),
        &stage::StageTo {
            files_target: files_target.clone(),
            database: plan.database,
            tmp_dir: tmp_dir.clone(),
            stamp: stamp.clone(),
            identities: identities.clone(),
        },
    )?;
    report.storage = fetched.storage.clone();
    report.sha256_source = fetched.expected.source.clone();
    report.archive_bytes = fetched.size;
    let mut staged = fetched.staged;
    let manifest = staged
        .contents
        .manifest
        .clone()
        .context("the archive has no manifest.json")?;

    // 4. Credentials, target database, and the old addresses.
    let creds = if plan.database || args.db_name.is_some() {
        let (c, source) =
            stage::credentials(site, staged.contents.wp_config.as_deref(), config.database)?;
        tracing::info!("database credentials from {source}");
        Some(c)
    } else {
        None
    };
    let target_db = args
        .db_name
        .clone()
        .or_else(|| creds.as_ref().map(|c| c.name.clone()));

    // A mount point cannot be moved aside: find out before the database is touched.
    if let Some(t) = &files_target {
        ensure_movable(t)?;
    }

    // 5. Ask before replacing anything live.
    let live = live_targets(
        files_target.as_deref(),
        creds.as_ref().filter(|_| plan.database),
        target_db.as_deref(),
    );
    confirm(&live, args.yes)?;

    // 6. The database: saved, created if missing, imported, moved to the new address.
    let mut old_urls: Vec<String> = manifest.siteurl.iter().cloned().collect();
    if let (true, Some(creds), Some(db_name)) = (plan.database, &creds, &target_db) {
        let sql_file = staged
            .database_sql
            .as_ref()
            .context("database.sql was not extracted")?;
        match database::state(creds, db_name)? {
            DbState::Missing => {
                let admin_socket =
                    env.get("MYSQL_UNIX_PORT")
                        .map(PathBuf::from)
                        .or(match &creds.host {
                            DbHost::Socket(Some(p)) => Some(p.clone()),
                            _ => None,
                        });
                report.database_note = Some(database::create(creds, db_name, admin_socket)?);
            }
            DbState::Tables(0) => {}
            DbState::Tables(_) => {
                let dir = ctx.paths.home.join("before-restore");
                create_private_dir(&dir)?;
                let dest = dir.join(format!("{}_{db_name}_{stamp}.sql.zst", site.name));
                tracing::info!(
                    "saving the current database {db_name} to {}",
                    dest.display()
                );
                database::save_copy(creds, db_name, &dest).with_context(|| {
                    format!(
                        "cannot save the current content of database {db_name} before replacing it (nothing was changed; if it is beyond saving, drop it and run restore again)"
                    )
                })?;
                report.previous_database = Some(dest);
            }
        }
        tracing::info!("importing database.sql into {db_name}");
        database::import(creds, db_name, sql_file.path()).with_context(|| {
            match &report.previous_database {
                Some(p) => format!(
                    "the import into {db_name} failed midway and the database is incomplete; its previous content is in {} (zstd -dc FILE | mariadb {db_name}); the files were not touched",
                    p.display()
                ),
                None => format!(
                    "the import into {db_name} failed midway; the files were not touched"
                ),
            }
        })?;
        report.database = Some(db_name.clone());
        if let Some(url) = &plan.url {
            old_urls.extend(database::site_urls(creds, db_name, &manifest.table_prefix)?);
            let pairs = url_pairs(&old_urls, url);
            let done = database::search_replace(creds, db_name, &manifest.table_prefix, &pairs)
                .with_context(|| {
                    format!(
                        "database {db_name} was restored, but moving it to {url} failed (its old address is unchanged; the files were not touched)"
                    )
                })?;
            tracing::info!("rewrote {} values for {url}", done.values());
            report.url = Some(url.clone());
            report.replaced_values = Some(done.values());
        }
    }

    // 7. The files: wp-config.php pointed at the new place, then moved into place.
    if let (Some(target), Some(files)) = (&files_target, staged.files()) {
        let wp = files.join("wp-config.php");
        let db_changed = match (&creds, &target_db) {
            (Some(c), Some(t)) => c.name != *t,
            _ => false,
        };
        let mut replacements = Vec::new();
        if *target != site.path {
            replacements.push((
                site.path.display().to_string(),
                target.display().to_string(),
            ));
        }
        if let Some(url) = &plan.url {
            replacements.extend(url_pairs(&old_urls, url));
        }
        if wp.is_file() && (db_changed || !replacements.is_empty()) {
            let text = std::fs::read_to_string(&wp)
                .with_context(|| format!("cannot read {}", wp.display()))?;
            let new = stage::rewrite_wp_config(
                &text,
                target_db.as_deref().filter(|_| db_changed),
                &replacements,
            )
            .map_err(anyhow::Error::msg)?;
            std::fs::write(&wp, new).with_context(|| format!("cannot write {}", wp.display()))?;
        }
        let staging = staged.staging.take().context("no staged files")?;
        report.previous_files = stage::swap_into_place(staging, target, &stamp)?;
        report.files_to = Some(target.clone());
    }
    Ok(())
}

/// The archive `choice` picks, and the indexes of the storages that have it.
fn choose_archive(
    rt: &tokio::runtime::Runtime,
    config: &Config,
    site: &SiteConfig,
    storages: &[Box<dyn Storage>],
    choice: &Choice,
) -> anyhow::Result<(String, Vec<usize>)> {
    let prefix = catalog::prefix(&config.server_id, Some(&site.name));
    let (found, errors) = list_all(rt, storages, &prefix);
    let archives: Vec<catalog::Listed> = found.iter().map(|(_, l)| l.clone()).collect();
    if let Some(chosen) = catalog::choose(&archives, choice) {
        let key = chosen.info.key.clone();
        let holders = found
            .iter()
            .filter(|(_, l)| l.info.key == key)
            .map(|(i, _)| *i)
            .collect();
        return Ok((key, holders));
    }
    // A full key from elsewhere (another server's archive): ask the storages directly.
    if let Choice::Key(k) = choice
        && catalog::parse_key(k).is_some()
    {
        let holders: Vec<usize> = (0..storages.len())
            .filter(|i| rt.block_on(storages[*i].head(k)).is_ok())
            .collect();
        if !holders.is_empty() {
            return Ok((k.clone(), holders));
        }
    }
    let mut msg = match choice {
        Choice::Newest => format!("no archive of site {} on the storages", site.name),
        Choice::At(t) => format!(
            "no archive of site {} made at or before {} UTC",
            site.name,
            t.format("%Y-%m-%d %H:%M:%S")
        ),
        Choice::Key(k) => format!("archive {k} is not on the storages"),
    };
    if let Some(newest) = archives.first() {
        msg.push_str(&format!(
            " (the oldest is {}, the newest {}: `wpbackup list --site {}`)",
            archives.last().map(|a| a.info.key.as_str()).unwrap_or(""),
            newest.info.key,
            site.name
        ));
    }
    if !errors.is_empty() {
        msg.push_str(&format!("; {}", errors.join("; ")));
    }
    bail!("{msg}")
}

/// What a restore to these targets would replace, in words.
fn live_targets(
    files: Option<&Path>,
    creds: Option<&DatabaseConfig>,
    db_name: Option<&str>,
) -> Vec<String> {
    let mut live = Vec::new();
    if let Some(dir) = files
        && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
    {
        live.push(format!(
            "the directory {} (moved aside, kept)",
            dir.display()
        ));
    }
    if let (Some(creds), Some(name)) = (creds, db_name) {
        match database::state(creds, name) {
            Ok(DbState::Tables(n)) if n > 0 => live.push(format!(
                "database {name} ({n} tables; its content is saved first)"
            )),
            Ok(_) => {}
            Err(e) => tracing::debug!("cannot look at database {name}: {e:#}"),
        }
    }
    live
}

/// Ask on the terminal before replacing `live` things; without one, --yes is needed.
fn confirm(live: &[String], yes: bool) -> anyhow::Result<()> {
    if live.is_empty() || yes {
        return Ok(());
    }
    let what = live.join(" and ");
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "this restore replaces {what}: run it again with --yes to confirm (nothing was changed)"
        ))
        .into());
    }
    eprint!("This restore replaces {what}. Continue? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(UsageError("restore cancelled; nothing was changed".into()).into())
    }
}

/// The (old, new) address pairs: each distinct old address that is not already covered by a
/// shorter one it starts with (home `http://a` covers siteurl `http://a/wp`).
fn url_pairs(olds: &[String], new: &str) -> Vec<(String, String)> {
    let mut olds: Vec<String> = olds
        .iter()
        .map(|o| o.trim_end_matches('/').to_string())
        .filter(|o| !o.is_empty() && o != new)
        .collect();
    olds.sort();
    olds.dedup();
    let keep: Vec<String> = olds
        .iter()
        .filter(|o| !olds.iter().any(|p| p != *o && o.starts_with(p.as_str())))
        .cloned()
        .collect();
    keep.into_iter().map(|o| (o, new.to_string())).collect()
}

/// The target must be renameable within its parent (not a mount point of its own).
fn ensure_movable(target: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let (Ok(t), Some(Ok(p))) = (
        target.symlink_metadata(),
        target.parent().map(|p| p.metadata()),
    ) else {
        return Ok(());
    };
    if t.dev() != p.dev() {
        bail!(
            "{} is a mount point and cannot be moved aside: restore with --to DIR (a directory beside it) and move the files yourself; nothing was changed",
            target.display()
        );
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_pairs() {
        let p = url_pairs(
            &[
                "http://a.example/wp".into(),
                "http://a.example/".into(),
                "http://a.example".into(),
                "https://new".into(),
            ],
            "https://new",
        );
        assert_eq!(p, vec![("http://a.example".into(), "https://new".into())]);
        assert!(url_pairs(&["https://new".into()], "https://new").is_empty());
    }
}
