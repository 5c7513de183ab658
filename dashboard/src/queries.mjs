// The dashboard's reads of the D1 database that `wpbackup sync-d1` fills (tables `backup_log`,
// `s3_archives` and `site_latest`, documented in docs/formats.md). Each page is one D1 call:
// the fleet page one statement, the site page a batch of two. D1 bills rows read, so every
// statement walks an index and touches a few rows per site, never the whole log:
//
// - the fleet page reads `site_latest`, one row per site, which `sync-d1` refreshes in the
//   same batch as it pushes rows (src/d1/site_latest.rs); only the sites of servers with no row
//   there (an older wpbackup) are read from the logs, as below, and all of them when the
//   table does not exist yet;
// - the (server, site) pairs are found by a "loose index scan" (a recursive query that jumps
//   from one pair to the next with MIN() on an index), not by a GROUP BY over every row;
// - each site's newest run and newest stored run are one index seek each, on partial indexes
//   that hold backup runs only (restore, verify and prune rows are left out of them).
//
// The indexes are created by the dashboard itself (once per Worker instance, IF NOT EXISTS)
// and by `sync-d1` (for its refresh of site_latest), with the same names and definitions.

/// Runs of a backup: `action` is NULL in the original tool's rows.
const BACKUP = "COALESCE(action, 'backup') = 'backup'";
/// A run that stored an archive (WARNING: stored, but a person should know something).
const STORED = "status IN ('SUCCESS', 'WARNING')";

export const INDEXES = [
  `CREATE INDEX IF NOT EXISTS backup_log_dash_runs
     ON backup_log (server_id, site_name, timestamp) WHERE ${BACKUP}`,
  `CREATE INDEX IF NOT EXISTS backup_log_dash_stored
     ON backup_log (server_id, site_name, timestamp) WHERE ${BACKUP} AND ${STORED}`,
  `CREATE INDEX IF NOT EXISTS s3_archives_dash
     ON s3_archives (server_id, site_name, created_at)`,
];

/// The (server, site) pairs with a backup run, found by a loose index scan, and each one's
/// newest run, stored run and archive (ids). `serverFilter`: a condition on `servers.id` for
/// the servers whose pairs are wanted.
function latestCtes(serverFilter) {
  return `
servers(id) AS (
  SELECT MIN(server_id) FROM backup_log WHERE ${BACKUP}
  UNION ALL
  SELECT (SELECT MIN(b.server_id) FROM backup_log b
          WHERE COALESCE(b.action, 'backup') = 'backup' AND b.server_id > servers.id)
  FROM servers WHERE servers.id IS NOT NULL
),
sites(server_id, site_name) AS (
  SELECT id, (SELECT MIN(b.site_name) FROM backup_log b
              WHERE COALESCE(b.action, 'backup') = 'backup' AND b.server_id = servers.id)
  FROM servers WHERE id IS NOT NULL ${serverFilter}
  UNION ALL
  SELECT server_id, (SELECT MIN(b.site_name) FROM backup_log b
                     WHERE COALESCE(b.action, 'backup') = 'backup'
                       AND b.server_id = sites.server_id AND b.site_name > sites.site_name)
  FROM sites WHERE site_name IS NOT NULL
),
latest AS (
  SELECT s.server_id, s.site_name,
    (SELECT b.id FROM backup_log b
     WHERE COALESCE(b.action, 'backup') = 'backup'
       AND b.server_id = s.server_id AND b.site_name = s.site_name
     ORDER BY b.timestamp DESC, b.id DESC LIMIT 1) AS last_id,
    (SELECT b.id FROM backup_log b
     WHERE COALESCE(b.action, 'backup') = 'backup' AND b.status IN ('SUCCESS', 'WARNING')
       AND b.server_id = s.server_id AND b.site_name = s.site_name
     ORDER BY b.timestamp DESC, b.id DESC LIMIT 1) AS stored_id,
    (SELECT a.id FROM s3_archives a
     WHERE a.server_id = s.server_id AND a.site_name = s.site_name
     ORDER BY a.created_at DESC, a.id DESC LIMIT 1) AS archive_id
  FROM sites s WHERE s.site_name IS NOT NULL AND s.site_name <> '*'
)`;
}

