//! Configuration: the validated types the rest of the program uses ([`Config`] and its parts),
//! loading them from config.json ([`Config::load`], [`Config::parse`]) or making one for a bare
//! path ([`Config::for_path`]), and [`ConfigError`], which names the JSON path it concerns
//! (`storage[1].bucket: missing`).
//!
//! Loading happens in two stages, as borgmatic and rustic do it: `raw` mirrors the JSON
//! exactly, `validate` checks it into the types here. Secrets never live in config.json:
//! fields ending in `_env` name a variable looked up in the [`Env`] (process environment first,
//! `.env` second). The home directory's layout is [`Paths`].

mod database;
#[cfg(test)]
mod documented;
pub mod dotenv;
mod env;
pub mod healthchecks;
mod paths;
#[cfg(test)]
pub(crate) mod proptests;
mod raw;
#[cfg(test)]
mod tests;
mod validate;

pub use database::{DatabaseConfig, DbHost, DbHostError, Timeouts, parse_db_host};
pub use env::{Env, default_server_id, hostname, is_generic_server_id};
pub use healthchecks::Healthchecks;
pub use paths::{Paths, normalize};
pub use validate::check_dashboard_url;

use std::path::{Path, PathBuf};

use crate::error::UsageError;
use crate::retention::Policy;
use crate::secret::Secret;

/// A config problem, with the JSON path it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {path}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub path: String,
    pub message: String,
}

// Stage two: validated, typed.

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server_id: String,
    pub sites: Vec<SiteConfig>,
    /// Sorted by priority, 1 first.
    pub storage: Vec<StorageConfig>,
    pub compression: Compression,
    /// `None`: no retention configured; nothing is deleted (`prune` keeps every archive).
    pub retention: Option<Policy>,
    /// `None`: archives stored as plain `.tar.zst`; else encrypted to these age recipients.
    pub encryption: Option<crate::crypt::Encryption>,
    /// `None`: no dead man's switch pings.
    pub healthchecks: Option<Healthchecks>,
    /// Limits on waiting for a database server.
    pub database: Timeouts,
    pub report: ReportSettings,
    pub restore: RestoreSettings,
    /// The fleet dashboard's address (`https://...`, no trailing slash): the email report links
    /// to it and to each failed site's page. `None`: no links.
    pub dashboard_url: Option<String>,
    pub drill: DrillSettings,
    /// Differential archives between fulls; `None`: every archive is full.
    pub differential: Option<DiffPolicy>,
    /// `binlog`: point-in-time recovery (the binary log shipped); `None`: off.
    pub binlog: Option<BinlogSettings>,
    /// `upload`: how archives are uploaded (its limit applies to every storage).
    pub upload: UploadSettings,
    /// `trusted_keys`: the keys whose archive signatures are accepted (besides this server's
    /// own key and `--trusted-key`).
    pub trusted_keys: Vec<crate::sign::PublicKey>,
}

/// `differential` in config.json: a full archive every `full_every_days`; between them a
/// level-1 differential (the changes since the full) every `level1_every_days` (0: every
/// differential is level 1), and level-2 ones (the changes since the newest level 1) on the
/// other runs. A differential whose changed files would pass `max_share_percent` of the full's
/// bytes is made one level up instead (level 2 -> level 1 -> full). The defaults (30, 6, 50)
/// are the cheapest measured in BENCHMARKS.md (issue 13: 30 nights; 6 stored 120 MiB less than 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffPolicy {
    pub full_every_days: u32,
    pub level1_every_days: u32,
    pub max_share_percent: u32,
}

impl Default for DiffPolicy {
    fn default() -> Self {
        DiffPolicy {
            full_every_days: 30,
            level1_every_days: 6,
            max_share_percent: 50,
        }
    }
}

/// `drill` in config.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillSettings {
    /// A site whose last passed drill is older than this is flagged (default 8: a weekly
    /// drill and a day's grace).
    pub max_age_days: u32,
    /// The server drills create their scratch databases on (its `name` is empty); `None`: each
    /// site's own database server.
    pub database: Option<DatabaseConfig>,
}

impl Default for DrillSettings {
    fn default() -> Self {
        DrillSettings {
            max_age_days: 8,
            database: None,
        }
    }
}

