//! `prune` on the shipped binary log: the files the kept archives need stay, the older ones go.
//!
//! A kept archive needs the file its dump's position is in and every later one (a restore to a
//! time replays from there). The position is `s3_archives.binlog_file` (recorded by `backup`
//! since issue 27 item 3); for an archive backups.db does not know it of (made elsewhere, or
//! before), the file that had begun when the archive's run started (the newest whose first
//! event is at or before the time in its key) stands in, which is that file or an earlier one.
//! The oldest such file of every archive this server has on any storage (every site's, the
//! ones `prune` deletes in the same pass left out) is the first kept; files of the same name
//! numbered before it are deleted from each storage that holds them, with their signatures
//! (`KEY.minisig`). An archive older than every shipped file needs none of them. Nothing is
//! deleted when a storage's archives cannot be listed (an archive there might need them).
//! Every deletion is a `backup_log` row (action `prune`, site `*`).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Shipped;
use crate::logdb::{LogDb, LogEntry, Status};
use crate::storage::Storage;

/// What happens to one binary log file on one storage.
#[derive(Debug, Clone, Serialize)]
pub struct Pruned {
    pub file: String,
    pub key: String,
    pub storage: String,
    pub first_event: String,
    /// `keep`, `delete` (dry run), `deleted`, `failed`.
    pub action: &'static str,
    pub why: String,
}

/// An archive that stays: its key, the time in it, the binary log file its position is in
/// (when known).
#[derive(Debug, Clone)]
pub struct KeptPoint {
    pub key: String,
    pub created_at: DateTime<Utc>,
    pub binlog_file: Option<String>,
}

/// The first file kept: the earliest (by the server's numbering) that a kept point needs, and
/// the archive that needs it. `None`: no point needs any shipped file.
pub fn first_needed(points: &[KeptPoint], shipped: &[Shipped]) -> Option<(String, String)> {
    let mut first: Option<(String, u64, String, String)> = None;
    for p in points {
        let file = match &p.binlog_file {
            Some(f) => f.clone(),
            None => match shipped
                .iter()
                .filter(|s| s.first_event <= p.created_at)
                .max_by_key(|s| s.first_event)
            {
                Some(s) => s.file.clone(),
                None => continue,
            },
        };
        let Some((base, n, _)) = super::number(&file) else {
            continue;
        };
        let name = p.key.rsplit('/').next().unwrap_or(&p.key).to_string();
        match &first {
            Some((b, m, _, _)) if b == base && *m <= n => {}
            _ => first = Some((base.to_string(), n, file, name)),
        }
    }
    first.map(|(_, _, file, archive)| (file, archive))
}

/// The shipped files before `first` (same name, lower number): those no kept point needs.
pub fn unneeded<'a>(shipped: &'a [Shipped], first: &str) -> Vec<&'a Shipped> {
    let Some((base, n, _)) = super::number(first) else {
        return Vec::new();
    };
    shipped
        .iter()
        .filter(|s| super::number(&s.file).is_some_and(|(b, m, _)| b == base && m < n))
        .collect()
}

/// One pass over the shipped files of `server_id`: `points` are the archives that stay.
pub struct Run<'a> {
    pub rt: &'a tokio::runtime::Runtime,
    pub db: &'a LogDb,
    pub server_id: &'a str,
    pub dry_run: bool,
}

