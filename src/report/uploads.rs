//! What the backups uploaded (issue 13, differential archives): the kind of each site's last
//! archive, and per UTC night of the last [`NIGHTS`] the bytes stored (the sum of
//! `s3_archives.file_size` of the archives created that date, every storage counted) and how
//! many archives were full and differential. A night without archives shows zeros: a gap is
//! what a person should see.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::output::human_bytes;
use crate::storage::catalog::parse_key;

/// Nights shown, the newest (today, UTC) first.
pub const NIGHTS: i64 = 7;

/// One `s3_archives` row, as the report reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub server_id: String,
    pub filename: String,
    pub storage_name: String,
    pub file_size: u64,
    /// UTC, `YYYY-MM-DD HH:MM:SS` (the run's start, as in the key).
    pub created_at: String,
    /// `full` or `differential`.
    pub kind: String,
}

/// One UTC date's uploads of one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Night {
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    pub bytes: u64,
    pub full: u64,
    pub differential: u64,
}

/// An archive's kind: `s3_archives.kind` when recorded, else what its key says (a row from
/// before the column, or from a D1 that lacks it, is read from its key; an unreadable key is
/// taken as full, as every archive was before differential ones).
pub fn kind_of(column: Option<&str>, filename: &str) -> String {
    match column {
        Some(k @ ("full" | "differential")) => k.to_string(),
        _ => parse_key(filename)
            .map(|n| n.kind())
            .unwrap_or("full")
            .to_string(),
    }
}

/// The last [`NIGHTS`] UTC dates up to `now`'s, newest first, with `server`'s uploads.
pub fn nights(uploads: &[Upload], server: &str, now: DateTime<Utc>) -> Vec<Night> {
    (0..NIGHTS)
        .map(|back| {
            let date = (now - Duration::days(back)).format("%Y-%m-%d").to_string();
            let mut night = Night {
                date,
                bytes: 0,
                full: 0,
                differential: 0,
            };
            for u in uploads
                .iter()
                .filter(|u| u.server_id == server && u.created_at.starts_with(&night.date))
            {
                night.bytes += u.file_size;
                if u.kind == "differential" {
                    night.differential += 1;
                } else {
                    night.full += 1;
                }
            }
            night
        })
        .collect()
}

/// The kind of the archive `key` on `storage` of `server`.
pub fn kind_of_archive(uploads: &[Upload], server: &str, key: &str, storage: &str) -> String {
    uploads
        .iter()
        .rev()
        .find(|u| u.server_id == server && u.filename == key && u.storage_name == storage)
        .map(|u| u.kind.clone())
        .unwrap_or_else(|| kind_of(None, key))
}

/// The nights as table rows (cells) under [`HEADER`].
pub fn rows(nights: &[Night]) -> Vec<Vec<String>> {
    nights
        .iter()
        .map(|n| {
            vec![
                n.date.clone(),
                human_bytes(n.bytes),
                n.full.to_string(),
                n.differential.to_string(),
            ]
        })
        .collect()
}

/// The header of the nights table.
pub const HEADER: [&str; 4] = ["NIGHT (UTC)", "UPLOADED", "FULL", "DIFFERENTIAL"];

/// The title above the table.
pub fn title() -> String {
    format!("Uploaded per night, last {NIGHTS} (UTC dates, every storage counted):")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(server: &str, at: &str, size: u64, kind: &str) -> Upload {
        Upload {
            server_id: server.into(),
            filename: format!("{server}/a/a_{at}.tar.zst"),
            storage_name: "s".into(),
            file_size: size,
            created_at: at.into(),
            kind: kind.into(),
        }
    }

    #[test]
    fn nights_sum_bytes_and_count_kinds_per_utc_date() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let uploads = [
            upload("web-01", "2026-11-25 03:00:00", 1000, "differential"),
            upload("web-01", "2026-11-25 03:00:01", 500, "differential"),
            upload("web-01", "2026-11-24 23:59:59", 7000, "full"),
            upload("web-01", "2026-11-24 00:00:00", 30, "differential"),
            upload("web-02", "2026-11-25 03:00:00", 99, "full"),
            upload("web-01", "2026-11-18 03:00:00", 1, "full"),
        ];
        let n = nights(&uploads, "web-01", now);
        assert_eq!(n.len(), 7);
        let night = |date: &str, bytes, full, differential| Night {
            date: date.into(),
            bytes,
            full,
            differential,
        };
        assert_eq!(n[0], night("2026-11-25", 1500, 0, 2));
        assert_eq!(n[1], night("2026-11-24", 7030, 1, 1));
        assert_eq!(n[2], night("2026-11-23", 0, 0, 0));
        assert_eq!(n[6].date, "2026-11-19", "the 18th is 8 nights back");
        assert_eq!(rows(&n)[1], ["2026-11-24", "6.9 KiB", "1", "1"]);
    }

    #[test]
    fn kinds_from_the_column_else_from_the_key() {
        let diff = "w/a/a_20261125T030000Z.diff-20261124T030000Z.tar.zst";
        assert_eq!(
            kind_of(Some("differential"), "w/a/a_x.tar.zst"),
            "differential"
        );
        assert_eq!(kind_of(None, diff), "differential");
        assert_eq!(kind_of(None, "w/a/a_20261124T030000Z.tar.zst"), "full");
        assert_eq!(kind_of(Some(""), "not a key"), "full");
        let uploads = [upload("w", "2026-11-25 03:00:00", 1, "differential")];
        let key = &uploads[0].filename;
        assert_eq!(kind_of_archive(&uploads, "w", key, "s"), "differential");
        assert_eq!(kind_of_archive(&uploads, "w", diff, "s"), "differential");
    }
}
