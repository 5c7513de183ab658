//! Pushing `backups.db` to D1 so the fleet can be watched from one place: every local
//! `backup_log`, `s3_archives` and `drill_log` row reaches D1 exactly once, however often a
//! push is retried, cut off or run from two processes at once.
//!
//! How:
//! - D1 holds the same tables for every server, with the original columns first, then
//!   wpbackup's, among them `local_id` (the row's id in the `backups.db` it came from) and
//!   `db_id` (that file's identity, so a recreated backups.db, whose ids start again at 1, is
//!   not mistaken for the old one), and a unique index on `(server_id, db_id, local_id)`.
//!   Missing tables, columns and the index are created on each push (an original D1 table gains
//!   the columns; rows pushed before identities existed get `db_id = ''`, as the rows of their
//!   backups.db from before its identity are pushed, so none is doubled).
//! - Rows go in id order, in batches (several multi-row `INSERT ... ON CONFLICT DO NOTHING`
//!   statements per request, each within D1's 100 bound parameters), so a row that is already
//!   there is skipped, never doubled: a retry after an answer that was lost, or a second
//!   process pushing the same rows, changes nothing.
//! - A high-water mark per D1 database and table (`d1_sync` in `backups.db`) moves forward only
//!   after D1 reported success for every statement of a request, and only ever forward
//!   (`MAX`), so an interrupted push resends from the last confirmed row: no gap.
//! - `s3_archives` carries `kind` and `base_key` (issue 13, differential archives). Rows pushed
//!   before D1 had the columns keep NULL there, which means `full` (every archive was).
//! - Each request ends with the refresh of the summary table `site_latest` for the servers of
//!   its rows (`site_latest.rs`), in the same batch: what the dashboard's fleet page reads.

use std::time::Duration;

use anyhow::Context as _;
use rusqlite::types::Value as SqlValue;
use serde_json::Value;

use crate::d1::{D1Client, D1Settings, Limits, MAX_PARAMS, Statement, site_latest};
use crate::logdb::LogDb;

/// Rows read and sent per request at most.
const ROWS_PER_REQUEST: usize = 100;
/// Bytes of bound values per request at most (well under D1's 2 MB row and 100 KB statement
/// limits, and a small request to resend if it fails).
const BYTES_PER_REQUEST: usize = 512 * 1024;

/// A table pushed to D1.
struct Table {
    name: &'static str,
    /// The table as first created in D1 (the original tool's, for its two), created when
    /// missing.
    create: &'static str,
    /// wpbackup's columns after the original ones, in D1 (`local_id` among them).
    extra: &'static [(&'static str, &'static str)],
    /// Local columns pushed (besides `id`, which becomes `local_id`, and the file's `db_id`).
    columns: &'static [&'static str],
}

const TABLES: [Table; 3] = [
    Table {
        name: "backup_log",
        create: "CREATE TABLE IF NOT EXISTS backup_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp DATETIME DEFAULT CURRENT_TIMESTAMP,
            status TEXT,
            details TEXT,
            site_name TEXT,
            server_id TEXT
        )",
        extra: &[
            ("local_id", "INTEGER"),
            ("db_id", "TEXT"),
            ("action", "TEXT"),
            ("storage_name", "TEXT"),
            ("archive_key", "TEXT"),
            ("duration_secs", "REAL"),
        ],
        columns: &[
            "timestamp",
            "status",
            "details",
            "site_name",
            "server_id",
            "action",
            "storage_name",
            "archive_key",
            "duration_secs",
        ],
    },
    Table {
        name: "s3_archives",
        create: "CREATE TABLE IF NOT EXISTS s3_archives (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            filename TEXT,
            storage_name TEXT,
            s3_endpoint TEXT,
            s3_bucket TEXT,
            file_size INTEGER,
            server_id TEXT
        )",
        extra: &[
            ("local_id", "INTEGER"),
            ("db_id", "TEXT"),
            ("site_name", "TEXT"),
            ("created_at", "DATETIME"),
            ("sha256", "TEXT"),
            ("duration_secs", "REAL"),
            ("kind", "TEXT"),
            ("base_key", "TEXT"),
        ],
        columns: &[
            "filename",
            "storage_name",
            "s3_endpoint",
            "s3_bucket",
            "file_size",
            "server_id",
            "site_name",
            "created_at",
            "sha256",
            "duration_secs",
            "kind",
            "base_key",
        ],
    },
    Table {
        name: "drill_log",
        create: "CREATE TABLE IF NOT EXISTS drill_log (
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
        )",
        extra: &[("local_id", "INTEGER"), ("db_id", "TEXT")],
        columns: &[
            "timestamp",
            "server_id",
            "site_name",
            "archive_key",
            "storage_name",
            "result",
            "failed",
            "recovery_secs",
            "details",
        ],
    },
];

