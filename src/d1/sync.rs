//! Pushing `backups.db` to D1 so the fleet can be watched from one place: every local
//! `backup_log`, `s3_archives`, `drill_log` and `binlog_files` row reaches D1 exactly once, however often a
//! push is retried, cut off or run from two processes at once.
//!
//! How:
//! - D1 holds the same tables for every server, with the original columns first, then
//!   wpbackup's, among them `local_id` (the row's id in the `backups.db` it came from) and
//!   `db_id` (that file's identity, so a recreated backups.db, whose ids start again at 1, is
//!   not mistaken for the old one), and a unique index on `(server_id, db_id, local_id)`. The
//!   tables, their columns and which are D1's only are `logdb::schema`'s, the one definition
//!   backups.db is made from too: every column backups.db stores is pushed.
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
use crate::logdb::schema::{Column, Role, TABLES, Table};

/// Rows read and sent per request at most.
const ROWS_PER_REQUEST: usize = 100;
/// Bytes of bound values per request at most (well under D1's 2 MB row and 100 KB statement
/// limits, and a small request to resend if it fails).
const BYTES_PER_REQUEST: usize = 512 * 1024;

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
            if let Some(c) = server_col(table) {
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
    let first = schema_probe();
    let results = client.batch(&first).await?;
    let mut last = Vec::new();
    for (i, table) in TABLES.iter().enumerate() {
        let have: Vec<String> = results
            .get(TABLES.len() + i)
            .context("D1 answered fewer results than statements")?
            .results
            .iter()
            .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
            .collect();
        for column in missing_columns(table, &have) {
            let alter = Statement::new(column.add_to(table.name), vec![]);
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
    last.push(Statement::new("PRAGMA table_info(site_latest)", vec![]));
    let results = client.batch(&last).await?;
    let have: Vec<String> = results
        .last()
        .context("D1 answered fewer results than statements")?
        .results
        .iter()
        .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    // A site_latest made before its added columns gains them.
    for (column, decl) in site_latest::ADDED {
        if have.iter().any(|h| h == column) {
            continue;
        }
        let alter = Statement::new(
            format!("ALTER TABLE site_latest ADD COLUMN {column} {decl}"),
            vec![],
        );
        if let Err(e) = client.query(alter).await
            && !e.to_string().contains("duplicate column")
        {
            return Err(e.into());
        }
    }
    Ok(())
}

/// The first request: each table created with every column when missing (an existing one, the
/// original tool's or an older wpbackup's, gains the columns it lacks afterwards: see
/// [`missing_columns`]), then each table's columns as D1 has them, in [`TABLES`] order.
fn schema_probe() -> Vec<Statement> {
    let creates = TABLES.iter().map(|t| Statement::new(t.create_d1(), vec![]));
    let probes = TABLES
        .iter()
        .map(|t| Statement::new(format!("PRAGMA table_info({})", t.name), vec![]));
    creates.chain(probes).collect()
}

/// The columns a D1 table that has the columns `have` must gain (`ALTER TABLE`).
fn missing_columns<'a>(table: &'a Table, have: &[String]) -> Vec<&'a Column> {
    table
        .added_d1()
        .filter(|c| !have.iter().any(|h| h == c.name))
        .collect()
}

