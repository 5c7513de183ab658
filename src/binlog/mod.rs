//! Point-in-time recovery's binary log: the files `wpbackup binlog` ships (their object keys
//! `binlog/{server_id}/{FILE}_{first-event}.zst[.age]`, what a listing of the buckets finds),
//! and which of them a restore to a time needs, a file missing in between refused by name.
//!
//! Shipping is [`ship`]; the replay of the site's events onto a restored point is [`replay`],
//! through [`guard`], which drops any row event of another database; what it would apply
//! last before a time is read by [`events`].

pub mod events;
pub mod guard;
pub mod prune;
pub mod replay;
pub mod ship;
pub mod window;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use crate::storage::Storage;

/// The suffix of a stored binary log file (zstd), before `.age`.
const SUFFIX: &str = ".zst";

/// The listing prefix of a server's binary log files.
pub fn prefix(server_id: &str) -> String {
    format!("binlog/{server_id}/")
}

/// The key binary log `file` (its first event at `first`) is stored under.
pub fn object_key(server_id: &str, file: &str, first: DateTime<Utc>, encrypted: bool) -> String {
    format!(
        "{}{file}_{}{SUFFIX}{}",
        prefix(server_id),
        first.format("%Y%m%dT%H%M%SZ"),
        if encrypted {
            crate::crypt::AGE_SUFFIX
        } else {
            ""
        }
    )
}

/// A binary log file as the buckets hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    pub key: String,
    /// The server's name for it: `mariadb-bin.000042`.
    pub file: String,
    /// When its first event was written (the file's start).
    pub first_event: DateTime<Utc>,
    /// Indexes (in priority order) of the storages that hold it.
    pub storages: Vec<usize>,
}

/// `(file, first event)` of a key [`object_key`] made; `None` for anything else (a
/// signature, a stray object).
pub fn parse_key(key: &str) -> Option<(String, DateTime<Utc>)> {
    let name = key.rsplit('/').next()?;
    let name = name
        .strip_suffix(crate::crypt::AGE_SUFFIX)
        .unwrap_or(name)
        .strip_suffix(SUFFIX)?;
    let (file, time) = name.rsplit_once('_')?;
    let time = NaiveDateTime::parse_from_str(time, "%Y%m%dT%H%M%SZ").ok()?;
    number(file)?;
    Some((file.to_string(), Utc.from_utc_datetime(&time)))
}

/// `mariadb-bin.000042` -> (`mariadb-bin`, 42, 6 digits).
pub(crate) fn number(file: &str) -> Option<(&str, u64, usize)> {
    let (base, digits) = file.rsplit_once('.')?;
    if base.is_empty() || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((base, digits.parse().ok()?, digits.len()))
}

/// Every binary log file of `server_id` the `storages` hold, in the server's order (by
/// number). A storage that cannot be listed is skipped with a warning; when none can be, the
/// error says why.
pub fn list(
    rt: &tokio::runtime::Runtime,
    storages: &[Box<dyn Storage>],
    server_id: &str,
) -> anyhow::Result<Vec<Shipped>> {
    let prefix = prefix(server_id);
    let mut found: BTreeMap<(String, u64), Shipped> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut listed = 0;
    for (i, st) in storages.iter().enumerate() {
        let objects = match rt.block_on(st.list(&prefix)) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(storage = st.name(), "cannot list {prefix}: {e}");
                failures.push(format!("{}: {e}", st.name()));
                continue;
            }
        };
        listed += 1;
        for info in objects {
            let Some((file, first_event)) = parse_key(&info.key) else {
                continue;
            };
            let Some((base, n, _)) = number(&file) else {
                continue;
            };
            let entry = found
                .entry((base.to_string(), n))
                .or_insert_with(|| Shipped {
                    key: info.key.clone(),
                    file: file.clone(),
                    first_event,
                    storages: Vec::new(),
                });
            if entry.key == info.key {
                entry.storages.push(i);
            }
        }
    }
    if listed == 0 && !storages.is_empty() {
        anyhow::bail!(
            "cannot list the binary log files ({prefix}) on any storage: {}",
            failures.join("; ")
        );
    }
    Ok(found.into_values().collect())
}

