//! Stage two of loading config.json: the `raw` structs checked and turned into
//! the typed [`Config`]; every error names the JSON path it concerns.

use super::healthchecks::Healthchecks;
use super::normalize;
use super::raw::{
    RawBinlog, RawCompression, RawConfig, RawDatabase, RawDatabaseLimits, RawDifferential,
    RawDrill, RawDrillDatabase, RawEncryption, RawHooks, RawRestore, RawRetention, RawSite,
    RawStorage, RawUpload,
};
use super::{
    BinlogSettings, Compression, Config, ConfigError, DatabaseConfig, DiffPolicy, DrillSettings,
    Env, Hooks, ReportSettings, RestoreSettings, S3Config, SiteConfig, StorageConfig, StorageKind,
    Timeouts, UploadSettings, default_server_id, is_safe_name, parse_db_host,
};
use crate::crypt::Encryption;
use crate::retention::Policy;
use crate::secret::Secret;
use crate::sign::PublicKey;

/// `"retention": {}`: a week of daily archives, a month of weekly ones, a year of monthly ones.
/// Only an empty block means this; once any rule is given, the absent ones are 0 (restic's
/// counting), so an existing policy never changes meaning.
pub(super) const DEFAULT_RETENTION: Policy = Policy {
    keep_last: 0,
    keep_daily: 7,
    keep_weekly: 4,
    keep_monthly: 12,
    keep_yearly: 0,
};

