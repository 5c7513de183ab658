//! `configure`: from nothing (or an old sites.json) to a tested config.json and .env.
//!
//! On a terminal it runs the wizard ([`wizard()`]). Non-interactively it applies an answers file
//! and the command-line options ([`Options`]) to the existing config, then tests every site,
//! storage, D1 and SMTP setting and writes only when all of them pass (or when told not to
//! test; with `binlog`, the database server's binary log and the shipping user's privileges
//! too). Either way the result is validated as `backup` will load it, a summary is shown,
//! and both files are written atomically with mode 0600.
//!
//! The modules, lowest first: [`entries`] (config.json's entries) and [`envfile`] (`.env`
//! edited in place); [`migrate`] (a deprecated sites.json) and [`probe`] (the tests);
//! [`draft`] (what is being built); [`dashboard`] (its deploy commands, its address);
//! [`answers`] and [`wizard`](mod@wizard) (one file per step), which fill a draft in. None of them imports `app`, `commands` or `cli`: the command
//! passes the paths, an [`Options`] and the runtime down.

pub mod answers;
pub mod dashboard;
pub mod draft;
pub mod entries;
pub mod envfile;
pub mod migrate;
pub mod probe;
pub mod wizard;

use std::path::PathBuf;

use tokio::runtime::Runtime;

use crate::config::{Config, Paths};
use crate::error::UsageError;
use crate::site::discover;
use answers::{Answers, SiteAnswer, StorageAnswer};
pub use draft::Draft;
use entries::Preset;
use probe::CheckError;
pub use wizard::Cancelled;

/// What the command line adds to a non-interactive run.
#[derive(Debug, Default)]
pub struct Options {
    /// The answers file.
    pub answers: Option<PathBuf>,
    /// Folders to search for WordPress sites, besides the usual places.
    pub scan: Vec<PathBuf>,
    /// WordPress directories to add.
    pub sites: Vec<PathBuf>,
    pub server_id: Option<String>,
    /// A local-directory storage named "local" to add.
    pub local_storage: Option<PathBuf>,
    /// Test every setting before writing (false: write untested).
    pub test: bool,
    /// Turn point-in-time recovery on (config.json's `binlog`), unless the answers say.
    pub binlog: bool,
}

/// Some checks failed, so nothing was written.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0} check(s) failed (see the ✗ lines above): nothing written. Fix the settings, or pass --no-test to write them untested"
)]
pub struct ChecksFailed(pub usize);

/// How the wizard ended.
#[derive(Debug)]
pub enum WizardEnd {
    /// config.json and .env were written.
    Written,
    /// The person said no at the end.
    NotWritten,
    /// Esc or Ctrl-C: nothing written.
    Cancelled(Cancelled),
}

/// The usual places sites live, and `scan`.
fn roots(scan: &[PathBuf]) -> Vec<PathBuf> {
    let mut roots = discover::default_roots();
    roots.extend(scan.iter().cloned());
    roots
}

/// Ask on the terminal, test each answer, and write when the person says yes.
pub fn wizard(
    mut draft: Draft,
    paths: &Paths,
    scan: &[PathBuf],
    rt: &Runtime,
) -> anyhow::Result<WizardEnd> {
    match wizard::run(&mut draft, &roots(scan), paths, rt) {
        Ok(true) => {
            draft.write(paths)?;
            Ok(WizardEnd::Written)
        }
        Ok(false) => Ok(WizardEnd::NotWritten),
        Err(e) => e.downcast::<Cancelled>().map(WizardEnd::Cancelled),
    }
}

