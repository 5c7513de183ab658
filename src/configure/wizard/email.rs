//! The wizard's email step (optional): the SMTP server, sender and recipients, tested with a
//! test mail.

use inquire::{Confirm, Select, Text};

use super::prompt::{ask, secret, text};
use crate::configure::draft::Draft;
use crate::configure::probe::{self, CheckError};

/// Ask whether to email reports, and the SMTP settings; send a test mail.
pub fn step(draft: &mut Draft) -> anyhow::Result<()> {
    let had = draft.smtp().is_some();
    let want = ask(Confirm::new("Email backup reports?")
        .with_default(had)
        .prompt())?;
    if !want {
        if had {
            draft.env.set("REPORT_TO", "");
        }
        return Ok(());
    }
    loop {
        let get = |k: &str| draft.env.get(k).unwrap_or("").to_string();
        let host = text("SMTP server:", &get("SMTP_HOST"), "")?;
        let tls_now = get("SMTP_TLS");
        let modes = vec!["starttls", "tls", "none"];
        let cursor = modes.iter().position(|m| *m == tls_now).unwrap_or(0);
        let tls = ask(Select::new("Encryption:", modes)
            .with_starting_cursor(cursor)
            .with_help_message("starttls: port 587; tls: port 465; none: only on a trusted network")
            .prompt())?;
        let port_d = match get("SMTP_PORT") {
            p if !p.is_empty() => p,
            _ => match tls {
                "tls" => "465".into(),
                "none" => "25".into(),
                _ => "587".into(),
            },
        };
        let port = text("Port:", &port_d, "")?;
        let user = ask(Text::new("User name (Enter for none):")
            .with_initial_value(&get("SMTP_USERNAME"))
            .prompt())?;
        let password = if user.trim().is_empty() {
            None
        } else {
            secret("Password:", draft.env.has("SMTP_PASSWORD"))?
        };
        let from = text("Sender address:", &get("REPORT_FROM"), "")?;
        let to = text("Send reports to (comma separated):", &get("REPORT_TO"), "")?;
        draft.env.set("SMTP_HOST", &host);
        draft.env.set("SMTP_TLS", tls);
        draft.env.set("SMTP_PORT", &port);
        draft.env.set("SMTP_USERNAME", user.trim());
        if let Some(p) = password {
            draft.env.set("SMTP_PASSWORD", &p);
        }
        draft.env.set("REPORT_FROM", &from);
        draft.env.set("REPORT_TO", &to);
        let Some(cfg) = draft.smtp() else { continue };
        if !ask(Confirm::new(&format!("Send a test mail to {to} now?"))
            .with_default(true)
            .prompt())?
        {
            return Ok(());
        }
        match cfg.and_then(|cfg| probe::smtp(&cfg, &draft.server_id())) {
            Ok(to) => {
                println!("✓ email: a test mail went to {to}");
                draft.checks.insert("smtp".into(), Ok("tested".into()));
                return Ok(());
            }
            Err(e) => {
                println!("✗ email: {e:#}");
                draft.checks.insert("smtp".into(), Err(CheckError::Smtp(e)));
                if !ask(Confirm::new("Change the email settings and test again?")
                    .with_default(true)
                    .prompt())?
                {
                    return Ok(());
                }
            }
        }
    }
}
