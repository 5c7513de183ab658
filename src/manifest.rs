//! `manifest.json`, the archive's description of itself: written last into every archive by
//! `backup`, read back and checked against what was actually unpacked by `restore` and
//! `verify`. Its fields are part of the contract (docs/formats.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the archive layout described in formats.md.
pub const FORMAT_VERSION: u32 = 1;

/// Where the archive keeps the site's `wp-config.php` when WordPress loads it from the
/// directory above the site (beside `files/`, which stays the site's own tree).
pub const PARENT_WP_CONFIG: &str = "parent/wp-config.php";

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format_version: u32,
    pub wpbackup_version: String,
    pub site: String,
    pub server_id: String,
    pub created_at: String,
    pub wordpress_version: Option<String>,
    pub database_name: String,
    pub table_prefix: String,
    pub siteurl: Option<String>,
    pub file_count: u64,
    /// Bytes of the regular files under `files/`.
    pub bytes: u64,
    pub database_sha256: String,
    pub database_bytes: u64,
    /// Paths (relative to the site) left out because they could not be read.
    #[serde(default)]
    pub skipped: Vec<String>,
    /// Paths whose size or modification time changed while they were read: their copy may be
    /// cut, padded with zeros or a mix of old and new content.
    #[serde(default)]
    pub changed: Vec<String>,
    /// [`PARENT_WP_CONFIG`], when the archive holds it; absent otherwise (and in archives made
    /// before it was stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_wp_config: Option<Member>,
    /// Rows of each table in `database.sql`, counted from the dump itself as it was written;
    /// absent in archives made before they were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_rows: Option<BTreeMap<String, u64>>,
    /// The site's `home` option in `database.sql` (its `{table_prefix}options`); absent when
    /// not recorded or not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// Published posts (`post_type = 'post'`, `post_status = 'publish'`) in `database.sql`;
    /// absent when not recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_posts: Option<u64>,
    /// The sha256 of a sample of the files (chosen by the hash of their path, so the same
    /// files are sampled from run to run); absent or empty in older archives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_samples: Vec<FileSample>,
}

/// One sampled file: its path under `files/` and the sha256 and size of what was archived.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileSample {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

/// An archive member besides `files/` and `database.sql`, as the manifest describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Member {
    pub sha256: String,
    pub bytes: u64,
}
