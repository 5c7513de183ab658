//! The database side of a restore, through the MariaDB/MySQL client of
//! [`crate::dbtools::client`] (secrets in a defaults file, SQL on stdin): is the target database there and
//! does it hold tables; create it (as the site's user when allowed, else as root through the
//! local socket, granting the site's user access); keep a compressed copy of what it held;
//! import `database.sql`. Keeping the previous tables while the import runs, to put them back
//! if it fails, is [`crate::restore::rollback`]; moving the site to a new address is
//! [`crate::clone`].

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::config::DatabaseConfig;
use crate::dbtools;
use crate::dbtools::client::{admin, ident, sql, sql_str};

/// What the target database holds, as far as `creds` can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbState {
    Missing,
    Tables(u64),
}

pub fn state(creds: &DatabaseConfig, name: &str) -> anyhow::Result<DbState> {
    let out = sql(
        creds,
        None,
        &format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {n};
             SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {n};",
            n = sql_str(name)
        ),
    )?;
    let nums: Vec<u64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    Ok(match nums.as_slice() {
        [0, ..] => DbState::Missing,
        [_, tables] => DbState::Tables(*tables),
        _ => bail!("unexpected answer from the database server: {out:?}"),
    })
}

/// Neither the site's user nor root through the local socket could create the database.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot create database {name}: as user {user}: {as_user:#}; as root through the local socket: {as_root:#}. Create it yourself (CREATE DATABASE {name}; GRANT ALL ON {name}.* TO '{user}'@'localhost';) and run restore again"
)]
pub struct CreateError {
    pub name: String,
    pub user: String,
    pub as_user: anyhow::Error,
    pub as_root: anyhow::Error,
}

/// A database this restore created, and who created it.
pub struct Created {
    /// How it was done, in words.
    pub note: String,
    name: String,
    /// Root through the local socket, when the site's user could not.
    root: Option<DatabaseConfig>,
}

impl Created {
    /// Drop it again (a restore that fails leaves no database it made). A grant root made for
    /// the site's user stays.
    pub fn drop_again(&self, site: &DatabaseConfig) -> anyhow::Result<()> {
        let who = self.root.as_ref().unwrap_or(site);
        sql(
            who,
            None,
            &format!("DROP DATABASE IF EXISTS {};", ident(&self.name)),
        )
        .map(|_| ())
        .with_context(|| format!("cannot drop database {} again", self.name))
    }
}

/// Create database `name` for the site's user.
pub fn create(
    site: &DatabaseConfig,
    name: &str,
    admin_socket: Option<PathBuf>,
) -> Result<Created, CreateError> {
    let create = format!(
        "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;",
        ident(name)
    );
    let as_user = match sql(site, None, &create) {
        Ok(_) => {
            return Ok(Created {
                note: format!("created database {name}"),
                name: name.to_string(),
                root: None,
            });
        }
        Err(e) => e,
    };
    let root = admin(admin_socket, site.timeouts);
    match create_as_root(site, name, &create, &root) {
        Ok(note) => Ok(Created {
            note,
            name: name.to_string(),
            root: Some(root),
        }),
        Err(as_root) => Err(CreateError {
            name: name.to_string(),
            user: site.user.clone(),
            as_user,
            as_root,
        }),
    }
}

/// Run `create` as `root` and grant the site's user (at each of its hosts) access.
fn create_as_root(
    site: &DatabaseConfig,
    name: &str,
    create: &str,
    root: &DatabaseConfig,
) -> anyhow::Result<String> {
    let tables: u64 = sql(
        root,
        None,
        &format!(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {}",
            sql_str(name)
        ),
    )?
    .trim()
    .parse()
    .unwrap_or(0);
    if tables > 0 {
        bail!(
            "database {name} exists and holds {tables} tables that user {} cannot see: choose another --db-name, or grant the user access and run again",
            site.user
        );
    }
    let hosts = sql(
        root,
        None,
        &format!(
            "SELECT Host FROM mysql.user WHERE User = {}",
            sql_str(&site.user)
        ),
    )?;
    let hosts: Vec<&str> = hosts
        .lines()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    if hosts.is_empty() {
        bail!("user {} does not exist on this database server", site.user);
    }
    let mut script = create.to_string();
    for h in &hosts {
        script.push_str(&format!(
            "\nGRANT ALL PRIVILEGES ON {}.* TO {}@{};",
            ident(name),
            sql_str(&site.user),
            sql_str(h)
        ));
    }
    sql(root, None, &script)?;
    Ok(format!(
        "created database {name} as root through the local socket and granted user {} all privileges on it",
        site.user
    ))
}

/// Dump database `name` into `dest` (zstd, `0600`, must not exist). Returns its size. A copy
/// that cannot be finished (no space left, say) is removed.
pub fn save_copy(creds: &DatabaseConfig, name: &str, dest: &Path) -> anyhow::Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut db = creds.clone();
    db.name = name.to_string();
    let tmp_dir = dest.parent().unwrap_or(Path::new("."));
    let dump = dbtools::run_dump(&db, tmp_dir, &[], false)?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .with_context(|| format!("cannot create {}", dest.display()))?;
    let written = (|| {
        let mut enc = zstd::stream::write::Encoder::new(file, 3)?;
        let mut reader = dump.reader()?;
        std::io::copy(&mut reader, &mut enc)?;
        enc.finish()?.sync_all()?;
        anyhow::Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(dest);
        return Err(e).with_context(|| format!("cannot write {}", dest.display()));
    }
    Ok(std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0))
}

/// Import `sql_file` (a complete dump, its `DEFINER=` clauses taken out on the way:
/// [`super::definer`]) into database `name` as `creds`; a SIGTERM or SIGINT stops it.
pub fn import(creds: &DatabaseConfig, name: &str, sql_file: &Path) -> anyhow::Result<()> {
    let dump = std::fs::File::open(sql_file)
        .with_context(|| format!("cannot open {}", sql_file.display()))?;
    let dump = super::definer::Strip::new(std::io::BufReader::with_capacity(256 * 1024, dump));
    dbtools::client::source_stream(creds, name, dump)
}
