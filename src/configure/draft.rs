//! The configuration `configure` is building: config.json and .env as they will be written.
//!
//! A [`Draft`] starts from the files already in the home directory (or from a deprecated
//! `sites.json`, whose sites [`migrate`] maps), so running `configure` again changes only what
//! is changed. config.json is edited through the [`entries`](crate::configure::entries) types,
//! which keep every key they do not know exactly as it was; `.env` through [`EnvFile`], which
//! keeps every other line. Secrets go to `.env` only, under the variable names config.json
//! references. The results of the tests ([`CheckError`]) are kept for the summary.
//!
//! Before anything is written the whole draft is validated by the same code that loads the
//! config for a backup ([`Config::parse`]), so `configure` cannot write a config `backup`
//! would refuse. Both files are written atomically with mode 0600.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Map;

use crate::config::{Config, ConfigError, Env, Paths, SiteConfig, StorageConfig, StorageKind};
use crate::configure::entries::{ConfigFile, Preset, SiteEntry, StorageEntry, key_vars};
use crate::configure::envfile::{self, EnvFile};
use crate::configure::migrate;
use crate::configure::probe::CheckError;

/// Default `D1_API_BASE`.
pub const CLOUDFLARE_API: &str = crate::d1::DEFAULT_API_BASE;

/// What `configure` is building.
#[derive(Debug, Default)]
pub struct Draft {
    pub file: ConfigFile,
    pub env: EnvFile,
    /// Whether config.json existed when the draft was loaded.
    pub existed: bool,
    /// Things a person should read (what a migration could not map, say).
    pub notes: Vec<String>,
    /// Test results by "site NAME" / "storage NAME" / "d1" / "smtp": Ok(detail) or Err(why).
    pub checks: BTreeMap<String, Result<String, CheckError>>,
}

