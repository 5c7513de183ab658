//! Where the home directory and its files are: `--home`, `--config`, `--env-file` resolved
//! into the paths of config.json, `.env`, backups.db and the lock file.

use std::path::{Path, PathBuf};

/// Default home directory, the original tool's.
pub const DEFAULT_HOME: &str = "/opt/wordpress-backup";

/// Where the home directory and its files are.
#[derive(Debug, Clone)]
pub struct Paths {
    pub home: PathBuf,
    pub config: PathBuf,
    pub env_file: PathBuf,
    pub db: PathBuf,
    pub lock: PathBuf,
}

impl Paths {
    /// `--home` (or `WPBACKUP_HOME`, which clap maps onto it), else the default; `--config`
    /// and `--env-file` override the two files.
    pub fn resolve(
        home: Option<PathBuf>,
        config: Option<PathBuf>,
        env_file: Option<PathBuf>,
    ) -> Paths {
        let home = home.unwrap_or_else(|| PathBuf::from(DEFAULT_HOME));
        Paths {
            config: config.unwrap_or_else(|| home.join("config.json")),
            env_file: env_file.unwrap_or_else(|| home.join(".env")),
            db: home.join("backups.db"),
            lock: home.join("wpbackup.lock"),
            home,
        }
    }
}

/// A directory path in one spelling: trailing slashes and `.` components dropped
/// (`/var/www/site/` and `/var/www/./site` are `/var/www/site`), so that names built from it
/// (`site.restoring-...`) land beside the directory, never inside it. `..` is kept as written.
pub fn normalize(path: &Path) -> PathBuf {
    path.components().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slashes_and_dots_go() {
        for p in [
            "/var/www/site/",
            "/var/www/site//",
            "/var/www/./site",
            "/var/www/site",
        ] {
            assert_eq!(normalize(Path::new(p)), Path::new("/var/www/site"), "{p}");
        }
        assert_eq!(normalize(Path::new("/")), Path::new("/"));
    }
}
