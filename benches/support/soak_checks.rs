//! The soak's invariants (issue 15 item 3), checked after every run: a row per site, every
//! recorded archive whole on its storage and verifiable, no upload left open, no temporary
//! file, staging directory or defaults file left, and backups.db intact.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Where the soak's runs leave things.
pub struct Places {
    pub home: PathBuf,
    pub tmp: PathBuf,
    pub bucket_roots: Vec<(String, PathBuf)>,
    pub s3_roots: Vec<(String, PathBuf)>,
    pub site_parents: Vec<PathBuf>,
    pub sites: Vec<String>,
}

/// What a run's checks found.
#[derive(Default)]
pub struct Found {
    pub broken: Vec<String>,
    pub archives_verified: usize,
    pub expected_leftovers: usize,
    /// The fault struck while the run was going (or was in place before it).
    pub struck: bool,
    /// The run's backup_log statuses, one per row.
    pub statuses: Vec<String>,
    /// The storages that took the run's archives, one per archive.
    pub landed: Vec<String>,
    pub took: std::time::Duration,
}

/// The highest ids of `backup_log` and `s3_archives` before a run.
pub fn marks(home: &Path) -> (i64, i64) {
    let Ok(conn) = rusqlite::Connection::open(home.join("backups.db")) else {
        return (0, 0);
    };
    let max = |table: &str| -> i64 {
        conn.query_row(
            &format!("SELECT COALESCE(MAX(id), 0) FROM {table}"),
            [],
            |r| r.get(0),
        )
        .unwrap_or(0)
    };
    (max("backup_log"), max("s3_archives"))
}

/// (site, status, storage, archive key, whether s3_archives records that archive there).
type LogRow = (String, String, Option<String>, Option<String>, bool);

fn new_rows(home: &Path, after: i64) -> rusqlite::Result<Vec<LogRow>> {
    let conn = rusqlite::Connection::open(home.join("backups.db"))?;
    let mut stmt = conn.prepare(
        "SELECT site_name, status, storage_name, archive_key,
                EXISTS (SELECT 1 FROM s3_archives a
                        WHERE a.filename = b.archive_key AND a.storage_name = b.storage_name)
         FROM backup_log b WHERE id > ?1",
    )?;
    stmt.query_map([after], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })?
    .collect()
}

type ArchiveRow = (String, String, i64, String);

