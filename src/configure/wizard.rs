//! The interactive side of `configure`: prompts on a terminal (inquire), each answer tested
//! right after it is given, so a mistyped secret is caught now rather than at 3 a.m.
//!
//! Every prompt offers what is already configured as its default (Enter keeps it); secrets are
//! typed masked, never shown back, and an empty answer keeps the current one. Esc or Ctrl-C
//! stops without writing anything. The steps: server id, sites (found on the server, each
//! database tested), storages (presets, each tested by writing, reading back and deleting a
//! small object), their priority order, Cloudflare D1 and email (optional, each tested), and a
//! summary to confirm.

use std::path::{Path, PathBuf};

use inquire::error::InquireError;
use inquire::validator::Validation;
use inquire::{Confirm, MultiSelect, Password, PasswordDisplayMode, Select, Text};
use tokio::runtime::Runtime;

use crate::config::Paths;
use crate::configure::draft::{CLOUDFLARE_API, Draft};
use crate::configure::entries::{Preset, SiteEntry, StorageEntry};
use crate::configure::probe::{self, CheckError};
use crate::site::discover::{self, FoundSite};

/// The person pressed Esc or Ctrl-C.
#[derive(Debug, thiserror::Error)]
#[error("configure cancelled: nothing was written")]
pub struct Cancelled;

fn ask<T>(r: Result<T, InquireError>) -> anyhow::Result<T> {
    match r {
        Ok(v) => Ok(v),
        Err(InquireError::OperationCanceled | InquireError::OperationInterrupted) => {
            Err(Cancelled.into())
        }
        Err(e) => Err(anyhow::Error::new(e).context("the terminal prompt failed")),
    }
}

type Check = Result<Validation, inquire::CustomUserError>;

fn safe_name(s: &str) -> Check {
    Ok(if crate::config::is_safe_name(s) {
        Validation::Valid
    } else {
        Validation::Invalid("use letters, digits, '.', '-' and '_' only".into())
    })
}

fn not_empty(s: &str) -> Check {
    Ok(if s.trim().is_empty() {
        Validation::Invalid("this is needed".into())
    } else {
        Validation::Valid
    })
}

fn text(msg: &str, default: &str, help: &str) -> anyhow::Result<String> {
    let mut t = Text::new(msg).with_validator(not_empty);
    if !default.is_empty() {
        t = t.with_default(default);
    }
    if !help.is_empty() {
        t = t.with_help_message(help);
    }
    Ok(ask(t.prompt())?.trim().to_string())
}

/// A secret: typed masked; empty keeps `current` when there is one.
fn secret(msg: &str, has_current: bool) -> anyhow::Result<Option<String>> {
    let help = if has_current {
        "typed characters are masked; Enter alone keeps the current one"
    } else {
        "typed characters are masked"
    };
    let mut p = Password::new(msg)
        .without_confirmation()
        .with_display_mode(PasswordDisplayMode::Masked)
        .with_help_message(help);
    if !has_current {
        p = p.with_validator(not_empty);
    }
    let v = ask(p.prompt())?;
    Ok((!v.is_empty()).then_some(v))
}

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

    sites(draft, roots)?;
    storages(draft, rt)?;
    d1(draft, rt)?;
    smtp(draft)?;

    if let Err(e) = draft.validate(&paths.config) {
        return Err(anyhow::Error::new(e).context("the settings do not validate, nothing written"));
    }
    println!("\nSummary:\n{}\n", draft.summary(paths));
    let write = ask(Confirm::new("Write config.json and .env?")
        .with_default(true)
        .prompt())?;
    Ok(write)
}

fn sites(draft: &mut Draft, roots: &[PathBuf]) -> anyhow::Result<()> {
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

fn storages(draft: &mut Draft, rt: &Runtime) -> anyhow::Result<()> {
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
    }
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

fn d1(draft: &mut Draft, rt: &Runtime) -> anyhow::Result<()> {
    let had = draft.d1().is_some();
    let want = ask(
        Confirm::new("Push the backup log to Cloudflare D1 (a fleet-wide dashboard)?")
            .with_default(had)
            .prompt(),
    )?;
    if !want {
        if had {
            draft.env.set("CF_ACCOUNT_ID", "");
            draft.env.set("D1_DATABASE_ID", "");
        }
        return Ok(());
    }
    loop {
        let get = |k: &str| draft.env.get(k).unwrap_or("").to_string();
        let acct = text("Cloudflare account id:", &get("CF_ACCOUNT_ID"), "")?;
        let db = text("D1 database id:", &get("D1_DATABASE_ID"), "")?;
        let token = secret(
            "API token (D1 Edit permission):",
            draft.env.has("CF_API_TOKEN"),
        )?;
        let base = {
            let b = get("D1_API_BASE");
            text(
                "API address:",
                if b.is_empty() { CLOUDFLARE_API } else { &b },
                "keep Cloudflare's unless you test against a simulator",
            )?
        };
        draft.env.set("CF_ACCOUNT_ID", &acct);
        draft.env.set("D1_DATABASE_ID", &db);
        if let Some(t) = token {
            draft.env.set("CF_API_TOKEN", &t);
        }
        if base != CLOUDFLARE_API || draft.env.has("D1_API_BASE") {
            draft.env.set("D1_API_BASE", &base);
        }
        let Some(cfg) = draft.d1() else { continue };
        match cfg.and_then(|cfg| rt.block_on(probe::d1(&cfg))) {
            Ok(()) => {
                println!("✓ Cloudflare D1: a test query answered");
                draft.checks.insert("d1".into(), Ok("tested".into()));
                return Ok(());
            }
            Err(e) => {
                println!("✗ Cloudflare D1: {e:#}");
                draft.checks.insert("d1".into(), Err(CheckError::D1(e)));
                if !ask(Confirm::new("Change the D1 settings and test again?")
                    .with_default(true)
                    .prompt())?
                {
                    return Ok(());
                }
            }
        }
    }
}

fn smtp(draft: &mut Draft) -> anyhow::Result<()> {
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
