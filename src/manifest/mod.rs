//! `manifest.json`, the archive's description of itself: written last into every archive by
//! `backup`, read back and checked against what was actually unpacked by `restore` and
//! `verify`. Its fields are part of the contract (docs/formats.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod paths;

/// Version of the archive layout described in formats.md: the newest this wpbackup reads.
/// A differential archive whose path lists are members of their own (`paths.nul`) has 2; a
/// full archive keeps 1 (its layout did not change, and an older wpbackup still reads it).
pub const FORMAT_VERSION: u32 = 2;

/// The format version of a full archive.
pub const FULL_FORMAT_VERSION: u32 = 1;

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
    /// `full` or `differential`; absent in archives made before differentials (all full).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// A differential archive: what it holds the changes since, and the whole site it
    /// describes with that chain. Absent in a full archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differential: Option<Differential>,
    /// The site's `exclude_tables` the database had: `database.sql` creates them but holds
    /// none of their rows, so a restore brings them back empty. Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_tables: Vec<String>,
    /// A multisite network's other sites, by table prefix (`wp_2_`): each one's `home` and
    /// published posts in `database.sql`, as [`Manifest::home`] and
    /// [`Manifest::published_posts`] are the main site's. Absent for a single site and in
    /// archives made before they were recorded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub network_sites: BTreeMap<String, SiteFacts>,
    /// Where `database.sql`'s snapshot is in the server's binary log (config.json's `binlog`
    /// set): a point-in-time restore replays from here. Absent otherwise, and in older archives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog: Option<BinlogPosition>,
}

/// One site's facts in `database.sql`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SiteFacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    pub published_posts: u64,
}

/// A position in the server's binary log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogPosition {
    /// The binary log file (`mariadb-bin.000042`).
    pub file: String,
    /// The byte offset in it of the first event after the snapshot.
    pub position: u64,
}

impl Manifest {
    /// The archive's base, when it is a differential one.
    pub fn base(&self) -> Option<&Base> {
        self.differential.as_ref().map(|d| &d.base)
    }
}

/// A full archive holds the whole site; a differential one the complete dump and the files
/// that are new or changed since its base.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Full,
    Differential,
}

/// `manifest.json` `differential` (formats.md "Differential archives").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Differential {
    /// 1: changes since a full archive; 2: changes since a level-1 differential.
    pub level: u8,
    pub base: Base,
    /// Archives of format 1 only: every path under `files/` the site had at backup time. Since
    /// format 2 they are the member [`PATH_LIST`], described by `paths_nul`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Archives of format 1 only: the paths of the chain's earlier archives the site no longer
    /// had. Since format 2 they are only in [`DELETED_LIST`], described by `deleted_nul`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<String>,
    /// [`PATH_LIST`]: every path under `files/` (directories, files, symlinks) the site had at
    /// backup time, in the walk's order: a path of the chain's earlier archives that is not
    /// there was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths_nul: Option<ListMember>,
    /// [`DELETED_LIST`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_nul: Option<ListMember>,
    /// Files and symlinks, and bytes of regular files, of the whole site at backup time (what
    /// `file_count` and `bytes` would be in a full archive).
    pub site_file_count: u64,
    pub site_bytes: u64,
}

/// The archive a differential one builds on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Base {
    pub key: String,
    pub sha256: String,
    /// Its size as stored (bytes).
    pub size: u64,
    pub created_at: String,
}

/// The member of a differential archive listing the deleted paths (`files/...`, each ended by
/// a NUL byte) for `xargs -0 rm -rf --`.
pub const DELETED_LIST: &str = "deleted.nul";

/// The member of a differential archive listing every path of the site (`files/...`, each
/// ended by a NUL byte, in the walk's order).
pub const PATH_LIST: &str = "paths.nul";

/// A NUL-separated member as the manifest describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ListMember {
    /// Paths listed.
    pub count: u64,
    pub bytes: u64,
    pub sha256: String,
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
