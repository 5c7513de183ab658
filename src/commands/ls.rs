//! `wpbackup ls`: the files inside an archive, streamed from the storage (see
//! [`crate::reader::browse`]), as a table or `--json`.

use super::{Context, Outcome, UsageError};
use crate::app::{open_storages, runtime};
use crate::cli::LsArgs;
use crate::output;
use crate::reader::browse;
use crate::storage::catalog::choose_archive;

pub fn run(ctx: &Context, args: &LsArgs) -> anyhow::Result<Outcome> {
    let choice = super::choice(args.archive.as_deref(), args.at.as_deref())?;
    let env = ctx.env()?;
    // Without config.json, --site names a site found in the quick start's archives.
    let config = ctx.config_for(args.path.as_deref(), &env, args.site.is_some())?;
    let site = match &args.site {
        Some(name) if !ctx.has_config() => super::quick_start_site_name(name)?,
        Some(name) => name.clone(),
        None => config
            .sites
            .first()
            .map(|s| s.name.clone())
            .ok_or_else(|| UsageError("--path gave no site".into()))?,
    };
    let identities = match &args.identity {
        Some(path) => Some(crate::crypt::Identities::load(path)?),
        None => None,
    };
    let storages = open_storages(&config, args.storage.as_deref())?;
    let rt = runtime()?;
    let logdb = ctx.existing_logdb();
    let (key, holders) = choose_archive(&rt, &storages, &config.server_id, &site, &choice)?;
    let st = storages[holders[0]].as_ref();
    let recorded = logdb
        .as_ref()
        .and_then(|db| db.archive_sha256(&key, st.name()).ok().flatten());
    let (entries, source) = browse::list(
        &rt,
        st,
        &key,
        recorded.as_deref(),
        args.under.as_deref(),
        identities.as_ref(),
    )?;
    print(ctx, &key, st.name(), &source, &entries)?;
    if let Some(base) = crate::storage::catalog::parse_key(&key).and_then(|n| n.base)
        && !ctx.quiet
    {
        eprintln!(
            "{key} is a differential archive: it holds what changed since its base of {} UTC (`wpbackup ls --at` that time lists the rest); `restore --only` takes each path from the archive of the chain that holds it",
            base.format("%Y-%m-%d %H:%M:%S")
        );
    }
    Ok(Outcome::Ok)
}

fn print(
    ctx: &Context,
    key: &str,
    storage: &str,
    source: &str,
    entries: &[browse::FileEntry],
) -> anyhow::Result<()> {
    if ctx.json {
        let doc = serde_json::json!({
            "key": key, "storage": storage, "sha256_checked_against": source, "files": entries,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let when = chrono::DateTime::from_timestamp(e.mtime as i64, 0)
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            let path = match &e.link {
                Some(l) => format!("{} -> {l}", e.path),
                None => e.path.clone(),
            };
            vec![
                format!("{} {:04o}", e.kind, e.mode),
                output::human_bytes(e.size),
                when,
                path,
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["KIND", "SIZE", "TIME (UTC)", "PATH"], &rows)
    );
    if !ctx.quiet {
        eprintln!(
            "{key} on {storage}: {} entries, sha256 checked against {source}",
            entries.len()
        );
    }
    Ok(())
}
