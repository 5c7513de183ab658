//! `wpbackup status`'s answer: the last result of each site config.json backs up (with how
//! long it took and its archive's size), from backups.db, or, for a site backups.db has no row
//! of (a new log after the worst day), the newest archive the storages hold; the run-level
//! error while it is the newest thing recorded; the sites backups.db knows that are no longer
//! configured, named once; the copies restores kept of what they replaced; and each site's
//! last proven restore (`drill`), flagged when it failed or is older than
//! `drill.max_age_days`; with `binlog` on, each site's point-in-time window, stale shipping
//! flagged (`binlog::window`).

use serde::Serialize;

use chrono::{DateTime, Utc};

use super::drills::{self, DrillView};
use crate::binlog::window::{self, Window};
use crate::logdb::{LogDb, LogRow};
use crate::output;
use crate::restore::copies::{self, RestoreCopy};
use crate::storage::catalog::Listed;

/// Where a site's status comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Its last row in backups.db.
    Log,
    /// Not in backups.db: the newest archive on the storages.
    Storage,
    /// Neither (or the storages were not read).
    None,
}

/// One configured site's last result.
#[derive(Debug, Clone, Serialize)]
pub struct SiteStatus {
    pub site_name: String,
    /// `SUCCESS`, `WARNING`, `ERROR` (backups.db); `STORED` (an archive on a storage); `-`.
    pub status: String,
    /// UTC, `YYYY-MM-DD HH:MM:SS`; empty when nothing is known.
    pub timestamp: String,
    pub details: String,
    pub storage_name: Option<String>,
    pub archive_key: Option<String>,
    /// How long the last backup took (`None`: not recorded, or found on a storage).
    pub duration_secs: Option<f64>,
    /// Bytes of its archive (`None`: nothing was stored, or backups.db does not know).
    pub size: Option<u64>,
    pub source: Source,
    /// Its restore drills: the last proven restore, a failed or stale drill.
    pub drill: DrillView,
    /// Its point-in-time window (config.json's `binlog` set), stale shipping flagged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pitr: Option<Window>,
}

impl SiteStatus {
    /// The site's last row, with the size `s3_archives` records for its archive.
    fn from_row(r: LogRow, db: &LogDb) -> SiteStatus {
        let size = match (&r.archive_key, &r.storage_name) {
            (Some(key), Some(storage)) => db.archive_size(key, storage).ok().flatten(),
            _ => None,
        };
        SiteStatus {
            site_name: r.site_name,
            status: r.status,
            timestamp: r.timestamp,
            details: r.details,
            storage_name: r.storage_name,
            archive_key: r.archive_key,
            duration_secs: r.duration_secs,
            size,
            source: Source::Log,
            drill: DrillView::default(),
            pitr: None,
        }
    }

    fn unknown(site: &str) -> SiteStatus {
        SiteStatus {
            site_name: site.to_string(),
            status: "-".into(),
            timestamp: String::new(),
            details:
                "no backup recorded in backups.db; `wpbackup list` shows what the storages hold"
                    .into(),
            storage_name: None,
            archive_key: None,
            duration_secs: None,
            size: None,
            source: Source::None,
            drill: DrillView::default(),
            pitr: None,
        }
    }
}

/// What `status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub server_id: String,
    pub sites: Vec<SiteStatus>,
    /// The newest run stopped before any site, and nothing ran since.
    pub run_error: Option<LogRow>,
    /// Sites with rows in backups.db that config.json no longer backs up (not shown as sites).
    pub not_configured: Vec<String>,
    /// backups.db does not exist or holds no row.
    pub log_new: bool,
    /// Storages that could not be read while looking for archives.
    pub storage_errors: Vec<String>,
    /// What restores kept of what they replaced (saved databases, previous files).
    pub restore_copies: Vec<RestoreCopy>,
    /// `restore.keep_copies_days`: `prune` removes the copies older than this.
    pub keep_copies_days: u32,
}

