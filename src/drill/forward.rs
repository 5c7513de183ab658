//! The drill's point-in-time step: when the archive records its binary log position
//! (config.json's `binlog`) and files were shipped after it, the site's events are replayed
//! onto the scratch database to the newest shipped event, as `restore --at` would replay them
//! onto the live one: every file from the archive's position to the newest, downloaded from
//! the buckets alone (sha256 and signature checked), `mariadb-binlog --database=DB
//! --rewrite-db=DB->SCRATCH` through the guard into the scratch database, as a throwaway user
//! with rights on it only ([`crate::binlog::replay`]). It runs before WordPress boots, which
//! then must answer the replayed database's count of published posts. What it proves, in the
//! drill's report: the files read, the statements applied, the time of the newest event, the
//! rows of the site's posts table and its published posts after the replay against those in
//! the archive. A file missing in between, or a replay that fails, fails the drill.

use anyhow::Context as _;
use chrono::Utc;

use super::Drill;
use super::database::ScratchDb;
use crate::binlog;
use crate::manifest::{BinlogPosition, Manifest};

/// What the replay onto the scratch database did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    pub files: Vec<String>,
    /// `BINLOG` statements applied (each a table map and its row events).
    pub applied: u64,
    /// Statements of other databases the guard dropped.
    pub dropped: u64,
    /// When the newest shipped file ended (its rotation), UTC.
    pub newest: Option<String>,
    /// The site's posts table (`{prefix}posts`): rows in the archive and after the replay.
    pub posts_table: String,
    pub posts_before: Option<u64>,
    pub posts_after: Option<u64>,
    /// Published posts (`post_type = 'post'`) in the archive and after the replay.
    pub published_before: Option<u64>,
    pub published_after: Option<u64>,
}

impl Forwarded {
    /// One line for the drill's report.
    pub fn text(&self) -> String {
        let count = |n: Option<u64>| n.map_or_else(|| "?".to_string(), |n| n.to_string());
        format!(
            "the binary log replayed onto it to the newest shipped event{} ({} file(s) from {} to {}, {} statement(s) applied{}): {} has {} rows ({} in the archive), {} published posts ({} in the archive)",
            self.newest
                .as_deref()
                .map(|t| format!(", {t},"))
                .unwrap_or_default(),
            self.files.len(),
            self.files.first().map_or("", String::as_str),
            self.files.last().map_or("", String::as_str),
            self.applied,
            if self.dropped > 0 {
                format!(", {} of other databases dropped", self.dropped)
            } else {
                String::new()
            },
            self.posts_table,
            count(self.posts_after),
            count(self.posts_before),
            count(self.published_after),
            count(self.published_before),
        )
    }
}

/// Replay the shipped binary log onto `db` (the archive `manifest`, from `start`); `Ok(None)`
/// when nothing was shipped from the archive's file on (nothing to replay yet).
pub fn forward(
    d: &Drill,
    manifest: &Manifest,
    start: &BinlogPosition,
    db: &ScratchDb,
    scratch: &std::path::Path,
) -> anyhow::Result<Option<Forwarded>> {
    let server = if manifest.server_id.is_empty() {
        d.server_id.as_str()
    } else {
        manifest.server_id.as_str()
    };
    let shipped = binlog::list(d.rt, d.storages, server)?;
    if !shipped
        .iter()
        .any(|s| binlog::at_or_after(&s.file, &start.file))
    {
        tracing::info!(
            "no binary log file shipped from {} on yet: nothing to replay onto the scratch database",
            start.file
        );
        return Ok(None);
    }
    let at = Utc::now();
    let selection = binlog::files_for(&shipped, server, &start.file, at)?;
    let plan = crate::restore::pitr::Plan {
        start: start.clone(),
        selection,
        at,
        server: server.to_string(),
        to_newest: true,
    };
    let dir = scratch.join("binlog");
    std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let files = crate::restore::pitr::fetch_files(
        d.rt,
        d.storages,
        &plan,
        &d.trust,
        d.identities.as_ref(),
        &dir,
    )?;
    let newest = match files.last() {
        Some(last) => binlog::rotated_at(last)?,
        None => None,
    };
    let admin = d
        .server
        .clone()
        .unwrap_or_else(|| crate::dbtools::client::admin(d.mysql_unix_port.clone(), d.timeouts));
    let posts_table = format!("{}posts", manifest.table_prefix);
    let published = format!(
        "SELECT COUNT(*) FROM {} WHERE post_type = 'post' AND post_status = 'publish'",
        crate::dbtools::client::ident(&posts_table)
    );
    let posts_before = db.rows()?.get(&posts_table).copied();
    let published_before = db.count(&published).ok();
    let guarded = binlog::replay::run(&binlog::replay::Replay {
        admin: &admin,
        database: &manifest.database_name,
        rewrite_to: Some(&db.name),
        files: &files,
        start_position: start.position,
        stop: None,
    })
    .context("the binary log does not replay onto the scratch database")?;
    let posts_after = db.rows()?.get(&posts_table).copied();
    let published_after = db.count(&published).ok();
    Ok(Some(Forwarded {
        files: plan.names(),
        applied: guarded.passed,
        dropped: guarded.dropped,
        newest: newest.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        posts_table,
        posts_before,
        posts_after,
        published_before,
        published_after,
    }))
}
