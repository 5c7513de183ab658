//! Configuration: the home directory, `config.json` and `.env`.
//!
//! Loading happens in two stages, as borgmatic and rustic do it: serde structs that mirror the
//! JSON exactly (`deny_unknown_fields`, so a typo is an error rather than a silently ignored
//! setting), then validation into typed structs ([`Config`]) that the rest of the program uses.
//! Every error names its JSON path (`storage[1].bucket: missing`).
//!
//! Secrets never live in config.json: fields ending in `_env` name a variable that is looked up
//! in the process environment first and in `.env` second. `.env` is read into a private map and
//! never exported, so child processes (the dump tool) do not inherit its secrets.

mod database;
#[cfg(test)]
mod documented;
#[cfg(test)]
pub(crate) mod proptests;

pub use database::{DatabaseConfig, DbHost, Timeouts, parse_db_host};

use std::collections::HashMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::retention::Policy;
use crate::secret::Secret;

/// Default home directory, the original tool's.
pub const DEFAULT_HOME: &str = "/opt/wordpress-backup";

/// A config problem, with the JSON path it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {path}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub path: String,
    pub message: String,
}

/// Where the home directory and its files are.
#[derive(Debug, Clone)]
pub struct Paths {
    pub home: PathBuf,
    pub config: PathBuf,
    pub env_file: PathBuf,
    pub db: PathBuf,
    pub lock: PathBuf,
}

impl Paths {
    /// `--home` (or `WPBACKUP_HOME`, which clap maps onto it), else the default; `--config`
    /// and `--env-file` override the two files.
    pub fn resolve(
        home: Option<PathBuf>,
        config: Option<PathBuf>,
        env_file: Option<PathBuf>,
    ) -> Paths {
        let home = home.unwrap_or_else(|| PathBuf::from(DEFAULT_HOME));
        Paths {
            config: config.unwrap_or_else(|| home.join("config.json")),
            env_file: env_file.unwrap_or_else(|| home.join(".env")),
            db: home.join("backups.db"),
            lock: home.join("wpbackup.lock"),
            home,
        }
    }
}

/// Variables from the process environment and `.env`; the process environment wins.
#[derive(Clone, Default)]
pub struct Env {
    file: HashMap<String, String>,
    file_path: PathBuf,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("file_path", &self.file_path)
            .finish_non_exhaustive()
    }
}

impl Env {
    /// Read `.env` if it exists. Returns the warnings to show (a file others can read).
    pub fn load(path: &Path) -> anyhow::Result<(Env, Vec<String>)> {
        let mut warnings = Vec::new();
        let mut file = HashMap::new();
        match std::fs::metadata(path) {
            Ok(meta) => {
                if meta.permissions().mode() & 0o077 != 0 {
                    warnings.push(format!(
                        "{} is readable by group or others (mode {:o}); it holds secrets: run `chmod 600 {}`",
                        path.display(),
                        meta.permissions().mode() & 0o777,
                        path.display()
                    ));
                }
                let iter = dotenvy::from_path_iter(path)
                    .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
                for item in iter {
                    let (k, v) = item.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                    file.insert(k, v);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("{}: cannot read: {e}", path.display()),
        }
        Ok((
            Env {
                file,
                file_path: path.to_path_buf(),
            },
            warnings,
        ))
    }

    /// An environment from a map instead of a file (`configure` validates a draft with it).
    pub fn from_map(file: HashMap<String, String>) -> Env {
        Env {
            file,
            file_path: PathBuf::from(".env"),
        }
    }

    /// An environment of `.env` pairs (unit tests).
    #[cfg(test)]
    pub fn from_pairs(vars: &[(&str, &str)]) -> Env {
        Env::from_map(
            vars.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| self.file.get(name).cloned())
    }

    pub fn secret(&self, name: &str) -> Option<Secret> {
        self.get(name).map(Secret::new)
    }

    pub fn file_path(&self) -> &Path {
        &self.file_path
    }
}

// ---------------------------------------------------------------------------------------------
// Stage one: the JSON as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server_id: Option<String>,
    #[serde(default)]
    sites: Vec<RawSite>,
    #[serde(default)]
    storage: Vec<RawStorage>,
    #[serde(default)]
    compression: RawCompression,
    #[serde(default)]
    upload: RawUpload,
    retention: Option<RawRetention>,
    #[serde(default)]
    report: RawReport,
    encryption: Option<RawEncryption>,
    healthchecks: Option<crate::report::healthchecks::RawHealthchecks>,
    #[serde(default)]
    database: RawDatabaseLimits,
}

/// `database`: how long the database tools may wait on a server that does not answer.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabaseLimits {
    connect_timeout_secs: Option<u64>,
    stall_timeout_secs: Option<u64>,
}

