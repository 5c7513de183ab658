//! The wizard's dashboard step, once D1 answered its test query: the commands that deploy the
//! fleet dashboard over that database, printed when asked, and the dashboard's address for
//! the links in the email reports.

use inquire::validator::Validation;
use inquire::{Confirm, Text};

use super::prompt::{Check, ask};
use crate::configure::dashboard;
use crate::configure::draft::Draft;

/// Offer the deploy commands, then ask for the address (Enter keeps it; empty: no links).
pub fn step(draft: &mut Draft) -> anyhow::Result<()> {
    let print = ask(Confirm::new(
        "Print the commands that deploy the fleet dashboard over this D1 database?",
    )
    .with_default(false)
    .with_help_message("a Cloudflare Worker: every server and site of the fleet in one page")
    .prompt())?;
    if print {
        match dashboard::deploy_commands(draft, dashboard::source_dir().as_deref()) {
            Ok(text) => println!("\n{text}"),
            Err(e) => println!("✗ dashboard: {e}"),
        }
    }
    let current = dashboard::url(draft).unwrap_or_default();
    let mut prompt = Text::new("Dashboard address, for links in the email reports:")
        .with_help_message("the https:// address `npx wrangler deploy` printed; empty: no links")
        .with_validator(url_check);
    if !current.is_empty() {
        prompt = prompt.with_default(&current);
    }
    let answer = ask(prompt.prompt())?;
    dashboard::set_url(draft, &answer).map_err(anyhow::Error::msg)
}

/// Empty, or an address `backup` will accept.
fn url_check(s: &str) -> Check {
    Ok(match s.trim() {
        "" => Validation::Valid,
        t => match crate::config::check_dashboard_url(t) {
            Ok(_) => Validation::Valid,
            Err(m) => Validation::Invalid(m.into()),
        },
    })
}
