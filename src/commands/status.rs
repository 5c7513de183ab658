//! `wpbackup status`: the last backup result of each site config.json backs up, read from
//! backups.db; a site backups.db has no row of (a new backups.db) is looked for on the storages,
//! as `list` does; each site's last proven restore (`drill`); then the copies restores kept
//! ([`crate::restore::copies`]). See
//! [`crate::report::overview`].

use super::{Context, Outcome};
use crate::app::{open_storages, runtime};
use crate::config::Config;
use crate::logdb::LogDb;
use crate::report::enabled_sites;
use crate::report::overview::{self, Overview};
use crate::storage::catalog;

pub fn run(ctx: &Context) -> anyhow::Result<Outcome> {
    let env = ctx.env()?;
    let config = Config::load(&ctx.paths.config, &env);
    let server_id = match &config {
        Ok(c) => c.server_id.clone(),
        Err(e) => {
            tracing::warn!("{e}: showing every site of backups.db");
            crate::config::default_server_id(&env)
        }
    };
    let db = if ctx.paths.db.exists() {
        Some(LogDb::open(&ctx.paths.db)?)
    } else {
        None
    };
    let configured = config.as_ref().ok().map(enabled_sites);
    let mut overview = overview::from_log(db.as_ref(), &server_id, configured.as_deref())?;
    if let Some(db) = &db {
        let max_age = match &config {
            Ok(c) => c.drill.max_age_days,
            Err(_) => crate::config::DrillSettings::default().max_age_days,
        };
        overview.add_drills(db, max_age, chrono::Utc::now())?;
        if let Ok(Config {
            binlog: Some(b), ..
        }) = &config
        {
            overview.add_windows(db, b.every_minutes, chrono::Utc::now())?;
        }
    }
    if let Ok(config) = &config
        && !overview.unknown_sites().is_empty()
        && !config.storage.is_empty()
    {
        look_in_storages(config, &mut overview)?;
    }
    let sites = config
        .as_ref()
        .map(|c| c.sites.as_slice())
        .unwrap_or_default();
    overview.restore_copies = crate::restore::copies::find(&ctx.paths.home, sites);
    if let Ok(c) = &config {
        overview.keep_copies_days = c.restore.keep_copies_days;
    }
    let own = crate::sign::own_public_key(&ctx.paths.home);
    let trusted = config.as_ref().map(|c| c.trusted_keys.len()).unwrap_or(0);
    if ctx.json {
        let mut doc = serde_json::to_value(&overview)?;
        doc["signing_key"] = own.as_ref().map(|k| k.to_base64()).into();
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", overview.text(&ctx.paths.db));
        match &own {
            Some(k) => println!(
                "signing key: {} (public key {}; {} key(s) in trusted_keys)",
                k.id(),
                k.to_base64(),
                trusted
            ),
            None => println!(
                "signing key: none yet (the first backup makes it); {trusted} key(s) in trusted_keys"
            ),
        }
    }
    for e in &overview.storage_errors {
        eprintln!("wpbackup: {e}");
    }
    Ok(if overview.failed() {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}

/// The newest archive of each site backups.db knows nothing of, from the storages.
fn look_in_storages(config: &Config, overview: &mut Overview) -> anyhow::Result<()> {
    let storages = match open_storages(config, None) {
        Ok(s) => s,
        Err(e) => {
            overview.fill_from_storages(&[], vec![format!("cannot open the storages: {e:#}")]);
            return Ok(());
        }
    };
    let rt = runtime()?;
    let prefix = catalog::prefix(&config.server_id, None);
    let (found, errors) = catalog::list_all(&rt, &storages, &prefix);
    let found: Vec<_> = found
        .into_iter()
        .map(|(i, l)| (storages[i].name().to_string(), l))
        .collect();
    overview.fill_from_storages(&found, errors);
    Ok(())
}
