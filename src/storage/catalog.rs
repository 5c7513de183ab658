//! The archives that exist: reading keys back into (server, site, time), listing the archives
//! of a prefix on a storage newest first, choosing one (`--archive`, `--at`, newest) and the
//! storages that hold it ([`choose_archive`]), and the
//! sha256 a download must match.
//!
//! Everything here works from the buckets themselves, so that a new server holding only
//! config.json and the credentials can find every archive; backups.db only adds what it knows.

use anyhow::bail;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::storage::{ObjectInfo, Storage, StorageError};

/// What an archive's key says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveName {
    pub server_id: String,
    pub site: String,
    pub created_at: DateTime<Utc>,
    /// A differential archive's base: the time in the key of the archive it holds the changes
    /// since (another archive of the same site and server). `None` for a full archive.
    pub base: Option<DateTime<Utc>>,
}

impl ArchiveName {
    /// `full` or `differential`, as `list` and backups.db say it.
    pub fn kind(&self) -> &'static str {
        if self.base.is_some() {
            "differential"
        } else {
            "full"
        }
    }
}

/// One archive on one storage.
#[derive(Debug, Clone)]
pub struct Listed {
    pub info: ObjectInfo,
    pub name: ArchiveName,
}

/// The object key: `{server_id}/{site}/{site}_{YYYYMMDDTHHMMSSZ}.tar.zst`, with `.age` after
/// it when the archive is encrypted.
pub fn object_key(server_id: &str, site: &str, at: DateTime<Utc>, encrypted: bool) -> String {
    archive_key(server_id, site, at, None, encrypted)
}

/// The key of a full archive (`base` `None`, as [`object_key`]) or of a differential one:
/// `{server_id}/{site}/{site}_{TIME}.diff-{BASE_TIME}.tar.zst[.age]`, where `BASE_TIME` is the
/// time in the key of its base, so a listing alone tells each archive's chain.
pub fn archive_key(
    server_id: &str,
    site: &str,
    at: DateTime<Utc>,
    base: Option<DateTime<Utc>>,
    encrypted: bool,
) -> String {
    format!(
        "{server_id}/{site}/{site}_{}{}.tar.zst{}",
        at.format(STAMP),
        base.map(|b| format!(".diff-{}", b.format(STAMP)))
            .unwrap_or_default(),
        if encrypted {
            crate::crypt::AGE_SUFFIX
        } else {
            ""
        }
    )
}

const STAMP: &str = "%Y%m%dT%H%M%SZ";

/// Parse `{server_id}/{site}/{site}_{YYYYMMDDTHHMMSSZ}.tar.zst` (the shape [`object_key`]
/// writes), the same with `.diff-{YYYYMMDDTHHMMSSZ}` before `.tar.zst` (a differential archive,
/// [`archive_key`]), or either with `.age` after it (an encrypted archive). Anything else
/// (temporaries, other files in the bucket) is `None`.
pub fn parse_key(key: &str) -> Option<ArchiveName> {
    let mut parts = key.split('/');
    let (server_id, site, file) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || server_id.is_empty() || site.is_empty() {
        return None;
    }
    let file = file.strip_suffix(crate::crypt::AGE_SUFFIX).unwrap_or(file);
    let stamp = file
        .strip_prefix(site)?
        .strip_prefix('_')?
        .strip_suffix(".tar.zst")?;
    let (stamp, base) = match stamp.split_once(".diff-") {
        Some((at, base)) => (at, Some(NaiveDateTime::parse_from_str(base, STAMP).ok()?)),
        None => (stamp, None),
    };
    let t = NaiveDateTime::parse_from_str(stamp, STAMP).ok()?;
    let base = base.map(|b| Utc.from_utc_datetime(&b));
    let created_at = Utc.from_utc_datetime(&t);
    if base.is_some_and(|b| b >= created_at) {
        return None;
    }
    Some(ArchiveName {
        server_id: server_id.to_string(),
        site: site.to_string(),
        created_at,
        base,
    })
}

/// The listing prefix of one site's archives (`server/site/`), or of a whole server.
pub fn prefix(server_id: &str, site: Option<&str>) -> String {
    match site {
        Some(site) => format!("{server_id}/{site}/"),
        None => format!("{server_id}/"),
    }
}

/// The archives under `prefix` on `st`, newest first.
pub async fn list(st: &dyn Storage, prefix: &str) -> Result<Vec<Listed>, StorageError> {
    let mut out: Vec<Listed> = st
        .list(prefix)
        .await?
        .into_iter()
        .filter_map(|info| {
            parse_key(&info.key).map(|name| Listed {
                info: info.clone(),
                name,
            })
        })
        .collect();
    sort_newest_first(&mut out);
    Ok(out)
}

