//! `manifest.json`, the archive's description of itself: written last into every archive by
//! `backup`, read back and checked against what was actually unpacked by `restore` and
//! `verify`. Its fields are part of the contract (docs/formats.md).

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
}

/// An archive member besides `files/` and `database.sql`, as the manifest describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Member {
    pub sha256: String,
    pub bytes: u64,
}
