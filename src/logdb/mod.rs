//! The local log database, `backups.db` (SQLite).
//!
//! Two tables with the original tool's columns, names and types unchanged, so existing queries
//! and dashboards keep working: `backup_log` (one row per site per run, and per restore,
//! verify or prune) and `s3_archives` (one row per stored archive). wpbackup's extra columns
//! come after the original ones and are added to an older database on open. wpbackup's own
//! `drill_log` holds one row per site per restore drill (`drill`): the report and `status` read
//! each site's last proven restore from it. `binlog_files` holds each binary log file
//! `wpbackup binlog` shipped. The four tables' columns are written once, in [`schema`], which
//! `d1::sync` pushes from too. WAL mode and a busy timeout let `status` read
//! while a backup writes.
//!
//! `s3_archives.kind` (`full` or `differential`) and `base_key` (the key of a differential
//! archive's base, NULL for a full one) came with differential archives (issue 13). Rows from
//! before are full archives: the migration that adds the column sets `kind = 'full'` in them,
//! and readers take a NULL kind as `full` too (an older wpbackup writing to the file after a
//! downgrade leaves it NULL).

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

pub mod schema;

/// `backup_log.status` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Success,
    Warning,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::Warning => "WARNING",
            Status::Error => "ERROR",
        }
    }
}

/// One `backup_log` row to write.
#[derive(Debug, Clone)]
pub struct LogEntry<'a> {
    pub timestamp: DateTime<Utc>,
    pub status: Status,
    pub details: &'a str,
    pub site_name: &'a str,
    pub server_id: &'a str,
    /// `backup`, `restore`, `verify`, `prune`.
    pub action: &'a str,
    pub storage_name: Option<&'a str>,
    pub archive_key: Option<&'a str>,
    pub duration_secs: Option<f64>,
}

/// One `s3_archives` row to write.
#[derive(Debug, Clone)]
pub struct ArchiveRecord<'a> {
    pub filename: &'a str,
    pub storage_name: &'a str,
    pub s3_endpoint: &'a str,
    pub s3_bucket: &'a str,
    pub file_size: u64,
    pub server_id: &'a str,
    pub site_name: &'a str,
    pub created_at: DateTime<Utc>,
    pub sha256: &'a str,
    pub duration_secs: f64,
    /// `full` or `differential`.
    pub kind: &'a str,
    /// A differential archive's base (its object key); `None` for a full archive.
    pub base_key: Option<&'a str>,
    /// Where its dump is in the server's binary log (`binlog` on): (file, position).
    pub binlog: Option<(&'a str, u64)>,
}

/// A `backup_log` row as read back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogRow {
    pub id: i64,
    pub timestamp: String,
    pub status: String,
    pub details: String,
    pub site_name: String,
    pub server_id: String,
    pub storage_name: Option<String>,
    pub archive_key: Option<String>,
    /// How long it took (`None` in the original tool's rows).
    pub duration_secs: Option<f64>,
}

/// The columns [`log_row`] reads, in its order.
const LOG_ROW_COLUMNS: &str = "id, timestamp, status, details, site_name, server_id, storage_name, archive_key, duration_secs";

fn log_row(r: &rusqlite::Row) -> rusqlite::Result<LogRow> {
    Ok(LogRow {
        id: r.get(0)?,
        timestamp: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
        status: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
        details: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
        site_name: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
        server_id: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
        storage_name: r.get(6)?,
        archive_key: r.get(7)?,
        duration_secs: r.get(8)?,
    })
}

pub struct LogDb {
    conn: Connection,
}

/// One `binlog_files` row: a binary log file shipped.
#[derive(Debug, Clone)]
pub struct BinlogEntry {
    pub server_id: String,
    pub file: String,
    pub first_event: DateTime<Utc>,
    pub object_key: String,
    pub storage_name: String,
    pub size_bytes: u64,
    pub sha256: String,
    /// When it ended: its closing rotate event's time (`None`: it did not end with one).
    pub last_event: Option<DateTime<Utc>>,
}

/// One `drill_log` row to write.
#[derive(Debug, Clone)]
pub struct DrillEntry<'a> {
    pub timestamp: DateTime<Utc>,
    pub server_id: &'a str,
    pub site_name: &'a str,
    pub archive_key: Option<&'a str>,
    pub storage_name: Option<&'a str>,
    /// `SUCCESS` (every check passed), `WARNING` (passed, but something could not be
    /// compared), `ERROR` (failed).
    pub result: Status,
    /// What failed, when it did.
    pub failed: Option<&'a str>,
    /// Seconds from the start to WordPress answering (until the failure, for a failed drill).
    pub recovery_secs: f64,
    pub details: &'a str,
}

