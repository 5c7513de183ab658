//! The drill's scratch database: created under a name of its own
//! (`wpbdrill_<site>_<time>_<pid>`, never an existing one) on the site's database server, or
//! on the server of config.json's `drill.database`; `database.sql` imported into it (its form
//! checked first, as a restore does: nothing in it may reach another database); each table's
//! rows counted; and always dropped (with the access granted for it) when the guard is
//! dropped, whether the drill passed, failed or was interrupted. Scratch databases a killed
//! drill left are dropped by the next drill once they are a day old.
//!
//! Who creates it: `drill.database`'s user; else the site's own user when it may create
//! databases and users; else root through the local socket (`MYSQL_UNIX_PORT`, or the site's
//! own socket, as restore does).
//!
//! Who uses it: its own user ([`Login`]: `wpbdrill_<time>_<random>`, a random password, every
//! right on that database and on nothing else), made by whoever created it, and dropped with
//! it (at the end, on a failure and on a signal; one a killed drill left is dropped by the next
//! drill once a day old). The import, the row counts and WordPress's php all connect as it:
//! neither the dump nor php ever runs with drill.database's, root's or the site's own
//! credentials. A creator that may create the database but not the user gives it up (the
//! database is dropped again) and root is asked instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};

use super::child::{self, Input};
use crate::config::{DatabaseConfig, DbHost};
use crate::dbtools::client::{admin, ident, sql, sql_str};
use crate::dbtools::{self, throwaway};
use crate::secret::Secret;

/// Scratch databases' names start with this.
const PREFIX: &str = "wpbdrill_";

/// Where the scratch database goes, and who may create it.
pub struct Placement<'a> {
    /// The site's credentials (config.json, the live wp-config.php, else the archived one).
    pub site: &'a DatabaseConfig,
    /// Root's socket (`MYSQL_UNIX_PORT`).
    pub admin_socket: Option<PathBuf>,
    /// config.json's `drill.database`.
    pub server: Option<&'a DatabaseConfig>,
}

/// The scratch database's own user, what php connects as.
pub struct Login {
    pub user: String,
    pub password: Secret,
    /// Where php reaches the server: a socket when one is known.
    pub host: DbHost,
}

/// A scratch database, dropped when the guard is.
pub struct ScratchDb {
    pub name: String,
    /// Who created it: runs the import, the counts and the drop.
    admin: DatabaseConfig,
    /// Its own user, dropped with it (`None` only while it is being made).
    pub login: Option<Login>,
    /// How it was created, in words.
    pub how: String,
}

/// `wpbdrill_<site>_<time>_<pid>`: within MySQL's 64 characters, only `[a-z0-9_]`.
pub fn scratch_name(site: &str, now: DateTime<Utc>) -> String {
    let site: String = site
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(28)
        .collect();
    format!(
        "{PREFIX}{site}_{}_{:04x}",
        now.format("%Y%m%dt%H%M%Sz"),
        std::process::id() & 0xffff
    )
}