/// `binlog` in config.json: the server's binary log shipped (`wpbackup binlog`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogSettings {
    /// How often the timer ships it (default 5).
    pub every_minutes: u32,
    /// The server-level user that reads the binary log (its `name` is empty); `None`: root
    /// through the local socket (`MYSQL_UNIX_PORT`, else the client's default).
    pub database: Option<DatabaseConfig>,
}

/// `restore` in config.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreSettings {
    /// Days a restore's copies of what it replaced (the saved database, the previous files)
    /// are kept before `prune` removes them; default 7.
    pub keep_copies_days: u32,
}

impl Default for RestoreSettings {
    fn default() -> Self {
        RestoreSettings {
            keep_copies_days: 7,
        }
    }
}

/// `report` in config.json (SMTP itself is configured in .env).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportSettings {
    /// `backup` emails the report when a site fails (default: no).
    pub on_failure: bool,
}

#[derive(Debug, Clone)]
pub struct SiteConfig {
    pub name: String,
    pub path: PathBuf,
    pub exclude: Vec<String>,
    /// `None`: read the credentials from the site's wp-config.php.
    pub database: Option<DatabaseConfig>,
    pub enabled: bool,
    /// Commands run before and after the site's backup and restore (`hooks`).
    pub hooks: Hooks,
    /// Tables whose structure is dumped but not their rows (`exclude_tables`).
    pub exclude_tables: Vec<String>,
}

/// `sites[].hooks` in config.json: commands (argv arrays, no shell unless one is named) run
/// before and after the site's backup and restore, each within `timeout_secs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    pub before_backup: Vec<Vec<String>>,
    pub after_backup: Vec<Vec<String>>,
    pub before_restore: Vec<Vec<String>>,
    pub after_restore: Vec<Vec<String>>,
    /// The longest one command may run before it is killed (default 300).
    pub timeout_secs: u64,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            before_backup: Vec::new(),
            after_backup: Vec::new(),
            before_restore: Vec::new(),
            after_restore: Vec::new(),
            timeout_secs: 300,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub name: String,
    pub priority: i64,
    pub kind: StorageKind,
}

#[derive(Debug, Clone)]
pub enum StorageKind {
    S3(Box<S3Config>),
    Local { path: PathBuf },
}

#[derive(Debug, Clone)]
pub struct S3Config {
    /// `None`: AWS itself.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub prefix: String,
    pub path_style: bool,
    pub access_key: Secret,
    pub secret_key: Secret,
    /// The `.env` variables the keys come from, for messages that say what to fix.
    pub key_vars: (String, String),
    pub upload: UploadSettings,
}

/// zstd settings.
#[derive(Debug, Clone, Copy)]
pub struct Compression {
    /// 1..=19; default 3.
    pub level: i32,
    /// Worker threads; 0 means one per core.
    pub threads: u32,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            level: 3,
            threads: 0,
        }
    }
}

/// How uploads are cut and bounded.
#[derive(Debug, Clone, Copy)]
pub struct UploadSettings {
    /// Multipart part size (every part but the last has this size, as R2 requires).
    pub part_size: usize,
    /// Parts uploading at once; memory is bounded by part_size * (parts_in_flight + 1).
    pub parts_in_flight: usize,
    pub connect_timeout_secs: u64,
    /// Per request attempt.
    pub timeout_secs: u64,
    pub max_attempts: u32,
    /// `upload.max_mib_per_sec` in bytes per second: no storage is handed an archive faster
    /// (`None`: no limit).
    pub max_bytes_per_sec: Option<u64>,
}

impl Default for UploadSettings {
    fn default() -> Self {
        UploadSettings {
            // 8 MiB, as the aws CLI: with two parts in flight and one filling, peak RSS stays
            // under 100 MiB (measured: 115 -> 80 MiB for wpbackup itself on the full benchmark
            // workload, BENCHMARKS.md); archives up to ~78 GiB (10,000 parts).
            part_size: 8 * 1024 * 1024,
            parts_in_flight: 2,
            connect_timeout_secs: 10,
            timeout_secs: 120,
            max_attempts: 3,
            max_bytes_per_sec: None,
        }
    }
}

