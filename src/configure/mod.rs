//! `wpbackup configure`: from nothing (or an old sites.json) to a tested config.json and .env.
//!
//! On a terminal it runs the wizard ([`crate::configure::wizard`]). With `--non-interactive` it applies
//! an answers file and flags to the existing config, then tests every site, storage, D1 and
//! SMTP setting and writes only when all of them pass (or `--no-test`). Either way the result
//! is validated as `backup` will load it, a summary is shown, and both files are written
//! atomically with mode 0600.

pub mod answers;
pub mod draft;
pub mod entries;
pub mod envfile;
pub mod migrate;
pub mod probe;
pub mod wizard;

use std::io::IsTerminal;

use crate::cli::ConfigureArgs;
use crate::commands::{Context, Outcome, UsageError};
use crate::config::Config;
use crate::site::discover;
use answers::{Answers, SiteAnswer, StorageAnswer};
use draft::Draft;
use entries::Preset;

pub fn run(ctx: &Context, args: &ConfigureArgs) -> anyhow::Result<Outcome> {
    let paths = &ctx.paths;
    let mut draft = Draft::load(paths)?;
    let rt = crate::app::runtime()?;
    let mut roots = discover::default_roots();
    roots.extend(args.scan.iter().cloned());

    if !args.non_interactive {
        if !std::io::stdin().is_terminal() {
            return Err(UsageError(
                "configure needs a terminal to ask its questions: run it in one, or use --non-interactive with --answers FILE (see --help)".into(),
            )
            .into());
        }
        return match crate::configure::wizard::run(&mut draft, &roots, paths, &rt) {
            Ok(true) => {
                draft.write(paths)?;
                println!(
                    "Wrote {} and {} (mode 0600). Next: `wpbackup backup --dry-run`, then deploy.sh to install the nightly timer.",
                    paths.config.display(),
                    paths.env_file.display()
                );
                Ok(Outcome::Ok)
            }
            Ok(false) => {
                println!("Nothing written.");
                Ok(Outcome::Ok)
            }
            Err(e)
                if e.downcast_ref::<crate::configure::wizard::Cancelled>()
                    .is_some() =>
            {
                eprintln!("{e}");
                Ok(Outcome::Failed)
            }
            Err(e) => Err(e),
        };
    }

    for n in &draft.notes {
        println!("note: {n}");
    }
    let mut a = match &args.answers {
        Some(path) => answers::load(path)?,
        None => Answers::default(),
    };
    roots.extend(a.scan.iter().cloned());
    a.sites.extend(args.sites.iter().map(|p| SiteAnswer {
        path: p.clone(),
        name: None,
        exclude: None,
        enabled: None,
    }));
    if let Some(id) = &args.server_id {
        a.server_id = Some(id.clone());
    }
    if let Some(dir) = &args.local_storage {
        a.storage.push(StorageAnswer {
            name: Some("local".into()),
            preset: Some(Preset::Local),
            endpoint: None,
            region: None,
            account_id: None,
            bucket: None,
            prefix: None,
            path_style: None,
            path: Some(dir.clone()),
            access_key: None,
            secret_key: None,
            priority: None,
        });
    }
    let found = if a.add_found_sites {
        discover::find(&roots)
    } else {
        Vec::new()
    };
    answers::apply(&mut draft, a, &found).map_err(|e| UsageError(format!("{e:#}")))?;
    let config = draft.validate(&paths.config)?;
    if !args.no_test {
        let failed = check_all(&mut draft, &config, &rt);
        if failed > 0 {
            println!("\n{}", draft.summary(paths));
            anyhow::bail!(
                "{failed} check(s) failed (see the ✗ lines above): nothing written. Fix the settings, or pass --no-test to write them untested"
            );
        }
    }
    println!("\n{}", draft.summary(paths));
    draft.write(paths)?;
    println!(
        "Wrote {} and {} (mode 0600).",
        paths.config.display(),
        paths.env_file.display()
    );
    Ok(Outcome::Ok)
}

/// Test every site, storage, D1 and SMTP setting of a validated config; print one line each
/// and record the results in the draft. Returns how many failed.
fn check_all(draft: &mut Draft, config: &Config, rt: &tokio::runtime::Runtime) -> usize {
    let mut failed = 0;
    let mut record = |draft: &mut Draft, key: String, r: Result<String, String>| {
        match &r {
            Ok(m) => println!("✓ {key}: {m}"),
            Err(e) => {
                println!("✗ {key}: {e}");
                failed += 1;
            }
        }
        draft.checks.insert(key, r);
    };
    for s in config.sites.iter().filter(|s| s.enabled) {
        record(draft, format!("site {}", s.name), probe::site(s));
    }
    for st in &config.storage {
        let cfg = draft.storage_config(&st.name).map_err(|e| e.to_string());
        let r = cfg.and_then(|c| {
            rt.block_on(probe::storage(&c, "configure"))
                .map(|()| "wrote, read back and deleted a test object".to_string())
                .map_err(|f| f.to_string())
        });
        record(draft, format!("storage {}", st.name), r);
    }
    if let Some(d) = draft.d1() {
        let r = d
            .and_then(|d| rt.block_on(probe::d1(&d)))
            .map(|()| "a test query answered".to_string())
            .map_err(|e| format!("{e:#}"));
        record(draft, "d1".into(), r);
    }
    if let Some(s) = draft.smtp() {
        let r = s
            .and_then(|s| probe::smtp(&s, &draft.server_id()))
            .map(|to| format!("a test mail went to {to}"))
            .map_err(|e| format!("{e:#}"));
        record(draft, "smtp".into(), r);
    }
    failed
}
