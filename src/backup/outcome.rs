//! One site's result, as printed, recorded and pinged, and the wording of its details.

use std::time::Instant;

use serde::Serialize;

use super::archive::Manifest;
use crate::logdb::Status;
use crate::output;
use crate::storage::PutOutcome;
use crate::storage::failover::Stored;

/// One site's result, as printed and as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct SiteResult {
    pub site: String,
    pub status: Status,
    pub details: String,
    pub storage: Option<String>,
    pub key: Option<String>,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub files: Option<u64>,
    pub duration_secs: f64,
    /// The key of the stored archive's base when it is a differential one (`None`: a full
    /// archive, or nothing stored).
    pub base_key: Option<String>,
    /// Where the archive's dump is in the server's binary log (`binlog` on): recorded in
    /// `s3_archives` for `prune` and the point-in-time window.
    #[serde(skip)]
    pub binlog: Option<crate::manifest::BinlogPosition>,
}

/// A site that was not stored, and why.
pub fn failed(site: &str, started: Instant, details: String) -> SiteResult {
    SiteResult {
        site: site.to_string(),
        status: Status::Error,
        details,
        storage: None,
        key: None,
        size: None,
        sha256: None,
        files: None,
        duration_secs: started.elapsed().as_secs_f64(),
        base_key: None,
        binlog: None,
    }
}

/// A dry run: what would have happened, given the storages that passed the check.
pub fn dry_run(
    site: &str,
    started: Instant,
    usable: Option<&str>,
    skipped: &[String],
) -> SiteResult {
    let mut r = failed(site, started, String::new());
    match usable {
        None => {
            r.details = format!(
                "dry run: database reachable, but not stored: no storage available ({})",
                skipped.join("; ")
            )
        }
        Some(first) => {
            // What the real run would say: a warning when the first choice is skipped.
            r.status = if skipped.is_empty() {
                Status::Success
            } else {
                Status::Warning
            };
            r.details = format!("dry run: database reachable; would store on {first}");
            for note in notes(skipped, &[], &[]) {
                r.details.push_str("; ");
                r.details.push_str(&note);
            }
            r.storage = Some(first.to_string());
        }
    }
    r
}

/// A stored archive: a success when the first storage took it and nothing was skipped,
/// else a warning that says what went wrong first.
pub fn stored(
    site: &str,
    started: Instant,
    key: String,
    stored: Stored<(PutOutcome, Manifest)>,
) -> SiteResult {
    let (out, manifest) = stored.value;
    let notes = notes(&stored.failed_first, &manifest.skipped, &manifest.changed);
    let status = if stored.position == 0 && notes.is_empty() {
        Status::Success
    } else {
        Status::Warning
    };
    let mut details = format!(
        "stored {key} on {} ({}, {} files, database {})",
        stored.storage,
        output::human_bytes(out.size),
        manifest.file_count,
        output::human_bytes(manifest.database_bytes)
    );
    if !notes.is_empty() {
        details.push_str("; ");
        details.push_str(&notes.join("; "));
    }
    SiteResult {
        site: site.to_string(),
        status,
        details,
        storage: Some(stored.storage),
        key: Some(key),
        size: Some(out.size),
        sha256: Some(out.sha256),
        files: Some(manifest.file_count),
        duration_secs: started.elapsed().as_secs_f64(),
        base_key: manifest.base().map(|b| b.key.clone()),
        binlog: manifest.binlog.clone(),
    }
}

/// The storages that failed first, the files that could not be read and those that changed
/// while they were read.
fn notes(failed_first: &[String], skipped: &[String], changed: &[String]) -> Vec<String> {
    let mut notes = Vec::new();
    if !failed_first.is_empty() {
        notes.push(format!(
            "{} failed first: {}",
            if failed_first.len() == 1 {
                "a storage"
            } else {
                "storages"
            },
            failed_first.join("; ")
        ));
    }
    for (paths, what) in [
        (skipped, "unreadable file(s) skipped"),
        (
            changed,
            "file(s) changed while being read (their copy may be inconsistent)",
        ),
    ] {
        if !paths.is_empty() {
            let shown: Vec<_> = paths.iter().take(10).cloned().collect();
            notes.push(format!(
                "{} {what}: {}{}",
                paths.len(),
                shown.join(", "),
                if paths.len() > 10 { ", ..." } else { "" }
            ));
        }
    }
    notes
}

