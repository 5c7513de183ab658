//! The wizard's Cloudflare D1 step (optional): account, database, token and API address,
//! tested with one query.

use inquire::Confirm;
use tokio::runtime::Runtime;

use super::prompt::{ask, secret, text};
use crate::configure::draft::{CLOUDFLARE_API, Draft};
use crate::configure::probe::{self, CheckError};

/// Ask whether to push the log to D1, and its settings; test them.
pub fn step(draft: &mut Draft, rt: &Runtime) -> anyhow::Result<()> {
    let had = draft.d1().is_some();
    let want = ask(
        Confirm::new("Push the backup log to Cloudflare D1 (a fleet-wide dashboard)?")
            .with_default(had)
            .prompt(),
    )?;
    if !want {
        if had {
            draft.env.set("CF_ACCOUNT_ID", "");
            draft.env.set("D1_DATABASE_ID", "");
        }
        return Ok(());
    }
    loop {
        let get = |k: &str| draft.env.get(k).unwrap_or("").to_string();
        let acct = text("Cloudflare account id:", &get("CF_ACCOUNT_ID"), "")?;
        let db = text("D1 database id:", &get("D1_DATABASE_ID"), "")?;
        let token = secret(
            "API token (D1 Edit permission):",
            draft.env.has("CF_API_TOKEN"),
        )?;
        let base = {
            let b = get("D1_API_BASE");
            text(
                "API address:",
                if b.is_empty() { CLOUDFLARE_API } else { &b },
                "keep Cloudflare's unless you test against a simulator",
            )?
        };
        draft.env.set("CF_ACCOUNT_ID", &acct);
        draft.env.set("D1_DATABASE_ID", &db);
        if let Some(t) = token {
            draft.env.set("CF_API_TOKEN", &t);
        }
        if base != CLOUDFLARE_API || draft.env.has("D1_API_BASE") {
            draft.env.set("D1_API_BASE", &base);
        }
        let Some(cfg) = draft.d1() else { continue };
        match cfg.and_then(|cfg| rt.block_on(probe::d1(&cfg))) {
            Ok(()) => {
                println!("✓ Cloudflare D1: a test query answered");
                draft.checks.insert("d1".into(), Ok("tested".into()));
                return Ok(());
            }
            Err(e) => {
                println!("✗ Cloudflare D1: {e:#}");
                draft.checks.insert("d1".into(), Err(CheckError::D1(e)));
                if !ask(Confirm::new("Change the D1 settings and test again?")
                    .with_default(true)
                    .prompt())?
                {
                    return Ok(());
                }
            }
        }
    }
}
