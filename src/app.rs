//! What every command starts from, in one place: the resolved paths and output flags
//! ([`Context`]), `.env` and `config.json` loaded with `.env`'s warnings logged, the async
//! runtime, the storages opened in priority order, and `backups.db` when it exists.
//!
//! Commands call these instead of building their own; nothing below `commands/` imports this.

use std::path::Path;

use anyhow::Context as _;

use crate::cli::Cli;
use crate::config::{Config, ConfigError, Env, Paths};
use crate::error::UsageError;
use crate::logdb::LogDb;
use crate::storage::{self, Storage};

/// What every command gets: where things are and how to print.
#[derive(Debug, Clone)]
pub struct Context {
    pub paths: Paths,
    pub json: bool,
    pub quiet: bool,
    /// True when `--config` was given: its absence is then an error even for `--path`.
    pub config_given: bool,
}

impl Context {
    pub fn new(cli: &Cli) -> Context {
        Context {
            paths: Paths::resolve(cli.home.clone(), cli.config.clone(), cli.env_file.clone()),
            json: cli.json,
            quiet: cli.quiet,
            config_given: cli.config.is_some(),
        }
    }

    /// `.env`, with its warnings (a file others can read, say) logged once.
    pub fn env(&self) -> anyhow::Result<Env> {
        let (env, warnings) = Env::load(&self.paths.env_file)?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        Ok(env)
    }

    /// `.env` and config.json.
    pub fn load(&self) -> anyhow::Result<(Env, Config)> {
        let env = self.env()?;
        let config = Config::load(&self.paths.config, &env)?;
        Ok((env, config))
    }

    /// Whether there is a config.json (or `--config FILE` names one): not the quick start.
    pub fn has_config(&self) -> bool {
        self.config_given || self.paths.config.exists()
    }

    /// The config a command works from. With `path` (`--path DIR`), one site at DIR: the site
    /// of config.json with that path when there is one, else a site read from DIR's
    /// wp-config.php, with config.json's settings (storages, compression...) when the file
    /// exists, else the quick start's (`<home>/archives`). Without `path`, config.json; when it
    /// is missing and `quick_start` is allowed (reading commands), the quick start's archives.
    pub fn config_for(
        &self,
        path: Option<&Path>,
        env: &Env,
        quick_start: bool,
    ) -> anyhow::Result<Config> {
        let paths = &self.paths;
        let exists = self.config_given || paths.config.exists();
        let Some(path) = path else {
            if !exists && paths.home.join("sites.json").exists() {
                return Err(ConfigError {
                    file: paths.config.display().to_string(),
                    path: "(file)".into(),
                    message: "not found, but the deprecated sites.json is there: run `wpbackup configure` to migrate it".into(),
                }
                .into());
            }
            if !exists && quick_start {
                return Ok(Config::quick_start(&paths.home, env));
            }
            return Ok(Config::load(&paths.config, env)?);
        };
        if !path.is_dir() {
            return Err(UsageError(format!("--path {}: not a directory", path.display())).into());
        }
        let mut config = Config::for_path(path, &paths.home, env);
        if !exists {
            ensure_not_inside_a_site(path)?;
        } else {
            let loaded = Config::load(&paths.config, env)?;
            let wanted = crate::config::normalize(path);
            let site = match loaded.sites.iter().find(|s| s.path == wanted) {
                Some(s) => s.clone(),
                None => {
                    ensure_not_inside_a_site(path)?;
                    config.sites.remove(0)
                }
            };
            let storage = if loaded.storage.is_empty() {
                config.storage
            } else {
                loaded.storage.clone()
            };
            config = Config {
                sites: vec![site],
                storage,
                ..loaded
            };
        }
        Ok(config)
    }

    /// The server id rows are recorded under: config.json's when it loads, else `SERVER_ID`
    /// or the host name.
    pub fn server_id(&self, env: &Env) -> String {
        match Config::load(&self.paths.config, env) {
            Ok(c) => c.server_id,
            Err(_) => crate::config::default_server_id(env),
        }
    }

    /// backups.db if it exists (reading must not create one in a home that has none).
    pub fn existing_logdb(&self) -> Option<LogDb> {
        if !self.paths.db.exists() {
            return None;
        }
        match LogDb::open(&self.paths.db) {
            Ok(db) => Some(db),
            Err(e) => {
                tracing::warn!("{e:#}");
                None
            }
        }
    }

    /// backups.db, which must exist already (commands that only read it).
    pub fn required_logdb(&self) -> anyhow::Result<LogDb> {
        if !self.paths.db.exists() {
            anyhow::bail!(
                "{} does not exist yet: no backup has run with this home directory",
                self.paths.db.display()
            );
        }
        LogDb::open(&self.paths.db)
    }
}

/// `--path DIR` names a WordPress site, not a folder inside one: `.../site/wp-content` is
/// refused with the directory to use (backing up the whole site instead would store more, and
/// under another name, than was asked for). A site of config.json with that path is taken as
/// configured.
fn ensure_not_inside_a_site(path: &Path) -> Result<(), UsageError> {
    match crate::site::root::root_above(path) {
        Some(root) => Err(UsageError(format!(
            "--path {}: this is a folder inside the WordPress site {} (the directory holding wp-settings.php), not a site: use --path {}",
            path.display(),
            root.display(),
            root.display()
        ))),
        None => Ok(()),
    }
}

/// The one async runtime of a command (storages, D1, pings, signals).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The configured storages in priority order, or only `--storage NAME`.
pub fn open_storages(config: &Config, only: Option<&str>) -> anyhow::Result<Vec<Box<dyn Storage>>> {
    let chosen: Vec<_> = config
        .storage
        .iter()
        .filter(|s| only.is_none_or(|n| n == s.name))
        .collect();
    if chosen.is_empty() {
        return Err(UsageError(match only {
            Some(n) => format!("--storage {n}: no storage of that name in config.json"),
            None => "no storage configured in config.json".into(),
        })
        .into());
    }
    chosen.into_iter().map(storage::open).collect()
}
