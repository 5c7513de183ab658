//! A failed or interrupted import leaves the database as it was.
//!
//! MariaDB cannot rename a database, and a site's user is rarely allowed to create one, so the
//! previous content is kept *inside* the target database: before the import, every table and
//! view it holds is renamed, in one atomic `RENAME TABLE`, to `wpbackup_old_<name>`
//! ([`move_aside`]), and the import runs in a database that looks empty. What was moved (and
//! the definition of each trigger) is written first to the *plan*, `<home>/rollback/<site>.json`
//! (0600, written atomically), so that `wpbackup restore --put-back SITE` ([`put_back_plan`])
//! can put it back if the process is killed outright. The plan is root's: nothing of it is in
//! the database, where the site's user could write it, and nothing read from the database is
//! ever run as a client command (trigger definitions go through the client in binary mode).
//!
//! - The import or a later step fails, or SIGTERM/SIGINT arrives: [`Aside::put_back`] drops what
//!   the import made and renames the old tables back (metadata only: no row is copied).
//! - The restore succeeds: [`Aside::finish`] drops the old tables the archive replaced and
//!   renames back the others (a table the archive does not hold is kept, as a plain import
//!   would have kept it).
//!
//! Either removes the plan. Tables named like a restore's (`wpbackup_old_*`, `wpbackup_rollback`,
//! `wpbdrill_*`) that no plan lists are the site's own as far as wpbackup knows: they are moved
//! aside and back like any other table, and never read as instructions. When some table's name
//! already starts with `wpbackup_old_`, the restore's aside names start with the first of
//! `wpbackup_old2_`, `wpbackup_old3_`... that none does ([`aside_prefix`]).
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
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::DatabaseConfig;
use crate::dbtools::client::{ident, script, sql, sql_str};

/// The table in which a release before 2026-12 listed, inside the database, what a restore
/// moved aside. Never read or run now: a site's user can write it.
pub const OLD_MAP_TABLE: &str = "wpbackup_rollback";
/// What the name of a table or view moved aside starts with, unless some table's name does
/// already ([`aside_prefix`]).
pub const ASIDE_PREFIX: &str = "wpbackup_old_";
/// The directory of the home that holds the plans.
pub const PLAN_DIR: &str = "rollback";
/// MariaDB's longest table name, in characters.
const NAME_MAX: usize = 64;

/// A table or view of the database.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    name: String,
    view: bool,
}

/// A table or view moved aside.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Moved {
    name: String,
    view: bool,
    aside: String,
}

/// A trigger, as it is created again.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Trigger {
    name: String,
    table: String,
    sql_mode: String,
    create: String,
}

/// `<home>/rollback/<site>.json`: what a restore of the site moved aside, while it runs.
#[derive(Debug, Serialize, Deserialize)]
struct Plan {
    site: String,
    database: String,
    restore_started: String,
    moved: Vec<Moved>,
    triggers: Vec<Trigger>,
}

/// The previous content of a database while an import runs in its place: put back or
/// finished, exactly once (dropped unsettled, it is put back).
pub struct Aside {
    creds: DatabaseConfig,
    db: String,
    moved: Vec<Moved>,
    triggers: Vec<Trigger>,
    /// The plan file, removed once settled.
    plan: PathBuf,
    settled: bool,
}

/// Where the plan of a restore of `site` is kept.
pub fn plan_path(home: &Path, site: &str) -> PathBuf {
    home.join(PLAN_DIR).join(format!("{site}.json"))
}

/// What the names of the tables moved aside start with: [`ASIDE_PREFIX`], else the first of
/// `wpbackup_old2_`, `wpbackup_old3_`... that no table's name in `existing` starts with, so
/// that no name moved aside is already taken.
fn aside_prefix<'a>(existing: impl Iterator<Item = &'a str> + Clone) -> String {
    let mut n = 1;
    loop {
        let prefix = match n {
            1 => ASIDE_PREFIX.to_string(),
            n => format!("wpbackup_old{n}_"),
        };
        if !existing.clone().any(|t| t.starts_with(&prefix)) {
            return prefix;
        }
        n += 1;
    }
}

