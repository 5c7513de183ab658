//! `wpbackup sync-d1`: push every `backups.db` row that D1 does not have yet (see `d1::sync`).

use super::{Context, Outcome, UsageError};
use crate::d1::D1Settings;
use crate::d1::sync;
use crate::output;

pub fn run(ctx: &Context) -> anyhow::Result<Outcome> {
    let env = ctx.env()?;
    let settings = D1Settings::from_env(&env)?.ok_or_else(|| {
        UsageError(format!(
            "D1 is not configured: set CF_ACCOUNT_ID, CF_API_TOKEN and D1_DATABASE_ID in {}",
            env.file_path().display()
        ))
    })?;
    let server_id = ctx.server_id(&env);
    let db = ctx.required_logdb()?;
    let tables = crate::app::runtime()?.block_on(sync::push_now(&db, &settings, &server_id))?;
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
