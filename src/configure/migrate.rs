//! Migrating the original tool's deprecated `sites.json` into config.json.
//!
//! The Python tool kept its sites in `sites.json` before config.json held sites and storage
//! together: a list of sites, each a name, a WordPress path and (optionally) its database
//! credentials. Files in the wild differ in spelling, so both shapes are read (a top-level
//! list, or `{"sites": [...]}`) and the usual spellings of each field are accepted:
//!
//! | config.json | sites.json |
//! |---|---|
//! | `name` | `name`, `site`, `site_name`, `domain` |
//! | `path` | `path`, `wp_path`, `site_path`, `root`, `dir`, `directory`, `document_root` |
//! | `exclude` | `exclude`, `excludes`, `exclude_patterns` |
//! | `enabled` | `enabled`, `active` |
//! | `database` | `db_name`/`db_user`/`db_password`/`db_host`, or a `database`/`db` object |
//!
//! Database credentials that match the site's own wp-config.php are dropped (wpbackup reads
//! them from there); others become a `database` block whose password moves to `.env`. Every
//! key that cannot be mapped is named in the notes `configure` shows.
//!
//! Nothing here edits the draft: [`sites_json`] returns what it found ([`Migrated`]) for the
//! draft to take in.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::{Map, Value};

use crate::configure::entries::{SiteEntry, env_base};

const NAME: &[&str] = &["name", "site", "site_name", "domain"];
const PATH: &[&str] = &[
    "path",
    "wp_path",
    "site_path",
    "root",
    "dir",
    "directory",
    "document_root",
];
const EXCLUDE: &[&str] = &["exclude", "excludes", "exclude_patterns"];
const ENABLED: &[&str] = &["enabled", "active"];
const DB_FLAT: &[(&str, &str)] = &[
    ("db_name", "name"),
    ("db_user", "user"),
    ("db_password", "password"),
    ("db_pass", "password"),
    ("db_host", "host"),
    ("table_prefix", "table_prefix"),
];
/// Keys wpbackup no longer needs: dropped with a note, not an error.
const NOT_NEEDED: &[&str] = &["url", "site_url", "siteurl", "home"];

/// What a sites.json held, mapped: the sites, the `.env` variables to set (database
/// passwords), and notes on what could not be mapped.
#[derive(Debug, Default)]
pub struct Migrated {
    pub sites: Vec<SiteEntry>,
    /// `(variable, value)` in the order they were found.
    pub env: Vec<(String, String)>,
    pub notes: Vec<String>,
}

/// Why one entry of a sites.json was skipped.
#[derive(Debug, thiserror::Error)]
pub enum Skipped {
    #[error("no path")]
    NoPath,
    #[error("path {} is not absolute", .0.display())]
    NotAbsolute(PathBuf),
}

/// Read `path` (a sites.json), noting what could not be mapped.
pub fn sites_json(path: &Path) -> anyhow::Result<Migrated> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    let (list, top_rest) = match value {
        Value::Array(a) => (a, Map::new()),
        Value::Object(mut o) => match o.remove("sites") {
            Some(Value::Array(a)) => (a, o),
            _ => anyhow::bail!(
                "{}: expected a list of sites (or {{\"sites\": [...]}})",
                path.display()
            ),
        },
        _ => anyhow::bail!("{}: expected a list of sites", path.display()),
    };
    let file = path.display().to_string();
    let mut m = Migrated::default();
    for (k, _) in top_rest {
        m.notes.push(format!(
            "{file}: {k}: not mapped (config.json has no such setting)"
        ));
    }
    for (i, item) in list.into_iter().enumerate() {
        let at = format!("{file}[{i}]");
        let Value::Object(obj) = item else {
            m.notes.push(format!("{at}: not an object, skipped"));
            continue;
        };
        match m.site(obj, &at) {
            Ok(entry) => m.sites.push(entry),
            Err(why) => m.notes.push(format!("{at}: skipped: {why}")),
        }
    }
    m.notes.insert(
        0,
        format!(
            "migrated {} site(s) from the deprecated {file} (the file itself is left as it was)",
            m.sites.len()
        ),
    );
    Ok(m)
}

fn take_str(obj: &mut Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match obj.remove(*k) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// The key a nested database object's `key` maps to, if any.
fn db_key(key: &str) -> Option<&'static str> {
    Some(match key {
        "name" | "db_name" | "database" => "name",
        "user" | "username" | "db_user" => "user",
        "password" | "pass" | "db_password" => "password",
        "host" | "db_host" => "host",
        "table_prefix" | "prefix" => "table_prefix",
        _ => return None,
    })
}

