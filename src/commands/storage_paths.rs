//! `wpbackup storage-paths` (hidden, for deploy.sh): the directories of config.json's local
//! storages, one per line, which the systemd unit must be able to write
//! (`ReadWritePaths=`). With `--json`, one JSON list.

use super::{Context, Outcome};
use crate::config::StorageKind;

pub fn run(ctx: &Context) -> anyhow::Result<Outcome> {
    let (_, config) = ctx.load()?;
    let paths: Vec<String> = config
        .storage
        .iter()
        .filter_map(|s| match &s.kind {
            StorageKind::Local { path } => Some(path.to_string_lossy().into_owned()),
            StorageKind::S3(_) => None,
        })
        .collect();
    if ctx.json {
        println!("{}", serde_json::to_string(&paths)?);
    } else {
        for p in paths {
            println!("{p}");
        }
    }
    Ok(Outcome::Ok)
}

/// `binlog-every`: the shipping interval in minutes, or nothing (binlog off).
pub fn binlog_every(ctx: &Context) -> anyhow::Result<Outcome> {
    let (_, config) = ctx.load()?;
    if let Some(b) = &config.binlog {
        println!("{}", b.every_minutes);
    }
    Ok(Outcome::Ok)
}
