//! `verify`'s mechanics: which archives to check (`--archive` on every storage that has it, or
//! the newest, or every, archive of each site on each storage), and checking one end to end
//! without restoring it: stream it down, compare its sha256 with the recorded one, decompress
//! and read every tar entry, and hold `manifest.json` against the contents and `database.sql`
//! for completeness. Each result is recorded in `backup_log` (action `verify`).

use std::time::Instant;

use chrono::Utc;
use serde::Serialize;

use crate::crypt::Identities;
use crate::error::UsageError;
use crate::logdb::{LogDb, LogEntry, Status};
use crate::output;
use crate::reader::{fetch, unpack};
use crate::sign::Trust;
use crate::storage::Storage;
use crate::storage::catalog::{self, Listed, list_all};

/// The result of checking one archive on one storage (or of finding nothing to check).
#[derive(Debug, Serialize)]
pub struct Checked {
    pub site: String,
    pub storage: Option<String>,
    pub key: Option<String>,
    pub ok: bool,
    pub details: String,
    pub duration_secs: f64,
    /// Refused for its signature (or for being plaintext where archives are encrypted): the
    /// command exits 2.
    #[serde(skip)]
    pub untrusted: bool,
}

/// Everything wrong with an archive; `untrusted` when its signature (or a base's) was refused.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct Unsound {
    pub problems: Vec<String>,
    pub untrusted: bool,
}

impl Unsound {
    fn of(problems: Vec<String>) -> Unsound {
        Unsound {
            problems,
            untrusted: false,
        }
    }
}

/// Which archives to verify.
pub enum Selection {
    /// This key, or a bare `{site}_{time}.tar.zst` under this server's site prefix.
    Archive(String),
    /// The newest archive of each of these sites on each storage, or every one (`all`).
    Sites { sites: Vec<String>, all: bool },
}

/// What to verify.
#[derive(Default)]
pub struct Targets {
    /// (storage index, archive) pairs.
    pub archives: Vec<(usize, Listed)>,
    /// The failures of finding them: a site with nothing to verify, a storage that cannot be
    /// listed, an archive on no storage.
    pub missing: Vec<Checked>,
}

/// The archives `selection` names.
pub fn targets(
    rt: &tokio::runtime::Runtime,
    storages: &[Box<dyn Storage>],
    server: &str,
    selection: &Selection,
) -> Result<Targets, UsageError> {
    match selection {
        Selection::Archive(wanted) => archive_targets(rt, storages, server, wanted),
        Selection::Sites { sites, all } => Ok(site_targets(rt, storages, server, sites, *all)),
    }
}

fn archive_targets(
    rt: &tokio::runtime::Runtime,
    storages: &[Box<dyn Storage>],
    server: &str,
    wanted: &str,
) -> Result<Targets, UsageError> {
    let key = if wanted.contains('/') {
        wanted.to_string()
    } else {
        // A bare file name: `{site}_{time}.tar.zst` lives under this server's site prefix.
        let site = wanted.rsplit_once('_').map(|(s, _)| s).unwrap_or(wanted);
        format!("{}{wanted}", catalog::prefix(server, Some(site)))
    };
    let Some(name) = catalog::parse_key(&key) else {
        return Err(UsageError(format!(
            "--archive {wanted}: not an archive key (server/site/site_YYYYMMDDTHHMMSSZ.tar.zst)"
        )));
    };
    let mut targets = Vec::new();
    for (i, st) in storages.iter().enumerate() {
        if let Ok(info) = rt.block_on(st.head(&key)) {
            let name = name.clone();
            targets.push((i, Listed { info, name }));
        }
    }
    let mut results = Vec::new();
    if targets.is_empty() {
        results.push(missing(&name.site, format!("{key} is on no storage")));
    }
    Ok(Targets {
        archives: targets,
        missing: results,
    })
}

fn site_targets(
    rt: &tokio::runtime::Runtime,
    storages: &[Box<dyn Storage>],
    server: &str,
    sites: &[String],
    all: bool,
) -> Targets {
    let mut targets = Vec::new();
    let mut results = Vec::new();
    let (found, errors) = list_all(rt, storages, &catalog::prefix(server, None));
    for e in errors {
        results.push(missing("*", e));
    }
    for site in sites {
        let mut any = false;
        for (i, _) in storages.iter().enumerate() {
            let mine = found
                .iter()
                .filter(|(j, l)| *j == i && l.name.site == *site);
            for (_, l) in mine.take(if all { usize::MAX } else { 1 }) {
                targets.push((i, l.clone()));
                any = true;
            }
        }
        if !any {
            results.push(missing(
                site,
                "no archive of this site on any storage".into(),
            ));
        }
    }
    Targets {
        archives: targets,
        missing: results,
    }
}