impl Migrated {
    fn site(&mut self, mut obj: Map<String, Value>, at: &str) -> Result<SiteEntry, Skipped> {
        let path = PathBuf::from(take_str(&mut obj, PATH).ok_or(Skipped::NoPath)?);
        if !path.is_absolute() {
            return Err(Skipped::NotAbsolute(path));
        }
        let name = take_str(&mut obj, NAME)
            .map(|n| crate::site::discover::site_name(Path::new(&n)))
            .unwrap_or_else(|| crate::site::discover::site_name(&path));
        let exclude = self.exclude(&mut obj, at);
        let enabled = ENABLED.iter().find_map(|k| obj.remove(*k)).and_then(|v| {
            v.as_bool().or_else(|| {
                self.notes
                    .push(format!("{at}: enabled {v} is not true/false, left out"));
                None
            })
        });
        let db = self.db_fields(&mut obj, at);
        let database = self.database(&name, &path, db, at);
        for (k, _) in obj {
            self.notes.push(if NOT_NEEDED.contains(&k.as_str()) {
                format!(
                    "{at}: {k}: not needed any more (wpbackup reads it from the site's database)"
                )
            } else {
                format!("{at}: {k}: not mapped (config.json has no such setting), dropped")
            });
        }
        Ok(SiteEntry {
            name,
            path,
            exclude,
            database,
            enabled,
            rest: Map::new(),
        })
    }

    /// The exclude patterns: a list of strings, or one comma-separated string.
    fn exclude(&mut self, obj: &mut Map<String, Value>, at: &str) -> Vec<String> {
        let mut exclude = Vec::new();
        match EXCLUDE.iter().find_map(|k| obj.remove(*k)) {
            Some(Value::Array(a)) => {
                for p in a {
                    match p {
                        Value::String(s) => exclude.push(s),
                        other => self.notes.push(format!(
                            "{at}: exclude entry {other} is not a string, dropped"
                        )),
                    }
                }
            }
            Some(Value::String(s)) => exclude.extend(s.split(',').map(|p| p.trim().to_string())),
            Some(other) => self
                .notes
                .push(format!("{at}: exclude {other} not understood, dropped")),
            None => {}
        }
        exclude
    }

    /// Database credentials: flat db_* keys, or a nested object (or a bare database name).
    fn db_fields(&mut self, obj: &mut Map<String, Value>, at: &str) -> Map<String, Value> {
        let mut db: Map<String, Value> = Map::new();
        for (from, to) in DB_FLAT {
            if let Some(v) = obj.remove(*from) {
                db.insert((*to).to_string(), v);
            }
        }
        for k in ["database", "db"] {
            match obj.remove(k) {
                Some(Value::Object(o)) => {
                    for (key, v) in o {
                        match db_key(&key) {
                            Some(to) => {
                                db.insert(to.into(), v);
                            }
                            None => self
                                .notes
                                .push(format!("{at}: {k}.{key}: not mapped, dropped")),
                        }
                    }
                }
                Some(Value::String(s)) => {
                    db.insert("name".into(), Value::String(s));
                }
                Some(other) => self
                    .notes
                    .push(format!("{at}: {k} {other} not understood, dropped")),
                None => {}
            }
        }
        db
    }

    /// A `database` block for the site, or None when wp-config.php gives the same credentials.
    fn database(
        &mut self,
        name: &str,
        path: &Path,
        mut db: Map<String, Value>,
        at: &str,
    ) -> Option<Value> {
        if db.is_empty() {
            return None;
        }
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        if let Ok(wp) = crate::site::wpconfig::read(path)
            && s(db.get("name")).is_none_or(|n| n == wp.db_name)
            && s(db.get("user")).is_none_or(|u| u == wp.db_user)
        {
            self.notes.push(format!(
                "{at}: database credentials match {}: read from there, not copied",
                wp.path.display()
            ));
            return None;
        }
        if s(db.get("name")).is_none() || s(db.get("user")).is_none() {
            self.notes.push(format!(
                "{at}: incomplete database credentials (need name and user): left out, so they are read from wp-config.php"
            ));
            return None;
        }
        if let Some(pw) = db.remove("password") {
            let var = format!("{}_DB_PASSWORD", env_base(name));
            let value = pw.as_str().map_or_else(|| pw.to_string(), str::to_string);
            self.env.push((var.clone(), value));
            db.insert("password_env".into(), Value::String(var));
        } else {
            self.notes.push(format!(
                "{at}: no database password given: set password_env for site {name} in config.json"
            ));
        }
        Some(Value::Object(db))
    }
}