impl Run<'_> {
    /// Delete (or, dry, name) the files no kept point needs; the files kept are not listed
    /// one by one: the last row says from which file on they are kept, and why.
    pub fn prune(
        &self,
        storages: &[Box<dyn Storage>],
        shipped: &[Shipped],
        points: &[KeptPoint],
    ) -> Vec<Pruned> {
        let Some((first, archive)) = first_needed(points, shipped) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in unneeded(shipped, &first) {
            for &i in &s.storages {
                let st = storages[i].as_ref();
                let (action, why) = if self.dry_run {
                    ("delete", format!("before {first}, which {archive} needs"))
                } else {
                    self.delete(st, &s.key, &first, &archive)
                };
                out.push(Pruned {
                    file: s.file.clone(),
                    key: s.key.clone(),
                    storage: st.name().to_string(),
                    first_event: s
                        .first_event
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    action,
                    why,
                });
            }
        }
        let kept: HashSet<&str> = shipped
            .iter()
            .filter(|s| !out.iter().any(|p| p.key == s.key))
            .map(|s| s.file.as_str())
            .collect();
        if let Some(s) = shipped.iter().find(|s| s.file == first) {
            out.push(Pruned {
                file: s.file.clone(),
                key: s.key.clone(),
                storage: "*".into(),
                first_event: s
                    .first_event
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                action: "keep",
                why: format!(
                    "{} file(s) from here on: {archive} (the oldest kept restore point) replays from {first}",
                    kept.len()
                ),
            });
        }
        out
    }

    fn delete(
        &self,
        st: &dyn Storage,
        key: &str,
        first: &str,
        archive: &str,
    ) -> (&'static str, String) {
        let deleted = self.rt.block_on(async {
            st.delete(key).await?;
            st.delete(&crate::sign::signature_key(key)).await
        });
        let (action, status, details) = match deleted {
            Ok(()) => (
                "deleted",
                Status::Success,
                format!(
                    "deleted {key} from {}: before {first}, which {archive} (the oldest kept restore point) needs",
                    st.name()
                ),
            ),
            Err(e) => (
                "failed",
                Status::Error,
                format!("cannot delete {key} from {}: {e}", st.name()),
            ),
        };
        let logged = self.db.log(&LogEntry {
            timestamp: Utc::now(),
            status,
            details: &details,
            site_name: "*",
            server_id: self.server_id,
            action: "prune",
            storage_name: Some(st.name()),
            archive_key: Some(key),
            duration_secs: None,
        });
        if let Err(e) = logged {
            tracing::error!("cannot record the deletion in backups.db: {e:#}");
        }
        (action, details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        crate::storage::catalog::parse_time(s).unwrap()
    }

    fn shipped(file: &str, first: &str) -> Shipped {
        let first_event = at(first);
        Shipped {
            key: super::super::object_key("web-01", file, first_event, false),
            file: file.into(),
            first_event,
            storages: vec![0],
        }
    }

    fn point(time: &str, file: Option<&str>) -> KeptPoint {
        KeptPoint {
            key: format!("web-01/s/s_{time}.tar.zst"),
            created_at: at(time),
            binlog_file: file.map(str::to_string),
        }
    }

    #[test]
    fn the_oldest_kept_points_file_and_every_later_one_stay() {
        let all = vec![
            shipped("b.000001", "2026-12-01 00:00:00"),
            shipped("b.000002", "2026-12-02 00:00:00"),
            shipped("b.000003", "2026-12-03 00:00:00"),
            shipped("b.000004", "2026-12-04 00:00:00"),
        ];
        let names = |v: Vec<&Shipped>| v.iter().map(|s| s.file.clone()).collect::<Vec<_>>();
        // Recorded positions: the oldest one decides, whatever the order.
        let points = [
            point("2026-12-04 01:00:00", Some("b.000004")),
            point("2026-12-02 12:00:00", Some("b.000002")),
        ];
        let (first, archive) = first_needed(&points, &all).unwrap();
        assert_eq!(first, "b.000002");
        assert!(archive.contains("2026-12-02"), "{archive}");
        assert_eq!(names(unneeded(&all, &first)), ["b.000001"]);
        // Unknown position: the file begun by the archive's time (or an earlier one).
        let points = [point("2026-12-03 00:00:00", None)];
        assert_eq!(first_needed(&points, &all).unwrap().0, "b.000003");
        // A point older than every shipped file needs none; no point, nothing decided.
        assert_eq!(
            first_needed(&[point("2026-11-01 00:00:00", None)], &all),
            None
        );
        assert_eq!(first_needed(&[], &all), None);
        // A position in a file never shipped (later than all): every shipped one goes.
        let points = [point("2026-12-05 00:00:00", Some("b.000009"))];
        assert_eq!(
            names(unneeded(&all, &first_needed(&points, &all).unwrap().0)).len(),
            4
        );
        // Files of another name are never counted before it.
        let other = vec![shipped("x.000001", "2026-11-01 00:00:00")];
        assert!(unneeded(&other, "b.000003").is_empty());
    }
}