/// A `drill_log` row as read back.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DrillRow {
    pub timestamp: String,
    pub site_name: String,
    pub archive_key: Option<String>,
    pub result: String,
    pub failed: Option<String>,
    pub recovery_secs: Option<f64>,
}

impl DrillRow {
    /// The drill proved the archive restorable (`SUCCESS` or `WARNING`).
    pub fn passed(&self) -> bool {
        self.result == "SUCCESS" || self.result == "WARNING"
    }
}

/// A site's drills: the newest, and the newest that passed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Drills {
    pub last: Option<DrillRow>,
    pub last_passed: Option<DrillRow>,
}

/// The file's identity, made once: `db_id`, and for a file that had rows before it had an
/// identity, each table's highest id at that moment (those rows may be in D1 already, pushed
/// without one).
const CREATE_META: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('db_id', lower(hex(randomblob(16))));
INSERT INTO meta (key, value)
    SELECT 'legacy_last_id.backup_log', COALESCE(MAX(id), 0) FROM backup_log;
INSERT INTO meta (key, value)
    SELECT 'legacy_last_id.s3_archives', COALESCE(MAX(id), 0) FROM s3_archives;
";

/// Give the file its identity unless it has one (in one transaction: two processes opening a
/// file at once agree on it).
fn create_identity(conn: &Connection) -> rusqlite::Result<()> {
    let has = |conn: &Connection| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |r| r.get(0),
        )
    };
    if has(conn)? {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = match has(conn) {
        Ok(true) => Ok(()),
        Ok(false) => conn.execute_batch(CREATE_META),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Create `table` when missing, then add the columns an older file lacks, each filled in as its
/// [`schema::Column::backfill`] says.
fn migrate(conn: &Connection, table: &schema::Table) -> anyhow::Result<()> {
    let name = table.name;
    conn.execute(&table.create_local(), [])
        .with_context(|| format!("cannot create {name} (is it a SQLite database?)"))?;
    for column in table.added_local() {
        let exists: bool = conn
            .query_row(
                &format!("SELECT COUNT(*) > 0 FROM pragma_table_info('{name}') WHERE name = ?1"),
                [column.name],
                |r| r.get(0),
            )
            .with_context(|| format!("cannot read the schema of {name}"))?;
        if exists {
            continue;
        }
        conn.execute(&column.add_to(name), [])
            .with_context(|| format!("cannot add column {name}.{}", column.name))?;
        if let Some(sql) = column.backfill {
            conn.execute(sql, [])
                .with_context(|| format!("cannot fill in {name}.{}", column.name))?;
        }
    }
    Ok(())
}

/// SQLite's DATETIME text form, in UTC, as the original wrote it.
pub fn sql_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

impl LogDb {
    /// Open (creating it `0600` if missing) and migrate.
    pub fn open(path: &Path) -> anyhow::Result<LogDb> {
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot create the log database {}", path.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the log database {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .with_context(|| format!("{}: cannot switch to WAL mode", path.display()))?;
        for table in &schema::TABLES {
            migrate(&conn, table).with_context(|| path.display().to_string())?;
        }
        create_identity(&conn)
            .with_context(|| format!("{}: cannot create the meta table", path.display()))?;
        conn.execute_batch(schema::BINLOG_FILES_UNIQUE)
            .with_context(|| format!("{}: cannot index binlog_files", path.display()))?;
        Ok(LogDb { conn })
    }

    /// This file's identity: a random id made when the file (or its `meta` table) was created.
    /// A recreated backups.db restarts its ids at 1 but gets a new identity, so D1 keeps its
    /// rows apart from the old file's.
    pub fn db_id(&self) -> anyhow::Result<String> {
        self.meta("db_id")?
            .context("backups.db: meta.db_id is missing")
    }

    /// The highest id of `table` when this file gained its identity (0 for a file created
    /// with it): rows up to it may be in D1 without an identity, and are pushed with `""`.
    pub fn legacy_last_id(&self, table: &str) -> anyhow::Result<i64> {
        Ok(self
            .meta(&format!("legacy_last_id.{table}"))?
            .map(|v| v.parse::<i64>())
            .transpose()
            .with_context(|| format!("backups.db: meta.legacy_last_id.{table} is not a number"))?
            .unwrap_or(0))
    }

    fn meta(&self, key: &str) -> anyhow::Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .with_context(|| format!("cannot read meta.{key} in backups.db"))
    }

    /// The connection, for modules that own their own queries on backups.db (`d1sync`,
    /// `report`).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn log(&self, e: &LogEntry) -> anyhow::Result<i64> {
        self.conn
            .execute(
                "INSERT INTO backup_log (timestamp, status, details, site_name, server_id,
                     action, storage_name, archive_key, duration_secs)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    sql_time(e.timestamp),
                    e.status.as_str(),
                    e.details,
                    e.site_name,
                    e.server_id,
                    e.action,
                    e.storage_name,
                    e.archive_key,
                    e.duration_secs
                ],
            )
            .context("cannot write to backup_log")?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn record_archive(&self, a: &ArchiveRecord) -> anyhow::Result<i64> {
        self.conn
            .execute(
                "INSERT INTO s3_archives (filename, storage_name, s3_endpoint, s3_bucket, file_size,
                     server_id, site_name, created_at, sha256, duration_secs, kind, base_key,
                     binlog_file, binlog_position)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    a.filename,
                    a.storage_name,
                    a.s3_endpoint,
                    a.s3_bucket,
                    a.file_size as i64,
                    a.server_id,
                    a.site_name,
                    sql_time(a.created_at),
                    a.sha256,
                    a.duration_secs,
                    a.kind,
                    a.base_key,
                    a.binlog.map(|(file, _)| file),
                    a.binlog.map(|(_, position)| position as i64)
                ],
            )
            .context("cannot write to s3_archives")?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The binary log files of `server_id` already shipped.
    pub fn binlog_shipped(
        &self,
        server_id: &str,
    ) -> anyhow::Result<std::collections::HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT file FROM binlog_files WHERE server_id = ?1")
            .context("cannot read binlog_files")?;
        let rows = stmt
            .query_map([server_id], |r| r.get::<_, String>(0))
            .context("cannot read binlog_files")?;
        rows.collect::<Result<_, _>>()
            .context("cannot read binlog_files")
    }

    /// A binary log file shipped.
    pub fn record_binlog(&self, b: &BinlogEntry) -> anyhow::Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO binlog_files (server_id, file, first_event, object_key,
                     storage_name, size_bytes, sha256, last_event)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    b.server_id,
                    b.file,
                    sql_time(b.first_event),
                    b.object_key,
                    b.storage_name,
                    b.size_bytes as i64,
                    b.sha256,
                    b.last_event.map(sql_time)
                ],
            )
            .context("cannot write to binlog_files")?;
        Ok(())
    }

    pub fn log_drill(&self, d: &DrillEntry) -> anyhow::Result<i64> {
        self.conn
            .execute(
                "INSERT INTO drill_log (timestamp, server_id, site_name, archive_key, storage_name,
                     result, failed, recovery_secs, details)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    sql_time(d.timestamp),
                    d.server_id,
                    d.site_name,
                    d.archive_key,
                    d.storage_name,
                    d.result.as_str(),
                    d.failed,
                    d.recovery_secs,
                    d.details
                ],
            )
            .context("cannot write to drill_log")?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Each site's newest drill and newest passed drill on this server, by site.
    pub fn drills(
        &self,
        server_id: &str,
    ) -> anyhow::Result<std::collections::BTreeMap<String, Drills>> {
        let mut out: std::collections::BTreeMap<String, Drills> = Default::default();
        for (passed_only, filter) in [(false, ""), (true, "AND result IN ('SUCCESS', 'WARNING')")] {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT timestamp, site_name, archive_key, result, failed, recovery_secs
                 FROM drill_log WHERE id IN (SELECT MAX(id) FROM drill_log
                     WHERE server_id = ?1 {filter} GROUP BY site_name)"
            ))?;
            let rows = stmt.query_map([server_id], |r| {
                Ok(DrillRow {
                    timestamp: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                    site_name: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    archive_key: r.get(2)?,
                    result: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    failed: r.get(4)?,
                    recovery_secs: r.get(5)?,
                })
            })?;
            for row in rows {
                let row = row?;
                let entry = out.entry(row.site_name.clone()).or_default();
                if passed_only {
                    entry.last_passed = Some(row);
                } else {
                    entry.last = Some(row);
                }
            }
        }
        Ok(out)
    }

    /// The newest backup row of each site of this server (run-level `*` rows left out: see
    /// [`LogDb::current_run_error`]).
    pub fn last_per_site(&self, server_id: &str) -> anyhow::Result<Vec<LogRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {LOG_ROW_COLUMNS} FROM backup_log
             WHERE id IN (SELECT MAX(id) FROM backup_log
                          WHERE server_id = ?1 AND COALESCE(action, 'backup') = 'backup'
                            AND site_name <> '*'
                          GROUP BY site_name)
             ORDER BY site_name"
        ))?;
        let rows = stmt.query_map([server_id], log_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest run-level error (`*` row: config.json or .env could not be read) when nothing
    /// of this server has been recorded since: a later run supersedes it. `*` rows are recorded
    /// under `SERVER_ID` or the host name (the config that names the server could not be read),
    /// so they are taken whatever their server id.
    pub fn current_run_error(&self, server_id: &str) -> anyhow::Result<Option<LogRow>> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {LOG_ROW_COLUMNS} FROM backup_log
                     WHERE site_name = '*' AND COALESCE(action, 'backup') = 'backup'
                       AND id > (SELECT COALESCE(MAX(id), 0) FROM backup_log
                                 WHERE server_id = ?1 AND site_name <> '*'
                                   AND COALESCE(action, 'backup') = 'backup')
                     ORDER BY id DESC LIMIT 1"
                ),
                [server_id],
                log_row,
            )
            .optional()?)
    }

    /// The time of the oldest `backup_log` row (`None`: the log is empty): a log younger than a
    /// report's period cannot say a site had no backup in it.
    pub fn began(&self) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT MIN(timestamp) FROM backup_log", [], |r| r.get(0))?)
    }

    /// Every (filename, storage_name) that `s3_archives` records (`list` marks them known).
    pub fn known_archives(&self) -> anyhow::Result<std::collections::HashSet<(String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT filename, storage_name FROM s3_archives
             WHERE filename IS NOT NULL AND storage_name IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The size `s3_archives` records for an archive stored on `storage_name`, if any.
    pub fn archive_size(&self, filename: &str, storage_name: &str) -> anyhow::Result<Option<u64>> {
        Ok(self
            .conn
            .query_row(
                "SELECT file_size FROM s3_archives WHERE filename = ?1 AND storage_name = ?2
                 ORDER BY id DESC LIMIT 1",
                params![filename, storage_name],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten()
            .and_then(|n| u64::try_from(n).ok()))
    }

    /// The binary log file an archive's dump is in, as `s3_archives` records it (`None`: not
    /// recorded, or made without `binlog`).
    pub fn archive_binlog_file(&self, filename: &str) -> anyhow::Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT binlog_file FROM s3_archives WHERE filename = ?1 AND binlog_file IS NOT NULL
                 ORDER BY id DESC LIMIT 1",
                [filename],
                |r| r.get(0),
            )
            .optional()
            .context("cannot read s3_archives")
    }

    /// The sha256 `binlog_files` records for a stored binary log file, if any.
    pub fn binlog_sha256(&self, object_key: &str) -> anyhow::Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT sha256 FROM binlog_files WHERE object_key = ?1 ORDER BY id DESC LIMIT 1",
                [object_key],
                |r| r.get(0),
            )
            .optional()
            .context("cannot read binlog_files")
    }

    /// The newest second the shipped binary log of `server_id` reaches: the end (closing
    /// rotation) of the newest file shipped, else its first event; `None` before any.
    pub fn binlog_newest(&self, server_id: &str) -> anyhow::Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT MAX(COALESCE(last_event, first_event)) FROM binlog_files WHERE server_id = ?1",
                [server_id],
                |r| r.get(0),
            )
            .context("cannot read binlog_files")
    }

    /// The archives of `site` recorded with a binary log position, oldest first:
    /// `(created_at, key, binlog_file)`.
    pub fn points_with_position(
        &self,
        server_id: &str,
        site: &str,
    ) -> anyhow::Result<Vec<(String, String, String)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT created_at, filename, binlog_file FROM s3_archives
                 WHERE server_id = ?1 AND site_name = ?2 AND binlog_file IS NOT NULL
                 ORDER BY created_at, id",
            )
            .context("cannot read s3_archives")?;
        let rows = stmt
            .query_map([server_id, site], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .context("cannot read s3_archives")?;
        rows.collect::<Result<_, _>>()
            .context("cannot read s3_archives")
    }

    /// The object keys `prune` deleted (its `backup_log` rows), archives and binary log files.
    pub fn pruned_keys(
        &self,
        server_id: &str,
    ) -> anyhow::Result<std::collections::HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT archive_key FROM backup_log WHERE server_id = ?1 AND action = 'prune'
                 AND status = 'SUCCESS' AND archive_key IS NOT NULL",
            )
            .context("cannot read backup_log")?;
        let rows = stmt
            .query_map([server_id], |r| r.get(0))
            .context("cannot read backup_log")?;
        rows.collect::<Result<_, _>>()
            .context("cannot read backup_log")
    }

    /// Every binary log file of `server_id` shipped: `(file, object_key, storage_name)`.
    pub fn binlog_keys(&self, server_id: &str) -> anyhow::Result<Vec<(String, String, String)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT file, object_key, storage_name FROM binlog_files WHERE server_id = ?1
                 ORDER BY file",
            )
            .context("cannot read binlog_files")?;
        let rows = stmt
            .query_map([server_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .context("cannot read binlog_files")?;
        rows.collect::<Result<_, _>>()
            .context("cannot read binlog_files")
    }

    /// The sha256 recorded for an archive stored on `storage_name`, if any.
    pub fn archive_sha256(
        &self,
        filename: &str,
        storage_name: &str,
    ) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT sha256 FROM s3_archives WHERE filename = ?1 AND storage_name = ?2
                 ORDER BY id DESC LIMIT 1",
                params![filename, storage_name],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The original tool's tables, pasted: its files must keep opening.
    const ORIGINAL: &str = "
CREATE TABLE IF NOT EXISTS backup_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp DATETIME DEFAULT CURRENT_TIMESTAMP,
    status TEXT,
    details TEXT,
    site_name TEXT,
    server_id TEXT
);
CREATE TABLE IF NOT EXISTS s3_archives (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    filename TEXT,
    storage_name TEXT,
    s3_endpoint TEXT,
    s3_bucket TEXT,
    file_size INTEGER,
    server_id TEXT
);
";

    /// What `LogDb::open` ran on a new file before the schema was written once (issue 21),
    /// after [`ORIGINAL`], pasted: a new file must come out the same, byte for byte.
    const BEFORE_ISSUE_21: &str = "
