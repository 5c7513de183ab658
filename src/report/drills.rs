//! Each site's restore drills as a report and `status` show them: the last proven restore
//! ("3 days ago, 41.0s"), the last drill when it failed (with what failed), and a stale flag,
//! like a stale backup's, when the last passed drill is older than `drill.max_age_days`. A site
//! never drilled (none recorded: a new install, or a lost backups.db) is NOT DRILLED, the same
//! whether or not its server has drilled other sites: unproven, not failed.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use crate::logdb::{DrillRow, Drills};
use crate::output::{human_age, human_duration};

/// One site's drills, judged at a time.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DrillView {
    /// The newest drill that passed.
    pub last_proven: Option<DrillRow>,
    /// The newest drill, when it failed.
    pub last_failed: Option<DrillRow>,
    /// This server has run drills: its sites are judged.
    pub in_use: bool,
    /// Its last passed drill is older than `max_age_days` (never drilled is not stale).
    pub stale: bool,
    pub max_age_days: u32,
    /// When the last proven restore was, in words (`3 days ago`).
    pub proven_ago: Option<String>,
}

impl DrillView {
    /// The newest drill failed.
    pub fn failed(&self) -> bool {
        self.last_failed.is_some()
    }

    /// No drill of this site is recorded, passed or failed.
    pub fn never(&self) -> bool {
        self.last_proven.is_none() && self.last_failed.is_none()
    }

    /// `3 days ago, 41.0s`, or `never`.
    pub fn proven_text(&self) -> String {
        match (&self.last_proven, &self.proven_ago) {
            (Some(p), Some(ago)) => match p.recovery_secs {
                Some(s) => format!("{ago}, {}", human_duration(s)),
                None => ago.clone(),
            },
            _ => "never".into(),
        }
    }
}

/// Seconds from the UTC `YYYY-MM-DD HH:MM:SS` time `ts` to `now`.
fn age_secs(ts: &str, now: DateTime<Utc>) -> Option<i64> {
    let t = NaiveDateTime::parse_from_str(ts, "%Y-%m-%d %H:%M:%S").ok()?;
    Some((now - t.and_utc()).num_seconds())
}

/// Judge a site's `drills` at `now`; `in_use`: its server has run drills.
pub fn view(
    drills: Option<&Drills>,
    in_use: bool,
    max_age_days: u32,
    now: DateTime<Utc>,
) -> DrillView {
    let last_proven = drills.and_then(|d| d.last_passed.clone());
    let age = last_proven
        .as_ref()
        .and_then(|p| age_secs(&p.timestamp, now));
    let max = i64::from(max_age_days) * 86_400;
    DrillView {
        last_failed: drills.and_then(|d| d.last.clone()).filter(|l| !l.passed()),
        stale: age.is_some_and(|a| a > max),
        proven_ago: age.map(human_age),
        last_proven,
        in_use,
        max_age_days,
    }
}

/// The report's lines about a site's drills.
pub fn lines(v: &DrillView) -> Vec<String> {
    let mut out = Vec::new();
    if !v.in_use {
        out.push(
            "No restore drill recorded: `wpbackup drill` proves the archives restorable (deploy.sh installs a weekly timer).".into(),
        );
        return out;
    }
    out.push(match &v.last_proven {
        Some(p) => format!(
            "Last proven restore: {}{}.",
            v.proven_text(),
            p.archive_key
                .as_ref()
                .map(|k| format!(" ({k})"))
                .unwrap_or_default()
        ),
        None => "Last proven restore: never.".into(),
    });
    if let Some(f) = &v.last_failed {
        out.push(format!(
            "DRILL FAILED at {} UTC: {}",
            f.timestamp,
            f.failed.as_deref().unwrap_or("no details")
        ));
    }
    if v.stale {
        out.push(format!(
            "STALE DRILL: no restore proven in the last {} days (drill.max_age_days).",
            v.max_age_days
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: &str, result: &str) -> DrillRow {
        DrillRow {
            timestamp: ts.into(),
            site_name: "a".into(),
            archive_key: Some("k".into()),
            result: result.into(),
            failed: (result == "ERROR").then(|| "the dump does not load".into()),
            recovery_secs: Some(41.0),
        }
    }

    #[test]
    fn proven_failed_and_stale() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .to_utc();
        let d = Drills {
            last: Some(row("2026-11-24 12:00:00", "ERROR")),
            last_passed: Some(row("2026-11-22 11:00:00", "SUCCESS")),
        };
        let v = view(Some(&d), true, 8, now);
        assert!(v.failed() && !v.stale);
        assert_eq!(v.proven_text(), "3 days ago, 41.0s");
        let text = lines(&v).join("\n");
        assert!(
            text.contains("Last proven restore: 3 days ago, 41.0s (k)."),
            "{text}"
        );
        assert!(text.contains("DRILL FAILED at 2026-11-24 12:00:00 UTC: the dump does not load"));
        let v = view(Some(&d), true, 2, now);
        assert!(v.stale);
        assert!(lines(&v).join("\n").contains("STALE DRILL"));
        // Never drilled: unproven, neither stale nor failed, whether or not the server has
        // drilled other sites (after backups.db was lost) or none (day one).
        for in_use in [true, false] {
            let v = view(None, in_use, 8, now);
            assert!(v.never() && !v.stale && !v.failed(), "{in_use}");
        }
        let v = view(None, false, 8, now);
        assert_eq!(v.proven_text(), "never");
    }
}
