//! The interactive side of `configure`: prompts on a terminal (inquire), each answer tested
//! right after it is given, so a mistyped secret is caught now rather than at 3 a.m.
//!
//! Every prompt offers what is already configured as its default (Enter keeps it); secrets are
//! typed masked, never shown back, and an empty answer keeps the current one. Esc or Ctrl-C
//! stops without writing anything. The steps: server id, sites (found on the server, each
//! database tested), storages (presets, each tested by writing, reading back and deleting a
//! small object), their priority order, Cloudflare D1 and email (optional, each tested), and a
//! summary to confirm. Once D1 answered, the dashboard's deploy commands are offered.
//!
//! One file per step: [`sites`], [`storage`], [`cloudflare`] (D1), [`dashboard`] and
//! [`email`], on the prompts of [`prompt`].

mod cloudflare;
mod dashboard;
mod email;
mod prompt;
mod sites;
mod storage;

use std::path::PathBuf;

use inquire::{Confirm, Text};
use tokio::runtime::Runtime;

use crate::config::Paths;
use crate::configure::draft::Draft;
pub use prompt::Cancelled;
use prompt::{ask, safe_name};

/// Run the wizard on `draft`. Returns whether to write.
pub fn run(
    draft: &mut Draft,
    roots: &[PathBuf],
    paths: &Paths,
    rt: &Runtime,
) -> anyhow::Result<bool> {
    if std::env::var_os("NO_COLOR").is_some() {
        inquire::set_global_render_config(inquire::ui::RenderConfig::empty());
    }
    println!(
        "wpbackup configure: settings in {}\nEnter keeps the value shown in brackets; Esc cancels without writing anything.\n",
        paths.home.display()
    );
    for n in &draft.notes {
        println!("note: {n}");
    }

    let id = ask(
        Text::new("Server ID (names this server in archive keys and reports):")
            .with_default(&draft.server_id())
            .with_validator(safe_name)
            .prompt(),
    )?;
    if id != draft.server_id() || draft.file.server_id.is_some() {
        draft.file.server_id = Some(id);
    }

    sites::step(draft, roots)?;
    storage::step(draft, rt)?;
    cloudflare::step(draft, rt)?;
    if draft.checks.get("d1").is_some_and(Result::is_ok) {
        dashboard::step(draft)?;
    }
    email::step(draft)?;

    if let Err(e) = draft.validate(&paths.config) {
        return Err(anyhow::Error::new(e).context("the settings do not validate, nothing written"));
    }
    println!("\nSummary:\n{}\n", draft.summary(paths));
    let write = ask(Confirm::new("Write config.json and .env?")
        .with_default(true)
        .prompt())?;
    Ok(write)
}
