//! What a restore checks once the archive is staged and before it asks or changes anything, so
//! that a restore that cannot finish stops while nothing live has changed:
//!
//! - the files' target can be moved aside (it is not a mount point);
//! - the restored `wp-config.php`, when it must be rewritten, can be: its `DB_NAME` is a plain
//!   string when it must name another database, and its directory takes a new file;
//! - no plan of a restore of the site killed outright is waiting to be put back
//!   (`<home>/rollback/<site>.json`); the target database answers with the credentials (tables
//!   named like a restore's that no plan lists are the site's: a WARNING, not a refusal), and
//!   its user may create, rename and drop tables in it (the import
//!   keeps the live tables aside until it has succeeded: [`rollback`]);
//! - there is space for the copy of the live database saved in `<home>/before-restore/` (at
//!   most the size of its data) and, when the database server runs on this machine and its
//!   data directory can be seen from here, for the imported tables beside the ones kept aside
//!   (about the size of `database.sql`). A remote server's space cannot be known from here and
//!   is not checked: an import that runs out of it fails and is put back.
//!
//! The staging directory and `database.sql` already hold the unpacked archive by then: the
//! space they need was taken while it arrived (and a restore that ran out of it changed
//! nothing). Each failure is one message that says what to do and that nothing was changed.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};

use crate::config::{DatabaseConfig, DbHost};
use crate::dbtools::client::{sql, sql_str};
use crate::output::human_bytes;
use crate::restore::database::{self, DbState};
use crate::restore::{rollback, wp_config};

const NOTHING: &str = "nothing was changed";

/// The target must be renameable within its parent (not a mount point of its own).
pub fn movable(target: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let (Ok(t), Some(Ok(p))) = (
        target.symlink_metadata(),
        target.parent().map(|p| p.metadata()),
    ) else {
        return Ok(());
    };
    if t.dev() != p.dev() {
        bail!(
            "{} is a mount point and cannot be moved aside: restore with --to DIR (a directory beside it) and move the files yourself; {NOTHING}",
            target.display()
        );
    }
    Ok(())
}

/// The restored `wp-config.php` at `wp` can be rewritten: pointed at database `db_name` when
/// given, at a user of its own when `own_user`, and replaced by a new file in its directory.
pub fn wp_config(wp: &Path, db_name: Option<&str>, own_user: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(wp)
        .map_err(|e| anyhow!("cannot read the restored {} ({e}); {NOTHING}", wp.display()))?;
    if own_user {
        let password = crate::secret::Secret::new("x");
        let point = wp_config::Point {
            db_name: None,
            user: Some(("x", &password)),
            network: None,
        };
        wp_config::rewrite_wp_config_to(&text, point, &[]).map_err(|e| {
            anyhow!(
                "cannot point the restored wp-config.php at the clone's own database user ({e:#}): restore the database with --db-only --db-name NAME and the files with --files-only, then set DB_USER and DB_PASSWORD yourself; {NOTHING}"
            )
        })?;
    }
    if let Some(db) = db_name {
        wp_config::rewrite_wp_config(&text, Some(db), &[]).map_err(|e| {
            anyhow!(
                "cannot point the restored wp-config.php at database {db} ({e:#}): restore the database with --db-only --db-name {db} and the files with --files-only, then set DB_NAME yourself; {NOTHING}"
            )
        })?;
    }
    let dir = wp.parent().unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(".wp-config.php.wpbackup-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| {
            anyhow!(
                "cannot write in {}, where the restored wp-config.php is rewritten ({e}); {NOTHING}",
                dir.display()
            )
        })
}

