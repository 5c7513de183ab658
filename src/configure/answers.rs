//! The answers file of `configure --non-interactive`: the wizard's answers as JSON, for
//! scripts, provisioning tools and tests.
//!
//! Everything is optional; what is not answered stays as it is in the existing config. A site
//! or storage with the name of an existing one updates it (fields not given are kept), a new
//! name adds one. Secrets (`access_key`, `secret_key`, `api_token`, `password`) go to `.env`,
//! never to config.json. Example:
//!
//! ```json
//! {
//!   "server_id": "web-01",
//!   "sites": [{"path": "/var/www/example.com", "name": "example.com", "exclude": ["*.log"]}],
//!   "storage": [
//!     {"name": "idrive", "preset": "idrive-e2", "endpoint": "https://s3.us-west-1.idrivee2.com",
//!      "region": "us-west-1", "bucket": "wp-backups", "access_key": "...", "secret_key": "..."},
//!     {"name": "disk", "preset": "local", "path": "/var/backups/wpbackup"}
//!   ],
//!   "d1": {"account_id": "...", "database_id": "...", "api_token": "..."},
//!   "smtp": {"host": "smtp.example.com", "port": 587, "tls": "starttls", "username": "...",
//!            "password": "...", "from": "backups@example.com", "to": ["ops@example.com"]},
//!   "binlog": {"every_minutes": 5},
//!   "dashboard_url": "https://wpbackup-dashboard.example.workers.dev",
//!   "print_dashboard_commands": true
//! }
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::configure::draft::Draft;
use crate::configure::entries::{Preset, SiteEntry};
use crate::site::discover::FoundSite;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answers {
    /// This server's name in keys, backups.db and D1.
    pub server_id: Option<String>,
    /// Extra folders to search for WordPress sites.
    #[serde(default)]
    pub scan: Vec<PathBuf>,
    /// Add every site found (in the usual places and `scan`).
    #[serde(default)]
    pub add_found_sites: bool,
    #[serde(default)]
    pub sites: Vec<SiteAnswer>,
    /// Names of sites to drop from config.json.
    #[serde(default)]
    pub remove_sites: Vec<String>,
    #[serde(default)]
    pub storage: Vec<StorageAnswer>,
    /// Names of storages to drop from config.json.
    #[serde(default)]
    pub remove_storage: Vec<String>,
    /// Storage names in priority order, first tried first (others follow).
    pub storage_order: Option<Vec<String>>,
    pub d1: Option<D1Answer>,
    pub smtp: Option<SmtpAnswer>,
    /// Point-in-time recovery: config.json's `binlog` added (or removed, `"enabled": false`).
    pub binlog: Option<BinlogAnswer>,
    /// config.json's `dashboard_url` (empty: removed).
    pub dashboard_url: Option<String>,
    /// Print the commands that deploy the fleet dashboard over the D1 database (after writing).
    #[serde(default)]
    pub print_dashboard_commands: bool,
}

/// `binlog`: the server's binary log shipped every `every_minutes` (default: kept, else 5).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinlogAnswer {
    /// false: `binlog` removed from config.json.
    #[serde(default = "enabled")]
    pub enabled: bool,
    pub every_minutes: Option<u32>,
}

