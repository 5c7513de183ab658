//! A clone's own database user (`restore --to DIR --db-name NEW`): the user its
//! `wp-config.php` names, so that a staging copy never shares production's credentials unless
//! asked (`--db-user` naming the site's own user).
//!
//! By default a new user named after the clone's database (cut to the server's limit, 80
//! characters on MariaDB and 32 on MySQL, with `_2`, `_3`... when the name is taken), with a
//! random password, granted all privileges on the clone's database only, at each host the
//! site's own user (the archive's `wp-config.php` `DB_USER`, else the restore's user) is
//! defined for. `--db-user NAME` names a user: an existing one whose password the restore
//! knows (from [`PASSWORD_ENV`], in the environment or `.env`; or the site's own user), or a
//! new one made as above. Creating a user and granting it need an admin connection: the
//! restore's own credentials when they hold `CREATE USER` with `GRANT OPTION`, else root
//! through the local socket.
//!
//! Everything is decided before anything changes ([`plan`]: read-only queries); [`Plan::apply`]
//! runs before the import (the clone's user imports its `database.sql`, and so defines its
//! triggers and views: [`super::importer`]), and what it created is dropped again
//! ([`Made::drop_again`]) when the restore fails after it. The password goes to the server only in the client's stdin, and to
//! the clone's `wp-config.php`: never on a command line, in a log or in the summary.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};

use crate::config::DatabaseConfig;
use crate::dbtools::client::{admin, ident, sql, sql_str};
use crate::secret::Secret;

/// Where the password of an existing `--db-user` comes from (the environment, else `.env`).
pub const PASSWORD_ENV: &str = "WPBACKUP_CLONE_DB_PASSWORD";

/// What the restore knows when it plans the clone's user.
pub struct Ask<'a> {
    /// `--db-user`.
    pub user: Option<&'a str>,
    /// [`PASSWORD_ENV`], when set.
    pub password: Option<Secret>,
    /// The restore's own connection (it imports the database).
    pub creds: &'a DatabaseConfig,
    /// The user and password of the archive's `wp-config.php` (the site's own user).
    pub site_user: Option<(String, Secret)>,
    /// The clone's database.
    pub db: &'a str,
    /// Root's socket (`MYSQL_UNIX_PORT`, or the site's own socket).
    pub admin_socket: Option<PathBuf>,
}

/// The clone's user, decided: who, and whether it is made.
pub struct Plan {
    pub user: String,
    pub password: Secret,
    /// A new user, made by [`Plan::apply`]; else an existing one.
    pub create: bool,
    /// The hosts it is (or would be) defined for; empty when unknown (no admin connection).
    pub hosts: Vec<String>,
    admin: Option<DatabaseConfig>,
    /// The user's own connection, on the server the restore uses.
    conn: DatabaseConfig,
}

/// A user [`Plan::apply`] created, until the restore has succeeded.
pub struct Made {
    user: String,
    hosts: Vec<String>,
    admin: DatabaseConfig,
}

const NOTHING: &str = "nothing was changed";

/// Decide the clone's user (see the module's documentation); an error says why it cannot be
/// made and what to do, before anything changed.
pub fn plan(ask: &Ask) -> anyhow::Result<Plan> {
    let admin = find_admin(ask.creds, ask.admin_socket.clone());
    let hint = format!(
        "pass an existing user with --db-user NAME and its password in {PASSWORD_ENV} (the environment or the home's .env; never on the command line), or run restore as root where root reaches the database server through the local socket (MYSQL_UNIX_PORT=/path/to.sock when it is not the default one)"
    );
    let conn = |user: &str, password: &Secret| DatabaseConfig {
        user: user.to_string(),
        password: password.clone(),
        name: String::new(),
        table_prefix: None,
        ..ask.creds.clone()
    };
    let site_user = ask.site_user.as_ref().map(|(u, _)| u.as_str());
    let hosts_like = |admin: &DatabaseConfig| -> anyhow::Result<Vec<String>> {
        for u in site_user.into_iter().chain([ask.creds.user.as_str()]) {
            let hosts = user_hosts(admin, u)?;
            if !hosts.is_empty() {
                return Ok(hosts);
            }
        }
        Ok(vec!["localhost".into()])
    };
    if let Some(name) = ask.user {
        let known = ask
            .password
            .clone()
            .or_else(|| (name == ask.creds.user).then(|| ask.creds.password.clone()))
            .or_else(|| {
                ask.site_user
                    .as_ref()
                    .filter(|(u, _)| u == name)
                    .map(|(_, p)| p.clone())
            });
        if let Some(password) = known {
            let c = conn(name, &password);
            sql(&c, None, "SELECT 1").map_err(|e| {
                anyhow!(
                    "cannot connect as --db-user {name} ({e:#}): check the user and its password ({PASSWORD_ENV}); {NOTHING}"
                )
            })?;
            let hosts = match &admin {
                Some(a) => user_hosts(a, name)?,
                None => Vec::new(),
            };
            return Ok(Plan {
                user: name.to_string(),
                password,
                create: false,
                hosts,
                admin,
                conn: c,
            });
        }
        let Some(a) = admin else {
            bail!(
                "--db-user {name}: its password is not known ({PASSWORD_ENV} is not set), and no connection that may create a database user is available (the restore's user may not, and root does not answer through the local socket): {hint}; {NOTHING}"
            );
        };
        if !user_hosts(&a, name)?.is_empty() {
            bail!(
                "--db-user {name}: that user exists already: give its password in {PASSWORD_ENV} (the environment or the home's .env), or leave --db-user out and the restore makes a new user for the clone; {NOTHING}"
            );
        }
        let hosts = hosts_like(&a)?;
        let password = random_password()?;
        return Ok(Plan {
            user: name.to_string(),
            conn: conn(name, &password),
            password,
            create: true,
            hosts,
            admin: Some(a),
        });
    }
    let Some(a) = admin else {
        bail!(
            "the clone gets its own database user, and no connection that may create one is available (user {} may not create users, and root does not answer through the local socket): {hint}; {NOTHING}",
            ask.creds.user
        );
    };
    let user = free_name(&a, ask.db)?;
    let hosts = hosts_like(&a)?;
    let password = random_password()?;
    Ok(Plan {
        conn: conn(&user, &password),
        user,
        password,
        create: true,
        hosts,
        admin: Some(a),
    })
}

