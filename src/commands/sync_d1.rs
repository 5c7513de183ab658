//! `wpbackup sync-d1`: push every `backups.db` row that D1 does not have yet (see `d1sync`).

use anyhow::Context as _;

use super::{Context, Outcome, UsageError};
use crate::config::{Config, Env};
use crate::d1::sync;
use crate::d1::{D1Client, D1Settings, Limits};
use crate::logdb::LogDb;
use crate::output;

pub fn run(ctx: &Context) -> anyhow::Result<Outcome> {
    let (env, warnings) = Env::load(&ctx.paths.env_file)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    let settings = D1Settings::from_env(&env)?.ok_or_else(|| {
        UsageError(format!(
            "D1 is not configured: set CF_ACCOUNT_ID, CF_API_TOKEN and D1_DATABASE_ID in {}",
            env.file_path().display()
        ))
    })?;
    let server_id = server_id(ctx, &env);
    if !ctx.paths.db.exists() {
        anyhow::bail!(
            "{} does not exist yet: no backup has run with this home directory",
            ctx.paths.db.display()
        );
    }
    let db = LogDb::open(&ctx.paths.db)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let client = D1Client::new(&settings, Limits::command())?;
    let tables = rt.block_on(sync::push(&db, &client, &settings.database_id, &server_id))?;
    if ctx.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "tables": tables }))?
        );
    } else if !ctx.quiet {
        let rows: Vec<Vec<String>> = tables
            .iter()
            .map(|t| {
                vec![
                    t.table.to_string(),
                    t.sent.to_string(),
                    t.inserted.to_string(),
                    (t.sent - t.inserted.min(t.sent)).to_string(),
                    t.last_id.to_string(),
                ]
            })
            .collect();
        print!(
            "{}",
            output::table(
                &[
                    "TABLE",
                    "SENT",
                    "NEW IN D1",
                    "ALREADY THERE",
                    "SYNCED UP TO ID"
                ],
                &rows
            )
        );
    }
    Ok(Outcome::Ok)
}

/// The server id rows without one are pushed under: config.json's, else `SERVER_ID` or the
/// host name.
fn server_id(ctx: &Context, env: &Env) -> String {
    match Config::load(&ctx.paths.config, env) {
        Ok(c) => c.server_id,
        Err(_) => crate::config::default_server_id(env),
    }
}
