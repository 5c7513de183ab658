//! `wpbackup verify`: prove archives can be restored without restoring them. For the newest
//! archive of each site on each storage (or `--archive`, or `--all`): stream it down, check its
//! sha256 against the recorded one, decompress and read every tar entry, and check
//! `manifest.json` against the contents and `database.sql` for completeness (the mechanics are
//! `reader::verify`). One result per archive, printed and recorded in `backup_log`; exit
//! status 1 when any fails, 128 + the signal when SIGTERM or SIGINT stops it (the archive being
//! checked then gets no result). With no config.json (the quick start) the sites are those
//! the storages hold archives of; when there are none, it says so and exits 1. Unless
//! `--archive` is given, the shipped binary log files are checked too (site `*`: missing,
//! sha256, signature, a binary log inside; [`crate::restore::pitr_verify`]).

use super::{Context, Outcome};
use crate::app::{open_storages, runtime};
use crate::cli::VerifyArgs;
use crate::logdb::LogDb;
use crate::output;
use crate::reader::verify::{self, Checked, Selection};

pub fn run(ctx: &Context, args: &VerifyArgs) -> anyhow::Result<Outcome> {
    let env = ctx.env()?;
    let config = ctx.config_for(None, &env, true)?;
    let trust = ctx.trust(&config, &args.trust)?;
    let storages = open_storages(&config, args.storage.as_deref())?;
    let rt = runtime()?;
    crate::interrupt::install(&rt, "stopping the check in progress")?;
    let db = LogDb::open(&ctx.paths.db)?;
    let server = config.server_id.as_str();
    let identities = match &args.identity {
        Some(path) => Some(crate::crypt::Identities::load(path)?),
        None => None,
    };
    let selection = match &args.archive {
        Some(wanted) => Selection::Archive(wanted.clone()),
        None => Selection::Sites {
            sites: match &args.site {
                Some(s) => vec![s.clone()],
                None if !ctx.has_config() => quick_start_sites(&rt, &storages, server),
                None => config.sites.iter().map(|s| s.name.clone()).collect(),
            },
            all: args.all,
        },
    };
    if matches!(&selection, Selection::Sites { sites, .. } if sites.is_empty()) {
        eprintln!(
            "wpbackup: verify: nothing to check: no config.json, and no archive of server {server} on {} (back up first: `wpbackup backup --path DIR`)",
            storages
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(Outcome::Failed);
    }
    let targets = verify::targets(&rt, &storages, server, &selection)?;
    let missing = targets.missing.len();
    let mut results = targets.missing;
    results.extend(verify::check(
        &rt,
        &storages,
        &targets.archives,
        &db,
        identities.as_ref(),
        &trust,
    ));
    let binlog = match &args.archive {
        Some(_) => Vec::new(),
        None => crate::restore::pitr_verify::Check {
            rt: &rt,
            storages: &storages,
            server_id: server,
            db: &db,
            identities: identities.as_ref(),
            trust: &trust,
            all: args.all,
            configured: config.binlog.is_some(),
        }
        .run(),
    };
    verify::record(&db, server, &results);
    verify::record(&db, server, &binlog);
    print(ctx, server, &results, &binlog)?;
    if let Some(sig) = crate::interrupt::received() {
        let left = targets.archives.len() - (results.len() - missing);
        eprintln!(
            "wpbackup: verify {}: {left} archive(s) not checked, nothing recorded for them",
            crate::interrupt::Interrupted(sig)
        );
        rt.shutdown_background(); // a read blocked on a local storage must not hold the exit
        return Ok(Outcome::Interrupted(sig));
    }
    let every = || results.iter().chain(&binlog);
    Ok(if every().all(|r| r.ok) {
        Outcome::Ok
    } else if every().any(|r| r.untrusted) {
        // An archive refused for its signature: someone else wrote to the bucket.
        Outcome::Usage
    } else {
        Outcome::Failed
    })
}

/// The quick start (no config.json): the sites are those whose archives the storages hold
/// for this server, as `list` shows them.
fn quick_start_sites(
    rt: &tokio::runtime::Runtime,
    storages: &[Box<dyn crate::storage::Storage>],
    server: &str,
) -> Vec<String> {
    let (found, errors) = crate::storage::catalog::list_all(
        rt,
        storages,
        &crate::storage::catalog::prefix(server, None),
    );
    for e in errors {
        tracing::warn!("{e}");
    }
    let mut sites: Vec<String> = found.into_iter().map(|(_, l)| l.name.site).collect();
    sites.sort();
    sites.dedup();
    sites
}

fn print(
    ctx: &Context,
    server: &str,
    results: &[Checked],
    binlog: &[Checked],
) -> anyhow::Result<()> {
    if ctx.json {
        let doc = serde_json::json!({
            "server_id": server,
            "archives": results,
            "binlog_files": binlog,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    if ctx.quiet {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = results
        .iter()
        .chain(binlog)
        .map(|r| {
            vec![
                r.site.clone(),
                r.storage.clone().unwrap_or_else(|| "-".into()),
                if r.ok { "OK" } else { "FAILED" }.into(),
                r.key.clone().unwrap_or_else(|| "-".into()),
                r.details.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["SITE", "STORAGE", "RESULT", "KEY", "DETAILS"], &rows)
    );
    Ok(())
}
