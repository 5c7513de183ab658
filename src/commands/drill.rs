//! `wpbackup drill`: prove each site restorable. For each site (or each `--site`), the newest
//! archive is restored from the storages into a scratch directory and a scratch database,
//! checked and booted (the mechanics are `crate::drill`), and everything removed again; each
//! result is printed, recorded in backups.db's `drill_log` and pushed to D1 with the rest.
//! Exit status 1 when a site's drill fails, 2 when an archive is refused (its signature, or a
//! statement of its dump), 128 + the signal when one stops it.

use super::{Context, Outcome, UsageError};
use crate::app::{open_storages, runtime};
use crate::cli::DrillArgs;
use crate::config::{Config, SiteConfig};
use crate::drill::{self, Drill, Proof};
use crate::lock::RunLock;
use crate::logdb::{LogDb, Status};
use crate::output;

pub fn run(ctx: &Context, args: &DrillArgs) -> anyhow::Result<Outcome> {
    let env = ctx.env()?;
    let config = ctx.config_for(None, &env, false)?;
    let sites = chosen(&config, &args.sites)?;
    let storages = open_storages(&config, args.storage.as_deref())?;
    // Its own lock: a drill touches nothing a backup does, but two drills must not meet.
    let _lock = RunLock::acquire(&ctx.paths.home.join("wpbackup-drill.lock"))?;
    let rt = runtime()?;
    crate::interrupt::install(&rt, "stopping the drill; its scratch copies are removed")?;
    let logdb = LogDb::open(&ctx.paths.db)?;
    let identities = match &args.identity {
        Some(path) => Some(crate::crypt::Identities::load(path)?),
        None => None,
    };
    let d = Drill {
        rt: &rt,
        storages: &storages,
        logdb: Some(&logdb),
        server_id: config.server_id.clone(),
        scratch_parent: std::env::temp_dir(),
        timeouts: config.database,
        mysql_unix_port: env.get("MYSQL_UNIX_PORT").map(std::path::PathBuf::from),
        server: config.drill.database.clone(),
        identities,
        trust: ctx.trust(&config, &args.trust)?,
    };
    let mut proofs = Vec::new();
    for site in sites {
        if crate::interrupt::received().is_some() {
            break;
        }
        tracing::info!("drilling {}", site.name);
        let proof = drill::drill_site(&d, site);
        drill::record(&logdb, &config.server_id, &proof);
        proofs.push(proof);
    }
    crate::d1::sync::after_backup(&rt, &env, &logdb, &config.server_id);
    print(ctx, &config.server_id, &proofs)?;
    Ok(match crate::interrupt::received() {
        Some(sig) => Outcome::Interrupted(sig),
        None if proofs.iter().any(|p| p.refused) => Outcome::Usage,
        None if proofs.iter().any(|p| p.status == Status::Error) => Outcome::Failed,
        None => Outcome::Ok,
    })
}

/// The sites to drill: every enabled one, or those named.
fn chosen<'a>(config: &'a Config, names: &[String]) -> Result<Vec<&'a SiteConfig>, UsageError> {
    if names.is_empty() {
        return Ok(config.sites.iter().filter(|s| s.enabled).collect());
    }
    names.iter().map(|n| config.site(n)).collect()
}

fn print(ctx: &Context, server: &str, proofs: &[Proof]) -> anyhow::Result<()> {
    if ctx.json {
        let doc = serde_json::json!({ "server_id": server, "sites": proofs });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    if ctx.quiet {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = proofs
        .iter()
        .map(|p| {
            vec![
                p.site.clone(),
                match p.status {
                    Status::Error => "FAILED".into(),
                    Status::Warning => "PASSED (see notes)".into(),
                    Status::Success => "PASSED".into(),
                },
                output::human_duration(p.recovery_secs),
                p.archive_key.clone().unwrap_or_else(|| "-".into()),
                p.failed_text().unwrap_or_else(|| p.details()),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["SITE", "DRILL", "RECOVERY", "ARCHIVE", "DETAILS"], &rows)
    );
    Ok(())
}
