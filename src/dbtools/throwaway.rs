//! Throwaway database users: made by an admin connection for one job (the drill's import and
//! php, the restore's import when the site's own user cannot do it, the point-in-time
//! replay), with a random password that only a `0600` in-memory defaults file ever holds, at
//! the hosts a socket's and a TCP client's logins come from ([`HOSTS`]), granted every right
//! on one database and nothing else (the replay adds `BINLOG REPLAY`), and dropped again.
//!
//! [`User`] drops its user when it is dropped: at the end, on a failure and on a signal (a
//! SIGTERM or SIGINT only sets a flag the job checks, so the guard runs). The drill drops its
//! user together with its scratch database, with [`create`] and [`drop_sql`].

use anyhow::{Context as _, anyhow};

use crate::config::{DatabaseConfig, DbHost};
use crate::dbtools::client::{ident, sql, sql_str};
use crate::secret::Secret;

/// The hosts a throwaway user is made at: where a socket's and where TCP logins come from.
pub const HOSTS: [&str; 2] = ["localhost", "%"];

/// `N` random bytes from the kernel, in hex.
pub fn random_hex<const N: usize>() -> anyhow::Result<String> {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf).context("no random numbers from the system")?;
    Ok(hex::encode(buf))
}

/// SQL dropping `user` at each of [`HOSTS`].
pub fn drop_sql(user: &str) -> String {
    HOSTS
        .iter()
        .map(|h| format!("DROP USER IF EXISTS {}@{};\n", sql_str(user), sql_str(h)))
        .collect()
}

/// Create `user` with `password` at each of [`HOSTS`], granted all privileges on `database`
/// and the global privileges `extra` (`BINLOG REPLAY`), nothing else. On a failure what was
/// made of it is dropped again and the error is the server's answer alone (the statement the
/// client echoes holds the password).
pub fn create(
    admin: &DatabaseConfig,
    user: &str,
    password: &str,
    database: &str,
    extra: &[&str],
) -> anyhow::Result<()> {
    let mut script = String::new();
    for h in HOSTS {
        let (u, h) = (sql_str(user), sql_str(h));
        script.push_str(&format!(
            "CREATE USER {u}@{h} IDENTIFIED BY {};\nGRANT ALL PRIVILEGES ON {}.* TO {u}@{h};\n",
            sql_str(password),
            ident(database),
        ));
        for privilege in extra {
            script.push_str(&format!("GRANT {privilege} ON *.* TO {u}@{h};\n"));
        }
    }
    if let Err(e) = sql(admin, None, &script) {
        let _ = sql(admin, None, &drop_sql(user));
        let said = format!("{e:#}");
        let said = said
            .rfind("ERROR ")
            .map_or("the server refused", |i| &said[i..]);
        return Err(anyhow!("{said}"));
    }
    Ok(())
}

/// A throwaway user, dropped with this guard.
pub struct User {
    admin: DatabaseConfig,
    name: String,
    password: Secret,
    /// What it is for, in words ("the replay's user").
    what: &'static str,
}

impl User {
    /// Make `<prefix><random>` (see [`create`]) as `admin`, for `what`; an error names
    /// `what`, the server's answer and `hint` (what the admin needs).
    pub fn make(
        admin: &DatabaseConfig,
        prefix: &str,
        database: &str,
        extra: &[&str],
        what: &'static str,
        hint: &str,
    ) -> anyhow::Result<User> {
        let name = format!("{prefix}{}", random_hex::<6>()?);
        let password = random_hex::<24>()?;
        if let Err(said) = create(admin, &name, &password, database, extra) {
            return Err(anyhow!(
                "cannot create {what} as {}: {said}; {hint}",
                admin.user
            ));
        }
        Ok(User {
            admin: admin.clone(),
            name,
            password: Secret::new(password),
            what,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its connection to `database`, where the admin reaches the server (or at `host`).
    pub fn login(&self, database: &str, host: Option<DbHost>) -> DatabaseConfig {
        DatabaseConfig {
            name: database.to_string(),
            user: self.name.clone(),
            password: self.password.clone(),
            host: host.unwrap_or_else(|| self.admin.host.clone()),
            table_prefix: None,
            timeouts: self.admin.timeouts,
        }
    }
}

impl Drop for User {
    fn drop(&mut self) {
        if let Err(e) = sql(&self.admin, None, &drop_sql(&self.name)) {
            tracing::error!(
                "cannot drop {} {}: {e:#}; drop it by hand (DROP USER '{}'@'localhost', '{}'@'%')",
                self.what,
                self.name,
                self.name,
                self.name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_dropped_at_every_host_and_names_are_random() {
        assert_eq!(
            drop_sql("wpbx_1"),
            "DROP USER IF EXISTS 'wpbx_1'@'localhost';\nDROP USER IF EXISTS 'wpbx_1'@'%';\n"
        );
        let (a, b) = (random_hex::<6>().unwrap(), random_hex::<6>().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 12);
    }
}