/// `encryption`: archives encrypted with age to these public keys (see crypt.rs).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEncryption {
    recipients: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    name: Option<String>,
    path: Option<PathBuf>,
    #[serde(default)]
    exclude: Vec<String>,
    database: Option<RawDatabase>,
    enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    name: Option<String>,
    user: Option<String>,
    password_env: Option<String>,
    password: Option<String>,
    host: Option<String>,
    table_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    priority: Option<i64>,
    endpoint: Option<String>,
    region: Option<String>,
    bucket: Option<String>,
    prefix: Option<String>,
    path_style: Option<bool>,
    access_key_env: Option<String>,
    secret_key_env: Option<String>,
    path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompression {
    level: Option<i32>,
    threads: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpload {
    part_size_mib: Option<u64>,
    parts_in_flight: Option<usize>,
    connect_timeout_secs: Option<u64>,
    timeout_secs: Option<u64>,
    max_attempts: Option<u32>,
}

/// `retention`: how many archives `prune` keeps per site per storage (restic's counting).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    keep_last: Option<u32>,
    keep_daily: Option<u32>,
    keep_weekly: Option<u32>,
    keep_monthly: Option<u32>,
    keep_yearly: Option<u32>,
}

/// `report`: when `backup` emails the report itself.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport {
    on_failure: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Stage two: validated, typed.

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server_id: String,
    pub sites: Vec<SiteConfig>,
    /// Sorted by priority, 1 first.
    pub storage: Vec<StorageConfig>,
    pub compression: Compression,
    pub upload: UploadSettings,
    /// `None`: no retention configured; `prune` refuses and `backup` deletes nothing.
    pub retention: Option<Policy>,
    /// `None`: archives stored as plain `.tar.zst`; else encrypted to these age recipients.
    pub encryption: Option<crate::crypt::Encryption>,
    /// `None`: no dead man's switch pings.
    pub healthchecks: Option<crate::report::healthchecks::Healthchecks>,
    /// Limits on waiting for a database server.
    pub database: Timeouts,
    pub report: ReportSettings,
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
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub name: String,
    pub priority: i64,
    pub kind: StorageKind,
}

#[derive(Debug, Clone)]
pub enum StorageKind {
    S3(S3Config),
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
        }
    }
}

impl Config {
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
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            ConfigError {
                file: file.to_string(),
                path: if path.is_empty() || path == "." {
                    "(root)".into()
                } else {
                    path
                },
                message: clean_serde_message(&inner.to_string()),
            }
        })?;
        Validator { file, env }.config(raw)
    }

    /// A config with no file: one site at `path`, stored in `<home>/archives` (`backup --path`).
    pub fn for_path(path: &Path, home: &Path, env: &Env) -> Config {
        let name = path
            .canonicalize()
            .unwrap_or_else(|_| path.to_path_buf())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "site".into());
        Config {
            server_id: default_server_id(env),
            sites: vec![SiteConfig {
                name,
                path: path.to_path_buf(),
                exclude: Vec::new(),
                database: None,
                enabled: true,
            }],
            storage: vec![StorageConfig {
                name: "local".into(),
                priority: 1,
                kind: StorageKind::Local {
                    path: home.join("archives"),
                },
            }],
            compression: Compression::default(),
            upload: UploadSettings::default(),
            retention: None,
            report: ReportSettings::default(),
            encryption: None,
            healthchecks: None,
            database: Timeouts::default(),
        }
    }
}

/// Every site's own database block gets the timeouts of config.json's `database` block.
fn fill_timeouts(mut sites: Vec<SiteConfig>, timeouts: Timeouts) -> Vec<SiteConfig> {
    for db in sites.iter_mut().filter_map(|s| s.database.as_mut()) {
        db.timeouts = timeouts;
    }
    sites
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

/// `SERVER_ID` from the environment, else the host name.
pub fn default_server_id(env: &Env) -> String {
    env.get("SERVER_ID").unwrap_or_else(hostname)
}

/// The machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Names that become directory and key components must be plain.
pub fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

struct Validator<'a> {
    file: &'a str,
    env: &'a Env,
}