/// Checks the raw structs; `file` names config.json in errors, `env` resolves `_env` fields.
pub(super) struct Validator<'a> {
    pub(super) file: &'a str,
    pub(super) env: &'a Env,
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

    pub(super) fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let server_id = match raw.server_id {
            Some(s) => self.name(Some(s), "server_id")?,
            None => {
                let id = default_server_id(self.env);
                if !is_safe_name(&id) {
                    return Err(self.err(
                        "server_id",
                        format!("{id:?} (SERVER_ID in .env, or the host name) is not a valid name: set \"server_id\" to letters, digits, '.', '-' and '_' only"),
                    ));
                }
                id
            }
        };
        let sites = self.sites(raw.sites)?;
        let upload = self.upload(raw.upload)?;
        let storage = self.storages(raw.storage, upload)?;
        let compression = self.compression(raw.compression)?;
        let retention = match raw.retention {
            None => None,
            Some(r) => Some(self.retention(r)?),
        };
        let encryption = match raw.encryption {
            None => None,
            Some(e) => Some(self.encryption(e)?),
        };
        let healthchecks = match raw.healthchecks {
            None => None,
            Some(h) => Some(
                Healthchecks::from_raw(h)
                    .map_err(|e| self.err(format!("healthchecks{}", e.path()), e.to_string()))?,
            ),
        };
        let database = self.timeouts(raw.database)?;
        let sites = fill_timeouts(sites, database);
        Ok(Config {
            server_id,
            sites,
            storage,
            compression,
            retention,
            report: ReportSettings {
                on_failure: raw.report.on_failure.unwrap_or(false),
            },
            restore: self.restore(raw.restore)?,
            drill: self.drill(raw.drill, database)?,
            binlog: raw.binlog.map(|b| self.binlog(b, database)).transpose()?,
            differential: raw.differential.map(|d| self.differential(d)).transpose()?,
            encryption,
            healthchecks,
            database,
            dashboard_url: raw
                .dashboard_url
                .map(|u| self.dashboard_url(&u))
                .transpose()?,
            upload,
            trusted_keys: self.trusted_keys(&raw.trusted_keys)?,
        })
    }

    fn trusted_keys(&self, keys: &[String]) -> Result<Vec<PublicKey>, ConfigError> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| {
                PublicKey::parse(k).map_err(|e| self.err(format!("trusted_keys[{i}]"), e))
            })
            .collect()
    }

    fn dashboard_url(&self, text: &str) -> Result<String, ConfigError> {
        check_dashboard_url(text).map_err(|message| self.err("dashboard_url", message))
    }

    fn sites(&self, raw: Vec<RawSite>) -> Result<Vec<SiteConfig>, ConfigError> {
        let mut sites = Vec::new();
        for (i, s) in raw.into_iter().enumerate() {
            let site = self.site(s, &format!("sites[{i}]"))?;
            if sites.iter().any(|o: &SiteConfig| o.name == site.name) {
                return Err(self.err(
                    format!("sites[{i}].name"),
                    format!("{:?} is used twice", site.name),
                ));
            }
            sites.push(site);
        }
        Ok(sites)
    }

    /// The storages, sorted by priority.
    fn storages(
        &self,
        raw: Vec<RawStorage>,
        upload: UploadSettings,
    ) -> Result<Vec<StorageConfig>, ConfigError> {
        let mut storage = Vec::new();
        for (i, s) in raw.into_iter().enumerate() {
            let st = self.storage(s, &format!("storage[{i}]"), upload)?;
            if storage.iter().any(|o: &StorageConfig| o.name == st.name) {
                return Err(self.err(
                    format!("storage[{i}].name"),
                    format!("{:?} is used twice", st.name),
                ));
            }
            if let Some(o) = storage.iter().find(|o| o.priority == st.priority) {
                return Err(self.err(
                    format!("storage[{i}].priority"),
                    format!(
                        "{} is also the priority of {:?}: give each storage its own, 1 is tried first",
                        st.priority, o.name
                    ),
                ));
            }
            storage.push(st);
        }
        storage.sort_by_key(|s| s.priority);
        Ok(storage)
    }

    fn compression(&self, c: RawCompression) -> Result<Compression, ConfigError> {
        let compression = Compression {
            level: c.level.unwrap_or(3),
            threads: c.threads.unwrap_or(0),
        };
        if !(1..=19).contains(&compression.level) {
            return Err(self.err(
                "compression.level",
                "must be between 1 and 19 (3 is a good default)",
            ));
        }
        Ok(compression)
    }

    fn encryption(&self, e: RawEncryption) -> Result<Encryption, ConfigError> {
        let keys = self.required(e.recipients, "encryption.recipients")?;
        Encryption::parse(&keys).map_err(|(i, msg)| {
            self.err(
                if keys.is_empty() {
                    "encryption.recipients".to_string()
                } else {
                    format!("encryption.recipients[{i}]")
                },
                msg,
            )
        })
    }

    fn timeouts(&self, t: RawDatabaseLimits) -> Result<Timeouts, ConfigError> {
        let d = Timeouts::default();
        let database = Timeouts {
            connect_secs: t.connect_timeout_secs.unwrap_or(d.connect_secs),
            stall_secs: t.stall_timeout_secs.unwrap_or(d.stall_secs),
        };
        if database.connect_secs == 0 || database.stall_secs == 0 {
            return Err(self.err("database", "timeouts must be at least 1 second"));
        }
        Ok(database)
    }

    fn restore(&self, r: RawRestore) -> Result<RestoreSettings, ConfigError> {
        let d = RestoreSettings::default();
        let days = r.keep_copies_days.unwrap_or(d.keep_copies_days);
        if days == 0 {
            return Err(self.err(
                "restore.keep_copies_days",
                "must be at least 1: the copies a restore keeps are what undoes it (default 7)",
            ));
        }
        Ok(RestoreSettings {
            keep_copies_days: days,
        })
    }

    fn differential(&self, d: RawDifferential) -> Result<DiffPolicy, ConfigError> {
        let def = DiffPolicy::default();
        let p = DiffPolicy {
            full_every_days: d.full_every_days.unwrap_or(def.full_every_days),
            level1_every_days: d.level1_every_days.unwrap_or(def.level1_every_days),
            max_share_percent: d.max_share_percent.unwrap_or(def.max_share_percent),
        };
        if p.full_every_days == 0 {
            return Err(self.err(
                "differential.full_every_days",
                "must be at least 1 (default 30); to make every archive full, remove `differential`",
            ));
        }
        if p.level1_every_days >= p.full_every_days {
            return Err(self.err(
                "differential.level1_every_days",
                format!(
                    "must be less than full_every_days ({}); 0 makes every differential level 1",
                    p.full_every_days
                ),
            ));
        }
        if p.max_share_percent == 0 || p.max_share_percent > 100 {
            return Err(self.err(
                "differential.max_share_percent",
                "must be 1 to 100 (default 50)",
            ));
        }
        Ok(p)
    }

    fn binlog(&self, b: RawBinlog, timeouts: Timeouts) -> Result<BinlogSettings, ConfigError> {
        let every_minutes = b.every_minutes.unwrap_or(5);
        if every_minutes == 0 || every_minutes > 1440 {
            return Err(self.err(
                "binlog.every_minutes",
                "must be 1 to 1440 (default 5): the most minutes of changes a loss can cost",
            ));
        }
        let database = b
            .database
            .map(|db| self.server_user(db, "binlog.database", timeouts))
            .transpose()?;
        Ok(BinlogSettings {
            every_minutes,
            database,
        })
    }

    /// A server-level user (`drill.database`, `binlog.database`): no database name.
    fn server_user(
        &self,
        db: RawDrillDatabase,
        p: &str,
        timeouts: Timeouts,
    ) -> Result<DatabaseConfig, ConfigError> {
        let user = self.required(db.user, &format!("{p}.user"))?;
        let password = self.secret_env(db.password_env, &format!("{p}.password_env"))?;
        let host = parse_db_host(db.host.as_deref().unwrap_or("localhost"))
            .map_err(|e| self.err(format!("{p}.host"), e.to_string()))?;
        Ok(DatabaseConfig {
            name: String::new(),
            user,
            password,
            host,
            table_prefix: None,
            timeouts,
        })
    }

    fn drill(&self, d: RawDrill, timeouts: Timeouts) -> Result<DrillSettings, ConfigError> {
        let max_age_days = d
            .max_age_days
            .unwrap_or(DrillSettings::default().max_age_days);
        if max_age_days == 0 {
            return Err(self.err(
                "drill.max_age_days",
                "must be at least 1 (default 8: a weekly drill and a day's grace)",
            ));
        }
        let database = d
            .database
            .map(|db| self.server_user(db, "drill.database", timeouts))
            .transpose()?;
        Ok(DrillSettings {
            max_age_days,
            database,
        })
    }

    fn retention(&self, r: RawRetention) -> Result<Policy, ConfigError> {
        let rules = [
            r.keep_last,
            r.keep_daily,
            r.keep_weekly,
            r.keep_monthly,
            r.keep_yearly,
        ];
        if rules.iter().all(Option::is_none) {
            return Ok(DEFAULT_RETENTION); // `"retention": {}`
        }
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
                format!(
                    "keeps nothing: set at least one of keep_last, keep_daily, keep_weekly, keep_monthly, keep_yearly above 0, write {{}} for the defaults ({}), or remove the block to keep everything",
                    DEFAULT_RETENTION.describe()
                ),
            ));
        }
        Ok(p)
    }

    fn site(&self, s: RawSite, p: &str) -> Result<SiteConfig, ConfigError> {
        let name = self.name(s.name, &format!("{p}.name"))?;
        let path = normalize(&self.required(s.path, &format!("{p}.path"))?);
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
        let hooks = match s.hooks {
            None => Hooks::default(),
            Some(h) => self.hooks(h, &format!("{p}.hooks"))?,
        };
        for (j, table) in s.exclude_tables.iter().enumerate() {
            if !is_table_name(table) {
                return Err(self.err(
                    format!("{p}.exclude_tables[{j}]"),
                    format!("{table:?} is not a table name: give the table's full name as the database has it (with its prefix, e.g. \"wp_actionscheduler_logs\"): letters, digits, '_', '$' and '-', at most 64"),
                ));
            }
            if s.exclude_tables[..j].contains(table) {
                return Err(self.err(
                    format!("{p}.exclude_tables[{j}]"),
                    format!("{table:?} is listed twice"),
                ));
            }
        }
        Ok(SiteConfig {
            name,
            path,
            exclude: s.exclude,
            database,
            enabled: s.enabled.unwrap_or(true),
            hooks,
            exclude_tables: s.exclude_tables,
        })
    }

    fn hooks(&self, h: RawHooks, p: &str) -> Result<Hooks, ConfigError> {
        let timeout_secs = h.timeout_secs.unwrap_or(Hooks::default().timeout_secs);
        if !(1..=86_400).contains(&timeout_secs) {
            return Err(self.err(
                format!("{p}.timeout_secs"),
                "must be between 1 and 86400 seconds (default 300)",
            ));
        }
        for (phase, commands) in [
            ("before_backup", &h.before_backup),
            ("after_backup", &h.after_backup),
            ("before_restore", &h.before_restore),
            ("after_restore", &h.after_restore),
        ] {
            for (j, argv) in commands.iter().enumerate() {
                let at = format!("{p}.{phase}[{j}]");
                match argv.first() {
                    None => {
                        return Err(self.err(
                            at,
                            "an empty command: give the program and its arguments, e.g. [\"wp\", \"maintenance-mode\", \"activate\"] (for a shell line: [\"sh\", \"-c\", \"...\"])",
                        ));
                    }
                    Some(program) if program.trim().is_empty() => {
                        return Err(self.err(format!("{at}[0]"), "the program is empty"));
                    }
                    Some(_) => {}
                }
                if let Some(k) = argv.iter().position(|a| a.contains('\0')) {
                    return Err(self.err(format!("{at}[{k}]"), "holds a NUL byte"));
                }
            }
        }
        Ok(Hooks {
            before_backup: h.before_backup,
            after_backup: h.after_backup,
            before_restore: h.before_restore,
            after_restore: h.after_restore,
            timeout_secs,
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
            .map_err(|e| self.err(format!("{p}.host"), e.to_string()))?;
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
        mut s: RawStorage,
        p: &str,
        upload: UploadSettings,
    ) -> Result<StorageConfig, ConfigError> {
        let name = self.name(s.name.take(), &format!("{p}.name"))?;
        let priority = self.required(s.priority, &format!("{p}.priority"))?;
        let kind_name = self.required(s.kind.take(), &format!("{p}.type"))?;
        let kind = match kind_name.as_str() {
            "local" => self.local_storage(s, p)?,
            "s3" => StorageKind::S3(Box::new(self.s3_storage(s, p, upload)?)),
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

    fn local_storage(&self, s: RawStorage, p: &str) -> Result<StorageKind, ConfigError> {
        for (field, set) in [
            ("endpoint", s.endpoint.is_some()),
            ("region", s.region.is_some()),
            ("bucket", s.bucket.is_some()),
            ("access_key_env", s.access_key_env.is_some()),
            ("secret_key_env", s.secret_key_env.is_some()),
            ("path_style", s.path_style.is_some()),
        ] {
            if set {
                return Err(self.err(format!("{p}.{field}"), "not allowed for a local storage"));
            }
        }
        let path = normalize(&self.required(s.path, &format!("{p}.path"))?);
        if !path.is_absolute() {
            return Err(self.err(format!("{p}.path"), "must be an absolute path"));
        }
        if let Some(problem) = unfit_local_storage(&path) {
            return Err(self.err(format!("{p}.path"), problem));
        }
        Ok(StorageKind::Local { path })
    }

    fn s3_storage(
        &self,
        s: RawStorage,
        p: &str,
        upload: UploadSettings,
    ) -> Result<S3Config, ConfigError> {
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
        Ok(S3Config {
            path_style: s.path_style.unwrap_or(endpoint.is_some()),
            endpoint,
            region,
            bucket,
            prefix,
            access_key: self
                .secret_env(s.access_key_env.clone(), &format!("{p}.access_key_env"))?,
            secret_key: self
                .secret_env(s.secret_key_env.clone(), &format!("{p}.secret_key_env"))?,
            key_vars: (
                s.access_key_env.unwrap_or_default(),
                s.secret_key_env.unwrap_or_default(),
            ),
            upload,
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
            max_bytes_per_sec: match u.max_mib_per_sec {
                None => None,
                Some(mib) if mib.is_finite() && mib > 0.0 && mib <= 1_000_000.0 => {
                    // At least one byte a second: 0.000001 MiB/s would never end.
                    Some(((mib * 1024.0 * 1024.0) as u64).max(1))
                }
                Some(_) => {
                    return Err(self.err(
                        "upload.max_mib_per_sec",
                        "must be a number above 0 (MiB per second, e.g. 10 or 0.5); remove it for no limit",
                    ));
                }
            },
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

/// A table name as `exclude_tables` takes it: what MariaDB accepts unquoted (plus `-`), and no
/// `.`, which would read as `database.table` in the dump tool's `--ignore-table-data`.
fn is_table_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '-'))
}

/// Every site's own database block gets the timeouts of config.json's `database` block.
fn fill_timeouts(mut sites: Vec<SiteConfig>, timeouts: Timeouts) -> Vec<SiteConfig> {
    for db in sites.iter_mut().filter_map(|s| s.database.as_mut()) {
        db.timeouts = timeouts;
    }
    sites
}

/// `dashboard_url`: where people open the dashboard, so https (http only on this machine, for
/// a dashboard served locally); no user, password, query or fragment, since it is printed in
/// every report and site paths are appended to it. The URL without a trailing slash, or what
/// is wrong with it.
pub fn check_dashboard_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| {
        format!("{text:?} is not a URL ({e}): use the address `npx wrangler deploy` printed, as https://wpbackup-dashboard.example.workers.dev")
    })?;
    let local = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if !(url.scheme() == "https" || url.scheme() == "http" && local) {
        return Err(format!(
            "{text:?} must start with https:// (http:// only for 127.0.0.1 or localhost)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold a user or password: it is printed in every report, and the dashboard asks for its token itself".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{text:?}: remove the part from '?' or '#': page paths are appended to it"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Why `path` (absolute, normalized) cannot be a local storage, if it cannot: deploy.sh makes
/// it writable for the hardened backup unit (`ReadWritePaths=`, one line each), so a control
/// character (a newline would start another line), a quote or a backslash (deploy.sh writes it
/// quoted) is refused, and so are `/` and the system's own directories, which no backup should
/// be able to write into.
fn unfit_local_storage(path: &std::path::Path) -> Option<String> {
    const SYSTEM: &[&str] = &[
        "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/run", "/sbin",
        "/sys", "/usr",
    ];
    let text = path.to_string_lossy();
    if text
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        return Some(
            "holds a control character (a line break?), a quote or a backslash: name a plain directory"
                .into(),
        );
    }
    if path
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return Some("holds `..`: write the directory itself".into());
    }
    if path == std::path::Path::new("/") {
        return Some("is the root directory: name a directory of its own for the archives".into());
    }
    SYSTEM
        .iter()
        .find(|dir| path.starts_with(dir))
        .map(|dir| {
            format!("is inside {dir}, a system directory: name a directory of its own (say /var/backups/wpbackup)")
        })
}