pub fn sort_newest_first(v: &mut [Listed]) {
    v.sort_by(|a, b| {
        b.name
            .created_at
            .cmp(&a.name.created_at)
            .then_with(|| a.info.key.cmp(&b.info.key))
    });
}

/// Which archive a restore wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Newest,
    /// The newest at or before this time.
    At(DateTime<Utc>),
    /// This key (or a file name, matched against the keys' last component).
    Key(String),
}

/// The key `choice` picks among `archives` (sorted newest first).
pub fn choose<'a>(archives: &'a [Listed], choice: &Choice) -> Option<&'a Listed> {
    match choice {
        Choice::Newest => archives.first(),
        Choice::At(t) => archives.iter().find(|a| a.name.created_at <= *t),
        Choice::Key(k) => archives.iter().find(|a| a.info.key == *k).or_else(|| {
            archives
                .iter()
                .find(|a| a.info.key.rsplit('/').next() == Some(k))
        }),
    }
}

/// Parse `--at`: RFC 3339 (`2026-11-20T03:00:00Z`), `2026-11-20 03:00[:00]` (UTC), the key's
/// own `20261120T030000Z`, or a bare date `2026-11-20` (meaning the end of that day, UTC).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y%m%dT%H%M%SZ",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(23, 59, 59)
    {
        return Ok(Utc.from_utc_datetime(&t));
    }
    Err(format!(
        "{s:?} is not a time: use 2026-11-20, \"2026-11-20 03:00\" (UTC) or 2026-11-20T03:00:00+01:00"
    ))
}

/// The sha256 a download must have, and where it was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub sha256: String,
    /// `object metadata`, `backups.db`, or both.
    pub source: String,
}

/// Why no sha256 can be trusted for an archive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpectedError {
    #[error(
        "{key}: the object metadata records sha256 {metadata} but backups.db records {logdb}: one of them was changed; check both before trusting this archive"
    )]
    Disagree {
        key: String,
        metadata: String,
        logdb: String,
    },
    #[error(
        "{key}: no sha256 is recorded for it (neither in the object's metadata nor in backups.db), so its integrity cannot be checked; to use it anyway, download it, check it by hand (`tar --zstd -tf`) and restore it as README.md's Restore section describes"
    )]
    Unrecorded { key: String },
}

/// Combine what the object's metadata (`.sha256` beside a local archive) and backups.db say.
/// When both know it they must agree; when neither does, the archive cannot be trusted.
pub fn expected(
    key: &str,
    metadata: Option<&str>,
    logdb: Option<&str>,
) -> Result<Expected, ExpectedError> {
    let clean = |s: Option<&str>| {
        s.map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    match (clean(metadata), clean(logdb)) {
        (Some(m), Some(d)) if m != d => Err(ExpectedError::Disagree {
            key: key.to_string(),
            metadata: m,
            logdb: d,
        }),
        (Some(m), Some(_)) => Ok(Expected {
            sha256: m,
            source: "object metadata and backups.db".into(),
        }),
        (Some(m), None) => Ok(Expected {
            sha256: m,
            source: "object metadata".into(),
        }),
        (None, Some(d)) => Ok(Expected {
            sha256: d,
            source: "backups.db".into(),
        }),
        (None, None) => Err(ExpectedError::Unrecorded {
            key: key.to_string(),
        }),
    }
}

/// The archives under `prefix` on each storage; a storage that cannot be listed is reported.
pub fn list_all(
    rt: &tokio::runtime::Runtime,
    storages: &[Box<dyn Storage>],
    prefix: &str,
) -> (Vec<(usize, Listed)>, Vec<String>) {
    let results = rt.block_on(futures_util::future::join_all(
        storages.iter().map(|st| list(st.as_ref(), prefix)),
    ));
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(v) => found.extend(v.into_iter().map(|l| (i, l))),
            Err(e) => {
                tracing::warn!(storage = storages[i].name(), "cannot list: {e}");
                errors.push(format!("{}: cannot list: {e}", storages[i].name()));
            }
        }
    }
    // Newest first; the same archive on several storages in priority order.
    found.sort_by(|(ia, a), (ib, b)| {
        b.name
            .created_at
            .cmp(&a.name.created_at)
            .then_with(|| a.info.key.cmp(&b.info.key))
            .then_with(|| ia.cmp(ib))
    });
    (found, errors)
}

