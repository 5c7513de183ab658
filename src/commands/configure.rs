//! `wpbackup configure`: the wizard on a terminal, or `--non-interactive` with an answers
//! file. This file reads the flags, starts the runtime and says what happened; the work is
//! in [`crate::configure`].

use std::io::IsTerminal;

use crate::cli::ConfigureArgs;
use crate::commands::{Context, Outcome, UsageError};
use crate::configure::{self, Draft, Options, WizardEnd};

pub fn run(ctx: &Context, args: &ConfigureArgs) -> anyhow::Result<Outcome> {
    let paths = &ctx.paths;
    let draft = Draft::load(paths)?;
    let rt = crate::app::runtime()?;
    if args.non_interactive {
        configure::non_interactive(draft, paths, options(args), &rt)?;
        println!(
            "Wrote {} and {} (mode 0600).",
            paths.config.display(),
            paths.env_file.display()
        );
        signing_key(ctx);
        return Ok(Outcome::Ok);
    }
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(
            "configure needs a terminal to ask its questions: run it in one, or use --non-interactive with --answers FILE (see --help)".into(),
        )
        .into());
    }
    match configure::wizard(draft, paths, &args.scan, &rt)? {
        WizardEnd::Written => {
            println!(
                "Wrote {} and {} (mode 0600). Next: `wpbackup backup --dry-run`, then deploy.sh to install the nightly timer.",
                paths.config.display(),
                paths.env_file.display()
            );
            signing_key(ctx);
            Ok(Outcome::Ok)
        }
        WizardEnd::NotWritten => {
            println!("Nothing written.");
            Ok(Outcome::Ok)
        }
        WizardEnd::Cancelled(c) => {
            eprintln!("{c}");
            Ok(Outcome::Failed)
        }
    }
}

/// The server's signing key made (the first time) and its public key in config.json's
/// `trusted_keys`, the file then written again as configure writes it (so that a rerun that
/// changes nothing leaves it byte for byte); a failure is a warning (the first backup tries
/// again).
fn signing_key(ctx: &Context) {
    let paths = &ctx.paths;
    let before = std::fs::read(&paths.config).ok();
    let added = ctx.signing_key().and_then(|key| {
        crate::sign::add_trusted_key(&paths.config, &key.public())?;
        if std::fs::read(&paths.config).ok() != before {
            Draft::load(paths)?.write(paths)?;
        }
        Ok(key)
    });
    match added {
        Ok(key) => println!(
            "This server signs its archives with key {} (public key {}, in trusted_keys).",
            key.public().id(),
            key.public().to_base64()
        ),
        Err(e) => eprintln!("WARNING: the signing key: {e:#} (the first backup tries again)"),
    }
}

/// The flags of a non-interactive run.
fn options(args: &ConfigureArgs) -> Options {
    Options {
        answers: args.answers.clone(),
        scan: args.scan.clone(),
        sites: args.sites.clone(),
        server_id: args.server_id.clone(),
        local_storage: args.local_storage.clone(),
        test: !args.no_test,
        binlog: args.binlog,
    }
}
