//! `wpbackup restore --only PATH... --to DIR`: some files of a site back from an archive (see
//! [`crate::restore::only`]), from the buckets alone.
//!
//! This file is the command: it checks the command line (`--to` is required: the files never
//! go over the live site unasked), loads the configuration, opens the storages, asks on the
//! terminal (unless `--yes`) before an existing file of DIR is replaced, and prints what was
//! restored. It takes no lock and writes nothing to backups.db (which it only reads, when
//! there is one, for the sha256 it recorded): like `ls`, it changes nothing of wpbackup's own.

use std::time::Instant;

use super::restore::{confirm, find_site};
use super::{Context, Outcome, UsageError};
use crate::app::{open_storages, runtime};
use crate::cli::RestoreArgs;
use crate::restore::only::{OnlyRequest, restore_only, site_path};

pub fn run(ctx: &Context, args: &RestoreArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let Some(to) = &args.to else {
        return Err(UsageError(
            "--only needs --to DIR: the files go into a directory you choose (the site's own directory too, to put a deleted file back), never over the live site unasked".into(),
        )
        .into());
    };
    let paths = args
        .only
        .iter()
        .map(|p| site_path(p))
        .collect::<Result<Vec<_>, _>>()?;
    let choice = super::choice(args.archive.as_deref(), args.at.as_deref())?;
    let env = ctx.env()?;
    let config = ctx.config_for(args.path.as_deref(), &env, false)?;
    let site = find_site(&config, args.site.as_deref())?;
    let storages = open_storages(&config, args.storage.as_deref())?;
    let rt = runtime()?;
    let logdb = ctx.existing_logdb();
    let to = crate::config::normalize(to);
    let request = OnlyRequest {
        site: site.name,
        server_id: config.server_id.clone(),
        choice,
        paths,
        to: std::path::absolute(&to)
            .map_err(|e| UsageError(format!("--to {}: {e}", to.display())))?,
        identity: args.identity.clone(),
    };
    crate::interrupt::install(&rt, "stopping; nothing is moved into the directory")?;
    let confirm = |replaced: &[String]| confirm(replaced, args.yes);
    let result = restore_only(&rt, &storages, logdb.as_ref(), &request, &confirm);
    if let (Err(e), Some(sig)) = (&result, crate::interrupt::received()) {
        eprintln!(
            "wpbackup: restore --only {}: {e:#}; nothing was written to {}",
            crate::interrupt::Interrupted(sig),
            request.to.display()
        );
        rt.shutdown_background(); // a read blocked on a local storage must not hold the exit
        return Ok(Outcome::Interrupted(sig));
    }
    let mut report = result?;
    report.duration_secs = started.elapsed().as_secs_f64();
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if !ctx.quiet {
        println!("{}", report.summary());
    }
    Ok(Outcome::Ok)
}