/// The archive `choice` picks among a site's archives on every storage, and the indexes of
/// the storages that have it; the error says which archives there are.
pub fn choose_archive(
    rt: &tokio::runtime::Runtime,
    storages: &[Box<dyn Storage>],
    server_id: &str,
    site: &str,
    choice: &Choice,
) -> anyhow::Result<(String, Vec<usize>)> {
    let prefix = prefix(server_id, Some(site));
    let (found, errors) = list_all(rt, storages, &prefix);
    let archives: Vec<Listed> = found.iter().map(|(_, l)| l.clone()).collect();
    if let Some(chosen) = choose(&archives, choice) {
        let key = chosen.info.key.clone();
        let holders = found
            .iter()
            .filter(|(_, l)| l.info.key == key)
            .map(|(i, _)| *i)
            .collect();
        return Ok((key, holders));
    }
    // A full key from elsewhere (another server's archive): ask the storages directly.
    if let Choice::Key(k) = choice
        && parse_key(k).is_some()
    {
        let holders: Vec<usize> = (0..storages.len())
            .filter(|i| rt.block_on(storages[*i].head(k)).is_ok())
            .collect();
        if !holders.is_empty() {
            return Ok((k.clone(), holders));
        }
    }
    let mut msg = match choice {
        Choice::Newest => format!("no archive of site {site} on the storages"),
        Choice::At(t) => format!(
            "no archive of site {site} made at or before {} UTC",
            t.format("%Y-%m-%d %H:%M:%S")
        ),
        Choice::Key(k) => format!("archive {k} is not on the storages"),
    };
    if let Some(newest) = archives.first() {
        msg.push_str(&format!(
            " (the oldest is {}, the newest {}: `wpbackup list --site {}`)",
            archives.last().map(|a| a.info.key.as_str()).unwrap_or(""),
            newest.info.key,
            site
        ));
    } else if errors.is_empty() {
        // None at all under this server: a new server with another server_id, as `list` says.
        let others = servers_holding(rt, storages, site);
        if !others.is_empty() {
            msg.push_str(&format!(
                " of server {server_id}; the buckets hold archives of site {site} of server(s) {}: set \"server_id\" in config.json (or SERVER_ID in .env) to that name",
                others.join(", ")
            ));
        }
    }
    if !errors.is_empty() {
        msg.push_str(&format!("; {}", errors.join("; ")));
    }
    bail!("{msg}")
}

/// The servers whose archives of `site` the storages hold (every key is listed: only asked
/// when this server has none).
fn servers_holding(
    rt: &tokio::runtime::Runtime,
    storages: &[Box<dyn Storage>],
    site: &str,
) -> Vec<String> {
    let (all, _) = list_all(rt, storages, "");
    let mut servers: Vec<String> = all
        .into_iter()
        .filter(|(_, l)| l.name.site == site)
        .map(|(_, l)| l.name.server_id)
        .collect();
    servers.sort();
    servers.dedup();
    servers
}

