//! What a report is built from: the backup runs, archive sizes and restore drills of one
//! server (from backups.db) or of the fleet (from D1), and the sites expected to have backed
//! up.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::uploads::{Upload, kind_of};
use crate::binlog::window::{self, Window};
use crate::config::Config;
use crate::d1::{D1Client, D1Settings, Limits, Statement};
use crate::logdb::{DrillRow, Drills, LogDb, sql_time};

/// One backup run of one site, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub server_id: String,
    pub site_name: String,
    /// UTC, `YYYY-MM-DD HH:MM:SS`.
    pub timestamp: String,
    pub status: String,
    pub details: String,
    pub storage_name: Option<String>,
    pub archive_key: Option<String>,
    /// How long the run took.
    pub duration_secs: Option<f64>,
}

impl Run {
    pub(super) fn stored(&self) -> bool {
        self.status == "SUCCESS" || self.status == "WARNING"
    }
}

/// What a report is built from.
#[derive(Debug, Default)]
pub struct Data {
    /// Backup runs since the lookback start, oldest first.
    pub runs: Vec<Run>,
    /// Archive sizes: (server_id, filename, storage_name) -> bytes.
    pub sizes: HashMap<(String, String, String), u64>,
    /// The archives stored since the lookback start (`s3_archives`), oldest first.
    pub uploads: Vec<Upload>,
    /// Sites that should have backed up: (server_id, site_name).
    pub expected: Vec<(String, String)>,
    /// When the log began (its oldest row; the report's time for a missing or empty
    /// backups.db); `None` for D1, which is taken to cover the period.
    pub log_began: Option<String>,
    /// Each site's drills: (server_id, site_name) -> the newest and the newest passed.
    pub drills: HashMap<(String, String), Drills>,
    /// `drill.max_age_days` (`None`: the default).
    pub drill_max_age_days: Option<u32>,
    /// Each site's point-in-time window (`binlog` on): (server_id, site_name) -> window.
    pub pitr: HashMap<(String, String), Window>,
}

