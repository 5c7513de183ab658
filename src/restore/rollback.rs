//! A failed or interrupted import leaves the database as it was.
//!
//! MariaDB cannot rename a database, and a site's user is rarely allowed to create one, so the
//! previous content is kept *inside* the target database: before the import, every table and
//! view it holds is renamed, in one atomic `RENAME TABLE`, to `wpbackup_old_<name>`
//! ([`move_aside`]), and the import runs in a database that looks empty. The list of what was
//! moved (and the definition of each trigger) is written first to the table
//! `wpbackup_rollback`, with the SQL that puts each back, so that a person can do it by hand if
//! the process is killed outright (README, "A restore that was killed outright").
//!
//! - The import or a later step fails, or SIGTERM/SIGINT arrives: [`Aside::put_back`] drops what
//!   the import made and renames the old tables back (metadata only: no row is copied).
//! - The restore succeeds: [`Aside::finish`] drops the old tables the archive replaced and
//!   renames back the others (a table the archive does not hold is kept, as a plain import
//!   would have kept it).
//!
//! A trigger's name is unique in its database and a trigger follows its table when it is
//! renamed, so the archive's own triggers (the same names) could not be created beside the old
//! ones: the old triggers are dropped before the import and created again, from their
//! definitions, when their table comes back. Stored procedures and functions are not moved
//! (WordPress has none); the copy saved in `before-restore/` holds them.
//!
//! Only the rights a site's user has on its own database are used (CREATE, DROP, ALTER,
//! INSERT, TRIGGER): no CREATE DATABASE.

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::{Context as _, bail};
use sha2::{Digest, Sha256};

use crate::config::DatabaseConfig;
use crate::dbtools::client::{ident, sql, sql_str};

/// The table that lists what a restore moved aside, while it runs.
pub const MAP_TABLE: &str = "wpbackup_rollback";
/// What the name of a table or view moved aside starts with.
pub const ASIDE_PREFIX: &str = "wpbackup_old_";
/// MariaDB's longest table name, in characters.
const NAME_MAX: usize = 64;

/// A table or view of the database.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    name: String,
    view: bool,
}

/// A table or view moved aside.
#[derive(Debug, Clone)]
struct Moved {
    table: Table,
    aside: String,
}

/// A trigger, as it is created again.
#[derive(Debug, Clone)]
struct Trigger {
    name: String,
    table: String,
    sql_mode: String,
    create: String,
}

/// The previous content of a database while an import runs in its place: put back or
/// finished, exactly once (dropped unsettled, it is put back).
pub struct Aside {
    creds: DatabaseConfig,
    db: String,
    moved: Vec<Moved>,
    triggers: Vec<Trigger>,
    settled: bool,
}

/// Where table `name` goes while an import runs: `wpbackup_old_<name>`, shortened with a hash
/// of the name when that would be longer than MariaDB allows.
pub fn aside_name(name: &str) -> String {
    if ASIDE_PREFIX.chars().count() + name.chars().count() <= NAME_MAX {
        return format!("{ASIDE_PREFIX}{name}");
    }
    let hash = hex::encode(&Sha256::digest(name.as_bytes())[..4]);
    let keep = NAME_MAX - ASIDE_PREFIX.len() - 1 - hash.len();
    let head: String = name.chars().take(keep).collect();
    format!("{ASIDE_PREFIX}{head}_{hash}")
}

/// The tables and views of `db` that a restore killed before it could finish left behind.
pub fn leftovers(creds: &DatabaseConfig, db: &str) -> anyhow::Result<Vec<String>> {
    Ok(tables(creds, db)?
        .into_iter()
        .map(|t| t.name)
        .filter(|n| n == MAP_TABLE || n.starts_with(ASIDE_PREFIX))
        .collect())
}

/// Check, leaving nothing behind, that `creds` may create, rename and drop tables in `db`.
pub fn probe(creds: &DatabaseConfig, db: &str) -> anyhow::Result<()> {
    // Names a killed restore's leftovers never have: a probe killed halfway is only in the way
    // of nothing.
    let (a, b) = (ident("wpbackup_probe"), ident("wpbackup_probe_renamed"));
    let tried = sql(
        creds,
        Some(db),
        &format!("CREATE TABLE {a} (id INT); RENAME TABLE {a} TO {b}; DROP TABLE {b};"),
    );
    if tried.is_err() {
        let _ = sql(creds, Some(db), &format!("DROP TABLE IF EXISTS {a}, {b};"));
    }
    tried.map(|_| ())
}