/// True when `key` (relative to the storage's prefix) is an archive key of `server_id`: what
/// a run may remove of what a killed run left ([`super::leftovers`]).
pub fn is_ours(key: &str, server_id: &str) -> bool {
    parse_key(key).is_some_and(|n| n.server_id == server_id)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn only_this_servers_archive_keys_are_ours() {
        let key = "srv/blog/blog_20260101T030000Z.tar.zst";
        assert!(is_ours(key, "srv"));
        assert!(is_ours("srv/blog/blog_20260101T030000Z.tar.zst.age", "srv"));
        assert!(!is_ours(key, "other"));
        assert!(!is_ours("srv/blog/notes.txt", "srv"));
        assert!(!is_ours("srv/blog_20260101T030000Z.tar.zst", "srv"));
        assert!(!is_ours("x/srv/blog/blog_20260101T030000Z.tar.zst", "srv"));
    }

    #[test]
    fn key_format() {
        let t = Utc.with_ymd_and_hms(2026, 11, 24, 3, 4, 5).unwrap();
        assert_eq!(
            object_key("web-01", "example.com", t, false),
            "web-01/example.com/example.com_20261124T030405Z.tar.zst"
        );
        assert_eq!(
            object_key("web-01", "example.com", t, true),
            "web-01/example.com/example.com_20261124T030405Z.tar.zst.age"
        );
    }

    /// `key` as a listing of one byte would give it (tests of this and other modules).
    pub(crate) fn listed(key: &str) -> Listed {
        Listed {
            info: ObjectInfo {
                key: key.into(),
                size: 1,
                last_modified: None,
                sha256: None,
            },
            name: parse_key(key).unwrap(),
        }
    }

    #[test]
    fn keys() {
        let n = parse_key("web-01/blog/blog_20261124T030405Z.tar.zst").unwrap();
        assert_eq!(n.server_id, "web-01");
        assert_eq!(n.site, "blog");
        assert_eq!(n.created_at.to_rfc3339(), "2026-11-24T03:04:05+00:00");
        assert_eq!(
            object_key("web-01", "blog", n.created_at, false),
            "web-01/blog/blog_20261124T030405Z.tar.zst"
        );
        let e = parse_key("web-01/blog/blog_20261124T030405Z.tar.zst.age").unwrap();
        assert_eq!(e, n);
        assert_eq!(n.kind(), "full");
        let d = parse_key("web-01/blog/blog_20261124T030405Z.diff-20261120T010203Z.tar.zst.age")
            .unwrap();
        assert_eq!(d.created_at, n.created_at);
        assert_eq!(d.base.unwrap().to_rfc3339(), "2026-11-20T01:02:03+00:00");
        assert_eq!(d.kind(), "differential");
        assert_eq!(
            archive_key("web-01", "blog", d.created_at, d.base, true),
            "web-01/blog/blog_20261124T030405Z.diff-20261120T010203Z.tar.zst.age"
        );
        for bad in [
            "web-01/blog/other_20261124T030405Z.tar.zst",
            "web-01/blog/blog_20261124T030405Z.tar.zst.sha256",
            "web-01/blog/blog_20261124T030405Z.tar.zst.age.sha256",
            "web-01/blog/blog_20261124T030405Z.age",
            "web-01/blog/.blog_20261124T030405Z.tar.zst.partial-1",
            "blog/blog_20261124T030405Z.tar.zst",
            "a/web-01/blog/blog_20261124T030405Z.tar.zst",
            "web-01/blog/blog_2026.tar.zst",
            "web-01/blog/blog_20261124T030405Z.diff-.tar.zst",
            "web-01/blog/blog_20261124T030405Z.diff-20261124T030405Z.tar.zst",
        ] {
            assert_eq!(parse_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn choosing() {
        let mut v = vec![
            listed("s/a/a_20260101T000000Z.tar.zst"),
            listed("s/a/a_20260301T000000Z.tar.zst"),
            listed("s/a/a_20260201T000000Z.tar.zst"),
        ];
        sort_newest_first(&mut v);
        let key = |c: &Choice| choose(&v, c).map(|l| l.info.key.clone());
        assert_eq!(
            key(&Choice::Newest).as_deref(),
            Some("s/a/a_20260301T000000Z.tar.zst")
        );
        let at = parse_time("2026-02-15").unwrap();
        assert_eq!(
            key(&Choice::At(at)).as_deref(),
            Some("s/a/a_20260201T000000Z.tar.zst")
        );
        // "At or before": the exact time counts.
        let at = parse_time("20260201T000000Z").unwrap();
        assert_eq!(
            key(&Choice::At(at)).as_deref(),
            Some("s/a/a_20260201T000000Z.tar.zst")
        );
        let at = parse_time("2025-12-31 23:00").unwrap();
        assert_eq!(key(&Choice::At(at)), None);
        assert_eq!(
            key(&Choice::Key("a_20260101T000000Z.tar.zst".into())).as_deref(),
            Some("s/a/a_20260101T000000Z.tar.zst")
        );
        assert_eq!(key(&Choice::Key("s/a/nope.tar.zst".into())), None);
    }

    #[test]
    fn times() {
        let want = "2026-11-20T03:00:00+00:00";
        for s in [
            "2026-11-20T03:00:00Z",
            "2026-11-20T04:00:00+01:00",
            "2026-11-20 03:00",
            "2026-11-20 03:00:00",
            "20261120T030000Z",
        ] {
            assert_eq!(parse_time(s).unwrap().to_rfc3339(), want, "{s}");
        }
        assert_eq!(
            parse_time("2026-11-20").unwrap().to_rfc3339(),
            "2026-11-20T23:59:59+00:00"
        );
        assert!(parse_time("yesterday").unwrap_err().contains("not a time"));
    }

    #[test]
    fn expected_sha() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        assert_eq!(
            expected("k", Some(&a), None).unwrap().source,
            "object metadata"
        );
        assert_eq!(expected("k", None, Some(&b)).unwrap().sha256, b);
        assert_eq!(
            expected("k", Some(&a.to_uppercase()), Some(&a))
                .unwrap()
                .sha256,
            a
        );
        assert!(
            expected("k", Some(&a), Some(&b))
                .unwrap_err()
                .to_string()
                .contains("was changed")
        );
        assert!(
            expected("k", None, Some("short"))
                .unwrap_err()
                .to_string()
                .contains("no sha256 is recorded")
        );
    }
}
