//! `site_latest` in D1: one row per (server, site) holding what the dashboard's fleet page
//! shows (the newest backup run, the newest run that stored an archive, the newest archive),
//! so that the page reads one row per site instead of walking `backup_log` (D1 bills rows
//! read: about 9 per site without it, see BENCHMARKS.md).
//!
//! How it stays true: every push request that carries rows of a server ends with
//! [`refresh`] for that server, in the same batch as the inserts. The refresh recomputes the
//! server's rows from D1's own `backup_log` and `s3_archives` (not from what this push sent), so
//! it is right whatever order pushes, retries and concurrent processes run in: the last
//! refresh to run sees every row inserted before it. It walks the indexes created here (the
//! dashboard's own, same names and definitions), about 9 rows read per site of the server.
//!
//! The table is written by `sync-d1` only; a server still on an older wpbackup leaves no row
//! here, and the dashboard reads that server's sites from the logs as before. A column added
//! later needs an `ALTER TABLE` for the D1 databases that have the table already, as the
//! pushed tables' added columns get theirs (`logdb::schema`; `CREATE TABLE IF NOT EXISTS` will
//! not add it), and its place in [`REFRESH`] (a unit test keeps the refresh writing every
//! column of the table).
//!
//! `pitr_from` and `pitr_to` (issue 27 item 3) are the site's point-in-time window, as
//! `binlog::window` computes it from backups.db: the oldest archive with a binary log position
//! (`s3_archives.binlog_file`) neither it nor its file deleted by `prune` (`backup_log` rows of
//! action `prune`), and the end of the server's newest shipped file (`binlog_files`). Both NULL
//! without `binlog`. Whether shipping is stale is the reader's: it knows the time.

use serde_json::Value;

use crate::d1::Statement;

/// The `site_latest` table and the indexes its refresh walks (the dashboard creates the same indexes,
/// `IF NOT EXISTS`, in dashboard/src/queries.mjs: a unit test keeps the texts equal).
pub const SCHEMA: [&str; 7] = [
    "CREATE INDEX IF NOT EXISTS backup_log_dash_runs
     ON backup_log (server_id, site_name, timestamp) WHERE COALESCE(action, 'backup') = 'backup'",
    "CREATE INDEX IF NOT EXISTS backup_log_dash_stored
     ON backup_log (server_id, site_name, timestamp) WHERE COALESCE(action, 'backup') = 'backup' AND status IN ('SUCCESS', 'WARNING')",
    "CREATE INDEX IF NOT EXISTS s3_archives_dash
     ON s3_archives (server_id, site_name, created_at)",
    "CREATE INDEX IF NOT EXISTS backup_log_pruned
     ON backup_log (server_id, archive_key) WHERE action = 'prune' AND status = 'SUCCESS'",
    "CREATE INDEX IF NOT EXISTS binlog_files_newest
     ON binlog_files (server_id, first_event)",
    "CREATE INDEX IF NOT EXISTS binlog_files_by_file
     ON binlog_files (server_id, file)",
    "CREATE TABLE IF NOT EXISTS site_latest (
        server_id TEXT NOT NULL,
        site_name TEXT NOT NULL,
        last_run_id INTEGER,
        last_run_at DATETIME,
        last_status TEXT,
        last_details TEXT,
        last_storage TEXT,
        last_archive_key TEXT,
        last_duration_secs REAL,
        last_success_at DATETIME,
        archive_key TEXT,
        archive_storage TEXT,
        archive_size INTEGER,
        archive_at DATETIME,
        refreshed_at DATETIME,
        pitr_from DATETIME,
        pitr_to DATETIME,
        PRIMARY KEY (server_id, site_name)
    )",
];