impl Plan {
    /// Make the user (when new) and let it reach database `db`: a new user is created with
    /// its password and granted all privileges on `db` only, at each of its hosts; an
    /// existing one must reach `db` already, or is granted it there when an admin connection
    /// is available. Returns the user it created.
    pub fn apply(&self, db: &str) -> anyhow::Result<Option<Made>> {
        let (u, d) = (sql_str(&self.user), ident(db));
        if self.create {
            let admin = self
                .admin
                .as_ref()
                .context("no admin connection to create the user with")?;
            let mut script = String::new();
            for h in &self.hosts {
                let pw = sql_str(self.password.expose());
                script.push_str(&format!(
                    "CREATE USER {u}@{} IDENTIFIED BY {pw};\n",
                    sql_str(h)
                ));
            }
            for h in &self.hosts {
                script.push_str(&format!(
                    "GRANT ALL PRIVILEGES ON {d}.* TO {u}@{};\n",
                    sql_str(h)
                ));
            }
            let made = Made {
                user: self.user.clone(),
                hosts: self.hosts.clone(),
                admin: admin.clone(),
            };
            if let Err(e) = sql(admin, None, &script) {
                let _ = made.drop_again();
                return Err(e.context(format!(
                    "cannot create database user {} for the clone",
                    self.user
                )));
            }
            return Ok(Some(made));
        }
        if self.reaches(db)? {
            return Ok(None);
        }
        let grant = |admin: &DatabaseConfig| -> anyhow::Result<()> {
            let mut script = String::new();
            for h in user_hosts(admin, &self.user)? {
                script.push_str(&format!(
                    "GRANT ALL PRIVILEGES ON {d}.* TO {u}@{};\n",
                    sql_str(&h)
                ));
            }
            sql(admin, None, &script).map(|_| ())
        };
        match &self.admin {
            Some(a) => grant(a).with_context(|| {
                format!("cannot grant user {} access to database {db}", self.user)
            })?,
            None => bail!(
                "user {} cannot reach database {db}, and no connection that may grant it is available: grant it (GRANT ALL ON `{db}`.* TO the user at its hosts) and run restore again",
                self.user
            ),
        }
        if !self.reaches(db)? {
            bail!("user {} still cannot reach database {db}", self.user);
        }
        Ok(None)
    }

    /// The user sees database `db`.
    fn reaches(&self, db: &str) -> anyhow::Result<bool> {
        let out = sql(
            &self.conn,
            None,
            &format!(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
                sql_str(db)
            ),
        )
        .with_context(|| format!("cannot connect as user {}", self.user))?;
        Ok(out.trim() == "1")
    }

    /// In words, for the summary (never the password).
    pub fn note(&self, db: &str) -> String {
        let at = match self.hosts.as_slice() {
            [] => String::new(),
            hosts => format!(" at {}", hosts.join(", ")),
        };
        if self.create {
            format!(
                "created with a random password (written only into the clone's wp-config.php), granted all privileges on database {db} only{at}"
            )
        } else {
            "an existing user, with the password given for it".to_string()
        }
    }
}

impl Made {
    /// Drop the user again (a restore that fails leaves no user it made).
    pub fn drop_again(&self) -> anyhow::Result<()> {
        let script: String = self
            .hosts
            .iter()
            .map(|h| {
                format!(
                    "DROP USER IF EXISTS {}@{};\n",
                    sql_str(&self.user),
                    sql_str(h)
                )
            })
            .collect();
        sql(&self.admin, None, &script)
            .map(|_| ())
            .with_context(|| format!("cannot drop database user {} again", self.user))
    }
}

