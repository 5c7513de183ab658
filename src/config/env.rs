//! The environment the config's `_env` fields are looked up in: the process environment first,
//! then `.env`, read into a private map and never exported (so child processes do not inherit
//! its secrets), with a warning when others can read it. Also the server id's defaults.

use std::collections::HashMap;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::ConfigError;
use crate::secret::Secret;

/// Variables from the process environment and `.env`; the process environment wins.
#[derive(Clone, Default)]
pub struct Env {
    file: HashMap<String, String>,
    file_path: PathBuf,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("file_path", &self.file_path)
            .finish_non_exhaustive()
    }
}

impl Env {
    /// Read `.env` if it exists. Returns the warnings to show (a file others can read). A line
    /// that cannot be read is a [`ConfigError`] naming the line and the key, never a value.
    pub fn load(path: &Path) -> anyhow::Result<(Env, Vec<String>)> {
        let mut warnings = Vec::new();
        let mut file = HashMap::new();
        match std::fs::metadata(path) {
            Ok(meta) => {
                if meta.permissions().mode() & 0o077 != 0 {
                    warnings.push(format!(
                        "{} is readable by group or others (mode {:o}); it holds secrets: run `chmod 600 {}`",
                        path.display(),
                        meta.permissions().mode() & 0o777,
                        path.display()
                    ));
                }
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("{}: cannot read", path.display()))?;
                let pairs = super::dotenv::parse(&text, path).map_err(|e| ConfigError {
                    file: e.file.clone(),
                    path: match &e.key {
                        Some(k) => format!("line {} ({k})", e.line),
                        None => format!("line {}", e.line),
                    },
                    message: e.problem.clone(),
                })?;
                file.extend(pairs);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("{}: cannot read", path.display()));
            }
        }
        Ok((
            Env {
                file,
                file_path: path.to_path_buf(),
            },
            warnings,
        ))
    }

    /// An environment from a map instead of a file (`configure` validates a draft with it).
    pub fn from_map(file: HashMap<String, String>) -> Env {
        Env {
            file,
            file_path: PathBuf::from(".env"),
        }
    }

    /// An environment of `.env` pairs (unit tests).
    #[cfg(test)]
    pub fn from_pairs(vars: &[(&str, &str)]) -> Env {
        Env::from_map(
            vars.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| self.file.get(name).cloned())
    }

    pub fn secret(&self, name: &str) -> Option<Secret> {
        self.get(name).map(Secret::new)
    }

    pub fn file_path(&self) -> &Path {
        &self.file_path
    }
}

/// `SERVER_ID` from the environment, else the host name.
pub fn default_server_id(env: &Env) -> String {
    env.get("SERVER_ID").unwrap_or_else(hostname)
}

/// Host names that many machines have (an image's default): two servers sharing one would
/// share their archive keys, and one's `prune` would count the other's archives as its own.
pub fn is_generic_server_id(id: &str) -> bool {
    const GENERIC: &[&str] = &[
        "localhost",
        "localhost.localdomain",
        "ubuntu",
        "debian",
        "centos",
        "fedora",
        "rocky",
        "almalinux",
        "raspberrypi",
        "server",
        "vps",
        "web",
        "www",
        "host",
        "node",
        "instance",
        "default",
        "linux",
        "wordpress",
    ];
    let id = id.to_ascii_lowercase();
    GENERIC.contains(&id.as_str())
        || (id.starts_with("ip-") && id[3..].chars().all(|c| c.is_ascii_digit() || c == '-'))
}

/// The machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