/// The overview from backups.db (`None`: there is none). `configured`: config.json's enabled
/// sites, or `None` when config.json cannot be read (every site of the log is then shown).
pub fn from_log(
    db: Option<&LogDb>,
    server_id: &str,
    configured: Option<&[String]>,
) -> anyhow::Result<Overview> {
    let (mut sites, mut not_configured) = (Vec::new(), Vec::new());
    let (run_error, log_new) = match db {
        Some(db) => {
            for row in db.last_per_site(server_id)? {
                match configured {
                    Some(names) if !names.contains(&row.site_name) => {
                        not_configured.push(row.site_name)
                    }
                    _ => sites.push(SiteStatus::from_row(row, db)),
                }
            }
            (db.current_run_error(server_id)?, db.began()?.is_none())
        }
        None => (None, true),
    };
    for name in configured.unwrap_or_default() {
        if !sites.iter().any(|s| &s.site_name == name) {
            sites.push(SiteStatus::unknown(name));
        }
    }
    sites.sort_by(|a, b| a.site_name.cmp(&b.site_name));
    Ok(Overview {
        server_id: server_id.to_string(),
        sites,
        run_error,
        not_configured,
        log_new,
        storage_errors: Vec::new(),
        restore_copies: Vec::new(),
        keep_copies_days: crate::config::RestoreSettings::default().keep_copies_days,
    })
}

impl Overview {
    /// The sites backups.db says nothing of: worth looking for on the storages.
    pub fn unknown_sites(&self) -> Vec<String> {
        self.sites
            .iter()
            .filter(|s| s.source == Source::None)
            .map(|s| s.site_name.clone())
            .collect()
    }

    /// Fill the unknown sites from a listing of this server's archives (newest first, with the
    /// name of the storage of each), `errors` naming the storages that could not be listed.
    pub fn fill_from_storages(&mut self, found: &[(String, Listed)], errors: Vec<String>) {
        for s in self.sites.iter_mut().filter(|s| s.source == Source::None) {
            let newest = found
                .iter()
                .find(|(_, l)| l.name.site == s.site_name && l.name.server_id == self.server_id);
            match newest {
                Some((storage, l)) => {
                    s.status = "STORED".into();
                    s.timestamp = l.name.created_at.format("%Y-%m-%d %H:%M:%S").to_string();
                    s.details = "not in backups.db: the newest archive on the storages".into();
                    s.storage_name = Some(storage.clone());
                    s.archive_key = Some(l.info.key.clone());
                    s.size = Some(l.info.size);
                    s.source = Source::Storage;
                }
                None if errors.is_empty() => {
                    s.details = "no backup recorded and no archive on the storages".into();
                }
                None => {}
            }
        }
        self.storage_errors = errors;
    }

    /// Each site's drills from `db`, judged at `now` against `max_age_days`.
    pub fn add_drills(
        &mut self,
        db: &LogDb,
        max_age_days: u32,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let all = db.drills(&self.server_id)?;
        let in_use = !all.is_empty();
        for s in &mut self.sites {
            s.drill = drills::view(all.get(&s.site_name), in_use, max_age_days, now);
        }
        Ok(())
    }

    /// Each site's point-in-time window from `db` (config.json's `binlog` is set).
    pub fn add_windows(
        &mut self,
        db: &LogDb,
        every_minutes: u32,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        for s in &mut self.sites {
            s.pitr = Some(window::from_log(
                db,
                &self.server_id,
                &s.site_name,
                every_minutes,
                now,
            )?);
        }
        Ok(())
    }

    /// A configured site's last backup failed, or the last run did.
    pub fn failed(&self) -> bool {
        self.run_error.is_some() || self.sites.iter().any(|s| s.status == "ERROR")
    }

