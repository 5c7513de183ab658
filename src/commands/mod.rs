//! The subcommands, one file each, and what they share: the resolved paths and flags
//! ([`Context`]) and the outcome that becomes the exit status ([`Outcome`]).

pub mod backup;
pub mod binlog;
pub mod configure;
#[cfg(test)]
mod docs;
pub mod drill;
pub mod list;
pub mod ls;
pub mod prune;
pub mod report;
pub mod restore;
pub mod restore_only;
pub mod status;
pub mod storage_paths;
pub mod sync_d1;
pub mod verify;

use std::process::ExitCode;

pub use crate::app::Context;
use crate::config::{ConfigError, SiteConfig};
pub use crate::error::UsageError;
use crate::lock::LockedError;

/// How a command ended, as the exit status documents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: all done (warnings included).
    Ok,
    /// 1: at least one site or archive failed.
    Failed,
    /// 2: bad usage or config.
    Usage,
    /// 75: another run holds the lock (EX_TEMPFAIL).
    Locked,
    /// 128 + the signal: stopped by SIGINT (130) or SIGTERM (143), as shells report it.
    Interrupted(i32),
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self.code())
    }

    /// The exit status, as `--help`, README and docs/formats.md list them (`docs.rs` checks).
    pub fn code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::Failed => 1,
            Outcome::Usage => 2,
            Outcome::Locked => 75,
            Outcome::Interrupted(sig) => (128 + sig).clamp(0, 255) as u8,
        }
    }

    /// The outcome an error that reached `main` stands for.
    pub fn from_error(err: &anyhow::Error) -> Outcome {
        if err.downcast_ref::<LockedError>().is_some() {
            Outcome::Locked
        } else if err.downcast_ref::<ConfigError>().is_some()
            || err.downcast_ref::<UsageError>().is_some()
            || crate::restore::dumpcheck::is_refusal(err)
        {
            Outcome::Usage
        } else {
            Outcome::Failed
        }
    }
}

/// The archive `--archive KEY` or `--at TIME` names, else the newest (`restore`, `ls`).
pub fn choice(
    archive: Option<&str>,
    at: Option<&str>,
) -> Result<crate::storage::catalog::Choice, UsageError> {
    use crate::storage::catalog::{Choice, parse_time};
    Ok(match (archive, at) {
        (Some(k), _) => Choice::Key(k.to_string()),
        (None, Some(t)) => Choice::At(parse_time(t).map_err(|e| UsageError(format!("--at: {e}")))?),
        (None, None) => Choice::Newest,
    })
}

/// `--site NAME` with no config.json (the quick start): NAME is a site as `list` shows it,
/// found in the buckets, not in a file. Its name must be one a key can hold.
pub fn quick_start_site_name(name: &str) -> Result<String, UsageError> {
    if crate::config::is_safe_name(name) {
        Ok(name.to_string())
    } else {
        Err(UsageError(format!(
            "--site {name:?}: not a site name (letters, digits, '.', '-', '_'): `wpbackup list` shows the sites"
        )))
    }
}

/// `restore --site NAME` with no config.json: where the site lives is known from no file, so
/// it goes where `--to DIR` says (the database as the archive's wp-config.php names it, or
/// `--db-name`); without `--to`, the error says what to give.
pub fn quick_start_site(
    name: &str,
    to: Option<&std::path::Path>,
) -> Result<SiteConfig, UsageError> {
    let name = quick_start_site_name(name)?;
    let Some(to) = to else {
        return Err(UsageError(format!(
            "--site {name}: there is no config.json, so the site's directory is not known: restore into the site with --path DIR (its directory) instead of --site, or into another directory with --to DIR"
        )));
    };
    let to =
        std::path::absolute(to).map_err(|e| UsageError(format!("--to {}: {e}", to.display())))?;
    Ok(SiteConfig {
        name,
        path: crate::config::normalize(&to),
        exclude: Vec::new(),
        database: None,
        enabled: true,
        hooks: Default::default(),
        exclude_tables: Vec::new(),
    })
}