/// Whether `file` is `start` or a later file of its sequence (`b.000007` after `b.000005`).
pub fn at_or_after(file: &str, start: &str) -> bool {
    match (number(file), number(start)) {
        (Some((b, n, _)), Some((sb, sn, _))) => b == sb && n >= sn,
        _ => false,
    }
}

/// Why the binary log cannot take a restore to the time asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Gap {
    /// A file of the sequence is in no bucket.
    #[error(
        "binary log file {missing} is missing from every storage ({prefix}): the events from {from} on cannot be replayed up to {at}; restore to a time before it, or put the file back"
    )]
    Missing {
        missing: String,
        prefix: String,
        from: String,
        at: String,
    },
    /// The file the restore point's position is in was never shipped.
    #[error(
        "binary log file {file}, where the restore point's position is, is in no storage ({prefix}): nothing after the restore point can be replayed; `wpbackup binlog` ships it once it is closed, or restore the point alone with --archive"
    )]
    NotShipped { file: String, prefix: String },
}

/// The files a replay to a time reads, and what could not be told from the keys alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub files: Vec<Shipped>,
    /// The file after the last one is in no storage, though a later one is: whether it began
    /// before the time is told by the last file's end (its rotation, [`rotated_at`]), once
    /// downloaded.
    pub next_missing: Option<String>,
}

/// The files a replay from `start` (the restore point's binary log file) to `at` reads, in
/// order: from `start` to the newest one begun at or before `at`, every number in between
/// present (else the first missing is named).
pub fn files_for(
    shipped: &[Shipped],
    server_id: &str,
    start: &str,
    at: DateTime<Utc>,
) -> Result<Selection, Gap> {
    let prefix = prefix(server_id);
    let Some((base, first, width)) = number(start) else {
        return Err(Gap::NotShipped {
            file: start.to_string(),
            prefix,
        });
    };
    let by_number: BTreeMap<u64, &Shipped> = shipped
        .iter()
        .filter_map(|s| {
            let (b, n, _) = number(&s.file)?;
            (b == base && n >= first).then_some((n, s))
        })
        .collect();
    if !by_number.contains_key(&first) {
        return Err(Gap::NotShipped {
            file: start.to_string(),
            prefix,
        });
    }
    let name = |n: u64| format!("{base}.{n:0width$}");
    let last = by_number
        .iter()
        .filter(|(_, s)| s.first_event <= at)
        .map(|(n, _)| *n)
        .next_back()
        .unwrap_or(first);
    let mut files: Vec<Shipped> = Vec::new();
    for n in first..=last {
        match by_number.get(&n) {
            Some(s) => files.push((*s).clone()),
            None => {
                return Err(Gap::Missing {
                    missing: name(n),
                    prefix,
                    from: files.last().map_or(start.to_string(), |s| s.file.clone()),
                    at: at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                });
            }
        }
    }
    let newest = by_number.keys().next_back().copied().unwrap_or(first);
    let next_missing =
        (newest > last && !by_number.contains_key(&(last + 1))).then(|| name(last + 1));
    Ok(Selection {
        files,
        next_missing,
    })
}