impl Draft {
    /// Start from the files in the home directory; a deprecated sites.json is migrated when
    /// config.json does not exist yet.
    pub fn load(paths: &Paths) -> anyhow::Result<Draft> {
        let env = EnvFile::load(&paths.env_file)?;
        let mut draft = Draft {
            env,
            ..Draft::default()
        };
        match std::fs::read_to_string(&paths.config) {
            Ok(text) => {
                let de = &mut serde_json::Deserializer::from_str(&text);
                draft.file = serde_path_to_error::deserialize(de).map_err(|e| ConfigError {
                    file: paths.config.display().to_string(),
                    path: e.path().to_string(),
                    message: format!(
                        "{}: fix it by hand, or move the file away to start over",
                        e.inner()
                    ),
                })?;
                draft.existed = true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let legacy = paths.home.join("sites.json");
                if legacy.exists() {
                    draft.apply_migration(migrate::sites_json(&legacy)?);
                }
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("{}: cannot read", paths.config.display())));
            }
        }
        Ok(draft)
    }

    /// Take in what a sites.json migration found: its sites, the `.env` variables their
    /// database passwords go to, and the notes.
    fn apply_migration(&mut self, found: migrate::Migrated) {
        for (var, value) in &found.env {
            self.env.set(var, value);
        }
        for site in found.sites {
            self.upsert_site(site);
        }
        self.notes.extend(found.notes);
    }

    /// The server id as it will be: config.json, else `SERVER_ID` in .env, else the host name.
    pub fn server_id(&self) -> String {
        self.file
            .server_id
            .clone()
            .or_else(|| self.env.get("SERVER_ID").map(str::to_string))
            .unwrap_or_else(crate::config::hostname)
    }

    /// Add a site, or update the one with the same name or path (keeping what is not given).
    pub fn upsert_site(&mut self, site: SiteEntry) {
        let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        match self
            .file
            .sites
            .iter_mut()
            .find(|s| s.name == site.name || canon(&s.path) == canon(&site.path))
        {
            Some(old) => {
                old.name = site.name;
                old.path = site.path;
                if !site.exclude.is_empty() {
                    old.exclude = site.exclude;
                }
                if site.database.is_some() {
                    old.database = site.database;
                }
                if site.enabled.is_some() {
                    old.enabled = site.enabled;
                }
            }
            None => self.file.sites.push(site),
        }
    }

    /// Add a storage or replace the one of the same name; its keys go to `.env` (None keeps
    /// what is there). A new storage goes last in priority unless it has one.
    pub fn upsert_storage(
        &mut self,
        mut entry: StorageEntry,
        access_key: Option<&str>,
        secret_key: Option<&str>,
    ) {
        let existing = self.file.storage.iter().position(|s| s.name == entry.name);
        if entry.kind == "s3" {
            let (ak, sk) = key_vars(&entry.name);
            let old = existing.map(|i| &self.file.storage[i]);
            let ak_var = entry
                .access_key_env
                .clone()
                .or_else(|| old.and_then(|o| o.access_key_env.clone()))
                .unwrap_or(ak);
            let sk_var = entry
                .secret_key_env
                .clone()
                .or_else(|| old.and_then(|o| o.secret_key_env.clone()))
                .unwrap_or(sk);
            if let Some(v) = access_key {
                self.env.set(&ak_var, v);
            }
            if let Some(v) = secret_key {
                self.env.set(&sk_var, v);
            }
            entry.access_key_env = Some(ak_var);
            entry.secret_key_env = Some(sk_var);
        }
        match existing {
            Some(i) => {
                if entry.priority == 0 {
                    entry.priority = self.file.storage[i].priority;
                }
                if entry.rest.is_empty() {
                    entry.rest = std::mem::take(&mut self.file.storage[i].rest);
                }
                self.file.storage[i] = entry;
            }
            None => {
                if entry.priority == 0 {
                    entry.priority = self
                        .file
                        .storage
                        .iter()
                        .map(|s| s.priority)
                        .max()
                        .unwrap_or(0)
                        + 1;
                }
                self.file.storage.push(entry);
            }
        }
        self.file.storage.sort_by_key(|s| s.priority);
    }

    /// Set the priority order: `names` first, in that order (1, 2, ...), the rest after them.
    pub fn set_order(&mut self, names: &[String]) {
        let mut ordered: Vec<StorageEntry> = Vec::new();
        for n in names {
            if let Some(i) = self.file.storage.iter().position(|s| &s.name == n) {
                ordered.push(self.file.storage.remove(i));
            }
        }
        ordered.append(&mut self.file.storage);
        for (i, s) in ordered.iter_mut().enumerate() {
            s.priority = i as i64 + 1;
        }
        self.file.storage = ordered;
    }

    /// The config.json text as it will be written.
    pub fn config_text(&self) -> anyhow::Result<String> {
        let mut s = serde_json::to_string_pretty(&self.file).context("cannot serialize")?;
        s.push('\n');
        Ok(s)
    }

    /// Validate the draft as `backup` will load it, with `.env` as it will be written.
    pub fn validate(&self, config_path: &Path) -> Result<Config, ConfigError> {
        let text = self.config_text().map_err(|e| ConfigError {
            file: config_path.display().to_string(),
            path: "(root)".into(),
            message: e.to_string(),
        })?;
        Config::parse(
            &text,
            &config_path.display().to_string(),
            &Env::from_map(self.env.values()),
        )
    }

    /// A config holding only `sites` and `storage` (and the upload settings), validated as
    /// `backup` would: to test one entry before the rest of the draft is complete.
    fn parse_alone(
        &self,
        sites: Vec<SiteEntry>,
        storage: Vec<StorageEntry>,
    ) -> Result<Config, ConfigError> {
        let mut rest = Map::new();
        if let Some(u) = self.file.rest.get("upload") {
            rest.insert("upload".into(), u.clone());
        }
        let one = ConfigFile {
            server_id: Some("configure-test".into()),
            sites,
            storage,
            rest,
        };
        let text = serde_json::to_string(&one).unwrap_or_default();
        Config::parse(&text, "config.json", &Env::from_map(self.env.values()))
    }

    /// A site entry as `backup` will see it (its database block validated when it has one).
    pub fn site_config(&self, site: &SiteEntry) -> Result<SiteConfig, ConfigError> {
        let mut cfg = self.parse_alone(vec![site.clone()], Vec::new())?;
        cfg.sites.pop().ok_or_else(|| ConfigError {
            file: "config.json".into(),
            path: "sites".into(),
            message: "no site".into(),
        })
    }

    /// One storage entry, validated on its own, with short limits for an interactive test.
    pub fn storage_config(&self, name: &str) -> Result<StorageConfig, ConfigError> {
        let entry = self.file.storage.iter().find(|s| s.name == name).cloned();
        let mut cfg = self.parse_alone(Vec::new(), entry.into_iter().collect())?;
        let mut st = cfg.storage.pop().ok_or_else(|| ConfigError {
            file: "config.json".into(),
            path: "storage".into(),
            message: format!("no storage named {name:?}"),
        })?;
        if let StorageKind::S3(s3) = &mut st.kind {
            s3.upload.max_attempts = s3.upload.max_attempts.min(2);
            s3.upload.timeout_secs = s3.upload.timeout_secs.min(30);
        }
        Ok(st)
    }

    /// The D1 settings as `sync-d1` will read them from this `.env`: `None` when D1 is not
    /// configured, an error when it is half configured or malformed.
    pub fn d1(&self) -> Option<anyhow::Result<crate::d1::D1Settings>> {
        crate::d1::D1Settings::from_env(&self.env_view()).transpose()
    }

    /// The SMTP settings as `report` will read them from this `.env`, when a host and a
    /// recipient are set.
    pub fn smtp(&self) -> Option<anyhow::Result<crate::report::mail::SmtpSettings>> {
        let set = |k: &str| self.env.get(k).is_some_and(|v| !v.trim().is_empty());
        if !set("SMTP_HOST") || !set("REPORT_TO") {
            return None;
        }
        Some(crate::report::mail::SmtpSettings::from_env(&self.env_view(), &[]).map_err(Into::into))
    }

    /// The draft's `.env` as the rest of the program reads one.
    fn env_view(&self) -> crate::config::Env {
        crate::config::Env::from_map(self.env.values())
    }

    /// What will be written, for a person to read before saying yes. No secret values: only
    /// which variables hold them and whether they are set.
    pub fn summary(&self, paths: &Paths) -> String {
        let mut out = String::new();
        let id = self.server_id();
        out.push_str(&format!("server_id: {id}\n"));
        if crate::config::is_generic_server_id(&id) {
            out.push_str(&format!(
                "  warning: {id:?} is a host name many servers have: another server with the same server_id would share its archive keys, and each one's prune would count the other's archives; set a name of its own\n"
            ));
        }
        out.push_str(&format!("sites ({}):\n", self.file.sites.len()));
        for s in &self.file.sites {
            out.push_str(&self.site_line(s));
        }
        out.push_str("storage, in priority order:\n");
        for s in &self.file.storage {
            out.push_str(&self.storage_line(s));
        }
        out.push_str(&self.d1_line());
        out.push_str(&self.smtp_line());
        if let Some(b) = self.file.rest.get("binlog") {
            let every = b.get("every_minutes").and_then(|v| v.as_u64()).unwrap_or(5);
            out.push_str(&format!(
                "binlog (point-in-time recovery): shipped every {every} minutes ({})\n",
                self.check_label("binlog")
            ));
        }
        out.push_str(&format!(
            "files: {} and {} (mode 0600)",
            paths.config.display(),
            paths.env_file.display()
        ));
        if !self.env.changed().is_empty() {
            out.push_str(&format!(
                "\n.env variables set or changed (values not shown): {}",
                self.env.changed().join(", ")
            ));
        }
        out
    }

    /// How the check under `key` went, for the summary.
    fn check_label(&self, key: &str) -> &'static str {
        match self.checks.get(key) {
            Some(Ok(_)) => "tested ok",
            Some(Err(_)) => "TEST FAILED",
            None => "not tested",
        }
    }

    /// A `.env` variable named in config.json, and whether it is set (never its value).
    fn var_state(&self, var: &Option<String>) -> String {
        match var {
            Some(v) if self.env.has(v) => format!("{v} (set)"),
            Some(v) => format!("{v} (NOT SET)"),
            None => "-".into(),
        }
    }

    fn site_line(&self, s: &SiteEntry) -> String {
        let db = if s.database.is_some() {
            "credentials in config.json"
        } else {
            "credentials from wp-config.php"
        };
        let off = if s.enabled == Some(false) {
            ", disabled"
        } else {
            ""
        };
        format!(
            "  {:<20} {}  ({db}{off}; {})\n",
            s.name,
            s.path.display(),
            self.check_label(&format!("site {}", s.name))
        )
    }

    fn storage_line(&self, s: &StorageEntry) -> String {
        let what = if s.kind == "local" {
            format!(
                "local directory {}",
                s.path.as_deref().unwrap_or(Path::new("?")).display()
            )
        } else {
            format!(
                "{} {} bucket {}{}  keys: {}, {}",
                Preset::detect(s).label(),
                s.endpoint.as_deref().unwrap_or("(AWS)"),
                s.bucket.as_deref().unwrap_or("?"),
                s.prefix
                    .as_deref()
                    .filter(|p| !p.is_empty())
                    .map(|p| format!(" prefix {p}"))
                    .unwrap_or_default(),
                self.var_state(&s.access_key_env),
                self.var_state(&s.secret_key_env)
            )
        };
        format!(
            "  {}. {:<12} {what}  ({})\n",
            s.priority,
            s.name,
            self.check_label(&format!("storage {}", s.name))
        )
    }

    fn d1_line(&self) -> String {
        match self.d1() {
            Some(Ok(d)) => format!(
                "Cloudflare D1: account {}, database {}, token set, API {}  ({})\n",
                d.account_id,
                d.database_id,
                d.api_base,
                self.check_label("d1")
            ),
            Some(Err(e)) => format!("Cloudflare D1: {e:#}\n"),
            None => "Cloudflare D1: not configured\n".into(),
        }
    }

    fn smtp_line(&self) -> String {
        match self.smtp() {
            Some(Ok(s)) => format!(
                "email reports: {}:{} (tls: {}), user {}, password {}, from {} to {}  ({})\n",
                s.host,
                s.port,
                s.tls,
                s.username.as_deref().unwrap_or("-"),
                if s.password.expose().is_empty() {
                    "-"
                } else {
                    "set"
                },
                s.from,
                s.to.iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                self.check_label("smtp")
            ),
            Some(Err(e)) => format!("email reports: {e:#}\n"),
            None => "email reports: not configured\n".into(),
        }
    }

    /// Write config.json and .env (0600, atomically), creating the home directory (0700).
    pub fn write(&self, paths: &Paths) -> anyhow::Result<()> {
        for dir in [
            &paths.home,
            &parent(&paths.config),
            &parent(&paths.env_file),
        ] {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
        }
        envfile::write_private(&paths.config, self.config_text()?.as_bytes())?;
        envfile::write_private(&paths.env_file, self.env.text().as_bytes())?;
        Ok(())
    }
}