/// The local record of what D1 confirmed.
const CREATE_MARKS: &str = "CREATE TABLE IF NOT EXISTS d1_sync (
    database_id TEXT NOT NULL,
    table_name TEXT NOT NULL,
    last_id INTEGER NOT NULL,
    synced_at DATETIME,
    PRIMARY KEY (database_id, table_name)
)";

/// What one table's push did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TablePush {
    pub table: &'static str,
    /// Rows sent to D1.
    pub sent: u64,
    /// Rows D1 did not have yet (the others were already there and were skipped).
    pub inserted: u64,
    /// Requests made for them.
    pub requests: u64,
    /// The local id up to which D1 has every row.
    pub last_id: i64,
}

/// Push every row D1 does not have yet. `server_id` stands in for a row without one.
pub async fn push(
    db: &LogDb,
    client: &D1Client,
    database_id: &str,
    server_id: &str,
) -> anyhow::Result<Vec<TablePush>> {
    db.conn()
        .execute_batch(CREATE_MARKS)
        .context("cannot create the d1_sync table in backups.db")?;
    ensure_schema(client)
        .await
        .context("cannot create the tables in D1")?;
    let db_id = db.db_id()?;
    let mut out = Vec::new();
    for table in &TABLES {
        let ident = Identity {
            db_id: &db_id,
            legacy_last_id: db.legacy_last_id(table.name)?,
        };
        let mut t = TablePush {
            table: table.name,
            last_id: mark(db, database_id, table.name)?,
            ..TablePush::default()
        };
        loop {
            let (rows, last_id) = read_rows(db, table, t.last_id, server_id, &ident)?;
            if rows.is_empty() {
                break;
            }
            let mut stmts = insert_statements(table, &rows);
            let inserts = stmts.len();
            if let Some(c) = table.columns.iter().position(|c| *c == "server_id") {
                stmts.extend(site_latest::refresh(&rows, c));
            }
            let results = client.batch(&stmts).await.with_context(|| {
                format!(
                    "{}: push of rows {}..={last_id} failed ({} rows confirmed before it)",
                    table.name,
                    t.last_id + 1,
                    t.sent
                )
            })?;
            t.inserted += results
                .iter()
                .take(inserts)
                .map(|r| r.changes())
                .sum::<u64>();
            t.sent += rows.len() as u64;
            t.requests += 1;
            advance(db, database_id, table.name, last_id)?;
            t.last_id = last_id;
        }
        out.push(t);
    }
    Ok(out)
}

/// Create what is missing in D1: the tables, wpbackup's columns, the unique key.
async fn ensure_schema(client: &D1Client) -> anyhow::Result<()> {
    // A new table gets every column at once; an existing one (the original tool's) gains the
    // missing ones below.
    let mut first: Vec<Statement> = TABLES
        .iter()
        .map(|t| {
            let extra: Vec<String> = t.extra.iter().map(|(c, ty)| format!("{c} {ty}")).collect();
            let create = t.create.trim_end().trim_end_matches(')').trim_end();
            Statement::new(
                format!("{create},\n    {}\n)", extra.join(",\n    ")),
                vec![],
            )
        })
        .collect();
    first.extend(
        TABLES
            .iter()
            .map(|t| Statement::new(format!("PRAGMA table_info({})", t.name), vec![])),
    );
    let results = client.batch(&first).await?;
    let mut last = Vec::new();
    for (i, table) in TABLES.iter().enumerate() {
        let have: Vec<String> = results[TABLES.len() + i]
            .results
            .iter()
            .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
            .collect();
        for (column, ty) in table.extra {
            if have.iter().any(|h| h == column) {
                continue;
            }
            let alter = Statement::new(
                format!("ALTER TABLE {} ADD COLUMN {column} {ty}", table.name),
                vec![],
            );
            if let Err(e) = client.query(alter).await {
                // Another server may have added it a moment ago.
                if !e.to_string().contains("duplicate column") {
                    return Err(e.into());
                }
            }
        }
        last.extend(unique_key(table.name));
    }
    last.extend(site_latest::schema());
    client.batch(&last).await?;
    Ok(())
}

