//! `wpbackup report`: build the report (see `report`) for this server from backups.db, or for
//! the fleet from D1, and email it (see `mail`), print it (`--dry-run`, or without `SMTP_HOST`
//! in `.env`, with a warning that no mail was sent), or stay quiet when all
//! is well (`--only-failures`), or write it as the fleet page (`--html FILE`, see
//! `report::html_page`). `backup` calls `report::after_failed_backup` when
//! `report.on_failure` is set.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use chrono::Utc;

use super::{Context, Outcome, UsageError};
use crate::cli::ReportArgs;
use crate::config::{Config, Env};
use crate::d1::D1Settings;
use crate::report::mail::{self, SmtpSettings};
use crate::report::{self, Report};

pub fn run(ctx: &Context, args: &ReportArgs) -> anyhow::Result<Outcome> {
    let env = ctx.env()?;
    let period =
        report::parse_period(&args.since).map_err(|e| UsageError(format!("--since {e}")))?;
    // Check the mail settings before the work, unless nothing is to be sent. Without
    // SMTP_HOST (and no --to asking for mail) the report is printed: a server with no mail
    // set up still gets its report, in the journal or cron.log, and the run succeeds.
    let smtp = if args.dry_run || args.html.is_some() {
        None
    } else if args.to.is_empty() && !mail::smtp_configured(&env) {
        tracing::warn!(
            "no mail sent: SMTP_HOST is not set in {}; the report is printed instead (set SMTP_HOST and REPORT_TO there to email it)",
            env.file_path().display()
        );
        None
    } else {
        Some(SmtpSettings::from_env(&env, &args.to)?)
    };
    let now = Utc::now();
    let from = report::lookback_start(now, period);
    let report = if args.fleet {
        let settings = D1Settings::from_env(&env)?.ok_or_else(|| {
            UsageError(format!(
                "--fleet reads D1, which is not configured: set CF_ACCOUNT_ID, CF_API_TOKEN and D1_DATABASE_ID in {}",
                env.file_path().display()
            ))
        })?;
        let data = crate::app::runtime()?.block_on(report::fleet_data_from(&settings, from))?;
        let mut report = report::build("fleet", &data, now, period, &args.since);
        report.dashboard = fleet_dashboard(ctx, &env);
        report
    } else {
        let config = Config::load(&ctx.paths.config, &env)?;
        let data = report::server_data(&ctx.paths.db, &config, from)?;
        let mut report = report::build(&config.server_id, &data, now, period, &args.since);
        report.dashboard = config.dashboard_url.as_deref().map(report::Dashboard::new);
        report
    };
    if let Some(path) = &args.html {
        return write_page(ctx, &report, now, path);
    }
    if args.only_failures && report.all_well() {
        tracing::info!(
            "{}: all well, nothing sent (--only-failures)",
            report.subject()
        );
        return Ok(Outcome::Ok);
    }
    match smtp {
        None => print(ctx, &report)?,
        Some(smtp) => {
            mail::send(&smtp, &report.subject(), report.text(), report.html())?;
            let to: Vec<String> = smtp.to.iter().map(|m| m.email.to_string()).collect();
            if !ctx.quiet {
                println!("sent \"{}\" to {}", report.subject(), to.join(", "));
            }
        }
    }
    Ok(Outcome::Ok)
}

/// `--fleet` reads D1, not config.json; its `dashboard_url` is linked when the file is there.
/// A config.json that does not load costs the links only, with a warning.
fn fleet_dashboard(ctx: &Context, env: &Env) -> Option<report::Dashboard> {
    if !ctx.paths.config.exists() {
        return None;
    }
    match Config::load(&ctx.paths.config, env) {
        Ok(c) => c.dashboard_url.as_deref().map(report::Dashboard::new),
        Err(e) => {
            tracing::warn!("the report goes without dashboard links: {e}");
            None
        }
    }
}

/// `--html FILE`: the fleet page, written whole or not at all.
fn write_page(
    ctx: &Context,
    report: &Report,
    now: chrono::DateTime<Utc>,
    path: &Path,
) -> anyhow::Result<Outcome> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| {
        format!(
            "cannot write {}: check that its directory exists and is writable",
            path.display()
        )
    })?;
    tmp.write_all(report.fleet_page(now).as_bytes())
        .and_then(|()| tmp.flush())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    if !ctx.quiet {
        println!("wrote {}: {}", path.display(), report.subject());
    }
    Ok(Outcome::Ok)
}

fn print(ctx: &Context, report: &Report) -> anyhow::Result<()> {
    if ctx.json {
        let doc = serde_json::json!({ "subject": report.subject(), "report": report });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        println!("Subject: {}\n\n{}", report.subject(), report.text());
    }
    Ok(())
}