fn parent(p: &Path) -> PathBuf {
    p.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn the_summary_warns_about_a_generic_server_id() {
        let paths = Paths::resolve(Some("/h".into()), None, None);
        let mut d = Draft::default();
        d.file.server_id = Some("ubuntu".into());
        assert!(
            d.summary(&paths)
                .contains("warning: \"ubuntu\" is a host name many servers have")
        );
        d.file.server_id = Some("web-01".into());
        assert!(!d.summary(&paths).contains("warning"));
    }

    #[test]
    fn unknown_keys_are_kept_and_secrets_go_to_env() {
        let text = r#"{"server_id":"web-01","sites":[{"name":"a","path":"/a","future":1}],
            "storage":[{"name":"old","type":"local","priority":1,"path":"/b"}],
            "retention":{"keep_daily":7}}"#;
        let mut d = Draft {
            file: serde_json::from_str(text).unwrap(),
            ..Draft::default()
        };
        d.upsert_storage(
            StorageEntry {
                name: "b2-main".into(),
                kind: "s3".into(),
                endpoint: Preset::B2.endpoint("us-west-004", None),
                region: Some("us-west-004".into()),
                bucket: Some("bk".into()),
                ..StorageEntry::default()
            },
            Some("AKID"),
            Some("s3cr3t"),
        );
        let out: Value = serde_json::from_str(&d.config_text().unwrap()).unwrap();
        assert_eq!(out["retention"]["keep_daily"], 7);
        assert_eq!(out["sites"][0]["future"], 1);
        assert_eq!(out["storage"][1]["priority"], 2);
        assert_eq!(
            out["storage"][1]["endpoint"],
            "https://s3.us-west-004.backblazeb2.com"
        );
        assert_eq!(
            out["storage"][1]["secret_key_env"],
            "B2_MAIN_SECRET_ACCESS_KEY"
        );
        assert!(!d.config_text().unwrap().contains("s3cr3t"));
        assert_eq!(d.env.get("B2_MAIN_SECRET_ACCESS_KEY"), Some("s3cr3t"));
        let paths = Paths::resolve(Some("/h".into()), None, None);
        let summary = d.summary(&paths);
        assert!(
            !summary.contains("s3cr3t") && !summary.contains("AKID"),
            "{summary}"
        );
        assert!(
            summary.contains("B2_MAIN_SECRET_ACCESS_KEY (set)"),
            "{summary}"
        );

        d.set_order(&["b2-main".into()]);
        assert_eq!(d.file.storage[0].name, "b2-main");
        assert_eq!(d.file.storage[1].priority, 2);
    }

    #[test]
    fn a_legacy_list_is_mapped_and_the_rest_named() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join("sites.json");
        std::fs::write(
            &legacy,
            r#"[{"name":"example.com","path":"/var/www/example.com","db_name":"wp_ex",
                 "db_user":"ex","db_password":"p'w$1","db_host":"localhost",
                 "url":"https://example.com","backup_time":"03:00","exclude":"cache, *.log"},
                {"domain":"b.org","wp_path":"/srv/b","active":false},
                {"name":"nopath"}]"#,
        )
        .unwrap();
        let mut d = Draft::default();
        d.apply_migration(migrate::sites_json(&legacy).unwrap());
        assert_eq!(d.file.sites.len(), 2);
        let a = &d.file.sites[0];
        assert_eq!(a.name, "example.com");
        assert_eq!(a.exclude, ["cache", "*.log"]);
        let db = a.database.as_ref().unwrap();
        assert_eq!(db["password_env"], "EXAMPLE_COM_DB_PASSWORD");
        assert!(db.get("password").is_none());
        assert_eq!(d.env.get("EXAMPLE_COM_DB_PASSWORD"), Some("p'w$1"));
        assert_eq!(d.file.sites[1].name, "b.org");
        assert_eq!(d.file.sites[1].enabled, Some(false));
        let notes = d.notes.join("\n");
        assert!(notes.contains("migrated 2 site(s)"), "{notes}");
        assert!(notes.contains("[0]: backup_time: not mapped"), "{notes}");
        assert!(notes.contains("[0]: url: not needed"), "{notes}");
        assert!(notes.contains("[2]: skipped: no path"), "{notes}");
        assert!(!notes.contains("p'w$1"), "{notes}");
    }
}