/// Apply the answers file and `opts` to `draft`, test everything (unless `opts.test` is
/// false), show the summary and write. Nothing is written when a check fails.
pub fn non_interactive(
    mut draft: Draft,
    paths: &Paths,
    opts: Options,
    rt: &Runtime,
) -> anyhow::Result<()> {
    for n in &draft.notes {
        println!("note: {n}");
    }
    let mut roots = roots(&opts.scan);
    let test = opts.test;
    let a = answers_with_options(opts)?;
    let print_dashboard = a.print_dashboard_commands;
    roots.extend(a.scan.iter().cloned());
    let found = if a.add_found_sites {
        discover::find(&roots)
    } else {
        Vec::new()
    };
    answers::apply(&mut draft, a, &found).map_err(|e| UsageError(e.to_string()))?;
    // Asked for, the commands must be printable before anything is tested or written.
    let commands = print_dashboard
        .then(|| dashboard::deploy_commands(&draft, dashboard::source_dir().as_deref()))
        .transpose()
        .map_err(|e| UsageError(format!("answers: print_dashboard_commands: {e}")))?;
    let config = draft.validate(&paths.config)?;
    if test {
        let failed = check_all(&mut draft, &config, rt);
        if failed > 0 {
            println!("\n{}", draft.summary(paths));
            return Err(ChecksFailed(failed).into());
        }
    }
    println!("\n{}", draft.summary(paths));
    draft.write(paths)?;
    if let Some(text) = commands {
        println!("\n{text}");
    }
    Ok(())
}

/// The answers file (or none), with the command-line options added to it.
fn answers_with_options(opts: Options) -> anyhow::Result<Answers> {
    let mut a = match &opts.answers {
        Some(path) => answers::load(path)?,
        None => Answers::default(),
    };
    a.sites
        .extend(opts.sites.into_iter().map(|path| SiteAnswer {
            path,
            name: None,
            exclude: None,
            enabled: None,
        }));
    if let Some(id) = opts.server_id {
        a.server_id = Some(id);
    }
    if opts.binlog && a.binlog.is_none() {
        a.binlog = Some(answers::BinlogAnswer {
            enabled: true,
            every_minutes: None,
        });
    }
    if let Some(dir) = opts.local_storage {
        a.storage.push(StorageAnswer {
            name: Some("local".into()),
            preset: Some(Preset::Local),
            endpoint: None,
            region: None,
            account_id: None,
            bucket: None,
            prefix: None,
            path_style: None,
            path: Some(dir),
            access_key: None,
            secret_key: None,
            priority: None,
        });
    }
    Ok(a)
}

/// Print one check's result and record it in the draft; true when it passed.
fn record(draft: &mut Draft, key: String, r: Result<String, CheckError>) -> bool {
    match &r {
        Ok(m) => println!("✓ {key}: {m}"),
        Err(e) => println!("✗ {key}: {e}"),
    }
    let passed = r.is_ok();
    draft.checks.insert(key, r);
    passed
}

/// Test every site, storage, D1 and SMTP setting of a validated config; print one line each
/// (as each test ends) and record the results in the draft. Returns how many failed.
fn check_all(draft: &mut Draft, config: &Config, rt: &Runtime) -> usize {
    let mut failed = 0;
    let mut count = |passed: bool| failed += usize::from(!passed);
    for s in config.sites.iter().filter(|s| s.enabled) {
        count(record(draft, format!("site {}", s.name), probe::site(s)));
    }
    for st in &config.storage {
        let r = draft
            .storage_config(&st.name)
            .map_err(CheckError::from)
            .and_then(|c| {
                rt.block_on(probe::storage(&c, "configure"))
                    .map_err(CheckError::from)
            })
            .map(|()| "wrote, read back and deleted a test object".to_string());
        count(record(draft, format!("storage {}", st.name), r));
    }
    if let Some(d) = draft.d1() {
        let r = d
            .and_then(|d| rt.block_on(probe::d1(&d)))
            .map(|()| "a test query answered".to_string())
            .map_err(CheckError::D1);
        count(record(draft, "d1".into(), r));
    }
    if let Some(s) = draft.smtp() {
        let r = s
            .and_then(|s| probe::smtp(&s, &draft.server_id()))
            .map(|to| format!("a test mail went to {to}"))
            .map_err(CheckError::Smtp);
        count(record(draft, "smtp".into(), r));
    }
    if let Some(b) = &config.binlog {
        let db = b.database.clone().unwrap_or_else(|| {
            crate::dbtools::client::admin(
                draft.env.get("MYSQL_UNIX_PORT").map(PathBuf::from),
                config.database,
            )
        });
        let r = probe::binlog(&db).map_err(CheckError::Binlog);
        count(record(draft, "binlog".into(), r));
    }
    failed
}
