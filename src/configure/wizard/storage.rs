//! The wizard's storage step: the configured storages tested, storages added, edited or
//! removed through provider presets (each tested by writing, reading back and deleting a small
//! object), and their priority order.

use std::path::PathBuf;

use inquire::validator::Validation;
use inquire::{Select, Text};
use tokio::runtime::Runtime;

use super::prompt::{ask, safe_name, secret, text};
use crate::configure::draft::Draft;
use crate::configure::entries::{Preset, StorageEntry};
use crate::configure::probe::{self, CheckError};

/// Test what is configured, then add, edit or remove storages until the person continues.
pub fn step(draft: &mut Draft, rt: &Runtime) -> anyhow::Result<()> {
    println!(
        "\nStorage: where archives go. Several can be given; they are tried in priority order."
    );
    if draft.file.storage.is_empty() {
        storage_form(draft, rt, None)?;
    } else {
        // What is configured is tested first, so a key that expired since shows up now.
        let names: Vec<String> = draft.file.storage.iter().map(|s| s.name.clone()).collect();
        for name in names {
            test_storage(draft, rt, &name);
        }
    }
    loop {
        println!("Storage now:");
        for s in &draft.file.storage {
            println!(
                "  {}. {} ({})",
                s.priority,
                s.name,
                Preset::detect(s).label()
            );
        }
        let mut options = vec!["Continue".to_string(), "Add a storage".to_string()];
        for s in &draft.file.storage {
            options.push(format!("Edit and test {}", s.name));
        }
        for s in &draft.file.storage {
            options.push(format!("Remove {}", s.name));
        }
        let choice = ask(Select::new("Storage:", options).prompt())?;
        if choice == "Continue" {
            if draft.file.storage.is_empty() {
                println!("✗ at least one storage is needed");
                continue;
            }
            break;
        } else if choice == "Add a storage" {
            storage_form(draft, rt, None)?;
        } else if let Some(name) = choice.strip_prefix("Edit and test ") {
            let e = draft.file.storage.iter().find(|s| s.name == name).cloned();
            storage_form(draft, rt, e)?;
        } else if let Some(name) = choice.strip_prefix("Remove ") {
            draft.file.storage.retain(|s| s.name != name);
            draft.checks.remove(&format!("storage {name}"));
        }
    }
    if draft.file.storage.len() > 1 {
        ask_order(draft)?;
    }
    Ok(())
}

/// The priority order, as storage names separated by commas (each must exist).
fn ask_order(draft: &mut Draft) -> anyhow::Result<()> {
    let current: Vec<String> = draft.file.storage.iter().map(|s| s.name.clone()).collect();
    let names = current.clone();
    let order = ask(
        Text::new("Priority order, first tried first (names, comma separated):")
            .with_default(&current.join(", "))
            .with_validator(move |s: &str| {
                let given: Vec<&str> = s.split(',').map(str::trim).collect();
                Ok(
                    match given.iter().find(|g| !names.iter().any(|n| n == *g)) {
                        Some(bad) => {
                            Validation::Invalid(format!("no storage named {bad:?}").into())
                        }
                        None => Validation::Valid,
                    },
                )
            })
            .prompt(),
    )?;
    let order: Vec<String> = order.split(',').map(|s| s.trim().to_string()).collect();
    draft.set_order(&order);
    Ok(())
}

/// Add or edit one storage, and test it until it works or the person says otherwise.
fn storage_form(
    draft: &mut Draft,
    rt: &Runtime,
    mut current: Option<StorageEntry>,
) -> anyhow::Result<()> {
    loop {
        let preset = pick_preset(current.as_ref())?;
        let old = current.clone().filter(|c| Preset::detect(c) == preset);
        let name = storage_name(draft, preset, current.as_ref())?;
        let mut e = old.clone().unwrap_or_default();
        e.name = name.clone();
        let (ak, sk) = if preset == Preset::Local {
            local_form(&mut e)?;
            (None, None)
        } else {
            s3_form(draft, preset, &mut e, old.as_ref())?
        };
        draft.upsert_storage(e, ak.as_deref(), sk.as_deref());
        if test_storage(draft, rt, &name) {
            return Ok(());
        }
        let next = ask(Select::new(
            "What now?",
            vec![
                "Change the settings and test again",
                "Keep it untested",
                "Remove this storage",
            ],
        )
        .prompt())?;
        if next.starts_with("Keep") {
            return Ok(());
        }
        if next.starts_with("Remove") {
            draft.file.storage.retain(|s| s.name != name);
            draft.checks.remove(&format!("storage {name}"));
            return Ok(());
        }
        current = draft.file.storage.iter().find(|s| s.name == name).cloned();
    }
}

