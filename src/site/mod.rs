//! Sites: from a config entry to everything needed to back it up.
//!
//! A site's database credentials come from its `database` block in config.json or, without
//! one, from its `wp-config.php`; the WordPress version from `wp-includes/version.php`; the
//! site's address from its `siteurl` option (a query that also proves the credentials work
//! before the dump starts).

pub mod discover;
pub mod hooks;
#[cfg(test)]
mod proptests;
pub mod root;
pub mod wpconfig;

use anyhow::{Context as _, bail};

use crate::config::{DatabaseConfig, SiteConfig, Timeouts};

/// A site ready to back up.
#[derive(Debug, Clone)]
pub struct ResolvedSite {
    pub db: DatabaseConfig,
    pub table_prefix: String,
    pub wordpress_version: Option<String>,
    /// The parent directory's `wp-config.php`, when it is the one WordPress loads for this
    /// site ([`root::wp_config`]): archived beside `files/`.
    pub parent_wp_config: Option<std::path::PathBuf>,
}

/// Find the site's credentials and facts; the database tools get `timeouts`.
pub fn resolve(site: &SiteConfig, timeouts: Timeouts) -> anyhow::Result<ResolvedSite> {
    if !site.path.is_dir() {
        bail!(
            "the site directory {} does not exist or is not a directory: fix \"path\" in config.json",
            site.path.display()
        );
    }
    let (db, table_prefix) = match &site.database {
        Some(db) => {
            // The prefix may still come from wp-config.php when config.json does not give it.
            let prefix = match &db.table_prefix {
                Some(p) => p.clone(),
                None => wpconfig::read(&site.path)
                    .map(|w| w.table_prefix)
                    .unwrap_or_else(|_| "wp_".into()),
            };
            let mut db = db.clone();
            db.timeouts = timeouts;
            (db, prefix)
        }
        None => {
            let wp = wpconfig::read(&site.path)
                .map_err(|e| inside_a_site(&site.path).unwrap_or_else(|| e.into()))
                .context("cannot read the database credentials")?;
            (
                DatabaseConfig {
                    name: wp.db_name,
                    user: wp.db_user,
                    password: wp.db_password,
                    host: wp.db_host,
                    table_prefix: Some(wp.table_prefix.clone()),
                    timeouts,
                },
                wp.table_prefix,
            )
        }
    };
    if !table_prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        bail!("table prefix {table_prefix:?} holds characters WordPress does not allow");
    }
    Ok(ResolvedSite {
        db,
        table_prefix,
        wordpress_version: wpconfig::wordpress_version(&site.path),
        parent_wp_config: root::parent_wp_config(&site.path),
    })
}

/// When `path` is a folder inside a WordPress site (`.../site/wp-content`), the error that
/// names the site's own directory.
fn inside_a_site(path: &std::path::Path) -> Option<anyhow::Error> {
    let root = root::root_above(path)?;
    Some(anyhow::anyhow!(
        "{} is a folder inside the WordPress site {} (the directory holding wp-settings.php), and WordPress loads no wp-config.php for it: set the site's path to {} (or add a \"database\" block to config.json to back up only this folder)",
        path.display(),
        root.display(),
        root.display()
    ))
}

/// Connect to the site's database and read its `siteurl` (None when the options table has none).
pub fn siteurl(site: &ResolvedSite) -> anyhow::Result<Option<String>> {
    let sql = format!(
        "SELECT option_value FROM `{}options` WHERE option_name = 'siteurl'",
        site.table_prefix
    );
    let out = crate::dbtools::query(&site.db, &sql).with_context(|| {
        format!(
            "cannot connect to database {:?} as user {:?} at {}",
            site.db.name,
            site.db.user,
            describe_host(&site.db)
        )
    })?;
    Ok(out
        .lines()
        .next()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string))
}

/// The database host as a person would write it.
pub fn describe_host(db: &DatabaseConfig) -> String {
    use crate::config::DbHost;
    match &db.host {
        DbHost::Socket(None) => "localhost".into(),
        DbHost::Socket(Some(p)) => format!("localhost:{}", p.display()),
        DbHost::Tcp {
            host,
            port: Some(p),
        } if host.contains(':') => format!("[{host}]:{p}"),
        DbHost::Tcp {
            host,
            port: Some(p),
        } => format!("{host}:{p}"),
        DbHost::Tcp { host, port: None } => host.clone(),
    }
}
