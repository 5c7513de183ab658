//! The entries of config.json that `configure` edits, and the names it derives from them.
//!
//! [`ConfigFile`], [`SiteEntry`] and [`StorageEntry`] hold the keys `configure` manages and
//! keep every other key exactly as it was (`compression`, `retention`, keys later versions
//! add). [`Preset`] is the storage provider a person picks, and how it fills in the endpoint;
//! [`env_base`] and [`key_vars`] name the `.env` variables that hold an entry's secrets.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// config.json as `configure` edits it: the keys it manages, and everything else kept as is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    #[serde(default)]
    pub sites: Vec<SiteEntry>,
    #[serde(default)]
    pub storage: Vec<StorageEntry>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SiteEntry {
    pub name: String,
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StorageEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub priority: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// Storage presets: the providers a person picks from, and how each fills in the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Preset {
    #[serde(rename = "idrive-e2")]
    IdriveE2,
    #[serde(rename = "aws")]
    Aws,
    #[serde(rename = "b2")]
    B2,
    #[serde(rename = "r2")]
    R2,
    #[serde(rename = "wasabi")]
    Wasabi,
    #[serde(rename = "s3")]
    S3Compatible,
    #[serde(rename = "local")]
    Local,
}

impl Preset {
    pub const ALL: [Preset; 7] = [
        Preset::IdriveE2,
        Preset::Aws,
        Preset::B2,
        Preset::R2,
        Preset::Wasabi,
        Preset::S3Compatible,
        Preset::Local,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Preset::IdriveE2 => "iDrive e2",
            Preset::Aws => "AWS S3",
            Preset::B2 => "Backblaze B2",
            Preset::R2 => "Cloudflare R2",
            Preset::Wasabi => "Wasabi",
            Preset::S3Compatible => "Other S3-compatible (MinIO, Ceph, ...)",
            Preset::Local => "Local directory (a mounted disk or share)",
        }
    }

    /// A storage name to suggest.
    pub fn default_name(self) -> &'static str {
        match self {
            Preset::IdriveE2 => "idrive",
            Preset::Aws => "aws",
            Preset::B2 => "b2",
            Preset::R2 => "r2",
            Preset::Wasabi => "wasabi",
            Preset::S3Compatible => "s3",
            Preset::Local => "local",
        }
    }

    pub fn default_region(self) -> &'static str {
        match self {
            Preset::R2 => "auto",
            Preset::B2 => "us-west-004",
            Preset::IdriveE2 => "us-west-1",
            _ => "us-east-1",
        }
    }

    /// The endpoint this preset derives from the region (or R2's account id); `None` when the
    /// person must type it (iDrive e2 and generic S3) or when there is none (AWS).
    pub fn endpoint(self, region: &str, account_id: Option<&str>) -> Option<String> {
        match self {
            Preset::B2 => Some(format!("https://s3.{region}.backblazeb2.com")),
            Preset::Wasabi => Some(format!("https://s3.{region}.wasabisys.com")),
            Preset::R2 => account_id.map(|a| format!("https://{a}.r2.cloudflarestorage.com")),
            _ => None,
        }
    }

    /// Whether the endpoint must be typed in.
    pub fn asks_endpoint(self) -> bool {
        matches!(self, Preset::IdriveE2 | Preset::S3Compatible)
    }

    /// The preset an existing entry looks like.
    pub fn detect(e: &StorageEntry) -> Preset {
        if e.kind == "local" {
            return Preset::Local;
        }
        match e.endpoint.as_deref() {
            None => Preset::Aws,
            Some(ep) if ep.contains("idrivee2") => Preset::IdriveE2,
            Some(ep) if ep.contains("backblazeb2.com") => Preset::B2,
            Some(ep) if ep.contains("r2.cloudflarestorage.com") => Preset::R2,
            Some(ep) if ep.contains("wasabisys.com") => Preset::Wasabi,
            Some(_) => Preset::S3Compatible,
        }
    }
}

/// A name as the start of an environment variable (`b2-main` becomes `B2_MAIN`).
pub fn env_base(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The `.env` variables holding a storage's keys, derived from its name.
pub fn key_vars(storage_name: &str) -> (String, String) {
    let base = env_base(storage_name);
    (
        format!("{base}_ACCESS_KEY_ID"),
        format!("{base}_SECRET_ACCESS_KEY"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_recognised_from_endpoints() {
        for p in Preset::ALL {
            let region = p.default_region();
            let e = StorageEntry {
                kind: if p == Preset::Local { "local" } else { "s3" }.into(),
                endpoint: match p {
                    Preset::IdriveE2 => Some("https://s3.us-west-1.idrivee2.com".into()),
                    Preset::S3Compatible => Some("http://127.0.0.1:9000".into()),
                    _ => p.endpoint(region, Some("acct")),
                },
                ..StorageEntry::default()
            };
            assert_eq!(Preset::detect(&e), p, "{e:?}");
        }
    }
}