fn enabled() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteAnswer {
    /// The WordPress directory.
    pub path: PathBuf,
    /// Default: derived from the directory name.
    pub name: Option<String>,
    pub exclude: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageAnswer {
    /// Default: the preset's name (`idrive`, `aws`, `b2`, `r2`, `wasabi`, `s3`, `local`).
    pub name: Option<String>,
    /// `idrive-e2`, `aws`, `b2`, `r2`, `wasabi`, `s3` or `local`; needed for a new storage.
    pub preset: Option<Preset>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Cloudflare R2: the account id the endpoint is made from.
    pub account_id: Option<String>,
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub path_style: Option<bool>,
    /// A local storage's directory.
    pub path: Option<PathBuf>,
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub priority: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct D1Answer {
    pub account_id: String,
    pub database_id: String,
    /// Default: keep the token already in .env.
    pub api_token: Option<String>,
    /// Default: Cloudflare's API (or what .env has).
    pub api_base: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpAnswer {
    pub host: String,
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    pub tls: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: Option<String>,
    pub to: Vec<String>,
}

/// An answer that cannot be applied, named by where it is in the answers file.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("answers: storage[{index}]: {problem}")]
    Storage { index: usize, problem: Missing },
    #[error("answers: smtp.tls {0:?}: use starttls, tls or none")]
    SmtpTls(String),
    #[error("answers: dashboard_url: {0}")]
    DashboardUrl(String),
}

/// What a storage answer lacks (each message starts with the missing field).
#[derive(Debug, thiserror::Error)]
pub enum Missing {
    #[error("preset: missing for a new storage: one of idrive-e2, aws, b2, r2, wasabi, s3, local")]
    Preset,
    #[error("path: missing for a local storage")]
    Path,
    #[error("endpoint: missing (the {0} endpoint URL)")]
    Endpoint(&'static str),
    #[error("account_id: missing (Cloudflare R2's endpoint is made from it)")]
    AccountId,
    #[error("bucket: missing")]
    Bucket,
}

/// Read an answers file; errors name the JSON path. Warns when it holds secrets that group or
/// others can read.
pub fn load(path: &Path) -> anyhow::Result<Answers> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the answers file {}", path.display()))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    let answers: Answers = serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        anyhow::Error::from(crate::error::UsageError(format!(
            "{}: {at}: {}",
            path.display(),
            e.inner()
        )))
    })?;
    if let Some(w) = public_secrets_warning(path, &answers) {
        tracing::warn!("{w}");
    }
    Ok(answers)
}

/// The warning for an answers file that holds secrets and is readable by others; none for a
/// file without secrets (`access_key`, `secret_key`, `api_token`, `password`), whatever its mode.
fn public_secrets_warning(path: &Path, a: &Answers) -> Option<String> {
    if !a.holds_secrets() {
        return None;
    }
    crate::configure::envfile::public_warning(path)
}