impl Validator<'_> {
    fn err(&self, path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            path: path.into(),
            message: message.into(),
        }
    }

    fn required<T>(&self, v: Option<T>, path: &str) -> Result<T, ConfigError> {
        v.ok_or_else(|| self.err(path, "missing"))
    }

    fn name(&self, v: Option<String>, path: &str) -> Result<String, ConfigError> {
        let v = self.required(v, path)?;
        if !is_safe_name(&v) {
            return Err(self.err(
                path,
                format!("{v:?} is not a valid name: use letters, digits, '.', '-' and '_' only"),
            ));
        }
        Ok(v)
    }

    fn secret_env(&self, var: Option<String>, path: &str) -> Result<Secret, ConfigError> {
        let var = self.required(var, path)?;
        self.env.secret(&var).ok_or_else(|| {
            self.err(
                path,
                format!(
                    "{var} is not set in the environment or in {}: add `{var}=...` there",
                    self.env.file_path().display()
                ),
            )
        })
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let server_id = match raw.server_id {
            Some(s) => self.name(Some(s), "server_id")?,
            None => default_server_id(self.env),
        };
        let mut sites = Vec::new();
        for (i, s) in raw.sites.into_iter().enumerate() {
            let site = self.site(s, &format!("sites[{i}]"))?;
            if sites.iter().any(|o: &SiteConfig| o.name == site.name) {
                return Err(self.err(
                    format!("sites[{i}].name"),
                    format!("{:?} is used twice", site.name),
                ));
            }
            sites.push(site);
        }
        let upload = self.upload(raw.upload)?;
        let mut storage = Vec::new();
        for (i, s) in raw.storage.into_iter().enumerate() {
            let st = self.storage(s, &format!("storage[{i}]"), upload)?;
            if storage.iter().any(|o: &StorageConfig| o.name == st.name) {
                return Err(self.err(
                    format!("storage[{i}].name"),
                    format!("{:?} is used twice", st.name),
                ));
            }
            storage.push(st);
        }
        storage.sort_by_key(|s| s.priority);
        let compression = Compression {
            level: raw.compression.level.unwrap_or(3),
            threads: raw.compression.threads.unwrap_or(0),
        };
        if !(1..=19).contains(&compression.level) {
            return Err(self.err(
                "compression.level",
                "must be between 1 and 19 (3 is a good default)",
            ));
        }
        let retention = match raw.retention {
            None => None,
            Some(r) => Some(self.retention(r)?),
        };
        let encryption = match raw.encryption {
            None => None,
            Some(e) => {
                let keys = self.required(e.recipients, "encryption.recipients")?;
                Some(crate::crypt::Encryption::parse(&keys).map_err(|(i, msg)| {
                    self.err(
                        if keys.is_empty() {
                            "encryption.recipients".to_string()
                        } else {
                            format!("encryption.recipients[{i}]")
                        },
                        msg,
                    )
                })?)
            }
        };
        let healthchecks = match raw.healthchecks {
            None => None,
            Some(h) => Some(
                crate::report::healthchecks::Healthchecks::from_raw(h)
                    .map_err(|(path, msg)| self.err(format!("healthchecks{path}"), msg))?,
            ),
        };
        let d = Timeouts::default();
        let database = Timeouts {
            connect_secs: raw.database.connect_timeout_secs.unwrap_or(d.connect_secs),
            stall_secs: raw.database.stall_timeout_secs.unwrap_or(d.stall_secs),
        };
        if database.connect_secs == 0 || database.stall_secs == 0 {
            return Err(self.err("database", "timeouts must be at least 1 second"));
        }
        let sites = fill_timeouts(sites, database);
        Ok(Config {
            server_id,
            sites,
            storage,
            compression,
            upload,
            retention,
            report: ReportSettings {
                on_failure: raw.report.on_failure.unwrap_or(false),
            },
            encryption,
            healthchecks,
            database,
        })
    }

    fn retention(&self, r: RawRetention) -> Result<Policy, ConfigError> {
        let p = Policy {
            keep_last: r.keep_last.unwrap_or(0),
            keep_daily: r.keep_daily.unwrap_or(0),
            keep_weekly: r.keep_weekly.unwrap_or(0),
            keep_monthly: r.keep_monthly.unwrap_or(0),
            keep_yearly: r.keep_yearly.unwrap_or(0),
        };
        if p.is_empty() {
            return Err(self.err(
                "retention",
                "keeps nothing: set at least one of keep_last, keep_daily, keep_weekly, keep_monthly, keep_yearly above 0 (or remove the block to keep everything)",
            ));
        }
        Ok(p)
    }

    fn site(&self, s: RawSite, p: &str) -> Result<SiteConfig, ConfigError> {
        let name = self.name(s.name, &format!("{p}.name"))?;
        let path = self.required(s.path, &format!("{p}.path"))?;
        if !path.is_absolute() {
            return Err(self.err(format!("{p}.path"), "must be an absolute path"));
        }
        for (j, pat) in s.exclude.iter().enumerate() {
            if let Err(e) = globset::Glob::new(pat) {
                return Err(self.err(
                    format!("{p}.exclude[{j}]"),
                    format!("not a valid glob: {e}"),
                ));
            }
        }
        let database = match s.database {
            None => None,
            Some(d) => Some(self.database(d, &format!("{p}.database"))?),
        };
        Ok(SiteConfig {
            name,
            path,
            exclude: s.exclude,
            database,
            enabled: s.enabled.unwrap_or(true),
        })
    }

    fn database(&self, d: RawDatabase, p: &str) -> Result<DatabaseConfig, ConfigError> {
        let name = self.required(d.name, &format!("{p}.name"))?;
        let user = self.required(d.user, &format!("{p}.user"))?;
        let password = match (d.password_env, d.password) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    format!("{p}.password"),
                    "give password_env or password, not both",
                ));
            }
            (Some(var), None) => self.secret_env(Some(var), &format!("{p}.password_env"))?,
            (None, Some(pw)) => {
                tracing::warn!(
                    "{}: {p}.password: a password inline in config.json is deprecated; move it to .env and use password_env",
                    self.file
                );
                Secret::new(pw)
            }
            (None, None) => return Err(self.err(format!("{p}.password_env"), "missing")),
        };
        let host = parse_db_host(d.host.as_deref().unwrap_or("localhost"))
            .map_err(|e| self.err(format!("{p}.host"), e))?;
        Ok(DatabaseConfig {
            name,
            user,
            password,
            host,
            table_prefix: d.table_prefix,
            // Set from the `database` block once it is read (see `fill_timeouts`).
            timeouts: Timeouts::default(),
        })
    }

    fn storage(
        &self,
        s: RawStorage,
        p: &str,
        upload: UploadSettings,
    ) -> Result<StorageConfig, ConfigError> {
        let name = self.name(s.name, &format!("{p}.name"))?;
        let priority = self.required(s.priority, &format!("{p}.priority"))?;
        let kind_name = self.required(s.kind, &format!("{p}.type"))?;
        let kind = match kind_name.as_str() {
            "local" => {
                for (field, set) in [
                    ("endpoint", s.endpoint.is_some()),
                    ("region", s.region.is_some()),
                    ("bucket", s.bucket.is_some()),
                    ("access_key_env", s.access_key_env.is_some()),
                    ("secret_key_env", s.secret_key_env.is_some()),
                    ("path_style", s.path_style.is_some()),
                ] {
                    if set {
                        return Err(
                            self.err(format!("{p}.{field}"), "not allowed for a local storage")
                        );
                    }
                }
                let path = self.required(s.path, &format!("{p}.path"))?;
                if !path.is_absolute() {
                    return Err(self.err(format!("{p}.path"), "must be an absolute path"));
                }
                StorageKind::Local { path }
            }
            "s3" => {
                if s.path.is_some() {
                    return Err(self.err(
                        format!("{p}.path"),
                        "not allowed for an s3 storage (use bucket and prefix)",
                    ));
                }
                let endpoint = match s.endpoint {
                    Some(e) if !(e.starts_with("http://") || e.starts_with("https://")) => {
                        return Err(self.err(
                            format!("{p}.endpoint"),
                            "must start with https:// (or http://)",
                        ));
                    }
                    Some(e) => Some(e.trim_end_matches('/').to_string()),
                    None => None,
                };
                let bucket = self.required(s.bucket, &format!("{p}.bucket"))?;
                let mut prefix = s.prefix.unwrap_or_default();
                if !prefix.is_empty() && !prefix.ends_with('/') {
                    prefix.push('/');
                }
                let region = s.region.unwrap_or_else(|| "us-east-1".into());
                StorageKind::S3(S3Config {
                    path_style: s.path_style.unwrap_or(endpoint.is_some()),
                    endpoint,
                    region,
                    bucket,
                    prefix,
                    access_key: self
                        .secret_env(s.access_key_env, &format!("{p}.access_key_env"))?,
                    secret_key: self
                        .secret_env(s.secret_key_env, &format!("{p}.secret_key_env"))?,
                    upload,
                })
            }
            other => {
                return Err(self.err(
                    format!("{p}.type"),
                    format!("{other:?} is not a storage type: use \"s3\" or \"local\""),
                ));
            }
        };
        Ok(StorageConfig {
            name,
            priority,
            kind,
        })
    }

    fn upload(&self, u: RawUpload) -> Result<UploadSettings, ConfigError> {
        let d = UploadSettings::default();
        let part_mib = u
            .part_size_mib
            .unwrap_or((d.part_size / (1024 * 1024)) as u64);
        if !(5..=5 * 1024).contains(&part_mib) {
            return Err(self.err(
                "upload.part_size_mib",
                "must be between 5 and 5120 (S3's part size limits)",
            ));
        }
        let s = UploadSettings {
            part_size: (part_mib * 1024 * 1024) as usize,
            parts_in_flight: u.parts_in_flight.unwrap_or(d.parts_in_flight),
            connect_timeout_secs: u.connect_timeout_secs.unwrap_or(d.connect_timeout_secs),
            timeout_secs: u.timeout_secs.unwrap_or(d.timeout_secs),
            max_attempts: u.max_attempts.unwrap_or(d.max_attempts),
        };
        if s.parts_in_flight == 0 || s.parts_in_flight > 16 {
            return Err(self.err("upload.parts_in_flight", "must be between 1 and 16"));
        }
        if s.connect_timeout_secs == 0 || s.timeout_secs == 0 {
            return Err(self.err("upload", "timeouts must be at least 1 second"));
        }
        if s.max_attempts == 0 {
            return Err(self.err("upload.max_attempts", "must be at least 1"));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::from_map(HashMap::from([
            ("K".to_string(), "key".to_string()),
            ("S".to_string(), "secret".to_string()),
            ("PW".to_string(), "pw".to_string()),
            ("SERVER_ID".to_string(), "test-host".to_string()),
        ]))
    }

    fn err(text: &str) -> String {
        Config::parse(text, "config.json", &env())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn example_config_parses() {
        let mut map = HashMap::new();
        for var in [
            "EXAMPLE_DB_PASSWORD",
            "IDRIVE_ACCESS_KEY_ID",
            "IDRIVE_SECRET_ACCESS_KEY",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            map.insert(var.to_string(), "x".to_string());
        }
        let text = include_str!("../../config.example.json");
        let c = Config::parse(text, "config.example.json", &Env::from_map(map)).unwrap();
        assert_eq!(c.sites.len(), 1);
        assert_eq!(c.storage.len(), 3);
        assert_eq!(c.storage[0].name, "idrive");
        let r = c.retention.expect("the example sets a retention policy");
        assert!(r.keep_daily > 0 && r.keep_monthly > 0, "{r:?}");
        assert!(c.report.on_failure);
    }

    #[test]
    fn errors_name_the_json_path() {
        let cases = [
            (
                r#"{"sites":[{"name":"a","path":"/x","exlude":[]}]}"#,
                "sites[0].exlude: unknown key `exlude`, expected one of",
            ),
            (
                r#"{"storage":[{"name":"a","type":"local","priority":1,"path":"/b"},{"name":"b","type":"s3","priority":2,"access_key_env":"K","secret_key_env":"S"}]}"#,
                "storage[1].bucket: missing",
            ),
            (
                r#"{"storage":[{"name":"a","type":"ftp","priority":1}]}"#,
                "storage[0].type: \"ftp\" is not a storage type",
            ),
            (
                r#"{"storage":[{"name":"a","type":"s3","priority":1,"bucket":"b","access_key_env":"NOPE","secret_key_env":"S"}]}"#,
                "storage[0].access_key_env: NOPE is not set",
            ),
            (
                r#"{"sites":[{"name":"a","path":"/x","database":{"name":"d","user":"u"}}]}"#,
                "sites[0].database.password_env: missing",
            ),
            (
                r#"{"sites":[{"name":"a","path":"/x","enabled":"yes"}]}"#,
                "sites[0].enabled: invalid type",
            ),
            (
                r#"{"sites":[{"name":"a/b","path":"/x"}]}"#,
                "sites[0].name: \"a/b\" is not a valid name",
            ),
            (
                r#"{"compression":{"level":40}}"#,
                "compression.level: must be between 1 and 19",
            ),
            (
                r#"{"sites":[{"name":"a","path":"/x","exclude":["a[" ]}]}"#,
                "sites[0].exclude[0]: not a valid glob",
            ),
            (
                r#"{"storage":[{"name":"a","type":"local","priority":1,"path":"/b","bucket":"x"}]}"#,
                "storage[0].bucket: not allowed for a local storage",
            ),
            (r#"{"sites": 3}"#, "sites: invalid type"),
            (
                r#"{"retention":{"keep_daily":7,"keep_hourly":24}}"#,
                "retention.keep_hourly: unknown key `keep_hourly`",
            ),
            (
                r#"{"retention":{"keep_daily":-1}}"#,
                "retention.keep_daily: invalid value",
            ),
            (
                r#"{"retention":{"keep_last":0}}"#,
                "retention: keeps nothing",
            ),
            (
                r#"{"report":{"on_failure":true,"on_sucess":true}}"#,
                "report.on_sucess: unknown key `on_sucess`",
            ),
            (
                r#"{"report":{"on_failure":"yes"}}"#,
                "report.on_failure: invalid type",
            ),
            (
                r#"{"sites":[{"name":"a","path":"/x"},{"name":"a","path":"/y"}]}"#,
                "sites[1].name: \"a\" is used twice",
            ),
            (
                r#"{"encryption":{"recipients":["age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq","age1bad"]}}"#,
                "encryption.recipients[1]: \"age1bad\" is not an age public key",
            ),
            (
                r#"{"encryption":{"recipients":[]}}"#,
                "encryption.recipients: no recipient",
            ),
            (r#"{"encryption":{}}"#, "encryption.recipients: missing"),
            (
                r#"{"encryption":{"recipients":["x"],"passphrase":"p"}}"#,
                "encryption.passphrase: unknown key",
            ),
            (
                r#"{"healthchecks":{"url":"ftp://x"}}"#,
                "healthchecks.url: must start with https://",
            ),
            (
                r#"{"healthchecks":{"start":"https://x/s","succes":"https://x"}}"#,
                "healthchecks.succes: unknown key",
            ),
            (r#"{"healthchecks":{}}"#, "healthchecks: no ping URL"),
            (
                r#"{"database":{"stall_timeout_secs":0}}"#,
                "database: timeouts must be at least 1 second",
            ),
            (
                r#"{"database":{"timeout":3}}"#,
                "database.timeout: unknown key",
            ),
        ];
        for (text, want) in cases {
            let got = err(text);
            assert!(
                got.contains(want),
                "config {text}\n  got:  {got}\n  want: {want}"
            );
            assert!(got.starts_with("config.json: "), "{got}");
        }
    }

    #[test]
    fn storage_sorted_and_secrets_resolved() {
        let c = Config::parse(
            r#"{"server_id":"web-01","storage":[
                {"name":"b","type":"local","priority":2,"path":"/b"},
                {"name":"a","type":"s3","priority":1,"bucket":"bk","endpoint":"http://127.0.0.1:9000/","access_key_env":"K","secret_key_env":"S"}]}"#,
            "c",
            &env(),
        )
        .unwrap();
        assert_eq!(c.server_id, "web-01");
        assert_eq!(c.storage[0].name, "a");
        let StorageKind::S3(s3) = &c.storage[0].kind else {
            panic!()
        };
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(s3.path_style);
        assert_eq!(s3.secret_key.expose(), "secret");
        assert!(!format!("{c:?}").contains("secret\""));
    }

    #[test]
    fn server_id_defaults_to_env() {
        let c = Config::parse("{}", "c", &env()).unwrap();
        assert_eq!(c.server_id, "test-host");
        assert!(c.retention.is_none());
        assert!(!c.report.on_failure);
        let c = Config::parse(r#"{"report":{"on_failure":true}}"#, "c", &env()).unwrap();
        assert!(c.report.on_failure);
    }

    #[test]
    fn retention_rules_default_to_zero() {
        let c = Config::parse(r#"{"retention":{"keep_weekly":4}}"#, "c", &env()).unwrap();
        assert_eq!(
            c.retention,
            Some(Policy {
                keep_weekly: 4,
                ..Policy::default()
            })
        );
    }
}
