//! wpbackup: parse the command line, set up logging, dispatch to a command, and turn the
//! outcome into the documented exit status. Nothing else lives here.

use std::process::ExitCode;

use clap::Parser;

use wpbackup::cli::{Cli, Command};
use wpbackup::commands::{self, Context, Outcome};
use wpbackup::output;

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::init_logging(cli.verbose, cli.quiet);
    let ctx = Context::new(&cli);
    let result = match cli.command {
        Command::Backup(ref args) => commands::backup::run(&ctx, args),
        Command::Status => commands::status::run(&ctx),
        Command::Restore(ref args) if !args.only.is_empty() => {
            commands::restore_only::run(&ctx, args)
        }
        Command::Restore(ref args) => commands::restore::run(&ctx, args),
        Command::List(ref args) => commands::list::run(&ctx, args),
        Command::Ls(ref args) => commands::ls::run(&ctx, args),
        Command::Verify(ref args) => commands::verify::run(&ctx, args),
        Command::Drill(ref args) => commands::drill::run(&ctx, args),
        Command::Prune(ref args) => commands::prune::run(&ctx, args),
        Command::SyncD1 => commands::sync_d1::run(&ctx),
        Command::Binlog => commands::binlog::run(&ctx),
        Command::StoragePaths => commands::storage_paths::run(&ctx),
        Command::BinlogEvery => commands::storage_paths::binlog_every(&ctx),
        Command::Report(ref args) => commands::report::run(&ctx, args),
        Command::Configure(ref args) => commands::configure::run(&ctx, args),
    };
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => {
            // It may name files of a site or an archive: nothing in it reaches the terminal
            // as a control sequence (a message of several lines keeps its lines).
            let message = format!("{err:#}");
            eprintln!("wpbackup: error: {}", output::printable_message(&message));
            Outcome::from_error(&err).exit_code()
        }
    }
}