/// Where table `name` goes while an import runs: `<prefix><name>`, shortened with a hash of
/// the name when that would be longer than MariaDB allows.
fn aside_name(prefix: &str, name: &str) -> String {
    if prefix.chars().count() + name.chars().count() <= NAME_MAX {
        return format!("{prefix}{name}");
    }
    let hash = hex::encode(&Sha256::digest(name.as_bytes())[..4]);
    let keep = NAME_MAX - prefix.len() - 1 - hash.len();
    let head: String = name.chars().take(keep).collect();
    format!("{prefix}{head}_{hash}")
}

/// The tables and views of `db` named like those of a restore (`wpbackup_old*`,
/// `wpbackup_rollback`, `wpbdrill_*`): no plan of wpbackup lists them, so they are the site's.
pub fn lookalikes(creds: &DatabaseConfig, db: &str) -> anyhow::Result<Vec<String>> {
    Ok(tables(creds, db)?
        .into_iter()
        .map(|t| t.name)
        .filter(|n| {
            n == OLD_MAP_TABLE || n.starts_with("wpbackup_old") || n.starts_with("wpbdrill_")
        })
        .collect())
}

/// Check, leaving nothing behind, that `creds` may create, rename and drop tables in `db`.
pub fn probe(creds: &DatabaseConfig, db: &str) -> anyhow::Result<()> {
    // Names no table of the site has (a table it made cannot be in the way).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tag = format!("{}_{nanos}", std::process::id());
    let (a, b) = (
        ident(&format!("wpbackup_probe_{tag}")),
        ident(&format!("wpbackup_probe_{tag}_renamed")),
    );
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

/// Move every table and view of `db` aside (see the module's documentation), writing the plan
/// to `plan` first. `site` and `stamp` name the restore in it.
pub fn move_aside(
    creds: &DatabaseConfig,
    db: &str,
    site: &str,
    stamp: &str,
    plan: &Path,
) -> Result<Aside, MoveError> {
    let started = Instant::now();
    let unchanged = |e: anyhow::Error| MoveError::Unchanged(db.to_string(), e);
    let before = tables(creds, db).map_err(unchanged)?;
    let prefix = aside_prefix(before.iter().map(|t| t.name.as_str()));
    let mut aside = Aside {
        creds: creds.clone(),
        db: db.to_string(),
        moved: before
            .into_iter()
            .map(|t| Moved {
                aside: aside_name(&prefix, &t.name),
                name: t.name,
                view: t.view,
            })
            .collect(),
        triggers: triggers(creds, db).map_err(unchanged)?,
        plan: plan.to_path_buf(),
        settled: false,
    };
    if aside.moved.is_empty() && aside.triggers.is_empty() {
        aside.settled = true;
        return Ok(aside);
    }
    if let Err(e) = aside.write_plan(site, stamp) {
        aside.settled = true;
        return Err(unchanged(e));
    }
    if let Err(e) = sql(creds, Some(db), &aside.move_script()) {
        return Err(match aside.put_back() {
            Ok(()) => unchanged(e),
            Err(p) => MoveError::Stuck(db.to_string(), e, p),
        });
    }
    tracing::info!(
        "moved the {} tables and views of database {db} aside (as {prefix}*) in {:.3}s",
        aside.moved.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(aside)
}

/// Put back what the restore whose plan is `plan` moved aside in its database, as `creds`
/// (the site's user), and remove the plan. What it put back, in words.
pub fn put_back_plan(creds: &DatabaseConfig, plan: &Path) -> anyhow::Result<String> {
    let text = std::fs::read(plan).with_context(|| format!("cannot read {}", plan.display()))?;
    let p: Plan = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a plan wpbackup wrote", plan.display()))?;
    let mut aside = Aside {
        creds: creds.clone(),
        db: p.database.clone(),
        moved: p.moved,
        triggers: p.triggers,
        plan: plan.to_path_buf(),
        settled: false,
    };
    aside.put_back()?;
    Ok(format!(
        "database {} is as it was before the restore started at {}: {} tables and views and {} triggers put back",
        p.database,
        p.restore_started,
        aside.moved.len(),
        aside.triggers.len()
    ))
}

impl Aside {
    /// The plan, written atomically (0600) before anything is moved.
    fn write_plan(&self, site: &str, stamp: &str) -> anyhow::Result<()> {
        let plan = Plan {
            site: site.to_string(),
            database: self.db.clone(),
            restore_started: stamp.to_string(),
            moved: self.moved.clone(),
            triggers: self.triggers.clone(),
        };
        let dir = self.plan.parent().unwrap_or(Path::new("."));
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let data = serde_json::to_vec_pretty(&plan)?;
        // Atomic: a temporary file beside it (0600 from the start), synced, renamed over it.
        let cannot = || format!("cannot write {}", self.plan.display());
        let mut tmp = tempfile::Builder::new()
            .prefix(".plan-")
            .tempfile_in(dir)
            .with_context(cannot)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(cannot)?;
        tmp.write_all(&data)
            .and_then(|()| tmp.as_file().sync_all())
            .with_context(cannot)?;
        tmp.persist(&self.plan)
            .map_err(|e| e.error)
            .with_context(cannot)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The plan removed: the database is settled.
    fn remove_plan(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(&self.plan) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", self.plan.display()))
            }
            _ => Ok(()),
        }
    }

    /// The triggers dropped, the tables renamed: one client run.
    fn move_script(&self) -> String {
        let mut s = String::new();
        for t in &self.triggers {
            s.push_str(&format!("DROP TRIGGER {};\n", ident(&t.name)));
        }
        if !self.moved.is_empty() {
            let pairs: Vec<String> = self
                .moved
                .iter()
                .map(|m| format!("{} TO {}", ident(&m.name), ident(&m.aside)))
                .collect();
            s.push_str(&format!("RENAME TABLE {};\n", pairs.join(", ")));
        }
        s
    }

    /// The database as it was: what the import made is dropped, what was moved aside renamed
    /// back, the triggers created again, the plan removed.
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
            0 if self.moved.iter().all(|m| names.contains(m.name.as_str())) => false,
            _ => bail!(
                "{} of the {} tables of database {db} moved aside are gone: its previous content is only in the copy saved before the restore (keep the database as it is and remove {})",
                self.moved.len() - present,
                self.moved.len(),
                self.plan.display()
            ),
        };
        let mut script = String::from("SET FOREIGN_KEY_CHECKS = 0;\n");
        if renamed {
            let made: Vec<&Table> = now
                .iter()
                .filter(|t| !asides.contains(t.name.as_str()))
                .collect();
            script.push_str(&drop_all(&made));
            if !self.moved.is_empty() {
                let pairs: Vec<String> = self
                    .moved
                    .iter()
                    .map(|m| format!("{} TO {}", ident(&m.aside), ident(&m.name)))
                    .collect();
                script.push_str(&format!("RENAME TABLE {};\n", pairs.join(", ")));
            }
        }
        sql(creds, Some(db), &script).with_context(|| self.kept(db))?;
        let all: Vec<&Trigger> = self.triggers.iter().collect();
        self.recreate(&all).with_context(|| self.kept(db))?;
        self.remove_plan()
    }

    /// The import is kept: the old tables it replaced are dropped, the others (the archive does
    /// not hold them) renamed back with their triggers, the plan removed.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        self.settled = true;
        if self.moved.is_empty() && self.triggers.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let (creds, db) = (&self.creds, self.db.as_str());
        let now: BTreeSet<String> = tables(creds, db)?.into_iter().map(|t| t.name).collect();
        let (replaced, kept): (Vec<&Moved>, Vec<&Moved>) =
            self.moved.iter().partition(|m| now.contains(&m.name));
        let mut script = String::from("SET FOREIGN_KEY_CHECKS = 0;\n");
        let old: Vec<Table> = replaced
            .iter()
            .map(|m| Table {
                name: m.aside.clone(),
                view: m.view,
            })
            .collect();
        script.push_str(&drop_all(&old.iter().collect::<Vec<_>>()));
        if !kept.is_empty() {
            let pairs: Vec<String> = kept
                .iter()
                .map(|m| format!("{} TO {}", ident(&m.aside), ident(&m.name)))
                .collect();
            script.push_str(&format!("RENAME TABLE {};\n", pairs.join(", ")));
        }
        sql(creds, Some(db), &script).with_context(|| self.kept(db))?;
        let back: Vec<&Trigger> = self
            .triggers
            .iter()
            .filter(|t| kept.iter().any(|m| m.name == t.table))
            .collect();
        self.recreate(&back).with_context(|| self.kept(db))?;
        self.remove_plan()?;
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
        // Trigger bodies hold `;`: the client splits statements at `;;` here, as dumps do. They
        // were read from the database: binary mode, so no client command in them runs.
        let mut text = String::from("DELIMITER ;;\n");
        for t in missing {
            text.push_str(&format!(
                "SET SESSION sql_mode = {};;\n{};;\n",
                sql_str(&t.sql_mode),
                t.create
            ));
        }
        text.push_str("DELIMITER ;\n");
        script(&self.creds, &self.db, &text)
            .map(|_| ())
            .context("cannot create the previous triggers again")
    }

    /// Where the previous content is when it could not be settled.
    fn kept(&self, db: &str) -> String {
        format!(
            "the previous tables of database {db} are kept under the names listed, with its triggers, in {} (README, \"A restore that was killed outright\": wpbackup restore --put-back)",
            self.plan.display()
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
        let p = ASIDE_PREFIX;
        assert_eq!(aside_name(p, "wp_posts"), "wpbackup_old_wp_posts");
        let long = format!("wp_{}", "x".repeat(60));
        let a = aside_name(p, &long);
        assert_eq!(a.chars().count(), NAME_MAX, "{a}");
        assert!(a.starts_with("wpbackup_old_wp_xxx"), "{a}");
        let other = aside_name(p, &format!("{long}y"));
        assert_ne!(a, other);
        assert_eq!(aside_name(p, &"ü".repeat(51)).chars().count(), NAME_MAX);
        let b = aside_name("wpbackup_old12_", &long);
        assert_eq!(b.chars().count(), NAME_MAX, "{b}");
    }

    #[test]
    fn tables_named_like_a_restore_s_push_the_aside_names_elsewhere() {
        let prefix = |names: &[&str]| aside_prefix(names.iter().copied());
        assert_eq!(prefix(&["wp_posts", "wpbackup_rollback"]), "wpbackup_old_");
        assert_eq!(
            prefix(&["wp_posts", "wpbackup_old_wp_posts"]),
            "wpbackup_old2_"
        );
        assert_eq!(
            prefix(&["wpbackup_old_x", "wpbackup_old2_", "wpbackup_old3_y"]),
            "wpbackup_old4_"
        );
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
    fn the_plan_names_every_table_and_trigger_and_nothing_else_is_run() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan_path(dir.path(), "blog");
        let aside = Aside {
            creds: crate::dbtools::client::admin(None, Default::default()),
            db: "wp".into(),
            moved: vec![Moved {
                name: "wp_posts".into(),
                view: false,
                aside: "wpbackup_old_wp_posts".into(),
            }],
            triggers: vec![Trigger {
                name: "t".into(),
                table: "wp_posts".into(),
                sql_mode: String::new(),
                create: "CREATE TRIGGER `t` BEFORE INSERT ON `wp_posts` FOR EACH ROW SET @a = 1"
                    .into(),
            }],
            plan: plan.clone(),
            settled: true,
        };
        aside.write_plan("blog", "20261205T030000Z").unwrap();
        let mode = std::fs::metadata(&plan).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let read: Plan = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
        assert_eq!(read.database, "wp");
        assert_eq!(read.moved[0].aside, "wpbackup_old_wp_posts");
        assert_eq!(
            aside.move_script(),
            "DROP TRIGGER `t`;\nRENAME TABLE `wp_posts` TO `wpbackup_old_wp_posts`;\n"
        );
        aside.remove_plan().unwrap();
        assert!(!plan.exists());
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