    /// The table and the notes below it.
    pub fn text(&self, db_path: &std::path::Path) -> String {
        let mut out = String::new();
        if !self.sites.is_empty() {
            let table: Vec<Vec<String>> = self
                .sites
                .iter()
                .map(|s| {
                    vec![
                        s.site_name.clone(),
                        s.status.clone(),
                        if s.timestamp.is_empty() {
                            "-".into()
                        } else {
                            s.timestamp.clone()
                        },
                        s.duration_secs
                            .map(output::human_duration)
                            .unwrap_or_else(|| "-".into()),
                        s.size
                            .map(output::human_bytes)
                            .unwrap_or_else(|| "-".into()),
                        s.storage_name.clone().unwrap_or_else(|| "-".into()),
                        proven_cell(&s.drill),
                        s.details.clone(),
                    ]
                })
                .collect();
            let head = [
                "SITE",
                "STATUS",
                "TIME (UTC)",
                "DURATION",
                "SIZE",
                "STORAGE",
                "PROVEN",
                "DETAILS",
            ];
            out.push_str(&output::table(&head, &table));
        }
        for line in self.notes(db_path) {
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str(&self.copies_text(Utc::now()));
        out
    }

    /// The copies restores kept, and when `prune` removes them.
    fn copies_text(&self, now: DateTime<Utc>) -> String {
        if self.restore_copies.is_empty() {
            return String::new();
        }
        let bytes = self.restore_copies.iter().map(|c| c.bytes).sum();
        let head = ["KIND", "SITE", "MADE (UTC)", "AGE", "SIZE", "PRUNE", "PATH"];
        let rows = copies::status_rows(&self.restore_copies, self.keep_copies_days, now);
        format!(
            "\nkept by restores to undo them: {}, {}; `wpbackup prune` removes those older than {} days (restore.keep_copies_days)\n{}",
            output::plural(self.restore_copies.len(), "copy"),
            output::human_bytes(bytes),
            self.keep_copies_days,
            output::table(&head, &rows)
        )
    }

    fn notes(&self, db_path: &std::path::Path) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(r) = &self.run_error {
            lines.push(format!(
                "the last run ({} UTC) failed before any site: {}",
                r.timestamp, r.details
            ));
        }
        if self.log_new {
            lines.push(format!(
                "{} is new: no backup is recorded in it yet; `wpbackup list` shows every archive the storages hold",
                db_path.display()
            ));
        }
        if !self.not_configured.is_empty() {
            lines.push(format!(
                "not shown, no longer enabled in config.json: {}",
                self.not_configured.join(", ")
            ));
        }
        for s in &self.sites {
            if let Some(f) = &s.drill.last_failed {
                lines.push(format!(
                    "the last restore drill of {} ({} UTC) failed: {}",
                    s.site_name,
                    f.timestamp,
                    f.failed.as_deref().unwrap_or("no details")
                ));
            }
            if let Some(w) = &s.pitr {
                lines.push(format!(
                    "{}: point in time: {}",
                    s.site_name,
                    w.text(Utc::now())
                ));
                if let Some(flag) = w.stale_text() {
                    lines.push(format!("{}: {flag}", s.site_name));
                }
            }
            if s.drill.stale {
                lines.push(format!(
                    "{}: no restore proven in the last {} days (drill.max_age_days): run `wpbackup drill --site {}`",
                    s.site_name, s.drill.max_age_days, s.site_name
                ));
            }
        }
        if self.sites.is_empty() && self.run_error.is_none() && !self.log_new {
            lines.push(format!(
                "no site to show for server {} (config.json enables none)",
                self.server_id
            ));
        }
        lines
    }
}

/// The PROVEN cell: when the last drill passed and how long it took, flagged when the last
/// one failed or it is stale; `-` where drills were never run.
fn proven_cell(d: &DrillView) -> String {
    if !d.in_use {
        return "-".into();
    }
    let mut cell = d.proven_text();
    if d.failed() {
        cell = format!("DRILL FAILED (last proven: {cell})");
    } else if d.stale {
        cell.push_str(" (STALE)");
    }
    cell
}