/// One server's data from `backups.db`. `expected`: config.json's enabled sites.
pub fn local_data(
    db: &LogDb,
    server_id: &str,
    expected: &[String],
    from: DateTime<Utc>,
) -> anyhow::Result<Data> {
    let conn = db.conn();
    let mut stmt = conn.prepare(
        "SELECT server_id, site_name, timestamp, status, details, storage_name, archive_key,
                duration_secs
         FROM backup_log
         WHERE (server_id = ?1 OR site_name = '*') AND timestamp >= ?2
           AND COALESCE(action, 'backup') = 'backup'
         ORDER BY timestamp, id",
    )?;
    // A run-level error ("*") is recorded under SERVER_ID or the host name (the config that
    // names the server could not be read): in this server's backups.db it is this server's.
    let runs = stmt
        .query_map(rusqlite::params![server_id, sql_time(from)], |r| {
            Ok(Run {
                server_id: server_id.to_string(),
                site_name: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                timestamp: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                status: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                details: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                storage_name: r.get(5)?,
                archive_key: r.get(6)?,
                duration_secs: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = conn.prepare(
        "SELECT server_id, filename, storage_name, file_size, created_at, kind FROM s3_archives
         WHERE server_id = ?1 AND created_at >= ?2 ORDER BY created_at, id",
    )?;
    let uploads = stmt
        .query_map(rusqlite::params![server_id, sql_time(from)], |r| {
            let filename = r.get::<_, Option<String>>(1)?.unwrap_or_default();
            Ok(Upload {
                server_id: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                kind: kind_of(r.get::<_, Option<String>>(5)?.as_deref(), &filename),
                filename,
                storage_name: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                file_size: r.get::<_, Option<i64>>(3)?.unwrap_or(0).max(0) as u64,
                created_at: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Data {
        runs,
        sizes: sizes_of(&uploads),
        uploads,
        expected: expected
            .iter()
            .map(|s| (server_id.to_string(), s.clone()))
            .collect(),
        log_began: Some(db.began()?.unwrap_or_else(|| sql_time(Utc::now()))),
        drills: db
            .drills(server_id)?
            .into_iter()
            .map(|(site, d)| ((server_id.to_string(), site), d))
            .collect(),
        drill_max_age_days: None,
        pitr: HashMap::new(),
    })
}

/// Every server's data from D1.
pub async fn fleet_data(client: &D1Client, from: DateTime<Utc>) -> anyhow::Result<Data> {
    let from = Value::String(sql_time(from));
    let runs = client
        .query(Statement::new(
            "SELECT server_id, site_name, timestamp, status, details, storage_name, archive_key,
                    duration_secs
             FROM backup_log
             WHERE timestamp >= ?1 AND COALESCE(action, 'backup') = 'backup'
             ORDER BY timestamp, id",
            vec![from.clone()],
        ))
        .await?;
    let text = |row: &serde_json::Map<String, Value>, k: &str| -> Option<String> {
        match row.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    };
    let runs: Vec<Run> = runs
        .results
        .iter()
        .map(|r| Run {
            server_id: text(r, "server_id").unwrap_or_default(),
            site_name: text(r, "site_name").unwrap_or_default(),
            timestamp: text(r, "timestamp").unwrap_or_default(),
            status: text(r, "status").unwrap_or_default(),
            details: text(r, "details").unwrap_or_default(),
            storage_name: text(r, "storage_name"),
            archive_key: text(r, "archive_key"),
            duration_secs: r.get("duration_secs").and_then(Value::as_f64),
        })
        .collect();
    // The kind is read from the key: D1's s3_archives lacks the column until a server on a
    // wpbackup with differential archives pushes.
    let archives = client
        .query(Statement::new(
            "SELECT server_id, filename, storage_name, file_size, created_at FROM s3_archives
             WHERE created_at >= ?1 ORDER BY created_at, id",
            vec![from.clone()],
        ))
        .await?;
    let uploads: Vec<Upload> = archives
        .results
        .iter()
        .map(|r| {
            let filename = text(r, "filename").unwrap_or_default();
            Upload {
                server_id: text(r, "server_id").unwrap_or_default(),
                kind: kind_of(None, &filename),
                filename,
                storage_name: text(r, "storage_name").unwrap_or_default(),
                file_size: r.get("file_size").and_then(Value::as_u64).unwrap_or(0),
                created_at: text(r, "created_at").unwrap_or_default(),
            }
        })
        .collect();
    let mut expected: Vec<(String, String)> = runs
        .iter()
        .filter(|r| r.site_name != "*")
        .map(|r| (r.server_id.clone(), r.site_name.clone()))
        .collect();
    expected.sort();
    expected.dedup();
    Ok(Data {
        runs,
        sizes: sizes_of(&uploads),
        uploads,
        expected,
        log_began: None,
        drills: fleet_drills(client, from).await,
        drill_max_age_days: None,
        pitr: HashMap::new(),
    })
}

/// Archive sizes by (server_id, filename, storage_name).
pub(super) fn sizes_of(uploads: &[Upload]) -> HashMap<(String, String, String), u64> {
    uploads
        .iter()
        .map(|u| {
            (
                (
                    u.server_id.clone(),
                    u.filename.clone(),
                    u.storage_name.clone(),
                ),
                u.file_size,
            )
        })
        .collect()
}

/// Every server's drills from D1 (none when no server has pushed one yet: the table is
/// created by the first push that has drill rows to send).
async fn fleet_drills(client: &D1Client, from: Value) -> HashMap<(String, String), Drills> {
    let rows = match client
        .query(Statement::new(
            "SELECT server_id, site_name, timestamp, archive_key, result, failed, recovery_secs
             FROM drill_log WHERE timestamp >= ?1 ORDER BY timestamp, id",
            vec![from],
        ))
        .await
    {
        Ok(r) => r.results,
        Err(e) => {
            tracing::debug!("no drills read from D1: {e}");
            return HashMap::new();
        }
    };
    let text = |r: &serde_json::Map<String, Value>, k: &str| {
        r.get(k).and_then(Value::as_str).map(str::to_string)
    };
    let mut out: HashMap<(String, String), Drills> = HashMap::new();
    for r in &rows {
        let row = DrillRow {
            timestamp: text(r, "timestamp").unwrap_or_default(),
            site_name: text(r, "site_name").unwrap_or_default(),
            archive_key: text(r, "archive_key"),
            result: text(r, "result").unwrap_or_default(),
            failed: text(r, "failed"),
            recovery_secs: r.get("recovery_secs").and_then(Value::as_f64),
        };
        let d = out
            .entry((
                text(r, "server_id").unwrap_or_default(),
                row.site_name.clone(),
            ))
            .or_default();
        if row.passed() {
            d.last_passed = Some(row.clone());
        }
        d.last = Some(row);
    }
    out
}

/// The sites a report expects a backup of: config.json's enabled ones.
pub fn enabled_sites(config: &Config) -> Vec<String> {
    config
        .sites
        .iter()
        .filter(|s| s.enabled)
        .map(|s| s.name.clone())
        .collect()
}

/// This server's data from the backups.db at `db_path`; no backups.db yet means no runs and a
/// log that begins now (no site is then flagged stale: the report says the log is new).
pub fn server_data(db_path: &Path, config: &Config, from: DateTime<Utc>) -> anyhow::Result<Data> {
    let expected = enabled_sites(config);
    if !db_path.exists() {
        return Ok(Data {
            expected: expected
                .into_iter()
                .map(|s| (config.server_id.clone(), s))
                .collect(),
            log_began: Some(sql_time(Utc::now())),
            ..Data::default()
        });
    }
    let db = LogDb::open(db_path)?;
    let mut data = local_data(&db, &config.server_id, &expected, from)?;
    data.drill_max_age_days = Some(config.drill.max_age_days);
    add_windows(&mut data, &db, config, Utc::now())?;
    Ok(data)
}

/// Each expected site's point-in-time window from `db`, when config.json's `binlog` is set.
pub fn add_windows(
    data: &mut Data,
    db: &LogDb,
    config: &Config,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let Some(binlog) = &config.binlog else {
        return Ok(());
    };
    for (server, site) in &data.expected {
        let w = window::from_log(db, server, site, binlog.every_minutes, now)?;
        data.pitr.insert((server.clone(), site.clone()), w);
    }
    Ok(())
}

/// Every server's data from the D1 database of `settings`.
pub async fn fleet_data_from(settings: &D1Settings, from: DateTime<Utc>) -> anyhow::Result<Data> {
    let client = D1Client::new(settings, Limits::command())?;
    fleet_data(&client, from)
        .await
        .context("cannot read the fleet's log from D1")
}
