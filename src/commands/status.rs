//! `wpbackup status`: the last backup result of each site, read from backups.db.

use super::{Context, Outcome};
use crate::config::Env;
use crate::output;

pub fn run(ctx: &Context) -> anyhow::Result<Outcome> {
    let (env, _) = Env::load(&ctx.paths.env_file)?;
    let server_id = ctx.server_id(&env);
    let db = ctx.required_logdb()?;
    let rows = db.last_per_site(&server_id)?;
    if ctx.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "server_id": server_id, "sites": rows })
            )?
        );
    } else if rows.is_empty() {
        println!(
            "no backup recorded for server {server_id} in {}",
            ctx.paths.db.display()
        );
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.site_name.clone(),
                    r.status.clone(),
                    r.timestamp.clone(),
                    r.storage_name.clone().unwrap_or_else(|| "-".into()),
                    r.details.clone(),
                ]
            })
            .collect();
        print!(
            "{}",
            output::table(
                &["SITE", "STATUS", "TIME (UTC)", "STORAGE", "DETAILS"],
                &table
            )
        );
    }
    Ok(if rows.iter().any(|r| r.status == "ERROR") {
        Outcome::Failed
    } else {
        Outcome::Ok
    })
}
