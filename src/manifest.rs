//! `manifest.json`, the archive's description of itself: written last into every archive by
//! `backup`, read back and checked against what was actually unpacked by `restore` and
//! `verify`. Its fields are part of the contract (docs/formats.md).

use serde::{Deserialize, Serialize};

/// Version of the archive layout described in formats.md.
pub const FORMAT_VERSION: u32 = 1;

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
}