/// The fleet rows from the logs (the pairs of latestCtes).
const FROM_LOGS = `
SELECT l.server_id, l.site_name,
  r.timestamp, r.status, r.details, r.storage_name, r.archive_key, r.duration_secs,
  st.timestamp AS stored_at,
  a.filename AS archive, a.storage_name AS archive_storage, a.file_size AS archive_size,
  a.created_at AS archive_at
FROM latest l
JOIN backup_log r ON r.id = l.last_id
LEFT JOIN backup_log st ON st.id = l.stored_id
LEFT JOIN s3_archives a ON a.id = l.archive_id
WHERE r.timestamp >= ?1`;

/// Per site seen in D1: its newest backup run (within the lookback: older sites are taken as
/// retired, as `report --fleet` does), its newest stored run, and its newest archive. Read
/// from `site_latest` (one row per site, kept by `sync-d1`) for the servers that have rows
/// there, from the logs for the others (servers still on a wpbackup without it).
export const FLEET_SQL = `
WITH RECURSIVE ${latestCtes(
  "AND NOT EXISTS (SELECT 1 FROM site_latest k WHERE k.server_id = servers.id)",
)}
SELECT server_id, site_name,
  last_run_at AS timestamp, last_status AS status, last_details AS details,
  last_storage AS storage_name, last_archive_key AS archive_key,
  last_duration_secs AS duration_secs, last_success_at AS stored_at,
  archive_key AS archive, archive_storage, archive_size, archive_at
FROM site_latest WHERE last_run_at >= ?1
UNION ALL ${FROM_LOGS}
ORDER BY 1, 2`;

/// The same from the logs only: no server has pushed `site_latest` yet (no such table).
export const FLEET_FROM_LOGS_SQL = `
WITH RECURSIVE ${latestCtes("")} ${FROM_LOGS}
ORDER BY l.server_id, l.site_name`;

/// One site's newest backup runs, newest first.
export const SITE_RUNS_SQL = `
SELECT id, timestamp, status, details, storage_name, archive_key, duration_secs
FROM backup_log
WHERE ${BACKUP} AND server_id = ?1 AND site_name = ?2
ORDER BY timestamp DESC, id DESC LIMIT ?3`;

/// One site's newest archives, newest first.
export const SITE_ARCHIVES_SQL = `
SELECT filename, storage_name, s3_endpoint, s3_bucket, file_size, sha256, created_at,
       duration_secs
FROM s3_archives
WHERE server_id = ?1 AND site_name = ?2
ORDER BY created_at DESC, id DESC LIMIT ?3`;

/// Nights (runs) a site page shows.
export const SITE_RUNS = 90;

/// Why the dashboard has nothing to show yet: no `sync-d1` has reached this database.
export class NoDataYet extends Error {}

let indexed = null;

/// Create the dashboard's indexes once per Worker instance. Tables that do not exist yet mean
/// no server has pushed: that is said to the person, not thrown as a crash.
async function ensureIndexes(db) {
  if (!indexed) {
    indexed = (async () => {
      const tables = await db
        .prepare(
          "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('backup_log', 's3_archives')",
        )
        .first("n");
      if (tables !== 2) throw new NoDataYet();
      await db.batch(INDEXES.map((sql) => db.prepare(sql)));
    })();
    indexed.catch(() => {
      indexed = null;
    });
  }
  return indexed;
}

/// Rows D1 reports having read for a statement's result (0 where the runtime does not say).
function rowsRead(result) {
  return result?.meta?.rows_read ?? 0;
}

/// Every site's newest run, stored run and archive; `from` is the lookback start
/// (`YYYY-MM-DD HH:MM:SS`). Returns { rows, rowsRead }.
export async function fleet(db, from) {
  await ensureIndexes(db);
  let result;
  try {
    result = await db.prepare(FLEET_SQL).bind(from).all();
  } catch (e) {
    if (!/no such table: site_latest/.test(String(e?.message))) throw e;
    result = await db.prepare(FLEET_FROM_LOGS_SQL).bind(from).all();
  }
  return { rows: result.results, rowsRead: rowsRead(result) };
}

/// One site's runs and archives. Returns { runs, archives, rowsRead }.
export async function site(db, serverId, siteName) {
  await ensureIndexes(db);
  const [runs, archives] = await db.batch([
    db.prepare(SITE_RUNS_SQL).bind(serverId, siteName, SITE_RUNS),
    db.prepare(SITE_ARCHIVES_SQL).bind(serverId, siteName, SITE_RUNS),
  ]);
  return {
    runs: runs.results,
    archives: archives.results,
    rowsRead: rowsRead(runs) + rowsRead(archives),
  };
}