/// The gap [`Selection::next_missing`] leaves, judged by when the last file ended: its
/// rotation (`rotated`, see [`rotated_at`]) before `at`'s second means the missing file held
/// events before `at`.
pub fn judge_next(
    selection: &Selection,
    server_id: &str,
    rotated: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Result<(), Gap> {
    let Some(missing) = &selection.next_missing else {
        return Ok(());
    };
    let second = at.timestamp();
    if rotated.is_some_and(|r| r.timestamp() >= second) {
        return Ok(());
    }
    Err(Gap::Missing {
        missing: missing.clone(),
        prefix: prefix(server_id),
        from: selection
            .files
            .last()
            .map_or(String::new(), |s| s.file.clone()),
        at: at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    })
}

/// Rotate event (MariaDB's `ROTATE_EVENT`): the last event of a closed file.
const ROTATE: u8 = 4;

/// When a binary log file ended: the time of the rotate event that closes it; `None` when it
/// does not end with one (cut, or still being written when it was read).
pub fn rotated_at(path: &std::path::Path) -> anyhow::Result<Option<DateTime<Utc>>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut at = 4u64;
    let mut last: Option<(u8, u32)> = None;
    let mut header = [0u8; 19];
    while at + 19 <= len {
        f.seek(SeekFrom::Start(at))?;
        f.read_exact(&mut header)?;
        let size = u32::from_le_bytes([header[9], header[10], header[11], header[12]]);
        if size < 19 {
            return Ok(None);
        }
        let when = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        last = Some((header[4], when));
        at += u64::from(size);
    }
    Ok(match last {
        Some((ROTATE, when)) if at == len && when > 0 => {
            Utc.timestamp_opt(i64::from(when), 0).single()
        }
        _ => None,
    })
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
            key: object_key("web-01", file, first_event, false),
            file: file.into(),
            first_event,
            storages: vec![0],
        }
    }

    #[test]
    fn keys_round_trip() {
        let t = at("2026-12-05 10:11:12");
        let k = object_key("web-01", "mariadb-bin.000042", t, true);
        assert_eq!(
            k,
            "binlog/web-01/mariadb-bin.000042_20261205T101112Z.zst.age"
        );
        assert_eq!(parse_key(&k), Some(("mariadb-bin.000042".into(), t)));
        assert_eq!(parse_key(&format!("{k}.minisig")), None);
        assert_eq!(parse_key("binlog/web-01/x_20261205T101112Z.zst"), None);
    }

    #[test]
    fn the_files_from_the_point_to_the_time_and_no_gap() {
        let all = vec![
            shipped("b.000003", "2026-12-05 10:00:00"),
            shipped("b.000004", "2026-12-05 11:00:00"),
            shipped("b.000005", "2026-12-05 12:00:00"),
            shipped("b.000007", "2026-12-05 14:00:00"),
        ];
        let names = |v: &Selection| v.files.iter().map(|s| s.file.clone()).collect::<Vec<_>>();
        let got = files_for(&all, "web-01", "b.000003", at("2026-12-05 11:30:00")).unwrap();
        assert_eq!(names(&got), ["b.000003", "b.000004"]);
        assert_eq!(got.next_missing, None);
        // Past the gap: b.000006 is named.
        let e = files_for(&all, "web-01", "b.000003", at("2026-12-05 14:30:00")).unwrap_err();
        assert!(e.to_string().contains("b.000006"), "{e}");
        // In b.000005, which b.000006 followed: whether before the time, b.000005's end says.
        let t = at("2026-12-05 12:30:00");
        let got = files_for(&all, "web-01", "b.000003", t).unwrap();
        assert_eq!(names(&got), ["b.000003", "b.000004", "b.000005"]);
        assert_eq!(got.next_missing.as_deref(), Some("b.000006"));
        let e = judge_next(&got, "web-01", Some(at("2026-12-05 12:29:59")), t).unwrap_err();
        assert!(e.to_string().contains("b.000006"), "{e}");
        assert!(judge_next(&got, "web-01", None, t).is_err());
        judge_next(&got, "web-01", Some(t), t).unwrap();
        // The newest file: read to its end.
        let got = files_for(&all[..3], "web-01", "b.000004", at("2026-12-06")).unwrap();
        assert_eq!(names(&got), ["b.000004", "b.000005"]);
        assert_eq!(got.next_missing, None);
        // The point's own file never shipped.
        assert!(matches!(
            files_for(&all, "web-01", "b.000002", at("2026-12-06")),
            Err(Gap::NotShipped { .. })
        ));
    }
}
