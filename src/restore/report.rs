//! What a restore did ([`Report`]), filled in step by step by the pipeline so that a failed
//! restore still says how far it got, and the one-line summary printed and recorded in
//! `backup_log`.

use std::path::PathBuf;

use serde::Serialize;

use crate::output;

/// What a restore did, as printed and recorded.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub site: String,
    pub key: String,
    pub storage: String,
    pub archive_bytes: u64,
    pub sha256_source: String,
    pub files_to: Option<PathBuf>,
    pub previous_files: Option<PathBuf>,
    /// What the archived `wp-config.php` symlink pointed to, when the restored one became a
    /// regular file (its rewrite is never written through the link).
    pub wp_config_unlinked: Option<PathBuf>,
    /// Where the archive's `parent/wp-config.php` went (the site's configuration, beside it).
    pub parent_wp_config: Option<PathBuf>,
    /// Where the `wp-config.php` that was there before is kept.
    pub previous_parent_wp_config: Option<PathBuf>,
    pub database: Option<String>,
    pub database_note: Option<String>,
    pub previous_database: Option<PathBuf>,
    /// Who imported `database.sql` (a user limited to the database), in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imported_as: Option<String>,
    /// The database user a clone's wp-config.php names (never its password).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_user: Option<String>,
    /// How that user came to be, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_user_note: Option<String>,
    pub url: Option<String>,
    pub replaced_values: Option<u64>,
    /// A multisite network moved with `--url`: how many of its sites (`wp_blogs` rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_sites: Option<usize>,
    /// Values holding an old address that the move left unchanged, each named with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_unchanged: Vec<String>,
    /// `--at` past the point: the binary log files replayed onto it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub binlog_files: Vec<String>,
    /// The time the database was brought to (the files are the restore point's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed_to: Option<String>,
    /// Binary log statements of other databases the replay's guard dropped.
    #[serde(skip_serializing_if = "is_zero")]
    pub binlog_dropped: u64,
    pub duration_secs: f64,
    /// The site's `after_restore` hooks failed (the restore itself is done): what failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook_failure: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Report {
    pub fn summary(&self) -> String {
        let mut parts = vec![format!(
            "restored {} ({}) from {}, sha256 verified against {}",
            self.key,
            output::human_bytes(self.archive_bytes),
            self.storage,
            self.sha256_source
        )];
        if let Some(to) = &self.files_to {
            let mut s = format!("files to {}", to.display());
            if let Some(p) = &self.previous_files {
                s.push_str(&format!(
                    " (the previous directory is kept at {})",
                    p.display()
                ));
            }
            parts.push(s);
        }
        if let Some(link) = &self.wp_config_unlinked {
            parts.push(format!(
                "wp-config.php was a symlink to {}: the restored one is a regular file with the rewritten content ({} is unchanged)",
                link.display(),
                link.display()
            ));
        }
        if let Some(to) = &self.parent_wp_config {
            let mut s = format!("the site's wp-config.php to {}", to.display());
            if let Some(p) = &self.previous_parent_wp_config {
                s.push_str(&format!(" (the previous one is kept at {})", p.display()));
            }
            parts.push(s);
        }
        if let Some(db) = &self.database {
            let mut s = format!("database {db}");
            if let Some(n) = &self.database_note {
                s.push_str(&format!(" ({n})"));
            }
            if let Some(who) = &self.imported_as {
                s.push_str(&format!(" imported as {who}"));
            }
            if let Some(p) = &self.previous_database {
                s.push_str(&format!(
                    " (its previous content is saved in {})",
                    p.display()
                ));
            }
            parts.push(s);
        }
        if let Some(to) = &self.replayed_to {
            parts.push(format!(
                "the database brought to {to} by the binary log ({}); the files are the restore point's",
                self.binlog_files.join(", ")
            ));
        }
        if let Some(user) = &self.db_user {
            let mut s = format!("the clone connects as database user {user}");
            if let Some(n) = &self.db_user_note {
                s.push_str(&format!(" ({n})"));
            }
            parts.push(s);
        }
        if let (Some(url), Some(n)) = (&self.url, self.replaced_values) {
            let mut s = format!("moved to {url} ({n} values rewritten");
            if let Some(sites) = self.network_sites {
                s.push_str(&format!(
                    "; a multisite network: its {sites} sites moved in wp_blogs and wp_site, and in wp-config.php"
                ));
            }
            if !self.left_unchanged.is_empty() {
                s.push_str(&format!(
                    "; {} left unchanged, named in the warnings above",
                    self.left_unchanged.len()
                ));
            }
            parts.push(s + ")");
        }
        if let Some(failure) = &self.hook_failure {
            parts.push(format!("but {failure}"));
        }
        format!("{}; took {:.1}s", parts.join("; "), self.duration_secs)
    }
}