/// A connection that may create users and grant them: the restore's own when it holds
/// `CREATE USER` with `GRANT OPTION` and reads `mysql.user`, else root through the local
/// socket when it does and is the same server (a site on a remote server gets no user made on
/// this machine's).
pub(crate) fn find_admin(
    creds: &DatabaseConfig,
    socket: Option<PathBuf>,
) -> Option<DatabaseConfig> {
    let own = DatabaseConfig {
        name: String::new(),
        table_prefix: None,
        ..creds.clone()
    };
    if can_admin(&own) {
        return Some(own);
    }
    let root = admin(socket, creds.timeouts);
    (can_admin(&root) && same_server(&own, &root)).then_some(root)
}

/// `a` and `b` reach the same server (its host name, port and data directory).
fn same_server(a: &DatabaseConfig, b: &DatabaseConfig) -> bool {
    let id = |c: &DatabaseConfig| sql(c, None, "SELECT @@hostname, @@port, @@datadir").ok();
    matches!((id(a), id(b)), (Some(x), Some(y)) if x == y)
}

fn can_admin(c: &DatabaseConfig) -> bool {
    // GRANTEE is written `'user'@'host'`; CURRENT_USER() `user@host`.
    let q = "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES
             WHERE GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''',
                                    SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')
               AND PRIVILEGE_TYPE = 'CREATE USER' AND IS_GRANTABLE = 'YES';
             SELECT COUNT(*) FROM mysql.user WHERE 1 = 0;";
    sql(c, None, q).is_ok_and(|out| out.lines().next().map(str::trim) == Some("1"))
}

/// The hosts `user` is defined for (none: no such user).
fn user_hosts(admin: &DatabaseConfig, user: &str) -> anyhow::Result<Vec<String>> {
    let out = sql(
        admin,
        None,
        &format!(
            "SELECT Host FROM mysql.user WHERE User = {} ORDER BY Host",
            sql_str(user)
        ),
    )?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(String::from)
        .collect())
}

/// A user name for database `db` that the server does not have yet: `db` cut to the server's
/// limit, else with `_2`, `_3`...
fn free_name(admin: &DatabaseConfig, db: &str) -> anyhow::Result<String> {
    let version = sql(admin, None, "SELECT VERSION()")?;
    let limit = if version.contains("MariaDB") { 80 } else { 32 };
    let taken: Vec<String> = sql(admin, None, "SELECT DISTINCT User FROM mysql.user")?
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    (1..1000)
        .map(|n| candidate(db, limit, n))
        .find(|name| !taken.contains(name))
        .with_context(|| format!("no free database user name for database {db}"))
}

/// The `n`th name tried for database `db` (`db` itself first), at most `limit` characters.
fn candidate(db: &str, limit: usize, n: u32) -> String {
    let suffix = if n == 1 {
        String::new()
    } else {
        format!("_{n}")
    };
    let keep = limit.saturating_sub(suffix.chars().count());
    db.chars().take(keep).collect::<String>() + &suffix
}

/// 32 characters from the kernel's random source: letters, digits and `-_.:+=` (nothing a PHP
/// or SQL string, a defaults file or a shell paste would read specially), at least one of each
/// kind, as password-strength plugins ask.
fn random_password() -> anyhow::Result<Secret> {
    const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:+=";
    let mut f = std::fs::File::open("/dev/urandom").context("cannot open /dev/urandom")?;
    let limit = 256 - 256 % LETTERS.len();
    loop {
        let mut bytes = [0u8; 128];
        f.read_exact(&mut bytes)
            .context("cannot read /dev/urandom")?;
        let pw: String = bytes
            .iter()
            .filter(|b| usize::from(**b) < limit)
            .take(32)
            .map(|b| LETTERS[usize::from(*b) % LETTERS.len()] as char)
            .collect();
        let kinds = [
            pw.chars().any(|c| c.is_ascii_uppercase()),
            pw.chars().any(|c| c.is_ascii_lowercase()),
            pw.chars().any(|c| c.is_ascii_digit()),
            pw.chars().any(|c| !c.is_ascii_alphanumeric()),
        ];
        if pw.len() == 32 && kinds.iter().all(|k| *k) {
            return Ok(Secret::new(pw));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_limit_and_take_a_suffix() {
        assert_eq!(candidate("wp_staging", 32, 1), "wp_staging");
        assert_eq!(candidate("wp_staging", 32, 2), "wp_staging_2");
        let long = "d".repeat(40);
        assert_eq!(candidate(&long, 32, 1), "d".repeat(32));
        assert_eq!(candidate(&long, 32, 12), format!("{}_12", "d".repeat(29)));
        assert_eq!(
            candidate("é".repeat(90).as_str(), 80, 1).chars().count(),
            80
        );
    }

    #[test]
    fn passwords_are_random_and_plain() {
        let a = random_password().unwrap();
        let b = random_password().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 32);
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:+=".contains(c))
        );
        assert_eq!(format!("{a}"), "**redacted**");
    }
}