/// The sites that have a new archive (retention runs for them only).
pub fn stored_sites(results: &[SiteResult]) -> Vec<&str> {
    results
        .iter()
        .filter(|r| r.status != Status::Error)
        .map(|r| r.site.as_str())
        .collect()
}

/// What the dead man's switch is told at the end: one line per site, failures first.
pub fn ping_body(server_id: &str, results: &[SiteResult]) -> String {
    let mut lines: Vec<String> = results
        .iter()
        .filter(|r| r.status == Status::Error)
        .chain(results.iter().filter(|r| r.status != Status::Error))
        .map(|r| format!("{} {}: {}", r.status.as_str(), r.site, r.details))
        .collect();
    lines.insert(0, format!("wpbackup backup on {server_id}"));
    lines.join("\n")
}

/// The summary table's rows.
pub fn table_rows(results: &[SiteResult]) -> Vec<Vec<String>> {
    results
        .iter()
        .map(|r| {
            vec![
                r.site.clone(),
                r.status.as_str().to_string(),
                r.storage.clone().unwrap_or_else(|| "-".into()),
                r.size
                    .map(output::human_bytes)
                    .unwrap_or_else(|| "-".into()),
                format!("{:.1}s", r.duration_secs),
                r.details.clone(),
            ]
        })
        .collect()
}

/// The line under the summary table: how many sites, how many failed, the run's total time.
pub fn total_line(results: &[SiteResult], total_secs: f64) -> String {
    let failed = results.iter().filter(|r| r.status == Status::Error).count();
    format!(
        "total: {} site(s), {failed} failed, the run took {}",
        results.len(),
        output::human_duration(total_secs)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(skipped: usize) -> Manifest {
        Manifest {
            format_version: 1,
            wpbackup_version: "0".into(),
            site: "blog".into(),
            server_id: "srv".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            wordpress_version: None,
            database_name: "wp".into(),
            table_prefix: "wp_".into(),
            siteurl: None,
            file_count: 3,
            bytes: 10,
            database_sha256: String::new(),
            database_bytes: 2048,
            skipped: (0..skipped).map(|i| format!("f{i}")).collect(),
            changed: Vec::new(),
            parent_wp_config: None,
            table_rows: None,
            home: None,
            published_posts: None,
            binlog: None,
            file_samples: Vec::new(),
            kind: None,
            differential: None,
            excluded_tables: Vec::new(),
            network_sites: Default::default(),
        }
    }

    fn result(position: usize, failed_first: Vec<String>, skipped: usize) -> SiteResult {
        let out = PutOutcome {
            size: 1024,
            sha256: "ab".into(),
        };
        let s = Stored {
            value: (out, manifest(skipped)),
            storage: "secondary".into(),
            position,
            failed_first,
        };
        stored("blog", Instant::now(), "srv/blog/k.tar.zst".into(), s)
    }

    #[test]
    fn the_first_storage_taking_it_cleanly_is_a_success() {
        let r = result(0, vec![], 0);
        assert_eq!(r.status, Status::Success);
        assert_eq!(
            r.details,
            "stored srv/blog/k.tar.zst on secondary (1.0 KiB, 3 files, database 2.0 KiB)"
        );
        assert_eq!(r.storage.as_deref(), Some("secondary"));
    }

    #[test]
    fn failover_and_skipped_files_are_warnings_that_say_why() {
        let r = result(1, vec!["primary: refused".into()], 0);
        assert_eq!(r.status, Status::Warning);
        assert!(
            r.details
                .ends_with("; a storage failed first: primary: refused")
        );
        let r = result(0, vec![], 12);
        assert_eq!(r.status, Status::Warning);
        assert!(
            r.details.ends_with(
                "; 12 unreadable file(s) skipped: f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, ..."
            ),
            "{}",
            r.details
        );
        let r = result(2, vec!["a skipped: x".into(), "b: y".into()], 0);
        assert!(
            r.details
                .ends_with("; storages failed first: a skipped: x; b: y")
        );
    }
}