/// The unique key on `(server_id, db_id, local_id)`, after the rows pushed before `db_id`
/// existed joined the legacy identity `''` and the old key on `(server_id, local_id)`, which
/// would drop a recreated backups.db's rows, is gone.
fn unique_key(table: &str) -> [Statement; 3] {
    [
        Statement::new(
            format!("UPDATE {table} SET db_id = '' WHERE db_id IS NULL AND local_id IS NOT NULL"),
            vec![],
        ),
        Statement::new(format!("DROP INDEX IF EXISTS {table}_server_local"), vec![]),
        Statement::new(
            format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS {table}_server_db_local
                 ON {table} (server_id, db_id, local_id)"
            ),
            vec![],
        ),
    ]
}

/// Which backups.db the rows come from.
struct Identity<'a> {
    db_id: &'a str,
    /// Rows up to this id go as `db_id = ''` (see [`LogDb::legacy_last_id`]).
    legacy_last_id: i64,
}

fn mark(db: &LogDb, database_id: &str, table: &str) -> anyhow::Result<i64> {
    use rusqlite::OptionalExtension as _;
    Ok(db
        .conn()
        .query_row(
            "SELECT last_id FROM d1_sync WHERE database_id = ?1 AND table_name = ?2",
            [database_id, table],
            |r| r.get(0),
        )
        .optional()
        .context("cannot read d1_sync in backups.db")?
        .unwrap_or(0))
}

/// Move the mark forward to `last_id` (never back: a concurrent push may be further).
fn advance(db: &LogDb, database_id: &str, table: &str, last_id: i64) -> anyhow::Result<()> {
    db.conn()
        .execute(
            "INSERT INTO d1_sync (database_id, table_name, last_id, synced_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (database_id, table_name)
             DO UPDATE SET last_id = MAX(last_id, excluded.last_id), synced_at = excluded.synced_at",
            rusqlite::params![
                database_id,
                table,
                last_id,
                crate::logdb::sql_time(chrono::Utc::now())
            ],
        )
        .context("cannot update d1_sync in backups.db")?;
    Ok(())
}

/// The next rows after `after` (values in `table.columns` order, then db_id and the local id),
/// bounded by [`ROWS_PER_REQUEST`] and [`BYTES_PER_REQUEST`]; and the last id among them.
fn read_rows(
    db: &LogDb,
    table: &Table,
    after: i64,
    server_id: &str,
    ident: &Identity,
) -> anyhow::Result<(Vec<Vec<Value>>, i64)> {
    let sql = format!(
        "SELECT id, {} FROM {} WHERE id > ?1 ORDER BY id LIMIT ?2",
        table.columns.join(", "),
        table.name
    );
    let mut stmt = db.conn().prepare(&sql)?;
    let server_col = table.columns.iter().position(|c| *c == "server_id");
    let mut rows = stmt.query(rusqlite::params![after, ROWS_PER_REQUEST as i64])?;
    let (mut out, mut last_id, mut bytes) = (Vec::new(), after, 0usize);
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let mut values = Vec::with_capacity(table.columns.len() + 1);
        for i in 0..table.columns.len() {
            values.push(json_value(r.get::<_, SqlValue>(i + 1)?));
        }
        if let Some(c) = server_col
            && values[c].as_str().is_none_or(str::is_empty)
        {
            values[c] = Value::String(server_id.to_string());
        }
        let db_id = if id <= ident.legacy_last_id {
            ""
        } else {
            ident.db_id
        };
        values.push(Value::from(db_id));
        values.push(Value::from(id));
        let size: usize = values.iter().map(|v| v.to_string().len()).sum();
        if !out.is_empty() && bytes + size > BYTES_PER_REQUEST {
            break;
        }
        bytes += size;
        out.push(values);
        last_id = id;
    }
    Ok((out, last_id))
}

