//! The point-in-time window of a site: "recoverable to any second from FROM to TO", what
//! `list`, `status`, the report and D1's `site_latest` show. FROM is the oldest restore point
//! with a binary log position still kept (an `s3_archives` row with `binlog_file`, not deleted
//! by `prune`, whose file was shipped and not pruned); TO is the newest shipped second (the end
//! of the newest file shipped, `binlog_files.last_event`). Shipping is **stale**, flagged as a
//! stale backup is, when TO is older than 3 x `binlog.every_minutes` (or nothing was shipped
//! that long after a point with a position).

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;

use crate::logdb::LogDb;

/// Shipping is stale past this many intervals.
pub const STALE_INTERVALS: i64 = 3;

/// A site's window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Window {
    /// The oldest kept restore point with a binary log position, UTC `YYYY-MM-DD HH:MM:SS`.
    pub from: Option<String>,
    /// The newest shipped second, UTC `YYYY-MM-DD HH:MM:SS`.
    pub to: Option<String>,
    /// `binlog.every_minutes`.
    pub every_minutes: u32,
    /// TO is older than [`STALE_INTERVALS`] x `every_minutes`.
    pub stale: bool,
}

fn parse(t: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(t.trim_end_matches(" UTC"), "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|n| Utc.from_utc_datetime(&n))
}

impl Window {
    /// The window from its ends, judged at `now`.
    pub fn judge(
        from: Option<String>,
        to: Option<String>,
        every_minutes: u32,
        now: DateTime<Utc>,
    ) -> Window {
        let limit = Duration::minutes(STALE_INTERVALS * i64::from(every_minutes.max(1)));
        let newest = to.as_deref().and_then(parse);
        let stale = match newest {
            Some(t) => now - t > limit,
            None => from
                .as_deref()
                .and_then(parse)
                .is_some_and(|f| now - f > limit),
        };
        Window {
            from,
            to,
            every_minutes,
            stale,
        }
    }

    /// `recoverable to any second from 2026-11-04 03:00:00 to 2026-12-05 14:05:00 UTC (5
    /// minutes ago)`, or why not.
    pub fn text(&self, now: DateTime<Utc>) -> String {
        match (&self.from, &self.to) {
            (Some(from), Some(to)) => format!(
                "recoverable to any second from {from} to {to} UTC ({})",
                ago(to, now)
            ),
            (None, _) => {
                "no restore point with a binary log position yet (the next backup records one)"
                    .into()
            }
            (Some(from), None) => format!(
                "restore point {from} UTC has a binary log position, but no binary log file is shipped yet (`wpbackup binlog`)"
            ),
        }
    }

    /// The flag's sentence, when shipping is stale.
    pub fn stale_text(&self) -> Option<String> {
        self.stale.then(|| {
            format!(
                "STALE SHIPPING: the newest shipped binary log second is {}, older than {} x binlog.every_minutes ({} minutes): is `wpbackup binlog` running (its timer, its storages)?",
                self.to
                    .as_deref()
                    .map_or("none".to_string(), |t| format!("{t} UTC")),
                STALE_INTERVALS,
                self.every_minutes
            )
        })
    }
}

/// `5 minutes ago`.
fn ago(t: &str, now: DateTime<Utc>) -> String {
    match parse(t) {
        Some(t) => {
            let minutes = (now - t).num_minutes().max(0);
            match minutes {
                0 => "less than a minute ago".into(),
                1 => "1 minute ago".into(),
                m if m < 120 => format!("{m} minutes ago"),
                m if m < 48 * 60 => format!("{} hours ago", m / 60),
                m => format!("{} days ago", m / (24 * 60)),
            }
        }
        None => "when unknown".into(),
    }
}

/// The window of `site` from backups.db.
pub fn from_log(
    db: &LogDb,
    server_id: &str,
    site: &str,
    every_minutes: u32,
    now: DateTime<Utc>,
) -> anyhow::Result<Window> {
    let pruned = db.pruned_keys(server_id)?;
    let shipped: HashSet<String> = db
        .binlog_keys(server_id)?
        .into_iter()
        .filter(|(_, key, _)| !pruned.contains(key))
        .map(|(file, _, _)| file)
        .collect();
    let from = db
        .points_with_position(server_id, site)?
        .into_iter()
        .find(|(_, key, file)| !pruned.contains(key) && shipped.contains(file))
        .map(|(created_at, _, _)| created_at);
    let to = db.binlog_newest(server_id)?;
    Ok(Window::judge(from, to, every_minutes, now))
}

/// The window of one site from what the buckets hold (`list`, which works on a new server):
/// `points` are its archives `(time, binary log file when backups.db knows it)`; the oldest
/// whose file is shipped (for an unknown position: begun by its time, as `prune` counts it) is
/// FROM; TO is `newest` (backups.db's newest shipped second) or else the newest shipped file's
/// first event (what the keys alone tell).
pub fn from_listing(
    points: &[(DateTime<Utc>, Option<String>)],
    shipped: &[super::Shipped],
    newest: Option<String>,
    every_minutes: u32,
    now: DateTime<Utc>,
) -> Window {
    let files: HashSet<&str> = shipped.iter().map(|s| s.file.as_str()).collect();
    let mut points: Vec<&(DateTime<Utc>, Option<String>)> = points.iter().collect();
    points.sort_by_key(|(t, _)| *t);
    let from = points
        .iter()
        .find(|(t, file)| match file {
            Some(f) => files.contains(f.as_str()),
            None => shipped.iter().any(|s| s.first_event <= *t),
        })
        .map(|(t, _)| crate::logdb::sql_time(*t));
    let to = newest.or_else(|| {
        shipped
            .iter()
            .map(|s| s.first_event)
            .max()
            .map(crate::logdb::sql_time)
    });
    Window::judge(from, to, every_minutes, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_past_three_intervals_and_said() {
        let now = parse("2026-12-05 12:00:00").unwrap();
        let w = Window::judge(
            Some("2026-12-01 03:00:00".into()),
            Some("2026-12-05 11:50:00".into()),
            5,
            now,
        );
        assert!(!w.stale);
        assert_eq!(
            w.text(now),
            "recoverable to any second from 2026-12-01 03:00:00 to 2026-12-05 11:50:00 UTC (10 minutes ago)"
        );
        let w = Window::judge(w.from, Some("2026-12-05 11:44:59".into()), 5, now);
        assert!(w.stale);
        assert!(w.stale_text().unwrap().contains("STALE SHIPPING"));
        // Nothing shipped long after a point with a position: stale too.
        assert!(Window::judge(Some("2026-12-05 03:00:00".into()), None, 5, now).stale);
        assert!(!Window::judge(None, None, 5, now).stale);
    }
}