/// The database `db` the archive's `database.sql` (`sql_size` bytes) is imported into: it
/// answers, nothing is in the way, its user has the rights, there is space (see the module's
/// documentation). `copy_dir` is where the live content is saved first. Returns what it holds.
pub fn database(
    creds: &DatabaseConfig,
    db: &str,
    sql_size: u64,
    copy_dir: &Path,
    plan: &Path,
) -> anyhow::Result<DbState> {
    if plan.exists() {
        bail!(
            "a restore of this site was killed before it could finish: {} lists the tables it moved aside; put them back with `wpbackup restore --put-back --site SITE` (README, \"A restore that was killed outright\"), then run restore again; {NOTHING}",
            plan.display()
        );
    }
    let state = database::state(creds, db).map_err(|e| {
        anyhow!(
            "cannot reach database {db} as user {} on {} ({e:#}): check that the database server runs and that the credentials are right; {NOTHING}",
            creds.user,
            host(&creds.host)
        )
    })?;
    if state == DbState::Missing {
        return Ok(state);
    }
    for name in rollback::lookalikes(creds, db)? {
        // The site's user may have made it: kept as one of its tables, never run.
        let hint = if name == rollback::OLD_MAP_TABLE {
            " (an older wpbackup may have left it: README, \"A restore that was killed outright\", says how to read it safely)"
        } else {
            ""
        };
        tracing::warn!(
            "database {db} holds {}, which no plan of wpbackup lists: it is treated as one of the site's tables, moved aside and back like the others{hint}",
            crate::output::printable(&name)
        );
    }
    rollback::probe(creds, db).map_err(|e| {
        anyhow!(
            "user {} may not create, rename and drop tables in database {db} ({e:#}), which a restore needs to keep the current tables until the import has succeeded: grant it (GRANT ALL ON `{db}`.* TO the user) and run restore again; {NOTHING}",
            creds.user
        )
    })?;
    if matches!(state, DbState::Tables(n) if n > 0) {
        let need = data_size(creds, db)?;
        let what = format!("the copy of database {db} saved before it is replaced");
        ensure_space(copy_dir, need, &what)?;
    }
    if let Some(datadir) = local_datadir(creds) {
        let what = format!(
            "the tables imported into database {db} (its current ones are kept until the import has succeeded)"
        );
        ensure_space(&datadir, sql_size, &what)?;
    }
    Ok(state)
}

/// `DB_HOST`, in words.
fn host(h: &DbHost) -> String {
    match h {
        DbHost::Socket(None) => "localhost".into(),
        DbHost::Socket(Some(p)) => format!("localhost:{}", p.display()),
        DbHost::Tcp {
            host,
            port: Some(port),
        } => format!("{host}:{port}"),
        DbHost::Tcp { host, port: None } => host.clone(),
    }
}

/// The size of the data of `db`'s tables (what a dump of it holds, before compression).
fn data_size(creds: &DatabaseConfig, db: &str) -> anyhow::Result<u64> {
    let out = sql(
        creds,
        None,
        &format!(
            "SELECT COALESCE(SUM(DATA_LENGTH), 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {}",
            sql_str(db)
        ),
    )?;
    Ok(out.trim().parse().unwrap_or(0))
}

/// The database server's data directory, when the server runs on this machine and the
/// directory can be seen from here.
fn local_datadir(creds: &DatabaseConfig) -> Option<PathBuf> {
    let local = match &creds.host {
        DbHost::Socket(_) => true,
        DbHost::Tcp { host, .. } => {
            host == "localhost" || host == "::1" || host.starts_with("127.")
        }
    };
    if !local {
        return None;
    }
    let dir = PathBuf::from(sql(creds, None, "SELECT @@datadir").ok()?.trim());
    dir.is_dir().then_some(dir)
}

/// `dir` (or its nearest existing parent) has `need` bytes free for `what`.
fn ensure_space(dir: &Path, need: u64, what: &str) -> anyhow::Result<()> {
    let Some(existing) = dir.ancestors().find(|d| d.is_dir()) else {
        return Ok(());
    };
    let Ok(fs) = rustix::fs::statvfs(existing) else {
        return Ok(());
    };
    let free = fs.f_bavail.saturating_mul(fs.f_frsize);
    if free < need {
        bail!(
            "{what} needs up to {} but {} has {} free: free some space and run restore again; {NOTHING}",
            human_bytes(need),
            existing.display(),
            human_bytes(free)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_little_space_is_refused_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("before-restore");
        assert!(ensure_space(&missing, 1, "the copy").is_ok());
        let err = ensure_space(&missing, u64::MAX, "the copy")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("the copy needs up to ")
                && err.contains(&dir.path().display().to_string())
                && err.ends_with("nothing was changed"),
            "{err}"
        );
    }

    #[test]
    fn a_wp_config_whose_database_cannot_be_named_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let wp = dir.path().join("wp-config.php");
        std::fs::write(&wp, "<?php define('DB_NAME', getenv('DB'));\n").unwrap();
        assert!(wp_config(&wp, None, false).is_ok());
        let err = format!("{:#}", wp_config(&wp, Some("wp_stg"), false).unwrap_err());
        assert!(err.contains("--db-only --db-name wp_stg"), "{err}");
        std::fs::write(&wp, "<?php define('DB_NAME', 'wp');\n").unwrap();
        assert!(wp_config(&wp, Some("wp_stg"), false).is_ok());
        let err = format!("{:#}", wp_config(&wp, Some("wp_stg"), true).unwrap_err());
        assert!(err.contains("DB_USER is not defined"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