fn missing(site: &str, details: String) -> Checked {
    Checked {
        site: site.to_string(),
        storage: None,
        key: None,
        ok: false,
        details,
        duration_secs: 0.0,
        untrusted: false,
    }
}

/// Check each of `targets`, logging each result as it comes, until a SIGTERM or SIGINT (the
/// check it cut short has no result).
pub fn check(
    rt: &tokio::runtime::Runtime,
    storages: &[Box<dyn Storage>],
    targets: &[(usize, Listed)],
    db: &LogDb,
    identities: Option<&Identities>,
    trust: &Trust,
) -> Vec<Checked> {
    let mut results = Vec::new();
    for (i, listed) in targets {
        let st = storages[*i].as_ref();
        let started = Instant::now();
        let (ok, details, untrusted) = match verify_one(rt, st, listed, db, identities, trust) {
            Ok(d) => (true, d, false),
            // Cut short by SIGTERM or SIGINT: no verdict on the archive, and no more checks.
            Err(_) if crate::interrupt::received().is_some() => break,
            Err(e) => (false, e.to_string(), e.untrusted),
        };
        if ok {
            tracing::info!(storage = st.name(), "{}: {details}", listed.info.key);
        } else {
            tracing::error!(storage = st.name(), "{}: {details}", listed.info.key);
        }
        results.push(Checked {
            site: listed.name.site.clone(),
            storage: Some(st.name().to_string()),
            key: Some(listed.info.key.clone()),
            ok,
            details,
            duration_secs: started.elapsed().as_secs_f64(),
            untrusted,
        });
    }
    results
}

/// Check one archive on one storage: a summary, or everything wrong with it.
pub fn verify_one(
    rt: &tokio::runtime::Runtime,
    st: &dyn Storage,
    listed: &Listed,
    db: &LogDb,
    identities: Option<&Identities>,
    trust: &Trust,
) -> Result<String, Unsound> {
    verify_pinned(rt, st, listed, db, identities, trust, None)
}

/// [`verify_one`], with the sha256 a differential archive's manifest names for it (a base).
/// A differential archive's bases are checked in turn, as a restore of it would need them.
fn verify_pinned(
    rt: &tokio::runtime::Runtime,
    st: &dyn Storage,
    listed: &Listed,
    db: &LogDb,
    identities: Option<&Identities>,
    trust: &Trust,
    pinned: Option<&str>,
) -> Result<String, Unsound> {
    let key = &listed.info.key;
    let mut problems = Vec::new();
    let metadata = match rt.block_on(crate::interrupt::until(st.head(key))) {
        Ok(Ok(h)) => h.sha256,
        Ok(Err(e)) => return Err(Unsound::of(vec![format!("cannot read its metadata: {e}")])),
        Err(stop) => return Err(Unsound::of(vec![stop.to_string()])),
    };
    let recorded = db.archive_sha256(key, st.name()).ok().flatten();
    let expected = catalog::expected(key, metadata.as_deref(), recorded.as_deref());
    let (name, ids) = (key.clone(), identities.cloned());
    let recorded = expected.as_ref().ok().map(|e| e.sha256.as_str()).or(pinned);
    let (contents, fetched) = fetch::stream_trusted(rt, st, key, trust, recorded, move |r| {
        let r = crate::crypt::open(r, &name, ids.as_ref())?;
        unpack::read(r, unpack::Options::default())
    })
    .map_err(|e| match e {
        fetch::Rejected::Untrusted(e) => Unsound {
            problems: vec![e.to_string()],
            untrusted: true,
        },
        fetch::Rejected::Storage(e) => Unsound::of(vec![format!("download failed: {e}")]),
    })?;
    problems.extend(sha_problems(&expected, &fetched, pinned));
    let contents = match contents {
        Ok(c) => c,
        Err(e) => {
            problems.push(format!("cannot read the archive: {e:#}"));
            return Err(Unsound::of(problems));
        }
    };
    problems.extend(contents.problems());
    if let Some(m) = &contents.manifest
        && m.site != listed.name.site
    {
        problems.push(format!(
            "manifest.json names site {:?}, the key site {:?}",
            m.site, listed.name.site
        ));
    }
    let chain = match contents.manifest.as_ref().and_then(|m| m.base()) {
        Some(base) => match verify_base(rt, st, base, db, identities, trust) {
            Ok(summary) => summary,
            Err(u) if u.untrusted => return Err(u),
            Err(u) => {
                problems.extend(u.problems);
                String::new()
            }
        },
        None => String::new(),
    };
    if !problems.is_empty() {
        return Err(Unsound::of(problems));
    }
    let db_bytes = contents.database.as_ref().map(|d| d.bytes).unwrap_or(0);
    let parent = if contents.parent_wp_config.is_some() {
        format!(", {} as listed", crate::manifest::PARENT_WP_CONFIG)
    } else {
        String::new()
    };
    Ok(format!(
        "ok: signature and sha256 match ({}), {} files ({}){parent}, database.sql {} complete",
        expected.map(|e| e.source).unwrap_or_default(),
        contents.file_count,
        output::human_bytes(contents.bytes),
        output::human_bytes(db_bytes)
    ) + &chain)
}