ALTER TABLE backup_log ADD COLUMN action TEXT;
ALTER TABLE backup_log ADD COLUMN storage_name TEXT;
ALTER TABLE backup_log ADD COLUMN archive_key TEXT;
ALTER TABLE backup_log ADD COLUMN duration_secs REAL;
ALTER TABLE s3_archives ADD COLUMN site_name TEXT;
ALTER TABLE s3_archives ADD COLUMN created_at DATETIME;
ALTER TABLE s3_archives ADD COLUMN sha256 TEXT;
ALTER TABLE s3_archives ADD COLUMN duration_secs REAL;
ALTER TABLE s3_archives ADD COLUMN kind TEXT;
ALTER TABLE s3_archives ADD COLUMN base_key TEXT;
CREATE TABLE IF NOT EXISTS drill_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp DATETIME,
    server_id TEXT,
    site_name TEXT,
    archive_key TEXT,
    storage_name TEXT,
    result TEXT,
    failed TEXT,
    recovery_secs REAL,
    details TEXT
);
";

    /// A file as wpbackup left it before differential archives (issue 13), after [`ORIGINAL`]:
    /// no `kind`, no `base_key`, and its identity.
    const BEFORE_ISSUE_13: &str = "
ALTER TABLE backup_log ADD COLUMN action TEXT;
ALTER TABLE backup_log ADD COLUMN storage_name TEXT;
ALTER TABLE backup_log ADD COLUMN archive_key TEXT;
ALTER TABLE backup_log ADD COLUMN duration_secs REAL;
ALTER TABLE s3_archives ADD COLUMN site_name TEXT;
ALTER TABLE s3_archives ADD COLUMN created_at DATETIME;
ALTER TABLE s3_archives ADD COLUMN sha256 TEXT;
ALTER TABLE s3_archives ADD COLUMN duration_secs REAL;
CREATE TABLE IF NOT EXISTS drill_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp DATETIME,
    server_id TEXT,
    site_name TEXT,
    archive_key TEXT,
    storage_name TEXT,
    result TEXT,
    failed TEXT,
    recovery_secs REAL,
    details TEXT
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('db_id', '0123456789abcdef0123456789abcdef');
INSERT INTO meta (key, value) VALUES ('legacy_last_id.backup_log', '0');
INSERT INTO meta (key, value) VALUES ('legacy_last_id.s3_archives', '0');
";

    /// Every table and index of a file, as SQLite keeps their text (`meta` left out: its
    /// identity is random; `binlog_files` too: backups.db's own, made the same in every file,
    /// see `binlog_files_is_made_in_new_and_old_files`).
    fn schema_text(conn: &Connection) -> Vec<(String, String, Option<String>)> {
        conn.prepare(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name NOT IN ('meta', 'binlog_files') ORDER BY rowid",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// A table's columns, in order: (name, type, notnull, default, pk).
    fn table_info(
        conn: &Connection,
        table: &str,
    ) -> Vec<(String, String, bool, Option<String>, i64)> {
        conn.prepare(&format!("PRAGMA table_info({table})"))
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// `binlog_files` is in a new file and added to an old one, and a file shipped is known.
    #[test]
    fn binlog_files_is_made_in_new_and_old_files() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.db");
        Connection::open(&old)
            .unwrap()
            .execute_batch(ORIGINAL)
            .unwrap();
        for path in [old, dir.path().join("new.db")] {
            let db = LogDb::open(&path).unwrap();
            assert!(db.binlog_shipped("web-01").unwrap().is_empty());
            let entry = BinlogEntry {
                server_id: "web-01".into(),
                file: "mariadb-bin.000001".into(),
                first_event: Utc::now(),
                object_key: "binlog/web-01/mariadb-bin.000001_20261205T000000Z.zst".into(),
                storage_name: "primary".into(),
                size_bytes: 10,
                sha256: "ab".repeat(32),
                last_event: None,
            };
            db.record_binlog(&entry).unwrap();
            db.record_binlog(&entry).unwrap();
            let shipped = db.binlog_shipped("web-01").unwrap();
            assert_eq!(shipped.len(), 1);
            assert!(shipped.contains("mariadb-bin.000001"));
            assert!(db.binlog_shipped("web-02").unwrap().is_empty());
        }
    }

    /// A new file is what the hand-written schema made of it, byte for byte.
    #[test]
    fn a_new_file_is_made_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let before = Connection::open(dir.path().join("before.db")).unwrap();
        before.execute_batch(ORIGINAL).unwrap();
        before.execute_batch(BEFORE_ISSUE_21).unwrap();
        before
            .execute_batch(
                "ALTER TABLE s3_archives ADD COLUMN binlog_file TEXT;
                 ALTER TABLE s3_archives ADD COLUMN binlog_position INTEGER;",
            )
            .unwrap();
        let now = LogDb::open(&dir.path().join("now.db")).unwrap();
        let text = schema_text(now.conn());
        assert_eq!(text, schema_text(&before));
        let tables: Vec<&str> = text.iter().map(|(_, name, _)| name.as_str()).collect();
        assert_eq!(
            tables,
            ["backup_log", "sqlite_sequence", "s3_archives", "drill_log"]
        );
    }

    /// Files from the original tool and from wpbackup before differential archives gain what
    /// they lack, keep their rows (older archives: `full`), and end up with a new file's
    /// columns in a new file's order.
    #[test]
    fn older_files_are_migrated_to_a_new_files_columns() {
        let dir = tempfile::tempdir().unwrap();
        let new = LogDb::open(&dir.path().join("new.db")).unwrap();
        for (name, older) in [("original", ""), ("issue-13", BEFORE_ISSUE_13)] {
            let path = dir.path().join(format!("{name}.db"));
            {
                let c = Connection::open(&path).unwrap();
                c.execute_batch(ORIGINAL).unwrap();
                c.execute_batch(older).unwrap();
                c.execute(
                    "INSERT INTO s3_archives (filename, storage_name, file_size, server_id)
                     VALUES ('s/a/a_0.tar.zst', 'b', 5, 's')",
                    [],
                )
                .unwrap();
            }
            let db = LogDb::open(&path).unwrap();
            for table in &schema::TABLES {
                assert_eq!(
                    table_info(db.conn(), table.name),
                    table_info(new.conn(), table.name),
                    "{name}: {}",
                    table.name
                );
            }
            let kind: Option<String> = db
                .conn()
                .query_row("SELECT kind FROM s3_archives", [], |r| r.get(0))
                .unwrap();
            assert_eq!(kind.as_deref(), Some("full"), "{name}");
            if !older.is_empty() {
                assert_eq!(db.db_id().unwrap(), "0123456789abcdef0123456789abcdef");
            }
        }
    }

    /// Each writer fills every column of its table when every value is given: a column added
    /// to the schema and forgotten in its writer stays NULL, and fails here.
    #[test]
    fn every_writer_fills_every_column() {
        let dir = tempfile::tempdir().unwrap();
        let db = LogDb::open(&dir.path().join("backups.db")).unwrap();
        db.log(&LogEntry {
            timestamp: Utc::now(),
            status: Status::Success,
            details: "d",
            site_name: "a",
            server_id: "s",
            action: "backup",
            storage_name: Some("b"),
            archive_key: Some("k"),
            duration_secs: Some(1.0),
        })
        .unwrap();
        db.record_archive(&ArchiveRecord {
            filename: "k",
            storage_name: "b",
            s3_endpoint: "e",
            s3_bucket: "u",
            file_size: 1,
            server_id: "s",
            site_name: "a",
            created_at: Utc::now(),
            sha256: "ab",
            duration_secs: 0.1,
            kind: "differential",
            base_key: Some("k0"),
            binlog: Some(("mariadb-bin.000001", 4)),
        })
        .unwrap();
        db.log_drill(&DrillEntry {
            timestamp: Utc::now(),
            server_id: "s",
            site_name: "a",
            archive_key: Some("k"),
            storage_name: Some("b"),
            result: Status::Error,
            failed: Some("f"),
            recovery_secs: 2.0,
            details: "d",
        })
        .unwrap();
        db.record_binlog(&BinlogEntry {
            server_id: "s".into(),
            file: "mariadb-bin.000001".into(),
            first_event: Utc::now(),
            object_key: "binlog/s/mariadb-bin.000001_20261205T000000Z.zst".into(),
            storage_name: "b".into(),
            size_bytes: 1,
            sha256: "ab".into(),
            last_event: Some(Utc::now()),
        })
        .unwrap();
        for table in &schema::TABLES {
            for column in table.local() {
                let nulls: i64 = db
                    .conn()
                    .query_row(
                        &format!(
                            "SELECT COUNT(*) FROM {} WHERE {} IS NULL",
                            table.name, column.name
                        ),
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(nulls, 0, "{}.{} is not written", table.name, column.name);
            }
        }
    }

    /// The row from before differential archives reads as full; the new one as written.
    fn assert_kinds(db: &LogDb) {
        let kinds: Vec<(String, Option<String>, Option<String>)> = db
            .conn()
            .prepare("SELECT filename, kind, base_key FROM s3_archives ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            kinds,
            [
                ("s/a/a_0.tar.zst".into(), Some("full".into()), None),
                (
                    "s/a/a_1.tar.zst".into(),
                    Some("differential".into()),
                    Some("s/a/a_0.tar.zst".into())
                )
            ]
        );
    }

    #[test]
    fn migrates_an_original_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backups.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(ORIGINAL).unwrap();
            c.execute(
                "INSERT INTO backup_log (status, details, site_name, server_id) VALUES ('SUCCESS','old','a','s')",
                [],
            )
            .unwrap();
            c.execute(
                "INSERT INTO s3_archives (filename, storage_name, file_size, server_id)
                 VALUES ('s/a/a_0.tar.zst', 'b', 5, 's')",
                [],
            )
            .unwrap();
        }
        let db = LogDb::open(&path).unwrap();
        db.log(&LogEntry {
            timestamp: Utc::now(),
            status: Status::Warning,
            details: "new",
            site_name: "a",
            server_id: "s",
            action: "backup",
            storage_name: Some("b"),
            archive_key: None,
            duration_secs: Some(1.5),
        })
        .unwrap();
        let rows = db.last_per_site("s").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].details, "new");
        assert_eq!(rows[0].status, "WARNING");
        db.record_archive(&ArchiveRecord {
            filename: "s/a/a_1.tar.zst",
            storage_name: "b",
            s3_endpoint: "e",
            s3_bucket: "k",
            file_size: 1,
            server_id: "s",
            site_name: "a",
            created_at: Utc::now(),
            sha256: "ab",
            duration_secs: 0.1,
            kind: "differential",
            base_key: Some("s/a/a_0.tar.zst"),
            binlog: None,
        })
        .unwrap();
        assert_kinds(&db);
        let known = db.known_archives().unwrap();
        assert!(known.contains(&("s/a/a_1.tar.zst".to_string(), "b".to_string())));
        assert_eq!(
            db.archive_sha256("s/a/a_1.tar.zst", "b")
                .unwrap()
                .as_deref(),
            Some("ab")
        );
        assert_eq!(db.archive_sha256("s/a/a_1.tar.zst", "c").unwrap(), None);
        assert_eq!(db.archive_size("s/a/a_1.tar.zst", "b").unwrap(), Some(1));
        assert_eq!(db.archive_size("s/a/a_1.tar.zst", "c").unwrap(), None);
        assert_eq!(rows[0].duration_secs, Some(1.5));
        // Opening again is a no-op.
        drop(db);
        LogDb::open(&path).unwrap();
    }

    fn entry<'a>(site: &'a str, server: &'a str, status: Status) -> LogEntry<'a> {
        LogEntry {
            timestamp: Utc::now(),
            status,
            details: "d",
            site_name: site,
            server_id: server,
            action: "backup",
            storage_name: None,
            archive_key: None,
            duration_secs: None,
        }
    }

    #[test]
    fn a_run_error_is_current_until_a_later_run() {
        let dir = tempfile::tempdir().unwrap();
        let db = LogDb::open(&dir.path().join("backups.db")).unwrap();
        assert_eq!(db.began().unwrap(), None);
        db.log(&entry("a", "web-01", Status::Success)).unwrap();
        // Recorded under the host name: the config naming web-01 could not be read.
        let id = db.log(&entry("*", "host", Status::Error)).unwrap();
        assert_eq!(
            db.current_run_error("web-01").unwrap().map(|r| r.id),
            Some(id)
        );
        assert!(
            db.last_per_site("host").unwrap().is_empty(),
            "* is not a site"
        );
        db.log(&entry("a", "web-01", Status::Success)).unwrap();
        assert!(db.current_run_error("web-01").unwrap().is_none());
        assert!(db.began().unwrap().is_some());
    }

    #[test]
    fn each_sites_last_drill_and_last_passed_drill() {
        let dir = tempfile::tempdir().unwrap();
        let db = LogDb::open(&dir.path().join("backups.db")).unwrap();
        fn drill(site: &str, result: Status, secs: f64) -> DrillEntry<'_> {
            DrillEntry {
                timestamp: Utc::now(),
                server_id: "web-01",
                site_name: site,
                archive_key: Some("k"),
                storage_name: Some("s"),
                result,
                failed: (result == Status::Error).then_some("the dump does not load"),
                recovery_secs: secs,
                details: "d",
            }
        }
        db.log_drill(&drill("a", Status::Success, 41.0)).unwrap();
        db.log_drill(&drill("a", Status::Error, 3.0)).unwrap();
        db.log_drill(&drill("b", Status::Warning, 7.0)).unwrap();
        let d = db.drills("web-01").unwrap();
        let a = &d["a"];
        assert_eq!(a.last.as_ref().map(|r| r.result.as_str()), Some("ERROR"));
        assert_eq!(
            a.last.as_ref().and_then(|r| r.failed.as_deref()),
            Some("the dump does not load")
        );
        assert_eq!(
            a.last_passed.as_ref().and_then(|r| r.recovery_secs),
            Some(41.0)
        );
        assert!(d["b"].last_passed.as_ref().is_some_and(DrillRow::passed));
        assert!(db.drills("web-02").unwrap().is_empty());
    }

    #[test]
    fn created_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backups.db");
        LogDb::open(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o077,
            0
        );
    }

    #[test]
    fn identity_is_made_once_and_an_older_file_keeps_its_rows_legacy() {
        let dir = tempfile::tempdir().unwrap();
        // A file from before identities, with two rows (maybe in D1 already).
        let old = dir.path().join("old.db");
        {
            let c = Connection::open(&old).unwrap();
            c.execute_batch(ORIGINAL).unwrap();
            c.execute_batch("INSERT INTO backup_log (status) VALUES ('SUCCESS'), ('ERROR');")
                .unwrap();
        }
        let db = LogDb::open(&old).unwrap();
        let id = db.db_id().unwrap();
        assert_eq!(id.len(), 32, "{id}");
        assert_eq!(db.legacy_last_id("backup_log").unwrap(), 2);
        assert_eq!(db.legacy_last_id("s3_archives").unwrap(), 0);
        drop(db);
        // Opened again: the same identity, the same legacy mark.
        let db = LogDb::open(&old).unwrap();
        assert_eq!(db.db_id().unwrap(), id);
        assert_eq!(db.legacy_last_id("backup_log").unwrap(), 2);
        // A new file: another identity, nothing legacy.
        let new = LogDb::open(&dir.path().join("new.db")).unwrap();
        assert_ne!(new.db_id().unwrap(), id);
        assert_eq!(new.legacy_last_id("backup_log").unwrap(), 0);
    }
}
