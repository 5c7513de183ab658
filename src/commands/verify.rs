//! `wpbackup verify`: prove archives can be restored without restoring them. For the newest
//! archive of each site on each storage (or `--archive`, or `--all`): stream it down, check its
//! sha256 against the recorded one, decompress and read every tar entry, and check
//! `manifest.json` against the contents and `database.sql` for completeness. One result per
//! archive, printed and recorded in `backup_log`; exit status 1 when any fails.

use std::time::Instant;

use chrono::Utc;
use serde::Serialize;

use super::{Context, Outcome};
use crate::app::{open_storages, runtime};
use crate::cli::VerifyArgs;
use crate::logdb::{LogDb, LogEntry, Status};
use crate::output;
use crate::restore::fetch;
use crate::restore::unpack;
use crate::storage::Storage;
use crate::storage::catalog::list_all;
use crate::storage::catalog::{self, Listed};

#[derive(Debug, Serialize)]
struct Checked {
    site: String,
    storage: Option<String>,
    key: Option<String>,
    ok: bool,
    details: String,
    duration_secs: f64,
}

pub fn run(ctx: &Context, args: &VerifyArgs) -> anyhow::Result<Outcome> {
    let (_env, config) = ctx.load()?;
    let storages = open_storages(&config, args.storage.as_deref())?;
    let rt = runtime()?;
    let db = LogDb::open(&ctx.paths.db)?;
    let server = config.server_id.as_str();
    let identities = match &args.identity {
        Some(path) => Some(crate::crypt::Identities::load(path)?),
        None => None,
    };

    // What to verify: (storage index, archive) pairs, and sites that have nothing to verify.
    let mut targets: Vec<(usize, Listed)> = Vec::new();
    let mut results: Vec<Checked> = Vec::new();
    if let Some(wanted) = &args.archive {
        let key = if wanted.contains('/') {
            wanted.clone()
        } else {
            // A bare file name: `{site}_{time}.tar.zst` lives under this server's site prefix.
            let site = wanted.rsplit_once('_').map(|(s, _)| s).unwrap_or(wanted);
            format!("{}{wanted}", catalog::prefix(server, Some(site)))
        };
        let Some(name) = catalog::parse_key(&key) else {
            return Err(super::UsageError(format!(
                "--archive {wanted}: not an archive key (server/site/site_YYYYMMDDTHHMMSSZ.tar.zst)"
            ))
            .into());
        };
        for (i, st) in storages.iter().enumerate() {
            if let Ok(info) = rt.block_on(st.head(&key)) {
                targets.push((
                    i,
                    Listed {
                        info,
                        name: name.clone(),
                    },
                ));
            }
        }
        if targets.is_empty() {
            results.push(missing(&name.site, format!("{key} is on no storage")));
        }
    } else {
        let sites: Vec<String> = match &args.site {
            Some(s) => vec![s.clone()],
            None => config.sites.iter().map(|s| s.name.clone()).collect(),
        };
        let (found, errors) = list_all(&rt, &storages, &catalog::prefix(server, None));
        for e in errors {
            results.push(missing("*", e));
        }
        for site in &sites {
            let mut any = false;
            for (i, _) in storages.iter().enumerate() {
                let mine = found
                    .iter()
                    .filter(|(j, l)| *j == i && l.name.site == *site);
                for (_, l) in mine.take(if args.all { usize::MAX } else { 1 }) {
                    targets.push((i, l.clone()));
                    any = true;
                }
            }
            if !any {
                results.push(missing(
                    site,
                    "no archive of this site on any storage".into(),
                ));
            }
        }
    }

    for (i, listed) in &targets {
        let st = storages[*i].as_ref();
        let started = Instant::now();
        let outcome = verify_one(&rt, st, listed, &db, identities.as_ref());
        let (ok, details) = match outcome {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        if ok {
            tracing::info!(storage = st.name(), "{}: {details}", listed.info.key);
        } else {
            tracing::error!(storage = st.name(), "{}: {details}", listed.info.key);
        }
        results.push(Checked {
            site: listed.name.site.clone(),
            storage: Some(st.name().to_string()),
            key: Some(listed.info.key.clone()),
            ok,
            details,
            duration_secs: started.elapsed().as_secs_f64(),
        });
    }

    for r in &results {
        let logged = db.log(&LogEntry {
            timestamp: Utc::now(),
            status: if r.ok { Status::Success } else { Status::Error },
            details: &r.details,
            site_name: &r.site,
            server_id: server,
            action: "verify",
            storage_name: r.storage.as_deref(),
            archive_key: r.key.as_deref(),
            duration_secs: Some(r.duration_secs),
        });
        if let Err(e) = logged {
            tracing::error!("cannot record the result in backups.db: {e:#}");
        }
    }
    print(ctx, server, &results)?;
    Ok(if results.iter().all(|r| r.ok) {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

fn missing(site: &str, details: String) -> Checked {
    Checked {
        site: site.to_string(),
        storage: None,
        key: None,
        ok: false,
        details,
        duration_secs: 0.0,
    }
}

/// Check one archive on one storage: Ok(summary) or Err(everything wrong with it).
fn verify_one(
    rt: &tokio::runtime::Runtime,
    st: &dyn Storage,
    listed: &Listed,
    db: &LogDb,
    identities: Option<&crate::crypt::Identities>,
) -> Result<String, String> {
    let key = &listed.info.key;
    let mut problems = Vec::new();
    let metadata = match rt.block_on(st.head(key)) {
        Ok(h) => h.sha256,
        Err(e) => return Err(format!("cannot read its metadata: {e}")),
    };
    let recorded = db.archive_sha256(key, st.name()).ok().flatten();
    let expected = catalog::expected(key, metadata.as_deref(), recorded.as_deref());
    let (name, ids) = (key.clone(), identities.cloned());
    let (contents, fetched) = fetch::stream(rt, st, key, move |r| {
        let r = crate::crypt::open(r, &name, ids.as_ref())?;
        unpack::read(r, unpack::Options::default())
    })
    .map_err(|e| format!("download failed: {e}"))?;
    match &expected {
        Ok(e) if e.sha256 != fetched.sha256 => problems.push(format!(
            "sha256 mismatch: the stored object ({} bytes) has sha256 {} but the sha256 recorded in {} is {}",
            fetched.size, fetched.sha256, e.source, e.sha256
        )),
        Ok(_) => {}
        Err(e) => problems.push(e.to_string()),
    }
    let contents = match contents {
        Ok(c) => c,
        Err(e) => {
            problems.push(format!("cannot read the archive: {e:#}"));
            return Err(problems.join("; "));
        }
    };
    problems.extend(contents.problems());
    if let Some(m) = &contents.manifest
        && m.site != listed.name.site
    {
        problems.push(format!(
            "manifest.json names site {:?}, the key site {:?}",
            m.site, listed.name.site
        ));
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let db_bytes = contents.database.as_ref().map(|d| d.bytes).unwrap_or(0);
    Ok(format!(
        "ok: sha256 matches ({}), {} files ({}), database.sql {} complete",
        expected.map(|e| e.source).unwrap_or_default(),
        contents.file_count,
        output::human_bytes(contents.bytes),
        output::human_bytes(db_bytes)
    ))
}

fn print(ctx: &Context, server: &str, results: &[Checked]) -> anyhow::Result<()> {
    if ctx.json {
        let doc = serde_json::json!({ "server_id": server, "archives": results });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    if ctx.quiet {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = results
        .iter()
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