/// What is wrong with a download's sha256: against the one recorded (needed unless `pinned`,
/// the one a differential archive names for its base, stands in) and against `pinned`.
fn sha_problems(
    expected: &Result<catalog::Expected, catalog::ExpectedError>,
    fetched: &fetch::Fetched,
    pinned: Option<&str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    match &expected {
        Ok(e) if e.sha256 != fetched.sha256 => problems.push(format!(
            "sha256 mismatch: the stored object ({} bytes) has sha256 {} but the sha256 recorded in {} is {}",
            fetched.size, fetched.sha256, e.source, e.sha256
        )),
        Ok(_) => {}
        Err(e) if pinned.is_none() => problems.push(e.to_string()),
        Err(_) => {}
    }
    if let Some(p) = pinned.filter(|p| !p.eq_ignore_ascii_case(&fetched.sha256)) {
        problems.push(format!(
            "sha256 mismatch: the stored object has sha256 {} but the differential archive built on it names {p}",
            fetched.sha256
        ));
    }
    problems
}

/// A differential archive's base on the same storage, checked whole: `; base KEY ok` (and its
/// own base's), or what is wrong with it.
fn verify_base(
    rt: &tokio::runtime::Runtime,
    st: &dyn Storage,
    base: &crate::manifest::Base,
    db: &LogDb,
    identities: Option<&Identities>,
    trust: &Trust,
) -> Result<String, Unsound> {
    let unsound = |why: String| Unsound::of(vec![format!("its base {}: {why}", base.key)]);
    let Some(name) = catalog::parse_key(&base.key) else {
        return Err(unsound("not the key of an archive".into()));
    };
    let info = match rt.block_on(crate::interrupt::until(st.head(&base.key))) {
        Ok(Ok(info)) => info,
        Ok(Err(e)) => {
            return Err(unsound(format!(
                "not on {} ({e}): this restore point cannot be restored",
                st.name()
            )));
        }
        Err(stop) => return Err(Unsound::of(vec![stop.to_string()])),
    };
    let listed = Listed { info, name };
    match verify_pinned(rt, st, &listed, db, identities, trust, Some(&base.sha256)) {
        Ok(_) => Ok(format!("; base {} ok", base.key)),
        Err(u) => Err(Unsound {
            problems: u
                .problems
                .into_iter()
                .map(|why| format!("its base {}: {why}", base.key))
                .collect(),
            untrusted: u.untrusted,
        }),
    }
}

/// Record each result in backups.db (a failure to record is logged, not fatal).
pub fn record(db: &LogDb, server: &str, results: &[Checked]) {
    for r in results {
        let logged = db.log(&LogEntry {
            timestamp: Utc::now(),
            status: if r.ok { Status::Success } else { Status::Error },
            details: &r.details,
            site_name: &r.site,
            server_id: server,
            action: "verify",
            storage_name: r.storage.as_deref(),
            archive_key: r.key.as_deref(),
            duration_secs: Some(r.duration_secs),
        });
        if let Err(e) = logged {
            tracing::error!("cannot record the result in backups.db: {e:#}");
        }
    }
}