impl ScratchDb {
    /// Create `name` and its own user as [`Placement`] allows.
    pub fn create(name: &str, at: &Placement) -> anyhow::Result<ScratchDb> {
        let create = format!(
            "CREATE DATABASE {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;",
            ident(name)
        );
        if let Some(server) = at.server {
            sql(server, None, &create).with_context(|| {
                format!(
                    "cannot create the scratch database {name} on drill.database's server as user {}",
                    server.user
                )
            })?;
            remove_leftovers(server, Utc::now());
            let how = format!("on drill.database's server, as user {}", server.user);
            return ScratchDb::with_login(server.clone(), name, how);
        }
        let as_user = match sql(at.site, None, &create) {
            Ok(_) => {
                remove_leftovers(at.site, Utc::now());
                let how = format!("as the site's user {}", at.site.user);
                match ScratchDb::with_login(at.site.clone(), name, how) {
                    Ok(db) => return Ok(db),
                    // Dropped by with_login's guard: root is asked instead.
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        let socket = at.admin_socket.clone().or(match &at.site.host {
            DbHost::Socket(Some(p)) => Some(p.clone()),
            _ => None,
        });
        let root = admin(socket, at.site.timeouts);
        sql(&root, None, &create).map_err(|as_root| {
            anyhow::anyhow!(
                "cannot create a scratch database and its own user for the drill: as user {}: {as_user:#}; as root through the local socket: {as_root:#}. Let root in through the socket (MYSQL_UNIX_PORT in .env names it), or give drills a server of their own (drill.database in config.json)",
                at.site.user
            )
        })?;
        remove_leftovers(&root, Utc::now());
        ScratchDb::with_login(root, name, "as root through the local socket".into())
    }

    /// The guard of `name`, just created by `admin`, with its own user made; without that
    /// user, `name` is dropped again and the error says what `admin` lacks.
    fn with_login(admin: DatabaseConfig, name: &str, how: String) -> anyhow::Result<ScratchDb> {
        let mut db = ScratchDb {
            name: name.to_string(),
            admin,
            login: None,
            how,
        };
        db.login = Some(make_login(&db.admin, name)?);
        Ok(db)
    }

    /// The credentials of the scratch database's own user, for the database tools.
    fn as_login(&self) -> anyhow::Result<DatabaseConfig> {
        let login = self
            .login
            .as_ref()
            .context("the scratch database has no user of its own")?;
        Ok(DatabaseConfig {
            name: self.name.clone(),
            user: login.user.clone(),
            password: login.password.clone(),
            host: login.host.clone(),
            table_prefix: None,
            timeouts: self.admin.timeouts,
        })
    }

    /// Import `sql_file` (a dump whose statements were checked: `restore::dumpcheck`, before
    /// the scratch database was made) into the scratch database.
    pub fn import(&self, sql_file: &Path) -> anyhow::Result<()> {
        let tool = dbtools::find_tool(&["mariadb", "mysql"])?;
        let defaults = dbtools::defaults_file(&tool, &self.as_login()?)?;
        let mut cmd = dbtools::command(&tool);
        defaults.pass_to(&mut cmd);
        cmd.args(dbtools::client::client_args(
            &defaults.path(),
            Some(&self.name),
            true,
        ));
        let what = "the database client";
        // The dump's DEFINER= clauses go on the way, as a restore's do: the throwaway user
        // cannot define objects for another user (root's trigger would fail the drill).
        let dump = std::fs::File::open(sql_file)
            .with_context(|| format!("cannot open {}", sql_file.display()))?;
        let dump = crate::restore::definer::Strip::new(std::io::BufReader::with_capacity(
            256 * 1024,
            dump,
        ));
        let out = child::run(cmd, what, Input::Stream(Box::new(dump)), Duration::MAX)?;
        drop(defaults);
        if !out.status.success() {
            bail!("{}", server_error(&out.stderr));
        }
        Ok(())
    }

    /// The number `query` (one `SELECT COUNT(*)`) answers, as the scratch database's user.
    pub fn count(&self, query: &str) -> anyhow::Result<u64> {
        let said = sql(&self.as_login()?, Some(&self.name), query)?;
        said.trim()
            .parse()
            .with_context(|| format!("not a count: {}", said.trim()))
    }

    /// Each base table's rows now, by name.
    pub fn rows(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let login = self.as_login()?;
        let tables = sql(
            &login,
            None,
            &format!(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
                sql_str(&self.name)
            ),
        )?;
        let tables: Vec<&str> = tables.lines().filter(|l| !l.is_empty()).collect();
        if tables.is_empty() {
            return Ok(BTreeMap::new());
        }
        let counts: String = tables
            .iter()
            .map(|t| format!("SELECT COUNT(*) FROM {};\n", ident(t)))
            .collect();
        let out = sql(&login, Some(&self.name), &counts)?;
        let counts: Vec<u64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if counts.len() != tables.len() {
            bail!("unexpected answer from the database server while counting rows: {out:?}");
        }
        Ok(tables.iter().map(|t| t.to_string()).zip(counts).collect())
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let users: Vec<&str> = self.login.iter().map(|l| l.user.as_str()).collect();
        if let Err(e) = drop_scratch(&self.admin, &self.name, &[], &users) {
            tracing::error!(
                "cannot drop the drill's scratch database {}: {e:#}; drop it by hand (DROP DATABASE `{}`)",
                self.name,
                self.name
            );
        }
    }
}

/// The server's own error line(s) in the client's stderr, without the statement the client
/// echoes before them: that holds the site's data, which goes no further than this server.
fn server_error(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    match text.rfind("ERROR ") {
        Some(i) => child::tail(text[i..].as_bytes()),
        None => child::tail(stderr),
    }
}

/// Drop `name`, revoke `grants` on it and drop its own `users`.
fn drop_scratch(
    admin: &DatabaseConfig,
    name: &str,
    grants: &[(String, String)],
    users: &[&str],
) -> anyhow::Result<()> {
    let mut script = format!("DROP DATABASE IF EXISTS {};", ident(name));
    for (user, host) in grants.iter().filter(|(u, _)| !users.contains(&u.as_str())) {
        script.push_str(&format!(
            "\nREVOKE ALL PRIVILEGES ON {}.* FROM {}@{};",
            ident(name),
            sql_str(user),
            sql_str(host)
        ));
    }
    for user in users {
        script.push_str(&drop_user(user));
    }
    sql(admin, None, &script).map(|_| ())
}

/// SQL dropping the scratch database's own `user` at each of its hosts.
fn drop_user(user: &str) -> String {
    format!("\n{}", throwaway::drop_sql(user))
}

/// `wpbdrill_<time>_<random>`: 32 characters, MySQL's limit for user names.
pub fn login_name(now: DateTime<Utc>) -> String {
    format!(
        "{PREFIX}{}_{}",
        now.format("%Y%m%dt%H%M%Sz"),
        hex::encode(super::sandbox::random_bytes::<3>())
    )
}

/// Make the scratch database's own user, with a random password and every right on `name`
/// only, reached where `admin` reaches the server.
fn make_login(admin: &DatabaseConfig, name: &str) -> anyhow::Result<Login> {
    let user = login_name(Utc::now());
    let password = hex::encode(super::sandbox::random_bytes::<24>());
    if let Err(said) = throwaway::create(admin, &user, &password, name, &[]) {
        bail!(
            "cannot create the scratch database's own user as {}: {said}; php connects only as such a user, never as {}: grant {} CREATE USER and GRANT OPTION (GRANT ALL ON *.* TO ... WITH GRANT OPTION)",
            admin.user,
            admin.user,
            admin.user
        );
    }
    Ok(Login {
        user,
        password: Secret::new(password),
        host: admin.host.clone(),
    })
}

/// Drop the scratch databases (and, as root, the access granted on them) that killed drills
/// left, once a day old. Never fails the drill: what cannot be done is logged.
fn remove_leftovers(admin: &DatabaseConfig, now: DateTime<Utc>) {
    let like = sql_str(&format!("{}%", PREFIX.replace('_', "\\_")));
    let found = sql(
        admin,
        None,
        &format!(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE {like}"
        ),
    );
    let grants = sql(
        admin,
        None,
        &format!("SELECT Db, User, Host FROM mysql.db WHERE Db LIKE {like}"),
    )
    .unwrap_or_default();
    let mut names: Vec<String> = found
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    names.extend(
        grants
            .lines()
            .filter_map(|l| l.split('\t').next())
            .map(str::to_string),
    );
    names.sort();
    names.dedup();
    for name in names {
        let old =
            super::scratch::stamp_of(&name).is_some_and(|t| now - t > chrono::Duration::days(1));
        if !old {
            continue;
        }
        let on: Vec<(String, String)> = grants
            .lines()
            .filter_map(|l| {
                let mut f = l.split('\t');
                (f.next()? == name).then(|| Some((f.next()?.to_string(), f.next()?.to_string())))?
            })
            .collect();
        match drop_scratch(admin, &name, &on, &[]) {
            Ok(()) => tracing::warn!(
                "dropped the scratch database {name}, left by a drill that was killed"
            ),
            Err(e) => {
                tracing::warn!("cannot drop the scratch database {name} a killed drill left: {e:#}")
            }
        }
    }
    let users = sql(
        admin,
        None,
        &format!("SELECT DISTINCT User FROM mysql.user WHERE User LIKE {like}"),
    )
    .unwrap_or_default();
    for user in users.lines().map(str::trim).filter(|u| !u.is_empty()) {
        let old =
            super::scratch::stamp_of(user).is_some_and(|t| now - t > chrono::Duration::days(1));
        if !old {
            continue;
        }
        match sql(admin, None, &drop_user(user)) {
            Ok(_) => {
                tracing::warn!("dropped the scratch user {user}, left by a drill that was killed")
            }
            Err(e) => {
                tracing::warn!("cannot drop the scratch user {user} a killed drill left: {e:#}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_names_are_plain_and_short() {
        let t = DateTime::parse_from_rfc3339("2026-11-25T03:04:05Z")
            .unwrap()
            .to_utc();
        let n = scratch_name("Example.COM-shop_with-a-very-long-name-indeed", t);
        assert!(
            n.starts_with("wpbdrill_example_com_shop_with_a_very_20261125t030405z_"),
            "{n}"
        );
        assert!(n.len() <= 64);
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
        assert_eq!(super::super::scratch::stamp_of(&n), Some(t));
    }
}
