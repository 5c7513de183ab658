//! What every command starts from, in one place: the resolved paths and output flags
//! ([`Context`]), `.env` and `config.json` loaded with `.env`'s warnings logged, the async
//! runtime, the storages opened in priority order, and `backups.db` when it exists.
//!
//! Commands call these instead of building their own; nothing below `commands/` imports this.

use std::path::Path;

use anyhow::Context as _;

use crate::cli::{Cli, TrustFlags};
use crate::config::{Config, ConfigError, Env, Paths};
use crate::error::UsageError;
use crate::logdb::LogDb;
use crate::sign::{SecretKey, Trust};
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

impl Context {
    /// What a reading command trusts: config.json's `trusted_keys`, `--trusted-key`, and this
    /// server's own key (`<home>/signing.key`: it signed this server's archives); unsigned
    /// archives only with `--trust-unsigned`; only encrypted ones when `encryption` is set.
    pub fn trust(&self, config: &Config, args: &TrustFlags) -> anyhow::Result<Trust> {
        let mut keys = config.trusted_keys.clone();
        for k in &args.trusted_keys {
            keys.push(
                crate::sign::PublicKey::parse(k)
                    .map_err(|e| UsageError(format!("--trusted-key: {e}")))?,
            );
        }
        keys.extend(crate::sign::own_public_key(&self.paths.home));
        let mut seen = std::collections::HashSet::new();
        keys.retain(|k| seen.insert(k.to_base64()));
        Ok(Trust {
            keys,
            unsigned: args.trust_unsigned,
            require_encrypted: config.encryption.is_some(),
        })
    }

    /// The server's signing key, made on its first backup: then its public key is added to
    /// config.json's `trusted_keys` (when there is a config.json and it can be written) and
    /// printed for safekeeping.
    pub fn signing_key(&self) -> anyhow::Result<SecretKey> {
        let home = &self.paths.home;
        let (key, made) = crate::sign::load_or_create(home)?;
        if !made {
            return Ok(key);
        }
        let public = key.public();
        let b64 = public.to_base64();
        let secret = home.join(crate::sign::SECRET_KEY_FILE);
        tracing::info!(
            "made this server's signing key {} ({}, 0600, unencrypted so that a timer can sign): its public key is {b64}",
            public.id(),
            secret.display()
        );
        eprintln!(
            "This server signs its archives with the key in {} (unencrypted, 0600: a timer signs unattended).\nIts public key, to keep elsewhere (a restore on another server needs it):\n  {b64}",
            secret.display()
        );
        let config = &self.paths.config;
        if self.has_config() {
            match crate::sign::add_trusted_key(config, &public) {
                Ok(_) => eprintln!("It was added to trusted_keys in {}.", config.display()),
                Err(e) => eprintln!(
                    "WARNING: {e:#}. Add it to trusted_keys in {} by hand: [\"{b64}\"]",
                    config.display()
                ),
            }
        } else {
            eprintln!(
                "There is no config.json: this server trusts its own key; on another server give it with --trusted-key {b64} (or list it in config.json's trusted_keys)."
            );
        }
        Ok(key)
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
