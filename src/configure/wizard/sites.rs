//! The wizard's sites step: the sites found and known, folders typed in, a name for each, and
//! each database tested.

use std::path::{Path, PathBuf};

use inquire::{MultiSelect, Select, Text};

use super::prompt::{ask, safe_name};
use crate::configure::draft::Draft;
use crate::configure::entries::SiteEntry;
use crate::configure::probe::{self, CheckError};
use crate::site::discover::{self, FoundSite};

/// Choose the sites to back up, and test each.
pub fn step(draft: &mut Draft, roots: &[PathBuf]) -> anyhow::Result<()> {
    let found = discover::find(roots);
    let options = site_options(draft, &found);
    println!(
        "Found {} WordPress site(s) in {}.",
        found.len(),
        if roots.is_empty() {
            "no folder".to_string()
        } else {
            roots
                .iter()
                .map(|r| r.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let mut chosen = pick_sites(draft, options)?;
    typed_sites(&mut chosen)?;
    let kept = name_and_test_sites(draft, chosen)?;
    draft.file.sites.retain(|old| {
        kept.iter()
            .any(|k| k.name == old.name || canon(&k.path) == canon(&old.path))
    });
    for s in kept {
        draft.upsert_site(s);
    }
    Ok(())
}

fn canon(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// The sites to offer: the known ones first, then those found that are not known yet.
fn site_options(draft: &Draft, found: &[FoundSite]) -> Vec<SiteEntry> {
    let mut options: Vec<SiteEntry> = draft.file.sites.clone();
    for f in found {
        if !options.iter().any(|s| canon(&s.path) == f.path) {
            options.push(SiteEntry {
                name: f.name.clone(),
                path: f.path.clone(),
                ..SiteEntry::default()
            });
        }
    }
    options
}

/// Let the person pick from `options` (the known sites, or all when none is known yet, ticked).
fn pick_sites(draft: &Draft, options: Vec<SiteEntry>) -> anyhow::Result<Vec<SiteEntry>> {
    let mut chosen: Vec<SiteEntry> = Vec::new();
    if options.is_empty() {
        return Ok(chosen);
    }
    let labels: Vec<String> = options
        .iter()
        .map(|s| format!("{}  ({})", s.name, s.path.display()))
        .collect();
    let defaults: Vec<usize> = if draft.file.sites.is_empty() {
        (0..options.len()).collect()
    } else {
        (0..draft.file.sites.len()).collect()
    };
    let picked = ask(MultiSelect::new("Sites to back up:", labels.clone())
        .with_default(&defaults)
        .with_help_message("space toggles a site, enter confirms")
        .prompt())?;
    for p in picked {
        if let Some(i) = labels.iter().position(|l| *l == p) {
            chosen.push(options[i].clone());
        }
    }
    Ok(chosen)
}

/// Folders typed in, until an empty answer; each must hold a WordPress site.
fn typed_sites(chosen: &mut Vec<SiteEntry>) -> anyhow::Result<()> {
    loop {
        let extra = ask(
            Text::new("Another WordPress folder to back up (Enter for none):")
                .with_help_message("the folder holding wp-config.php")
                .prompt(),
        )?;
        let extra = extra.trim();
        if extra.is_empty() {
            return Ok(());
        }
        let path = PathBuf::from(extra);
        if !path.is_absolute() || !discover::is_site(&path) {
            println!(
                "✗ {extra}: no WordPress site there (an absolute path to a folder holding wp-config.php is needed)"
            );
            continue;
        }
        let path = canon(&path);
        if !chosen.iter().any(|s| canon(&s.path) == path) {
            chosen.push(SiteEntry {
                name: discover::site_name(&path),
                path,
                ..SiteEntry::default()
            });
        }
    }
}

/// Name each chosen site and test its database; a failing one is kept only when the person
/// says so. Returns the sites kept.
fn name_and_test_sites(
    draft: &mut Draft,
    chosen: Vec<SiteEntry>,
) -> anyhow::Result<Vec<SiteEntry>> {
    let mut kept = Vec::new();
    for mut s in chosen {
        s.name = ask(Text::new(&format!("Name for {}:", s.path.display()))
            .with_default(&s.name)
            .with_validator(safe_name)
            .with_help_message("used in archive names and reports")
            .prompt())?;
        let tested = draft
            .site_config(&s)
            .map_err(CheckError::from)
            .and_then(|c| probe::site(&c));
        let key = format!("site {}", s.name);
        match tested {
            Ok(msg) => {
                println!("✓ {key}: {msg}");
                draft.checks.insert(key, Ok(msg));
                kept.push(s);
            }
            Err(why) => {
                println!("✗ {key}: {why}");
                draft.checks.insert(key, Err(why));
                let keep = ask(Select::new(
                    "What now?",
                    vec![
                        "Keep it (I will fix it before the first backup)",
                        "Leave this site out",
                    ],
                )
                .prompt())?;
                if keep.starts_with("Keep") {
                    kept.push(s);
                }
            }
        }
    }
    Ok(kept)
}
