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

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::{Map, Value};

use crate::configure::draft::{Draft, SiteEntry};

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

/// Read `path` (a sites.json) into `draft`, noting what could not be mapped.
pub fn sites_json(draft: &mut Draft, path: &Path) -> anyhow::Result<()> {
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
    let mut migrated = 0;
    for (k, _) in top_rest {
        draft.notes.push(format!(
            "{file}: {k}: not mapped (config.json has no such setting)"
        ));
    }
    for (i, item) in list.into_iter().enumerate() {
        let at = format!("{file}[{i}]");
        let Value::Object(obj) = item else {
            draft.notes.push(format!("{at}: not an object, skipped"));
            continue;
        };
        match site(draft, obj, &at) {
            Ok(entry) => {
                migrated += 1;
                draft.upsert_site(entry);
            }
            Err(why) => draft.notes.push(format!("{at}: skipped: {why}")),
        }
    }
    draft.notes.insert(
        0,
        format!(
            "migrated {migrated} site(s) from the deprecated {file} (the file itself is left as it was)"
        ),
    );
    Ok(())
}

fn take_str(obj: &mut Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match obj.remove(*k) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

fn site(draft: &mut Draft, mut obj: Map<String, Value>, at: &str) -> Result<SiteEntry, String> {
    let path = take_str(&mut obj, PATH).ok_or("no path")?;
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(format!("path {} is not absolute", path.display()));
    }
    let name = take_str(&mut obj, NAME)
        .map(|n| crate::site::discover::site_name(Path::new(&n)))
        .unwrap_or_else(|| crate::site::discover::site_name(&path));
    let mut exclude = Vec::new();
    if let Some(v) = EXCLUDE.iter().find_map(|k| obj.remove(*k)) {
        match v {
            Value::Array(a) => {
                for p in a {
                    match p {
                        Value::String(s) => exclude.push(s),
                        other => draft.notes.push(format!(
                            "{at}: exclude entry {other} is not a string, dropped"
                        )),
                    }
                }
            }
            Value::String(s) => exclude.extend(s.split(',').map(|p| p.trim().to_string())),
            other => draft
                .notes
                .push(format!("{at}: exclude {other} not understood, dropped")),
        }
    }
    let enabled = ENABLED.iter().find_map(|k| obj.remove(*k)).and_then(|v| {
        v.as_bool().or_else(|| {
            draft
                .notes
                .push(format!("{at}: enabled {v} is not true/false, left out"));
            None
        })
    });
    // Database credentials: flat db_* keys, or a nested object.
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
                    let to = match key.as_str() {
                        "name" | "db_name" | "database" => "name",
                        "user" | "username" | "db_user" => "user",
                        "password" | "pass" | "db_password" => "password",
                        "host" | "db_host" => "host",
                        "table_prefix" | "prefix" => "table_prefix",
                        _ => {
                            draft
                                .notes
                                .push(format!("{at}: {k}.{key}: not mapped, dropped"));
                            continue;
                        }
                    };
                    db.insert(to.into(), v);
                }
            }
            Some(Value::String(s)) => {
                db.insert("name".into(), Value::String(s));
            }
            Some(other) => draft
                .notes
                .push(format!("{at}: {k} {other} not understood, dropped")),
            None => {}
        }
    }
    let database = database(draft, &name, &path, db, at);
    for (k, _) in obj {
        if NOT_NEEDED.contains(&k.as_str()) {
            draft.notes.push(format!(
                "{at}: {k}: not needed any more (wpbackup reads it from the site's database)"
            ));
        } else {
            draft.notes.push(format!(
                "{at}: {k}: not mapped (config.json has no such setting), dropped"
            ));
        }
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

/// A `database` block for the site, or None when wp-config.php gives the same credentials.
fn database(
    draft: &mut Draft,
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
        draft.notes.push(format!(
            "{at}: database credentials match {}: read from there, not copied",
            wp.path.display()
        ));
        return None;
    }
    if s(db.get("name")).is_none() || s(db.get("user")).is_none() {
        draft.notes.push(format!(
            "{at}: incomplete database credentials (need name and user): left out, so they are read from wp-config.php"
        ));
        return None;
    }
    if let Some(pw) = db.remove("password") {
        let var = format!("{}_DB_PASSWORD", crate::configure::draft::env_base(name));
        draft.env.set(&var, pw.as_str().unwrap_or(&pw.to_string()));
        db.insert("password_env".into(), Value::String(var));
    } else {
        draft.notes.push(format!(
            "{at}: no database password given: set password_env for site {name} in config.json"
        ));
    }
    Some(Value::Object(db))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        sites_json(&mut d, &legacy).unwrap();
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
