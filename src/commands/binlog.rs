//! `wpbackup binlog`: ship the database server's binary log (config.json's `binlog`), under a
//! lock of its own (`wpbackup-binlog.lock`: it runs beside a backup, never beside itself).
//! The run is `crate::binlog::ship`.

use std::path::PathBuf;

use super::{Context, Outcome, UsageError};
use crate::app::{open_storages, runtime};
use crate::binlog::ship;
use crate::dbtools::client;
use crate::lock::RunLock;
use crate::logdb::LogDb;
use crate::storage::failover;

pub fn run(ctx: &Context) -> anyhow::Result<Outcome> {
    let (env, config) = ctx.load()?;
    let Some(settings) = &config.binlog else {
        return Err(UsageError(format!(
            "point-in-time recovery is off: add \"binlog\": {{}} to {} (see README's \"Point-in-time recovery\")",
            ctx.paths.config.display()
        ))
        .into());
    };
    if config.storage.is_empty() {
        return Err(UsageError("no storage configured in config.json".into()).into());
    }
    let storages = open_storages(&config, None)?;
    let _lock = RunLock::acquire(&ctx.paths.home.join("wpbackup-binlog.lock"))?;
    let logdb = LogDb::open(&ctx.paths.db)?;
    let signer = ctx.signing_key()?;
    let rt = runtime()?;
    crate::interrupt::install(&rt, "aborting the upload in progress and stopping")?;
    let db = settings.database.clone().unwrap_or_else(|| {
        client::admin(
            env.get("MYSQL_UNIX_PORT").map(PathBuf::from),
            config.database,
        )
    });
    let targets = rt.block_on(failover::preflight(storages));
    let outcome = ship::ship(&ship::Run {
        rt: &rt,
        targets: &targets,
        server_id: &config.server_id,
        db: &db,
        encryption: config.encryption.clone(),
        signer: &signer,
        logdb: &logdb,
        tmp_dir: &std::env::temp_dir(),
    })?;
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else if !ctx.quiet {
        for f in &outcome.shipped {
            println!(
                "shipped {} ({} bytes, from {}) to {} as {}",
                f.file, f.bytes, f.first_event, f.storage, f.key
            );
        }
        println!(
            "{} binary log file(s) shipped, {} shipped before; {} is being written (the next run ships it)",
            outcome.shipped.len(),
            outcome.already,
            outcome.current.as_deref().unwrap_or("none")
        );
    }
    Ok(Outcome::Ok)
}
