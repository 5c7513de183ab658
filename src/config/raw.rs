//! Stage one of loading config.json: serde structs that mirror the JSON exactly
//! (`deny_unknown_fields`, so a typo is an error rather than a silently ignored setting).
//! `validate` turns them into the typed structs of `config`.

use std::path::PathBuf;

use serde::Deserialize;

use super::healthchecks::RawHealthchecks;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) server_id: Option<String>,
    #[serde(default)]
    pub(super) sites: Vec<RawSite>,
    #[serde(default)]
    pub(super) storage: Vec<RawStorage>,
    #[serde(default)]
    pub(super) compression: RawCompression,
    #[serde(default)]
    pub(super) upload: RawUpload,
    pub(super) retention: Option<RawRetention>,
    #[serde(default)]
    pub(super) report: RawReport,
    pub(super) encryption: Option<RawEncryption>,
    pub(super) healthchecks: Option<RawHealthchecks>,
    #[serde(default)]
    pub(super) database: RawDatabaseLimits,
    #[serde(default)]
    pub(super) restore: RawRestore,
    /// The fleet dashboard's address, linked from the email report.
    pub(super) dashboard_url: Option<String>,
    #[serde(default)]
    pub(super) drill: RawDrill,
    pub(super) differential: Option<RawDifferential>,
    /// Point-in-time recovery: the server's binary log shipped (see src/binlog/).
    pub(super) binlog: Option<RawBinlog>,
    /// The minisign public keys whose signatures readers accept (see sign.rs).
    #[serde(default)]
    pub(super) trusted_keys: Vec<String>,
}

/// `differential`: when a full archive is made and which base a differential one has.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDifferential {
    pub(super) full_every_days: Option<u32>,
    pub(super) level1_every_days: Option<u32>,
    pub(super) max_share_percent: Option<u32>,
}

/// `drill`: how old a site's last proven restore may get, and where drills restore databases.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDrill {
    pub(super) max_age_days: Option<u32>,
    pub(super) database: Option<RawDrillDatabase>,
}

/// `drill.database`: a database server for the drills' scratch databases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDrillDatabase {
    pub(super) host: Option<String>,
    pub(super) user: Option<String>,
    pub(super) password_env: Option<String>,
}

/// `binlog`: the binary log shipped every `every_minutes`, as `database.user` (default: root
/// through the local socket).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBinlog {
    pub(super) every_minutes: Option<u32>,
    pub(super) database: Option<RawDrillDatabase>,
}

/// `restore`: what becomes of the copies a restore keeps of what it replaced.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRestore {
    pub(super) keep_copies_days: Option<u32>,
}

/// `database`: how long the database tools may wait on a server that does not answer.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabaseLimits {
    pub(super) connect_timeout_secs: Option<u64>,
    pub(super) stall_timeout_secs: Option<u64>,
}

/// `encryption`: archives encrypted with age to these public keys (see crypt.rs).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEncryption {
    pub(super) recipients: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSite {
    pub(super) name: Option<String>,
    pub(super) path: Option<PathBuf>,
    #[serde(default)]
    pub(super) exclude: Vec<String>,
    pub(super) database: Option<RawDatabase>,
    pub(super) enabled: Option<bool>,
    pub(super) hooks: Option<RawHooks>,
    #[serde(default)]
    pub(super) exclude_tables: Vec<String>,
}

/// `sites[].hooks`: commands run before and after the site's backup and restore.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHooks {
    #[serde(default)]
    pub(super) before_backup: Vec<Vec<String>>,
    #[serde(default)]
    pub(super) after_backup: Vec<Vec<String>>,
    #[serde(default)]
    pub(super) before_restore: Vec<Vec<String>>,
    #[serde(default)]
    pub(super) after_restore: Vec<Vec<String>>,
    pub(super) timeout_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub(super) name: Option<String>,
    pub(super) user: Option<String>,
    pub(super) password_env: Option<String>,
    pub(super) password: Option<String>,
    pub(super) host: Option<String>,
    pub(super) table_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStorage {
    pub(super) name: Option<String>,
    #[serde(rename = "type")]
    pub(super) kind: Option<String>,
    pub(super) priority: Option<i64>,
    pub(super) endpoint: Option<String>,
    pub(super) region: Option<String>,
    pub(super) bucket: Option<String>,
    pub(super) prefix: Option<String>,
    pub(super) path_style: Option<bool>,
    pub(super) access_key_env: Option<String>,
    pub(super) secret_key_env: Option<String>,
    pub(super) path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCompression {
    pub(super) level: Option<i32>,
    pub(super) threads: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpload {
    pub(super) part_size_mib: Option<u64>,
    pub(super) parts_in_flight: Option<usize>,
    pub(super) connect_timeout_secs: Option<u64>,
    pub(super) timeout_secs: Option<u64>,
    pub(super) max_attempts: Option<u32>,
    pub(super) max_mib_per_sec: Option<f64>,
}

/// `retention`: how many archives `prune` keeps per site per storage (restic's counting).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetention {
    pub(super) keep_last: Option<u32>,
    pub(super) keep_daily: Option<u32>,
    pub(super) keep_weekly: Option<u32>,
    pub(super) keep_monthly: Option<u32>,
    pub(super) keep_yearly: Option<u32>,
}

/// `report`: when `backup` emails the report itself.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReport {
    pub(super) on_failure: Option<bool>,
}
