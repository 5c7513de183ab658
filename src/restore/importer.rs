//! Who imports a restore's `database.sql`: never an administrator. The restore's own
//! connection (config.json's `sites[].database`, which may be an administrator, or root through
//! the local socket) only prepares the target database (creates it, saves its content, moves
//! its tables aside, puts them back); the archive's SQL, and the move to a new address that
//! rewrites what it wrote, run as a user whose rights stop at the target database:
//!
//! 1. a clone's own user ([`super::db_user`]), made before the import;
//! 2. else the site's own user: the restore's credentials when they come from `wp-config.php`,
//!    the archive's `wp-config.php` `DB_USER`/`DB_PASSWORD`, the live one's;
//! 3. else a throwaway user (`wpbrestore_<random>`, [`crate::dbtools::throwaway`]) granted
//!    every right on the target database only, made by the restore's connection when it may
//!    create users, else by root through the local socket, and dropped when the import ends,
//!    whatever happened.
//!
//! A user qualifies when it connects, sees the target database, and holds no global privilege
//! (beyond `USAGE`) and none on the `mysql`, `sys` or `performance_schema` databases. The
//! dump's `DEFINER=` clauses are taken out on the way ([`super::definer`]), so its triggers,
//! views, routines and events are defined by the user who imports them: the site's own (or
//! the clone's) user, the one that runs the site. Defined by a throwaway user, they stop
//! working once it is dropped: the restore names them in a warning.

use anyhow::anyhow;

use crate::config::DatabaseConfig;
use crate::dbtools::client::{sql, sql_str};
use crate::dbtools::throwaway;
use crate::secret::Secret;

/// Throwaway import users' names start with this.
pub const PREFIX: &str = "wpbrestore_";

/// The user that imports, and its throwaway guard when it is one.
pub struct Importer {
    pub login: DatabaseConfig,
    /// Who it is, in words.
    pub who: String,
    throwaway: Option<throwaway::User>,
}

/// A user that may import: its name and password, and whose it is in words.
pub struct Candidate {
    pub user: String,
    pub password: Secret,
    pub whose: &'static str,
}

impl Importer {
    /// The first of `candidates` that qualifies (see the module's documentation) to import
    /// into `db` on the server `creds` reaches; else a throwaway user made by `admin`.
    pub fn choose(
        creds: &DatabaseConfig,
        db: &str,
        candidates: Vec<Candidate>,
        admin: impl FnOnce() -> Option<DatabaseConfig>,
    ) -> anyhow::Result<Importer> {
        let mut why = Vec::new();
        let mut tried: Vec<String> = Vec::new();
        for c in candidates {
            if tried.contains(&c.user) {
                continue;
            }
            tried.push(c.user.clone());
            let login = DatabaseConfig {
                name: db.to_string(),
                user: c.user.clone(),
                password: c.password,
                table_prefix: None,
                ..creds.clone()
            };
            match limited_to(&login, db) {
                Ok(None) => {
                    return Ok(Importer {
                        login,
                        who: format!("{} {}", c.whose, c.user),
                        throwaway: None,
                    });
                }
                Ok(Some(not)) => why.push(format!("user {} {not}", c.user)),
                Err(e) => why.push(format!("user {} cannot connect ({e:#})", c.user)),
            }
        }
        let why = if why.is_empty() {
            "no wp-config.php names the site's own user".to_string()
        } else {
            why.join("; ")
        };
        tracing::info!("database.sql is imported as a throwaway user: {why}");
        let Some(admin) = admin() else {
            return Err(anyhow!(
                "database.sql is never imported by an administrator, and no user limited to database {db} can import it: {why}; and no connection may create a throwaway user for it (user {} may not create users, and root does not answer through the local socket): grant the site's own user all privileges on `{db}`.* (and nothing on *.*), or let root in through the local socket (MYSQL_UNIX_PORT in .env names it)",
                creds.user
            ));
        };
        let user = throwaway::User::make(
            &admin,
            PREFIX,
            db,
            &[],
            "the restore's throwaway import user",
            "it needs CREATE USER and GRANT OPTION (root through the local socket has them; MYSQL_UNIX_PORT in .env names the socket)",
        )?;
        Ok(Importer {
            login: user.login(db, None),
            who: format!(
                "a throwaway user {} (all privileges on {db} only; dropped again)",
                user.name()
            ),
            throwaway: Some(user),
        })
    }

    /// The user was a throwaway one: what the import defined as it (triggers, views,
    /// routines, events of `db`), which stop working once it is dropped, in words.
    pub fn orphans(&self, db: &str) -> Vec<String> {
        let Some(user) = &self.throwaway else {
            return Vec::new();
        };
        let (d, u) = (sql_str(db), sql_str(&format!("{}@%", user.name())));
        let q = format!(
            "SELECT CONCAT('trigger ', TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {d} AND DEFINER LIKE {u}
             UNION ALL SELECT CONCAT('view ', TABLE_NAME) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {d} AND DEFINER LIKE {u}
             UNION ALL SELECT CONCAT(LOWER(ROUTINE_TYPE), ' ', ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {d} AND DEFINER LIKE {u}
             UNION ALL SELECT CONCAT('event ', EVENT_NAME) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {d} AND DEFINER LIKE {u}"
        );
        match sql(&self.login, None, &q) {
            Ok(out) => out
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
            Err(e) => {
                tracing::warn!("cannot list what the throwaway import user defined: {e:#}");
                Vec::new()
            }
        }
    }
}

/// `None` when `login` sees database `db` and holds no right beyond what a site's own user
/// has; else what it lacks or holds, in words.
fn limited_to(login: &DatabaseConfig, db: &str) -> anyhow::Result<Option<String>> {
    // GRANTEE is written `'user'@'host'`; CURRENT_USER() `user@host`.
    let g = "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";
    let system = "('mysql', 'sys', 'performance_schema')";
    let q = format!(
        "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {};
         SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = {g} AND PRIVILEGE_TYPE <> 'USAGE';
         SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = {g} AND (TABLE_SCHEMA IN {system} OR 'mysql' LIKE TABLE_SCHEMA);
         SELECT COUNT(*) FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = {g} AND TABLE_SCHEMA IN {system};",
        sql_str(db)
    );
    let out = sql(login, None, &q)?;
    let n: Vec<u64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    Ok(match n.as_slice() {
        [0, ..] => Some(format!("cannot reach database {db}")),
        [_, 0, 0, 0] => None,
        [_, global, ..] if *global > 0 => Some("holds global privileges".into()),
        [_, _, _, _] => Some("holds privileges on the mysql database".into()),
        _ => Some(format!("gave an unexpected answer ({out:?})")),
    })
}