/// Where `server_id` is among a row's values (the columns of [`Table::pushed`]).
fn server_col(table: &Table) -> Option<usize> {
    table.pushed().position(|c| c.name == "server_id")
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

/// The next rows after `after` (values in [`Table::pushed`] order: each local column's, and
/// the row's id and the file's identity where D1 has `local_id` and `db_id`), bounded by
/// [`ROWS_PER_REQUEST`] and [`BYTES_PER_REQUEST`]; and the last id among them.
fn read_rows(
    db: &LogDb,
    table: &Table,
    after: i64,
    server_id: &str,
    ident: &Identity,
) -> anyhow::Result<(Vec<Vec<Value>>, i64)> {
    let data: Vec<&str> = table
        .pushed()
        .filter(|c| c.role == Role::Data)
        .map(|c| c.name)
        .collect();
    let sql = format!(
        "SELECT id, {} FROM {} WHERE id > ?1 ORDER BY id LIMIT ?2",
        data.join(", "),
        table.name
    );
    let mut stmt = db.conn().prepare(&sql)?;
    let server_col = server_col(table);
    let mut rows = stmt.query(rusqlite::params![after, ROWS_PER_REQUEST as i64])?;
    let (mut out, mut last_id, mut bytes) = (Vec::new(), after, 0usize);
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let db_id = if id <= ident.legacy_last_id {
            ""
        } else {
            ident.db_id
        };
        let mut values = Vec::with_capacity(data.len() + 2);
        let mut data_index = 0; // 0 is the id
        for column in table.pushed() {
            values.push(match column.role {
                Role::Data => {
                    data_index += 1;
                    json_value(r.get::<_, SqlValue>(data_index)?)
                }
                Role::LocalId => Value::from(id),
                Role::DbId => Value::from(db_id),
                // Not pushed: D1 numbers its own rows.
                Role::RowId => continue,
            });
        }
        if let Some(c) = server_col
            && values[c].as_str().is_none_or(str::is_empty)
        {
            values[c] = Value::String(server_id.to_string());
        }
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
    let columns: Vec<&str> = table.pushed().map(|c| c.name).collect();
    let width = columns.len();
    let per_statement = (MAX_PARAMS / width).max(1);
    let tuple = format!("({})", vec!["?"; width].join(", "));
    rows.chunks(per_statement)
        .map(|chunk| {
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}
                 ON CONFLICT (server_id, db_id, local_id) DO NOTHING",
                table.name,
                columns.join(", "),
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
            let width = table.pushed().count();
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

    /// D1's tables as wpbackup created them before the schema was written once (issue 21),
    /// pasted: a new D1 database must get the same tables, an older one must need nothing.
    const D1_BEFORE: &str = "CREATE TABLE IF NOT EXISTS backup_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp DATETIME DEFAULT CURRENT_TIMESTAMP,
            status TEXT,
            details TEXT,
            site_name TEXT,
            server_id TEXT,
    local_id INTEGER,
    db_id TEXT,
    action TEXT,
    storage_name TEXT,
    archive_key TEXT,
    duration_secs REAL
);
CREATE TABLE IF NOT EXISTS s3_archives (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            filename TEXT,
            storage_name TEXT,
            s3_endpoint TEXT,
            s3_bucket TEXT,
            file_size INTEGER,
            server_id TEXT,
    local_id INTEGER,
    db_id TEXT,
    site_name TEXT,
    created_at DATETIME,
    sha256 TEXT,
    duration_secs REAL,
    kind TEXT,
    base_key TEXT
);
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
            details TEXT,
    local_id INTEGER,
    db_id TEXT
);";

    /// The original tool's D1 tables, pasted.
    const D1_ORIGINAL: &str = "CREATE TABLE backup_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp DATETIME DEFAULT CURRENT_TIMESTAMP,
    status TEXT,
    details TEXT,
    site_name TEXT,
    server_id TEXT
);
CREATE TABLE s3_archives (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    filename TEXT,
    storage_name TEXT,
    s3_endpoint TEXT,
    s3_bucket TEXT,
    file_size INTEGER,
    server_id TEXT
);";

    /// A table's columns, in order: (name, type, notnull, default, pk).
    fn table_info(
        conn: &rusqlite::Connection,
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

    fn names(conn: &rusqlite::Connection, table: &str) -> Vec<String> {
        table_info(conn, table).into_iter().map(|c| c.0).collect()
    }

    /// A table's `CREATE TABLE`, its whitespace made single spaces.
    fn create_text(conn: &rusqlite::Connection, table: &str) -> String {
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        sql.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// SQLite standing in for D1: `before` run, then the schema statements a push runs (the
    /// tables created, the columns they lack added, the unique key, `site_latest`).
    fn d1_standin(before: &str) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(before).unwrap();
        let probe = schema_probe();
        assert_eq!(probe.len(), 2 * TABLES.len());
        for (i, table) in TABLES.iter().enumerate() {
            conn.execute_batch(&probe[i].sql).unwrap();
            assert_eq!(
                probe[TABLES.len() + i].sql,
                format!("PRAGMA table_info({})", table.name)
            );
        }
        for table in &TABLES {
            for column in missing_columns(table, &names(&conn, table.name)) {
                conn.execute_batch(&column.add_to(table.name)).unwrap();
            }
            for s in unique_key(table.name) {
                conn.execute_batch(&s.sql).unwrap();
            }
        }
        for s in site_latest::schema() {
            conn.execute_batch(&s.sql).unwrap();
        }
        conn
    }

    /// Run a statement as D1 binds it.
    fn run(conn: &rusqlite::Connection, s: &Statement) -> usize {
        let params: Vec<SqlValue> = s
            .params
            .iter()
            .map(|v| match v {
                Value::Null => SqlValue::Null,
                Value::Number(n) => n
                    .as_i64()
                    .map(SqlValue::Integer)
                    .or_else(|| n.as_f64().map(SqlValue::Real))
                    .unwrap(),
                Value::String(t) => SqlValue::Text(t.clone()),
                other => panic!("not a D1 parameter: {other}"),
            })
            .collect();
        conn.execute(&s.sql, rusqlite::params_from_iter(params))
            .unwrap()
    }

    /// A new D1 database gets the tables wpbackup made before; one made then, or by the
    /// original tool, ends up with the same columns in the same order.
    #[test]
    fn d1_tables_are_those_made_before() {
        let new = d1_standin("");
        let before = rusqlite::Connection::open_in_memory().unwrap();
        // Issue 27 added s3_archives' binlog_file and binlog_position at its end.
        let issue_27 = D1_BEFORE.replacen(
            "base_key TEXT",
            "base_key TEXT, binlog_file TEXT, binlog_position INTEGER",
            1,
        );
        before.execute_batch(&issue_27).unwrap();
        // binlog_files came to D1 with issue 27 item 3: made as backups.db makes it, plus D1's.
        before
            .execute_batch(&crate::logdb::schema::BINLOG_FILES.create_d1())
            .unwrap();
        for table in &TABLES {
            assert_eq!(
                create_text(&new, table.name),
                create_text(&before, table.name)
            );
            assert_eq!(
                missing_columns(table, &names(&before, table.name)).len(),
                0,
                "{}: a D1 table made before lacks nothing",
                table.name
            );
        }
        for older in [D1_BEFORE, D1_ORIGINAL] {
            let migrated = d1_standin(older);
            for table in &TABLES {
                assert_eq!(
                    table_info(&migrated, table.name),
                    table_info(&new, table.name),
                    "{}",
                    table.name
                );
            }
        }
    }

    /// The column names of an `INSERT INTO t (a, b) ...`.
    fn insert_columns(sql: &str) -> Vec<String> {
        let (_, rest) = sql.split_once('(').unwrap();
        let (list, _) = rest.split_once(')').unwrap();
        list.split(',').map(|c| c.trim().to_string()).collect()
    }

    /// Every table of backups.db is pushed, and every column of it: a row with each column
    /// set (read from the file itself, not from the schema) reaches D1 with each value in its
    /// column, beside `local_id` and `db_id`.
    #[test]
    fn every_column_backups_db_stores_is_pushed() {
        let dir = tempfile::tempdir().unwrap();
        let db = LogDb::open(&dir.path().join("backups.db")).unwrap();
        db.conn().execute_batch(CREATE_MARKS).unwrap();
        let tables: Vec<String> = db
            .conn()
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table'
                 AND name NOT IN ('meta', 'd1_sync', 'sqlite_sequence') ORDER BY name",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut pushed: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        pushed.sort();
        assert_eq!(tables, pushed, "backups.db's tables are the ones pushed");

        let d1 = d1_standin("");
        let ident = Identity {
            db_id: "f00d",
            legacy_last_id: 0,
        };
        for table in &TABLES {
            let local: Vec<String> = names(db.conn(), table.name)
                .into_iter()
                .filter(|c| c != "id")
                .collect();
            let value = |c: &str| format!("{}.{c}", table.name);
            db.conn()
                .execute(
                    &format!(
                        "INSERT INTO {} ({}) VALUES ({})",
                        table.name,
                        local.join(", "),
                        vec!["?"; local.len()].join(", ")
                    ),
                    rusqlite::params_from_iter(local.iter().map(|c| value(c))),
                )
                .unwrap();
            let (rows, last_id) = read_rows(&db, table, 0, "fallback", &ident).unwrap();
            assert_eq!((rows.len(), last_id), (1, 1));
            let stmts = insert_statements(table, &rows);
            assert_eq!(stmts.len(), 1);

            // The statement: each local column with its value, and the row's identity.
            let columns = insert_columns(&stmts[0].sql);
            let mut expected: Vec<String> = local.clone();
            expected.extend(["local_id".to_string(), "db_id".to_string()]);
            let mut sorted = columns.clone();
            sorted.sort();
            expected.sort();
            assert_eq!(sorted, expected, "{}: the columns pushed", table.name);
            for (column, param) in columns.iter().zip(&stmts[0].params) {
                let want = match column.as_str() {
                    "local_id" => Value::from(1),
                    "db_id" => Value::from("f00d"),
                    c => Value::from(value(c)),
                };
                assert_eq!(param, &want, "{}.{column}", table.name);
            }

            // In D1: the same columns (and D1's own id), each holding its value.
            assert_eq!(run(&d1, &stmts[0]), 1);
            assert_eq!(run(&d1, &stmts[0]), 0, "a second push changes nothing");
            let mut d1_columns = names(&d1, table.name);
            d1_columns.retain(|c| c != "id");
            d1_columns.sort();
            assert_eq!(d1_columns, expected, "{}: D1's columns", table.name);
            for column in &local {
                let got: String = d1
                    .query_row(
                        &format!("SELECT {column} FROM {} WHERE local_id = 1", table.name),
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(got, value(column));
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