impl Config {
    /// The site called `name` (as `--site` names it), or the usage error that lists the known
    /// ones.
    pub fn site(&self, name: &str) -> Result<&SiteConfig, UsageError> {
        self.sites.iter().find(|s| s.name == name).ok_or_else(|| {
            let known: Vec<_> = self.sites.iter().map(|s| s.name.as_str()).collect();
            UsageError(format!(
                "--site {name}: no such site in config.json (known: {})",
                known.join(", ")
            ))
        })
    }

    /// Read and validate `path`, looking secrets up in `env`.
    pub fn load(path: &Path, env: &Env) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            path: "(file)".into(),
            message: if e.kind() == std::io::ErrorKind::NotFound
                && path.with_file_name("sites.json").exists()
            {
                "not found, but the deprecated sites.json is beside it: run `wpbackup configure` to migrate it".into()
            } else if e.kind() == std::io::ErrorKind::NotFound {
                "not found: run `wpbackup configure`, or pass --config FILE or --home DIR".into()
            } else {
                format!("cannot read: {e}")
            },
        })?;
        Config::parse(&text, &file, env)
    }

    /// Validate config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str, env: &Env) -> Result<Config, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let raw: raw::RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let path = match inner.classify() {
                // Not valid JSON: where in the text is what a person can act on.
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    let (line, column) = syntax_position(text, &inner);
                    format!("line {line}, column {column}")
                }
                _ if path.is_empty() || path == "." => "(root)".into(),
                _ => path,
            };
            ConfigError {
                file: file.to_string(),
                path,
                message: clean_serde_message(&inner.to_string()),
            }
        })?;
        validate::Validator { file, env }.config(raw)
    }

    /// A config with no file: one site at `path`, stored in `<home>/archives` (`backup --path`).
    pub fn for_path(path: &Path, home: &Path, env: &Env) -> Config {
        let name = path
            .canonicalize()
            .unwrap_or_else(|_| path.to_path_buf())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "site".into());
        let mut config = Config::quick_start(home, env);
        config.sites.push(SiteConfig {
            name,
            path: normalize(path),
            exclude: Vec::new(),
            database: None,
            enabled: true,
            hooks: Hooks::default(),
            exclude_tables: Vec::new(),
        });
        config
    }

    /// The quick start's config, with no file and no site: the archives `backup --path` wrote
    /// to `<home>/archives`, for `list`, `verify` and `restore --path` to read back.
    pub fn quick_start(home: &Path, env: &Env) -> Config {
        Config {
            server_id: default_server_id(env),
            sites: Vec::new(),
            storage: vec![StorageConfig {
                name: "local".into(),
                priority: 1,
                kind: StorageKind::Local {
                    path: home.join("archives"),
                },
            }],
            compression: Compression::default(),
            retention: None,
            report: ReportSettings::default(),
            restore: RestoreSettings::default(),
            drill: DrillSettings::default(),
            binlog: None,
            differential: None,
            encryption: None,
            healthchecks: None,
            database: Timeouts::default(),
            dashboard_url: None,
            upload: UploadSettings::default(),
            trusted_keys: Vec::new(),
        }
    }
}

/// Where a syntax error is, as line and column (1-based). serde_json reports a trailing comma at
/// the `]` or `}` after it; the comma is what to remove, so that is where it points.
fn syntax_position(text: &str, e: &serde_json::Error) -> (usize, usize) {
    let at = (e.line(), e.column());
    if !e.to_string().starts_with("trailing comma") {
        return at;
    }
    // The byte offset of the reported position (serde_json counts columns in bytes).
    let Some(line_start) = text
        .split_inclusive('\n')
        .take(e.line().saturating_sub(1))
        .map(str::len)
        .try_fold(0usize, usize::checked_add)
    else {
        return at;
    };
    let end = (line_start + e.column().saturating_sub(1)).min(text.len());
    let Some(before) = text.get(..end) else {
        return at;
    };
    match before.trim_end().strip_suffix(',') {
        Some(head) => {
            let line = head.matches('\n').count() + 1;
            let column = head.len() - head.rfind('\n').map_or(0, |i| i + 1) + 1;
            (line, column)
        }
        None => at,
    }
}

/// serde's messages end with " at line L column C", which the JSON path already replaces.
fn clean_serde_message(msg: &str) -> String {
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    msg.replace("missing field", "missing key")
        .replace("unknown field", "unknown key")
}

/// Names that become directory and key components must be plain.
pub fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}