impl Answers {
    /// Whether any answer is a secret that goes to `.env`.
    pub fn holds_secrets(&self) -> bool {
        let given = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
        self.storage
            .iter()
            .any(|s| given(&s.access_key) || given(&s.secret_key))
            || self.d1.as_ref().is_some_and(|d| given(&d.api_token))
            || self.smtp.as_ref().is_some_and(|s| given(&s.password))
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Apply `a` to the draft. `found` is what the site search found.
pub fn apply(draft: &mut Draft, a: Answers, found: &[FoundSite]) -> Result<(), AnswerError> {
    if let Some(id) = a.server_id {
        draft.file.server_id = Some(id);
    }
    draft
        .file
        .sites
        .retain(|s| !a.remove_sites.contains(&s.name));
    draft
        .file
        .storage
        .retain(|s| !a.remove_storage.contains(&s.name));
    if a.add_found_sites {
        for f in found {
            draft.upsert_site(SiteEntry {
                name: f.name.clone(),
                path: f.path.clone(),
                ..SiteEntry::default()
            });
        }
    }
    for s in a.sites {
        let path = absolute(&s.path);
        draft.upsert_site(SiteEntry {
            name: s
                .name
                .unwrap_or_else(|| crate::site::discover::site_name(&path)),
            path,
            exclude: s.exclude.unwrap_or_default(),
            enabled: s.enabled,
            ..SiteEntry::default()
        });
    }
    for (i, s) in a.storage.into_iter().enumerate() {
        storage(draft, s).map_err(|problem| AnswerError::Storage { index: i, problem })?;
    }
    if let Some(order) = a.storage_order {
        draft.set_order(&order);
    }
    if let Some(d) = a.d1 {
        draft.env.set("CF_ACCOUNT_ID", &d.account_id);
        draft.env.set("D1_DATABASE_ID", &d.database_id);
        if let Some(t) = d.api_token {
            draft.env.set("CF_API_TOKEN", &t);
        }
        if let Some(b) = d.api_base {
            draft.env.set("D1_API_BASE", &b);
        }
    }
    if let Some(b) = a.binlog {
        if b.enabled {
            let entry = draft
                .file
                .rest
                .entry("binlog")
                .or_insert_with(|| serde_json::json!({}));
            if !entry.is_object() {
                *entry = serde_json::json!({});
            }
            if let (Some(n), Some(o)) = (b.every_minutes, entry.as_object_mut()) {
                o.insert("every_minutes".into(), n.into());
            }
        } else {
            draft.file.rest.remove("binlog");
        }
    }
    if let Some(u) = a.dashboard_url {
        crate::configure::dashboard::set_url(draft, &u).map_err(AnswerError::DashboardUrl)?;
    }
    if let Some(s) = a.smtp {
        let tls = s.tls.unwrap_or_else(|| "starttls".into());
        if !["starttls", "tls", "none"].contains(&tls.as_str()) {
            return Err(AnswerError::SmtpTls(tls));
        }
        draft.env.set("SMTP_HOST", &s.host);
        if let Some(p) = s.port {
            draft.env.set("SMTP_PORT", &p.to_string());
        }
        draft.env.set("SMTP_TLS", &tls);
        if let Some(u) = s.username {
            draft.env.set("SMTP_USERNAME", &u);
        }
        if let Some(p) = s.password {
            draft.env.set("SMTP_PASSWORD", &p);
        }
        if let Some(f) = s.from {
            draft.env.set("REPORT_FROM", &f);
        }
        draft.env.set("REPORT_TO", &s.to.join(","));
    }
    Ok(())
}

fn storage(draft: &mut Draft, s: StorageAnswer) -> Result<(), Missing> {
    let existing = s
        .name
        .as_ref()
        .and_then(|n| draft.file.storage.iter().find(|e| &e.name == n))
        .cloned();
    let preset = match (s.preset, &existing) {
        (Some(p), _) => p,
        (None, Some(e)) => Preset::detect(e),
        (None, None) => return Err(Missing::Preset),
    };
    let name = s.name.unwrap_or_else(|| preset.default_name().to_string());
    let mut e = existing
        .filter(|e| Preset::detect(e) == preset || s.preset.is_none())
        .unwrap_or_default();
    e.name = name;
    e.priority = s.priority.unwrap_or(e.priority);
    if preset == Preset::Local {
        e.kind = "local".into();
        e.path = s.path.map(|p| absolute(&p)).or(e.path);
        if e.path.is_none() {
            return Err(Missing::Path);
        }
        draft.upsert_storage(e, None, None);
        return Ok(());
    }
    e.kind = "s3".into();
    let region = s
        .region
        .or(e.region.clone())
        .unwrap_or_else(|| preset.default_region().to_string());
    e.endpoint = match s.endpoint {
        Some(ep) => Some(ep),
        None => preset
            .endpoint(&region, s.account_id.as_deref())
            .or(e.endpoint),
    };
    if preset.asks_endpoint() && e.endpoint.is_none() {
        return Err(Missing::Endpoint(preset.label()));
    }
    if preset == Preset::R2 && e.endpoint.is_none() {
        return Err(Missing::AccountId);
    }
    if preset == Preset::Aws {
        e.endpoint = None;
    }
    e.region = Some(region);
    e.bucket = s.bucket.or(e.bucket);
    if e.bucket.is_none() {
        return Err(Missing::Bucket);
    }
    e.prefix = s.prefix.or(e.prefix);
    e.path_style = s.path_style.or(e.path_style);
    draft.upsert_storage(e, s.access_key.as_deref(), s.secret_key.as_deref());
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn answers_file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    #[test]
    fn only_an_answers_file_with_secrets_is_said_to_hold_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let plain = answers_file(
            dir.path(),
            "plain.json",
            r#"{"server_id": "web-01", "storage": [{"name": "disk", "preset": "local", "path": "/b"}],
                "smtp": {"host": "smtp.example.com", "to": ["ops@example.com"]}}"#,
        );
        let a = load(&plain).unwrap();
        assert!(!a.holds_secrets());
        assert_eq!(public_secrets_warning(&plain, &a), None);

        for (name, text) in [
            (
                "s3.json",
                r#"{"storage": [{"name": "s3", "secret_key": "k"}]}"#,
            ),
            (
                "d1.json",
                r#"{"d1": {"account_id": "a", "database_id": "d", "api_token": "t"}}"#,
            ),
            (
                "smtp.json",
                r#"{"smtp": {"host": "h", "password": "p", "to": ["ops@example.com"]}}"#,
            ),
        ] {
            let path = answers_file(dir.path(), name, text);
            let a = load(&path).unwrap();
            assert!(a.holds_secrets(), "{name}");
            let w = public_secrets_warning(&path, &a).unwrap();
            assert!(
                w.contains("holds secrets") && w.contains("chmod 600"),
                "{w}"
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert_eq!(public_secrets_warning(&path, &a), None, "{name}");
        }
    }
}