/// Recompute every site of server `?1` from D1's logs: the sites found by a loose index scan
/// (one seek per site, not a scan of the server's rows), the newest run, stored run and archive
/// each by one index seek, the same rule as the dashboard's fallback query.
const REFRESH: &str = "WITH RECURSIVE
sites(site_name) AS (
  SELECT (SELECT MIN(b.site_name) FROM backup_log b
          WHERE COALESCE(b.action, 'backup') = 'backup' AND b.server_id = ?1)
  UNION ALL
  SELECT (SELECT MIN(b.site_name) FROM backup_log b
          WHERE COALESCE(b.action, 'backup') = 'backup'
            AND b.server_id = ?1 AND b.site_name > sites.site_name)
  FROM sites WHERE sites.site_name IS NOT NULL
),
latest AS (
  SELECT s.site_name,
    (SELECT b.id FROM backup_log b
     WHERE COALESCE(b.action, 'backup') = 'backup'
       AND b.server_id = ?1 AND b.site_name = s.site_name
     ORDER BY b.timestamp DESC, b.id DESC LIMIT 1) AS run_id,
    (SELECT b.id FROM backup_log b
     WHERE COALESCE(b.action, 'backup') = 'backup' AND b.status IN ('SUCCESS', 'WARNING')
       AND b.server_id = ?1 AND b.site_name = s.site_name
     ORDER BY b.timestamp DESC, b.id DESC LIMIT 1) AS stored_id,
    (SELECT a.id FROM s3_archives a
     WHERE a.server_id = ?1 AND a.site_name = s.site_name
     ORDER BY a.created_at DESC, a.id DESC LIMIT 1) AS archive_id,
    (SELECT MIN(a.created_at) FROM s3_archives a
     WHERE a.server_id = ?1 AND a.site_name = s.site_name AND a.binlog_file IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM backup_log p WHERE p.server_id = ?1
                       AND p.archive_key = a.filename AND p.action = 'prune' AND p.status = 'SUCCESS')
       AND EXISTS (SELECT 1 FROM binlog_files f WHERE f.server_id = ?1 AND f.file = a.binlog_file
                   AND NOT EXISTS (SELECT 1 FROM backup_log p WHERE p.server_id = ?1
                       AND p.archive_key = f.object_key AND p.action = 'prune' AND p.status = 'SUCCESS'))
    ) AS pitr_from
  FROM sites s WHERE s.site_name IS NOT NULL AND s.site_name <> '*'
),
shipped AS (
  SELECT COALESCE(f.last_event, f.first_event) AS pitr_to FROM binlog_files f
  WHERE f.server_id = ?1 ORDER BY f.first_event DESC, f.id DESC LIMIT 1
)
INSERT INTO site_latest (server_id, site_name, last_run_id, last_run_at, last_status,
  last_details, last_storage, last_archive_key, last_duration_secs, last_success_at,
  archive_key, archive_storage, archive_size, archive_at, refreshed_at, pitr_from, pitr_to)
SELECT ?1, l.site_name, r.id, r.timestamp, r.status, r.details, r.storage_name, r.archive_key,
  r.duration_secs, st.timestamp, a.filename, a.storage_name, a.file_size, a.created_at,
  datetime('now'), l.pitr_from, (SELECT pitr_to FROM shipped)
FROM latest l
JOIN backup_log r ON r.id = l.run_id
LEFT JOIN backup_log st ON st.id = l.stored_id
LEFT JOIN s3_archives a ON a.id = l.archive_id
WHERE true
ON CONFLICT (server_id, site_name) DO UPDATE SET
  last_run_id = excluded.last_run_id, last_run_at = excluded.last_run_at,
  last_status = excluded.last_status, last_details = excluded.last_details,
  last_storage = excluded.last_storage, last_archive_key = excluded.last_archive_key,
  last_duration_secs = excluded.last_duration_secs, last_success_at = excluded.last_success_at,
  archive_key = excluded.archive_key, archive_storage = excluded.archive_storage,
  archive_size = excluded.archive_size, archive_at = excluded.archive_at,
  refreshed_at = excluded.refreshed_at, pitr_from = excluded.pitr_from,
  pitr_to = excluded.pitr_to";

/// The columns added to `site_latest` after its `CREATE TABLE` (issue 27 item 3: the
/// point-in-time window), for a D1 database whose table lacks them.
pub const ADDED: [(&str, &str); 2] = [("pitr_from", "DATETIME"), ("pitr_to", "DATETIME")];

/// The schema statements, to run after the tables exist.
pub fn schema() -> impl Iterator<Item = Statement> {
    SCHEMA.iter().map(|sql| Statement::new(*sql, vec![]))
}

