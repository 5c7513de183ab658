//! `wpbackup ls`: the files of a restore point (an archive, and a differential's bases),
//! streamed from the storage (see [`crate::reader::browse`]), as a table or `--json`.

use std::io::Write;

use serde::Serialize;

use super::{Context, Outcome, UsageError};
use crate::app::{open_storages, runtime};
use crate::cli::LsArgs;
use crate::output;
use crate::reader::browse::{self, FileEntry, Listed};
use crate::storage::catalog::{self, choose_archive};

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
    let trust = ctx.trust(&config, &args.trust)?;
    let storages = open_storages(&config, args.storage.as_deref())?;
    let rt = runtime()?;
    let logdb = ctx.existing_logdb();
    let (key, holders) = choose_archive(&rt, &storages, &config.server_id, &site, &choice)?;
    let st = storages[holders[0]].as_ref();
    let recorded = logdb
        .as_ref()
        .and_then(|db| db.archive_sha256(&key, st.name()).ok().flatten());
    let listed = browse::list(
        &rt,
        st,
        logdb.as_ref(),
        &browse::Request {
            key: &key,
            recorded: recorded.as_deref(),
            under: args.under.as_deref(),
            identities: identities.as_ref(),
            trust: &trust,
            changes: args.changes,
            database_to: None,
        },
    )?;
    print(ctx, &key, st.name(), &listed)?;
    if ctx.quiet {
        return Ok(Outcome::Ok);
    }
    let differential = catalog::parse_key(&key).and_then(|n| n.base).is_some();
    if differential && args.changes {
        eprintln!(
            "{key} is a differential archive: listed are what it holds itself (new and changed files, every directory and symlink) and the paths deleted since its base; without --changes, the whole restore point"
        );
    } else if differential {
        eprintln!(
            "{key} is a differential archive: listed with its bases ({}), as a restore makes the site of them; FROM is the archive each path comes from (--changes: only its own changes)",
            listed.archives[1..].join(", ")
        );
    }
    Ok(Outcome::Ok)
}

/// The time in an archive's key (`20261101T030000Z`), what FROM shows; the key itself when it
/// has none.
fn stamp(key: &str) -> String {
    match catalog::parse_key(key) {
        Some(n) => n.created_at.format("%Y%m%dT%H%M%SZ").to_string(),
        None => key.to_string(),
    }
}

/// One file of `--json`: the entry and the key of the archive it comes from.
#[derive(Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    entry: &'a FileEntry,
    from: &'a str,
}

/// `files` of `--json`, written as they are read (no copy of the listing).
struct Files<'a>(&'a Listed);

impl Serialize for Files<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let keys = &self.0.archives;
        s.collect_seq(self.0.entries.iter().map(|entry| Row {
            entry,
            from: keys.get(entry.archive).map_or("", String::as_str),
        }))
    }
}

#[derive(Serialize)]
struct Doc<'a> {
    key: &'a str,
    storage: &'a str,
    sha256_checked_against: &'a str,
    /// The archives listed: `key`, then its bases, newest first.
    restore_point: &'a [String],
    files: Files<'a>,
    /// With --changes, the paths a differential records as deleted since its base.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    deleted: &'a [String],
}

fn print(ctx: &Context, key: &str, storage: &str, listed: &Listed) -> anyhow::Result<()> {
    if ctx.json {
        let doc = Doc {
            key,
            storage,
            sha256_checked_against: &listed.source,
            restore_point: &listed.archives,
            files: Files(listed),
            deleted: &listed.deleted,
        };
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(());
    }
    let stamps: Vec<String> = listed.archives.iter().map(|k| stamp(k)).collect();
    let mut rows: Vec<Vec<String>> = listed
        .entries
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
                stamps.get(e.archive).cloned().unwrap_or_default(),
                path,
            ]
        })
        .collect();
    for path in &listed.deleted {
        let dash = || "-".to_string();
        rows.push(vec![
            "deleted".into(),
            dash(),
            dash(),
            stamps.first().cloned().unwrap_or_default(),
            path.clone(),
        ]);
    }
    // Names come from the site: the table shows their control characters escaped.
    print!(
        "{}",
        output::table(&["KIND", "SIZE", "TIME (UTC)", "FROM", "PATH"], &rows)
    );
    if !ctx.quiet {
        let checked = if listed.archives.len() > 1 {
            format!(
                "{} archives, each sha256 checked ({key}'s against {})",
                listed.archives.len(),
                listed.source
            )
        } else {
            format!("sha256 checked against {}", listed.source)
        };
        eprintln!(
            "{key} on {storage}: {} entries; {checked}",
            listed.entries.len()
        );
    }
    Ok(())
}