fn json_value(v: SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::from(i),
        SqlValue::Real(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        SqlValue::Text(s) => Value::String(s),
        SqlValue::Blob(b) => Value::String(hex::encode(b)),
    }
}

/// Multi-row inserts, each with at most [`MAX_PARAMS`] bound values.
fn insert_statements(table: &Table, rows: &[Vec<Value>]) -> Vec<Statement> {
    let width = table.columns.len() + 2;
    let per_statement = (MAX_PARAMS / width).max(1);
    let tuple = format!("({})", vec!["?"; width].join(", "));
    rows.chunks(per_statement)
        .map(|chunk| {
            let sql = format!(
                "INSERT INTO {} ({}, db_id, local_id) VALUES {}
                 ON CONFLICT (server_id, db_id, local_id) DO NOTHING",
                table.name,
                table.columns.join(", "),
                vec![tuple.as_str(); chunk.len()].join(", ")
            );
            debug_assert!(sql.len() < crate::d1::MAX_STATEMENT_BYTES);
            Statement::new(sql, chunk.iter().flatten().cloned().collect())
        })
        .collect()
}

/// `sync-d1`: push every row D1 does not have yet, with a command's limits.
pub async fn push_now(
    db: &LogDb,
    settings: &D1Settings,
    server_id: &str,
) -> anyhow::Result<Vec<TablePush>> {
    let client = D1Client::new(settings, Limits::command())?;
    push(db, &client, &settings.database_id, server_id).await
}

/// After a backup: push when D1 is configured, within [`Limits::after_backup`]. Never fails the
/// backup: a failure is a WARNING with its cause, and the rows go next time.
pub fn after_backup(
    rt: &tokio::runtime::Runtime,
    env: &crate::config::Env,
    db: &LogDb,
    server_id: &str,
) {
    let settings = match D1Settings::from_env(env) {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("D1 sync skipped: {e:#}");
            return;
        }
    };
    let limits = Limits::after_backup(settings.backup_timeout);
    let result = rt.block_on(async {
        let client = D1Client::new(&settings, limits)?;
        // The client's deadline stops new calls; this one bounds everything else too.
        match tokio::time::timeout(
            limits.deadline + Duration::from_secs(5),
            push(db, &client, &settings.database_id, server_id),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => anyhow::bail!("D1 did not finish within {:?}", limits.deadline),
        }
    });
    match result {
        Ok(tables) => {
            let sent: u64 = tables.iter().map(|t| t.sent).sum();
            tracing::info!(rows = sent, "log pushed to D1");
        }
        Err(e) => tracing::warn!(
            "D1 sync failed; the backup result stands and the rows go with the next push: {e:#}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_stay_within_the_parameter_limit() {
        for table in &TABLES {
            let width = table.columns.len() + 2;
            let rows: Vec<Vec<Value>> = (0..37)
                .map(|i| (0..width).map(|_| Value::from(i)).collect())
                .collect();
            let stmts = insert_statements(table, &rows);
            assert!(stmts.iter().all(|s| s.params.len() <= MAX_PARAMS));
            let total: usize = stmts.iter().map(|s| s.params.len()).sum();
            assert_eq!(total, 37 * width);
            for s in &stmts {
                assert_eq!(s.sql.matches('?').count(), s.params.len());
                assert!(
                    s.sql
                        .ends_with("ON CONFLICT (server_id, db_id, local_id) DO NOTHING")
                );
            }
        }
    }

    #[test]
    fn marks_only_move_forward() {
        let dir = tempfile::tempdir().unwrap();
        let db = LogDb::open(&dir.path().join("backups.db")).unwrap();
        db.conn().execute_batch(CREATE_MARKS).unwrap();
        assert_eq!(mark(&db, "d", "backup_log").unwrap(), 0);
        advance(&db, "d", "backup_log", 7).unwrap();
        advance(&db, "d", "backup_log", 3).unwrap();
        assert_eq!(mark(&db, "d", "backup_log").unwrap(), 7);
        assert_eq!(mark(&db, "other", "backup_log").unwrap(), 0);
    }
}