/// The provider, starting at the one `current` looks like.
fn pick_preset(current: Option<&StorageEntry>) -> anyhow::Result<Preset> {
    let start = current.map(Preset::detect).unwrap_or(Preset::IdriveE2);
    let labels: Vec<&str> = Preset::ALL.iter().map(|p| p.label()).collect();
    let cursor = Preset::ALL.iter().position(|p| *p == start).unwrap_or(0);
    let label = ask(Select::new("Provider:", labels)
        .with_starting_cursor(cursor)
        .with_help_message("type to filter, arrows to move, enter to choose")
        .prompt())?;
    Ok(Preset::ALL
        .into_iter()
        .find(|p| p.label() == label)
        .unwrap_or(Preset::S3Compatible))
}

/// The storage's name; renaming `current` drops the entry under its old name.
fn storage_name(
    draft: &mut Draft,
    preset: Preset,
    current: Option<&StorageEntry>,
) -> anyhow::Result<String> {
    let default_name = match current {
        Some(c) => c.name.clone(),
        None => unique_name(draft, preset.default_name()),
    };
    let name = ask(Text::new("Storage name:")
        .with_default(&default_name)
        .with_validator(safe_name)
        .prompt())?;
    if let Some(c) = current
        && c.name != name
    {
        draft.file.storage.retain(|s| s.name != c.name);
    }
    Ok(name)
}

/// A local directory storage: its directory.
fn local_form(e: &mut StorageEntry) -> anyhow::Result<()> {
    e.kind = "local".into();
    let d = e
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "/var/backups/wpbackup".into());
    let p = text("Directory for the archives:", &d, "an absolute path")?;
    e.path = Some(PathBuf::from(p));
    Ok(())
}

/// An S3 storage: region, endpoint, bucket, prefix and keys. Returns the keys typed in
/// (None keeps the one in .env).
fn s3_form(
    draft: &Draft,
    preset: Preset,
    e: &mut StorageEntry,
    old: Option<&StorageEntry>,
) -> anyhow::Result<(Option<String>, Option<String>)> {
    e.kind = "s3".into();
    let region = if preset == Preset::R2 {
        "auto".to_string()
    } else {
        let d = e
            .region
            .clone()
            .unwrap_or_else(|| preset.default_region().into());
        text("Region:", &d, "")?
    };
    e.endpoint = endpoint(preset, e, &region)?;
    e.region = Some(region);
    let d = e.bucket.clone().unwrap_or_default();
    e.bucket = Some(text("Bucket:", &d, "it must exist already")?);
    let d = e.prefix.clone().unwrap_or_default();
    let prefix = ask(Text::new("Key prefix (Enter for none):")
        .with_initial_value(&d)
        .prompt())?;
    e.prefix = (!prefix.trim().is_empty()).then(|| prefix.trim().to_string());
    let (ak_var, sk_var) = match old {
        Some(o) => (o.access_key_env.clone(), o.secret_key_env.clone()),
        None => (None, None),
    };
    let has = |v: &Option<String>| v.as_ref().is_some_and(|v| draft.env.has(v));
    let ak = secret("Access key ID:", has(&ak_var))?;
    let sk = secret("Secret access key:", has(&sk_var))?;
    Ok((ak, sk))
}

/// The endpoint: none for AWS, made from the account id for R2, typed in for iDrive e2 and
/// generic S3, made from the region for the others.
fn endpoint(preset: Preset, e: &StorageEntry, region: &str) -> anyhow::Result<Option<String>> {
    Ok(match preset {
        Preset::Aws => None,
        Preset::R2 => {
            let d = e
                .endpoint
                .as_deref()
                .and_then(|ep| ep.strip_prefix("https://"))
                .and_then(|h| h.split('.').next())
                .unwrap_or("")
                .to_string();
            let acct = text("Cloudflare account id:", &d, "from the R2 overview page")?;
            preset.endpoint(region, Some(&acct))
        }
        p if p.asks_endpoint() => {
            let d = e.endpoint.clone().unwrap_or_default();
            Some(text(
                "Endpoint URL:",
                &d,
                "e.g. https://s3.us-west-1.idrivee2.com (from the provider's console)",
            )?)
        }
        p => p.endpoint(region, None),
    })
}

/// Test one storage of the draft, print the result, record it; true when it passed.
fn test_storage(draft: &mut Draft, rt: &Runtime, name: &str) -> bool {
    let tested = draft
        .storage_config(name)
        .map_err(CheckError::from)
        .and_then(|cfg| {
            println!("… testing storage {name}: writing, reading back and deleting a small object");
            rt.block_on(probe::storage(&cfg, "configure"))
                .map_err(CheckError::from)
        });
    let key = format!("storage {name}");
    match tested {
        Ok(()) => {
            println!("✓ storage {name}: wrote, read back and deleted a test object");
            draft.checks.insert(key, Ok("tested".into()));
            true
        }
        Err(why) => {
            println!("✗ storage {name}: {why}");
            draft.checks.insert(key, Err(why));
            false
        }
    }
}

fn unique_name(draft: &Draft, base: &str) -> String {
    let mut name = base.to_string();
    let mut n = 2;
    while draft.file.storage.iter().any(|s| s.name == name) {
        name = format!("{base}{n}");
        n += 1;
    }
    name
}