/// Why the tables of a database could not be moved aside.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    /// Nothing is left moved: the database is as it was.
    #[error("cannot move the tables of database {0} aside before the import: {1:#}")]
    Unchanged(String, anyhow::Error),
    /// Moving them failed halfway, and putting them back failed too (the second error says
    /// where they are).
    #[error(
        "cannot move the tables of database {0} aside before the import ({1:#}), nor put them back: {2:#}"
    )]
    Stuck(String, anyhow::Error, anyhow::Error),
}

/// Move every table and view of `db` aside (see the module's documentation), writing the list
/// to [`MAP_TABLE`] first. `stamp` names the restore in that list.
pub fn move_aside(creds: &DatabaseConfig, db: &str, stamp: &str) -> Result<Aside, MoveError> {
    let started = Instant::now();
    let unchanged = |e: anyhow::Error| MoveError::Unchanged(db.to_string(), e);
    let before = tables(creds, db).map_err(unchanged)?;
    if let Some(t) = before
        .iter()
        .find(|t| t.name == MAP_TABLE || t.name.starts_with(ASIDE_PREFIX))
    {
        return Err(unchanged(anyhow::anyhow!(
            "it holds {}, left by a restore that was killed: put the tables back by hand (README, \"A restore that was killed outright\")",
            t.name
        )));
    }
    let mut aside = Aside {
        creds: creds.clone(),
        db: db.to_string(),
        moved: before
            .into_iter()
            .map(|table| Moved {
                aside: aside_name(&table.name),
                table,
            })
            .collect(),
        triggers: triggers(creds, db).map_err(unchanged)?,
        settled: false,
    };
    if aside.moved.is_empty() && aside.triggers.is_empty() {
        return Ok(aside);
    }
    if let Err(e) = sql(creds, Some(db), &aside.move_script(stamp)) {
        return Err(match aside.put_back() {
            Ok(()) => unchanged(e),
            Err(p) => MoveError::Stuck(db.to_string(), e, p),
        });
    }
    tracing::info!(
        "moved the {} tables and views of database {db} aside in {:.3}s",
        aside.moved.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(aside)
}

impl Aside {
    /// The list written, the triggers dropped, the tables renamed: one client run.
    fn move_script(&self, stamp: &str) -> String {
        let text = |s: &str| format!("CONVERT(X'{}' USING utf8mb4)", hex::encode(s));
        let rows: Vec<String> = self
            .put_back_steps()
            .iter()
            .enumerate()
            .map(|(step, (kind, name, aside, sql))| {
                format!(
                    "({step}, '{kind}', {}, {}, {}, {})",
                    text(name),
                    aside.map_or("NULL".into(), text),
                    text(sql),
                    sql_str(stamp)
                )
            })
            .collect();
        let mut s = format!(
            "CREATE TABLE {} (step INT NOT NULL PRIMARY KEY, kind VARCHAR(8) NOT NULL, name VARCHAR(64) NOT NULL, aside VARCHAR(64) NULL, put_back LONGTEXT NOT NULL, restore_started VARCHAR(20) NOT NULL) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='wpbackup restore in progress: what it moved aside, and the SQL that puts it back (README)';\nINSERT INTO {} VALUES {};\n",
            ident(MAP_TABLE),
            ident(MAP_TABLE),
            rows.join(", ")
        );
        for t in &self.triggers {
            s.push_str(&format!("DROP TRIGGER {};\n", ident(&t.name)));
        }
        if !self.moved.is_empty() {
            let pairs: Vec<String> = self
                .moved
                .iter()
                .map(|m| format!("{} TO {}", ident(&m.table.name), ident(&m.aside)))
                .collect();
            s.push_str(&format!("RENAME TABLE {};\n", pairs.join(", ")));
        }
        s
    }

    /// For a person, should the process be killed outright: each step that puts the database
    /// back (kind, name, where it is aside, the SQL), in order, the last one dropping the list.
    fn put_back_steps(&self) -> Vec<(&'static str, &str, Option<&str>, String)> {
        let mut steps = vec![("setup", "", None, "SET FOREIGN_KEY_CHECKS = 0;".to_string())];
        for m in &self.moved {
            let (kind, what) = if m.table.view {
                ("view", "VIEW")
            } else {
                ("table", "TABLE")
            };
            let (name, aside) = (ident(&m.table.name), ident(&m.aside));
            let sql = format!("DROP {what} IF EXISTS {name}; RENAME TABLE {aside} TO {name};");
            steps.push((kind, m.table.name.as_str(), Some(m.aside.as_str()), sql));
        }
        for t in &self.triggers {
            let sql = format!("DELIMITER ;;\n{};;\nDELIMITER ;", t.create);
            steps.push(("trigger", t.name.as_str(), None, sql));
        }
        let done = format!("DROP TABLE {};", ident(MAP_TABLE));
        steps.push(("done", MAP_TABLE, None, done));
        steps
    }

    /// The database as it was: what the import made is dropped, what was moved aside renamed
    /// back, the triggers created again, the list dropped.
    pub fn put_back(&mut self) -> anyhow::Result<()> {
        self.settled = true;
        let (creds, db) = (&self.creds, self.db.as_str());
        let now = tables(creds, db)?;
        let asides: BTreeSet<&str> = self.moved.iter().map(|m| m.aside.as_str()).collect();
        let names: BTreeSet<&str> = now.iter().map(|t| t.name.as_str()).collect();
        // Moved in one statement: all of them are aside, or none (the import never ran).
        let present = asides.iter().filter(|a| names.contains(*a)).count();
        let renamed = match present {
            n if n == self.moved.len() => true,
            0 if self
                .moved
                .iter()
                .all(|m| names.contains(m.table.name.as_str())) =>
            {
                false
            }
            _ => bail!(
                "{} of the {} tables of database {db} moved aside are gone: its previous content is only in the copy saved before the restore",
                self.moved.len() - present,
                self.moved.len()
            ),
        };
        let mut script = String::from("SET FOREIGN_KEY_CHECKS = 0;\n");
        if renamed {
            let made: Vec<&Table> = now
                .iter()
                .filter(|t| t.name != MAP_TABLE && !asides.contains(t.name.as_str()))
                .collect();
            script.push_str(&drop_all(&made));
            if !self.moved.is_empty() {
                let pairs: Vec<String> = self
                    .moved
                    .iter()
                    .map(|m| format!("{} TO {}", ident(&m.aside), ident(&m.table.name)))
                    .collect();
                script.push_str(&format!("RENAME TABLE {};\n", pairs.join(", ")));
            }
        }
        sql(creds, Some(db), &script).with_context(|| self.kept(db))?;
        let all: Vec<&Trigger> = self.triggers.iter().collect();
        self.recreate(&all).with_context(|| self.kept(db))?;
        sql(
            creds,
            Some(db),
            &format!("DROP TABLE IF EXISTS {};", ident(MAP_TABLE)),
        )?;
        Ok(())
    }

    /// The import is kept: the old tables it replaced are dropped, the others (the archive does
    /// not hold them) renamed back with their triggers, the list dropped.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        self.settled = true;
        if self.moved.is_empty() && self.triggers.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let (creds, db) = (&self.creds, self.db.as_str());
        let now: BTreeSet<String> = tables(creds, db)?.into_iter().map(|t| t.name).collect();
        let (replaced, kept): (Vec<&Moved>, Vec<&Moved>) =
            self.moved.iter().partition(|m| now.contains(&m.table.name));
        let mut script = String::from("SET FOREIGN_KEY_CHECKS = 0;\n");
        let old: Vec<Table> = replaced
            .iter()
            .map(|m| Table {
                name: m.aside.clone(),
                view: m.table.view,
            })
            .collect();
        script.push_str(&drop_all(&old.iter().collect::<Vec<_>>()));
        if !kept.is_empty() {
            let pairs: Vec<String> = kept
                .iter()
                .map(|m| format!("{} TO {}", ident(&m.aside), ident(&m.table.name)))
                .collect();
            script.push_str(&format!("RENAME TABLE {};\n", pairs.join(", ")));
        }
        sql(creds, Some(db), &script).with_context(|| self.kept(db))?;
        let back: Vec<&Trigger> = self
            .triggers
            .iter()
            .filter(|t| kept.iter().any(|m| m.table.name == t.table))
            .collect();
        self.recreate(&back).with_context(|| self.kept(db))?;
        sql(
            creds,
            Some(db),
            &format!("DROP TABLE IF EXISTS {};", ident(MAP_TABLE)),
        )?;
        tracing::info!(
            "dropped the {} previous tables of database {db} the archive replaced and kept {} it does not hold, in {:.3}s",
            replaced.len(),
            kept.len(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Create again those of `wanted` that do not exist.
    fn recreate(&self, wanted: &[&Trigger]) -> anyhow::Result<()> {
        if wanted.is_empty() {
            return Ok(());
        }
        let there: BTreeSet<String> = triggers(&self.creds, &self.db)?
            .into_iter()
            .map(|t| t.name)
            .collect();
        let missing: Vec<&&Trigger> = wanted.iter().filter(|t| !there.contains(&t.name)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        // Trigger bodies hold `;`: the client splits statements at `;;` here, as dumps do.
        let mut script = String::from("DELIMITER ;;\n");
        for t in missing {
            script.push_str(&format!(
                "SET SESSION sql_mode = {};;\n{};;\n",
                sql_str(&t.sql_mode),
                t.create
            ));
        }
        script.push_str("DELIMITER ;\n");
        sql(&self.creds, Some(&self.db), &script)
            .map(|_| ())
            .context("cannot create the previous triggers again")
    }

    /// Where the previous content is when it could not be settled.
    fn kept(&self, db: &str) -> String {
        format!(
            "the previous tables of database {db} are kept as {ASIDE_PREFIX}* and listed, with its triggers, in its table {MAP_TABLE} (README, \"A restore that was killed outright\")"
        )
    }
}

impl Drop for Aside {
    fn drop(&mut self) {
        if !self.settled
            && let Err(e) = self.put_back()
        {
            tracing::error!("cannot put database {} back: {e:#}", self.db);
        }
    }
}

/// `DROP TABLE` / `DROP VIEW` for `all`.
fn drop_all(all: &[&Table]) -> String {
    let names = |view: bool| -> Vec<String> {
        all.iter()
            .filter(|t| t.view == view)
            .map(|t| ident(&t.name))
            .collect()
    };
    let mut s = String::new();
    for (view, what) in [(true, "VIEW"), (false, "TABLE")] {
        let n = names(view);
        if !n.is_empty() {
            s.push_str(&format!("DROP {what} IF EXISTS {};\n", n.join(", ")));
        }
    }
    s
}

/// The hex columns of one line of a query's output, decoded.
fn decoded(line: &str) -> Vec<String> {
    line.split('\t')
        .map(|h| String::from_utf8_lossy(&hex::decode(h).unwrap_or_default()).into_owned())
        .collect()
}

/// The tables and views of `db`.
fn tables(creds: &DatabaseConfig, db: &str) -> anyhow::Result<Vec<Table>> {
    let out = sql(
        creds,
        None,
        &format!(
            "SELECT HEX(TABLE_NAME), TABLE_TYPE = 'VIEW' FROM information_schema.TABLES WHERE TABLE_SCHEMA = {}",
            sql_str(db)
        ),
    )
    .with_context(|| format!("cannot list the tables of database {db}"))?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(name, view)| Table {
            name: decoded(name).concat(),
            view: view.trim() == "1",
        })
        .collect())
}

/// The triggers of `db`, in the order they are created again.
fn triggers(creds: &DatabaseConfig, db: &str) -> anyhow::Result<Vec<Trigger>> {
    let out = sql(
        creds,
        None,
        &format!(
            "SELECT HEX(TRIGGER_NAME), HEX(EVENT_OBJECT_TABLE), HEX(ACTION_TIMING), HEX(EVENT_MANIPULATION), HEX(ACTION_STATEMENT), HEX(DEFINER), HEX(SQL_MODE)
             FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {}
             ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER",
            sql_str(db)
        ),
    )
    .with_context(|| format!("cannot list the triggers of database {db}"))?;
    Ok(out
        .lines()
        .map(decoded)
        .filter_map(|f| match f.as_slice() {
            [name, table, timing, event, body, definer, sql_mode] => Some(Trigger {
                create: create_trigger(name, table, timing, event, body, definer),
                name: name.clone(),
                table: table.clone(),
                sql_mode: sql_mode.clone(),
            }),
            _ => None,
        })
        .collect())
}

/// The `CREATE TRIGGER` statement of a trigger as information_schema describes it.
fn create_trigger(
    name: &str,
    table: &str,
    timing: &str,
    event: &str,
    body: &str,
    definer: &str,
) -> String {
    let definer = match definer.rsplit_once('@') {
        Some((user, host)) => format!("DEFINER={}@{} ", ident(user), ident(host)),
        None => String::new(),
    };
    format!(
        "CREATE {definer}TRIGGER {} {timing} {event} ON {} FOR EACH ROW {body}",
        ident(name),
        ident(table)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aside_names_fit_and_stay_apart() {
        assert_eq!(aside_name("wp_posts"), "wpbackup_old_wp_posts");
        let long = format!("wp_{}", "x".repeat(60));
        let a = aside_name(&long);
        assert_eq!(a.chars().count(), NAME_MAX, "{a}");
        assert!(a.starts_with("wpbackup_old_wp_xxx"), "{a}");
        let other = aside_name(&format!("{long}y"));
        assert_ne!(a, other);
        assert_eq!(aside_name(&"ü".repeat(51)).chars().count(), NAME_MAX);
    }

    #[test]
    fn a_trigger_is_created_again_with_its_definer() {
        assert_eq!(
            create_trigger(
                "t`1",
                "wp_options",
                "BEFORE",
                "UPDATE",
                "BEGIN SET @a = 1; END",
                "wp@user@localhost"
            ),
            "CREATE DEFINER=`wp@user`@`localhost` TRIGGER `t``1` BEFORE UPDATE ON `wp_options` FOR EACH ROW BEGIN SET @a = 1; END"
        );
        assert!(
            create_trigger("t", "x", "AFTER", "INSERT", "SET @a = 1", "")
                .starts_with("CREATE TRIGGER `t`")
        );
    }

    #[test]
    fn the_steps_a_person_runs_put_tables_views_and_triggers_back_in_order() {
        let moved = |name: &str, view| Moved {
            table: Table {
                name: name.into(),
                view,
            },
            aside: aside_name(name),
        };
        let aside = Aside {
            creds: crate::dbtools::client::admin(None, Default::default()),
            db: "wp".into(),
            moved: vec![moved("wp_posts", false), moved("v", true)],
            triggers: vec![Trigger {
                name: "t".into(),
                table: "wp_posts".into(),
                sql_mode: String::new(),
                create: "CREATE TRIGGER `t` BEFORE INSERT ON `wp_posts` FOR EACH ROW BEGIN SET @a = 1; END".into(),
            }],
            settled: true,
        };
        let steps: Vec<String> = aside.put_back_steps().into_iter().map(|s| s.3).collect();
        assert_eq!(
            steps,
            [
                "SET FOREIGN_KEY_CHECKS = 0;",
                "DROP TABLE IF EXISTS `wp_posts`; RENAME TABLE `wpbackup_old_wp_posts` TO `wp_posts`;",
                "DROP VIEW IF EXISTS `v`; RENAME TABLE `wpbackup_old_v` TO `v`;",
                "DELIMITER ;;\nCREATE TRIGGER `t` BEFORE INSERT ON `wp_posts` FOR EACH ROW BEGIN SET @a = 1; END;;\nDELIMITER ;",
                "DROP TABLE `wpbackup_rollback`;",
            ]
        );
    }

    #[test]
    fn views_and_tables_are_dropped_by_their_own_statement() {
        let v = Table {
            name: "v".into(),
            view: true,
        };
        let t = Table {
            name: "t".into(),
            view: false,
        };
        assert_eq!(
            drop_all(&[&t, &v]),
            "DROP VIEW IF EXISTS `v`;\nDROP TABLE IF EXISTS `t`;\n"
        );
        assert_eq!(drop_all(&[]), "");
    }
}