/// `s3_archives` rows after `after`: (filename, storage, size, sha256).
pub fn new_archives(home: &Path, after: i64) -> rusqlite::Result<Vec<ArchiveRow>> {
    let conn = rusqlite::Connection::open(home.join("backups.db"))?;
    let mut stmt = conn.prepare(
        "SELECT filename, storage_name, file_size, COALESCE(sha256, '') FROM s3_archives WHERE id > ?1",
    )?;
    stmt.query_map([after], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?
    .collect()
}

/// Every site has a row for the run; with `clean`, each says SUCCESS or WARNING.
pub fn rows(p: &Places, after: i64, clean: bool, found: &mut Found) {
    let rows = match new_rows(&p.home, after) {
        Ok(rows) => rows,
        Err(e) => return found.broken.push(format!("backup_log unreadable: {e}")),
    };
    found.statuses = rows.iter().map(|r| r.1.clone()).collect();
    for site in &p.sites {
        let mine: Vec<&LogRow> = rows.iter().filter(|r| &r.0 == site).collect();
        if mine.is_empty() {
            found.broken.push(format!("site {site}: no backup_log row"));
        } else if clean && !mine.iter().all(|r| r.1 == "SUCCESS" || r.1 == "WARNING") {
            found
                .broken
                .push(format!("site {site}: clean run not successful: {mine:?}"));
        }
    }
    for r in rows.iter().filter(|r| r.1 == "SUCCESS" || r.1 == "WARNING") {
        if r.3.is_none() || r.2.is_none() || !r.4 {
            found
                .broken
                .push(format!("{} row without a recorded archive: {r:?}", r.1));
        }
    }
}

/// The backup_log and s3_archives rows that name `key`, for a report.
pub fn rows_of(home: &Path, key: &str) -> String {
    let Ok(conn) = rusqlite::Connection::open(home.join("backups.db")) else {
        return String::new();
    };
    let mut out = String::new();
    let queries = [
        "SELECT id || ' ' || timestamp || ' ' || status || ' ' || COALESCE(storage_name, '') || ' ' || details FROM backup_log WHERE archive_key = ?1 OR details LIKE '%' || ?1 || '%'",
        "SELECT 's3_archives ' || id || ' ' || storage_name || ' ' || file_size FROM s3_archives WHERE filename = ?1",
    ];
    for sql in queries {
        if let Ok(mut stmt) = conn.prepare(sql) {
            let rows = stmt.query_map([key], |r| r.get::<_, String>(0));
            for row in rows.into_iter().flatten().flatten() {
                out.push_str(&format!("      {row}\n"));
            }
        }
    }
    out
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Each archive recorded exists on its storage with its recorded size and sha256; with
/// `verify`, `wpbackup verify` also checks it end to end (tar entries, manifest, dump).
pub fn archives(
    p: &Places,
    rows: &[ArchiveRow],
    verify: &dyn Fn(&str, &str) -> Result<(), String>,
    found: &mut Found,
) {
    for (key, storage, size, sha) in rows {
        let kind = if key.contains(".diff-") {
            "differential"
        } else {
            "full"
        };
        found.landed.push(format!("{storage} {kind}"));
        let Some((_, root)) = p.bucket_roots.iter().find(|(n, _)| n == storage) else {
            found
                .broken
                .push(format!("{key}: unknown storage {storage}"));
            continue;
        };
        let path = root.join(key);
        let on_disk = std::fs::metadata(&path).map(|m| m.len() as i64);
        if on_disk.as_ref().ok() != Some(size) {
            found.broken.push(format!(
                "{storage}/{key}: size {on_disk:?}, recorded {size}"
            ));
            continue;
        }
        match sha256_file(&path) {
            Ok(h) if &h == sha => {}
            other => found
                .broken
                .push(format!("{storage}/{key}: sha256 {other:?}, recorded {sha}")),
        }
        match verify(key, storage) {
            Ok(()) => found.archives_verified += 1,
            Err(e) => found
                .broken
                .push(format!("{storage}/{key}: verify failed: {e}")),
        }
    }
}

/// Unfinished multipart uploads on the S3 servers (s3s-fs keeps `.upload*` files in its root).
pub fn open_uploads(p: &Places) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (name, root) in &p.s3_roots {
        for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            if file.starts_with(".upload") {
                out.insert(format!("{name}:{file}"));
            }
        }
    }
    out
}

/// Files a run left where it must not: in its TMPDIR, defaults files anywhere in the home,
/// staging directories beside the sites, partial files in the local storage.
pub fn leftovers(p: &Places) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(&p.tmp).into_iter().flatten().flatten() {
        out.push(format!("TMPDIR: {}", e.path().display()));
    }
    for parent in &p.site_parents {
        for e in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !p.sites.contains(&name) {
                out.push(format!("beside the sites: {}", e.path().display()));
            }
        }
    }
    let mut stack = vec![p.home.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if name.starts_with("wpbackup-my-")
                || name.contains(".partial-")
                || name.starts_with(".index-")
            {
                out.push(format!("left file: {}", path.display()));
            }
        }
    }
    out
}

/// Remove what a killed run could not (as a reboot empties /tmp).
pub fn clear_tmp(p: &Places) {
    for e in std::fs::read_dir(&p.tmp).into_iter().flatten().flatten() {
        let path = e.path();
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}

/// `PRAGMA integrity_check` of backups.db.
pub fn integrity(home: &Path, found: &mut Found) {
    let result = rusqlite::Connection::open(home.join("backups.db"))
        .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)));
    match result {
        Ok(text) if text == "ok" => {}
        other => found
            .broken
            .push(format!("backups.db integrity_check: {other:?}")),
    }
}

/// `wpbackup ARGS` with the soak's home; Ok or the end of its output.
pub fn wpbackup_ok(
    home: &Path,
    tmp: &Path,
    args: &[&str],
    env: &[(&str, &Path)],
) -> Result<(), String> {
    let mut cmd = Command::new(crate::util::bin());
    cmd.arg("--home").arg(home).args(args).env("TMPDIR", tmp);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = text.lines().rev().take(6).collect();
        Err(format!("{:?}: {}", out.status.code(), tail.join(" | ")))
    }
}