/// One refresh per server among `rows` (`server_col`: where the server id is in a row), to
/// append to the batch that inserts them.
pub fn refresh(rows: &[Vec<Value>], server_col: usize) -> Vec<Statement> {
    let servers: std::collections::BTreeSet<&str> = rows
        .iter()
        .filter_map(|r| r.get(server_col).and_then(Value::as_str))
        .collect();
    servers
        .into_iter()
        .map(|s| Statement::new(REFRESH, vec![Value::from(s)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The dashboard creates the same indexes; a name with two definitions would leave the
    /// second one unused (`IF NOT EXISTS` skips it) and the page reading whole logs.
    #[test]
    fn the_dashboard_creates_the_same_indexes() {
        let queries = words(include_str!("../../dashboard/src/queries.mjs"));
        let indexes: Vec<&&str> = SCHEMA
            .iter()
            .filter(|s| s.contains("INDEX") && s.contains("_dash"))
            .collect();
        assert_eq!(indexes.len(), 3);
        for sql in indexes {
            let sql = words(sql).replace("COALESCE(action, 'backup') = 'backup'", "${BACKUP}");
            let sql = sql.replace("status IN ('SUCCESS', 'WARNING')", "${STORED}");
            assert!(queries.contains(&sql), "not in queries.mjs: {sql}");
        }
    }

    /// The names between the parentheses after `head` in `sql`, split at commas.
    fn names_after(sql: &str, head: &str) -> Vec<String> {
        let rest = sql
            .split(head)
            .nth(1)
            .unwrap_or_else(|| panic!("no {head:?} in {sql}"));
        let inside = rest
            .split_once('(')
            .and_then(|(_, r)| r.split_once(')'))
            .map(|(inside, _)| inside)
            .unwrap_or_else(|| panic!("no column list after {head:?}"));
        inside
            .split(',')
            .filter_map(|c| c.split_whitespace().next())
            .map(str::to_string)
            .collect()
    }

    /// The refresh writes every column of the table, and updates every one but the key: a
    /// column added to the table and forgotten here would stay NULL.
    #[test]
    fn the_refresh_writes_every_column() {
        let create = SCHEMA
            .iter()
            .find(|s| s.contains("CREATE TABLE IF NOT EXISTS site_latest"))
            .unwrap_or_else(|| panic!("no site_latest in SCHEMA"));
        let columns: Vec<String> = create
            .split_once('(')
            .and_then(|(_, r)| r.split_once("PRIMARY KEY"))
            .map(|(defs, _)| defs)
            .unwrap_or_else(|| panic!("no column list in {create}"))
            .split(',')
            .filter_map(|c| c.split_whitespace().next())
            .map(str::to_string)
            .collect();
        assert_eq!(columns.len(), 17, "{columns:?}");
        let added: Vec<&str> = ADDED.iter().map(|(c, _)| *c).collect();
        assert_eq!(columns[15..], added, "the added columns come last");
        assert_eq!(names_after(REFRESH, "INSERT INTO site_latest"), columns);
        let updated: Vec<String> = REFRESH
            .split("DO UPDATE SET")
            .nth(1)
            .unwrap_or_else(|| panic!("no DO UPDATE SET in REFRESH"))
            .split(',')
            .map(|a| {
                let (col, value) = a.split_once('=').unwrap_or_else(|| panic!("{a}"));
                let col = col.trim();
                assert_eq!(value.trim(), format!("excluded.{col}"));
                col.to_string()
            })
            .collect();
        assert_eq!(updated, columns[2..]);
    }

    #[test]
    fn one_refresh_per_server_bound_not_spliced() {
        let rows: Vec<Vec<Value>> = ["web-2", "web-1", "web-2", "it's"]
            .iter()
            .map(|s| vec![Value::from("x"), Value::from(*s)])
            .collect();
        let stmts = refresh(&rows, 1);
        let servers: Vec<&Value> = stmts.iter().map(|s| &s.params[0]).collect();
        assert_eq!(servers, ["it's", "web-1", "web-2"]);
        assert!(
            stmts
                .iter()
                .all(|s| s.sql == REFRESH && s.params.len() == 1)
        );
    }
}
