//! The mechanics of restoring one archive, in the order that keeps a failed restore from
//! leaving a half-site: download, unpacking into a new sibling directory as the bytes arrive,
//! and check both the sha256 of the download and the contents against the manifest
//! ([`fetch_and_stage`]); only then move the live directory aside (kept, named with the time)
//! and the new one into its place ([`swap_into_place`]). Also: which credentials reach the database
//! ([`credentials`]) and the rewrite of a restored `wp-config.php` that must point at another
//! database, directory or address ([`rewrite_wp_config_file`]: never through a symlink).
//!
//! The pipeline that decides what to restore is `restore/mod.rs`; the database work is
//! `restore/database.rs`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tempfile::NamedTempFile;

use crate::config::{DatabaseConfig, SiteConfig, Timeouts};
use crate::logdb::LogDb;
use crate::restore::fetch;
use std::sync::{Arc, Mutex};

use crate::restore::unpack::{self, Chain, Contents};
use crate::site::wpconfig;
use crate::storage::Storage;
use crate::storage::catalog::Expected;

/// A restore point whose archives' sha256 matched, unpacked beside its target.
pub struct Fetched {
    pub staged: Staged,
    pub storage: String,
    pub expected: Expected,
    /// Bytes downloaded (the stored objects' sizes).
    pub size: u64,
    /// The bases unpacked after the archive itself (a differential's), newest first.
    pub bases: Vec<String>,
}

/// What to unpack an archive into.
#[derive(Clone)]
pub struct StageTo {
    /// The site directory the files will replace: `files/` is unpacked beside it. `None`
    /// when no files are restored.
    pub files_target: Option<PathBuf>,
    /// Extract `database.sql` into a private temporary file in `tmp_dir`.
    pub database: bool,
    pub tmp_dir: PathBuf,
    /// The time in the staging directory's name.
    pub stamp: String,
    pub identities: Option<crate::crypt::Identities>,
}

/// Download `key` from the first of `storages` that has an intact copy, unpacking it while it
/// arrives ([`stage`]) and hashing every byte ([`fetch::first_intact`]): nothing may be
/// replaced by an archive that turns out to be damaged, and nothing live is touched here. No
/// compressed copy is kept on disk. A differential archive's bases follow, newest first, from
/// the storage it came from (a differential is only ever stored beside its base), each with
/// the sha256 its successor's manifest names ([`unpack::Chain`]).
pub fn fetch_and_stage(
    rt: &tokio::runtime::Runtime,
    key: &str,
    storages: &[&dyn Storage],
    logdb: Option<&LogDb>,
    to: &StageTo,
) -> anyhow::Result<Fetched> {
    let chain = Arc::new(Mutex::new(Chain::default()));
    let (owned_key, owned_to, c) = (key.to_string(), to.clone(), chain.clone());
    let got = fetch::first_intact(rt, key, storages, logdb, None, move |reader| {
        // A copy refused after unpacking leaves nothing: its staging directory goes with it.
        *lock(&c) = Chain::default();
        stage(reader, &owned_key, &owned_to, Some(&mut lock(&c)))
    })?;
    let mut fetched = Fetched {
        staged: got.value,
        storage: got.storage,
        expected: got.expected,
        size: got.size,
        bases: Vec::new(),
    };
    let first = fetched
        .staged
        .contents
        .manifest
        .as_ref()
        .and_then(|m| m.differential.clone());
    if let Some(d) = &first {
        lock(&chain).want(&d.paths);
    }
    let (dir, ids) = (
        fetched.staged.staging.as_ref().map(|s| s.dir.clone()),
        to.identities.clone(),
    );
    let c = chain.clone();
    let bases = fetch::bases(
        rt,
        key,
        storages,
        &fetched.storage,
        logdb,
        first.map(|d| d.base),
        move |r, key| {
            let contents = stage_base(r, key, dir.as_deref(), ids.as_ref(), &mut lock(&c))?;
            let its_base = contents.manifest.as_ref().and_then(|m| m.base().cloned());
            Ok((contents, its_base))
        },
    )?;
    for b in bases {
        fetched.size += b.size;
        fetched.bases.push(b.key);
        if fetched.staged.contents.wp_config.is_none() {
            fetched.staged.contents.wp_config = b.value.wp_config;
        }
    }
    let chain = std::mem::take(&mut *lock(&chain));
    chain.finish()?;
    Ok(fetched)
}

fn lock(c: &Mutex<Chain>) -> std::sync::MutexGuard<'_, Chain> {
    c.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Unpack one base of a restore point (read from `archive`, stored under `key`) into `dir`,
/// the staging directory of its newest archive; its contents, checked against its manifest.
fn stage_base(
    archive: &mut dyn std::io::Read,
    key: &str,
    dir: Option<&Path>,
    identities: Option<&crate::crypt::Identities>,
    chain: &mut Chain,
) -> anyhow::Result<Contents> {
    let contents = unpack::read(
        crate::crypt::open(archive, key, identities)?,
        unpack::Options {
            extract_to: dir,
            database_to: None,
            preserve_owner: unsafe { libc::geteuid() } == 0,
            only: None,
            chain: Some(chain),
        },
    )?;
    let problems = contents.problems();
    if !problems.is_empty() {
        bail!("its base {key} is not whole: {}", problems.join("; "));
    }
    Ok(contents)
}

/// The time in the names of directories a restore leaves (`20261124T030405Z`).
pub fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// `<target><suffix>` beside the target (never inside it, whatever slashes the target's path
/// ends with), with `-2`, `-3`... appended when that exists already.
pub fn sibling(target: &Path, suffix: &str) -> PathBuf {
    let name = |n: Option<u32>| {
        let mut s = target.file_name().unwrap_or_default().to_os_string();
        s.push(suffix);
        if let Some(n) = n {
            s.push(format!("-{n}"));
        }
        target.with_file_name(s)
    };
    let mut p = name(None);
    let mut n = 2;
    while p.symlink_metadata().is_ok() {
        p = name(Some(n));
        n += 1;
    }
    p
}

/// A directory removed when dropped, unless kept.
pub struct Staging {
    pub dir: PathBuf,
    keep: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// An archive unpacked beside its target, not yet in place.
pub struct Staged {
    /// `<target>.restoring-<time>`, holding `files/`; `None` when no files are restored.
    pub staging: Option<Staging>,
    /// `database.sql`, private, in `tmp_dir`; `None` when the database is not restored.
    pub database_sql: Option<NamedTempFile>,
    pub contents: Contents,
}

impl Staged {
    /// The restored site tree, ready to move into place.
    pub fn files(&self) -> Option<PathBuf> {
        self.staging.as_ref().map(|s| s.dir.join("files"))
    }
}

/// Unpack the archive read from `archive` (stored under `key`; decrypted with `to.identities`
/// when the key says it is encrypted): `files/` under a new directory beside
/// `to.files_target`, `database.sql` into a private temporary file in `to.tmp_dir`; fails
/// (leaving nothing) unless the contents match the manifest.
pub fn stage(
    archive: &mut dyn std::io::Read,
    key: &str,
    to: &StageTo,
    chain: Option<&mut Chain>,
) -> anyhow::Result<Staged> {
    use std::os::unix::fs::DirBuilderExt;
    let staging = match &to.files_target {
        None => None,
        Some(target) => {
            let dir = sibling(target, &format!(".restoring-{}", to.stamp));
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            Some(Staging { dir, keep: false })
        }
    };
    let mut database_sql = if to.database {
        Some(
            tempfile::Builder::new()
                .prefix(".wpbackup-database-")
                .suffix(".sql")
                .tempfile_in(&to.tmp_dir)
                .with_context(|| {
                    format!("cannot create a temporary file in {}", to.tmp_dir.display())
                })?,
        )
    } else {
        None
    };
    let contents = unpack::read(
        crate::crypt::open(archive, key, to.identities.as_ref())?,
        unpack::Options {
            extract_to: staging.as_ref().map(|s| s.dir.as_path()),
            database_to: database_sql.as_mut().map(|f| f.as_file_mut()),
            preserve_owner: unsafe { libc::geteuid() } == 0,
            only: None,
            chain,
        },
    )?;
    let problems = contents.problems();
    if !problems.is_empty() {
        bail!("the archive is not whole: {}", problems.join("; "));
    }
    if staging.is_some()
        && !staging
            .as_ref()
            .is_some_and(|s| s.dir.join("files").is_dir())
    {
        bail!("the archive holds no files/ directory");
    }
    Ok(Staged {
        staging,
        database_sql,
        contents,
    })
}

/// Move `target` aside to `<target>.before-restore-<time>` (when it exists) and the staged
/// tree into its place. Returns where the old tree went.
pub fn swap_into_place(
    mut staging: Staging,
    target: &Path,
    stamp: &str,
) -> anyhow::Result<Option<PathBuf>> {
    let files = staging.dir.join("files");
    let aside = if target.symlink_metadata().is_ok() {
        let aside = sibling(target, &format!(".before-restore-{stamp}"));
        std::fs::rename(target, &aside).with_context(|| {
            format!(
                "cannot move {} aside to {}",
                target.display(),
                aside.display()
            )
        })?;
        Some(aside)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(&files, target) {
        if let Some(aside) = &aside {
            let _ = std::fs::rename(aside, target);
        }
        return Err(e)
            .with_context(|| format!("cannot move the restored files to {}", target.display()));
    }
    staging.keep = false;
    drop(staging);
    // The old tree keeps its PHP: not web-reachable or readable by others from now on. Done
    // once the restored tree is in place, so that a failure here never leaves the site gone.
    if let Some(a) = aside
        .as_ref()
        .filter(|a| a.symlink_metadata().is_ok_and(|m| m.is_dir()))
        && let Err(e) = std::fs::set_permissions(a, std::fs::Permissions::from_mode(0o700))
    {
        tracing::warn!(
            "cannot make {} private ({e}): its old PHP may still be reachable; run chmod 700 on it or remove it",
            a.display()
        );
    }
    Ok(aside)
}

/// Where [`credentials`] found them when they come from the live site's `wp-config.php`.
pub const LIVE_WP_CONFIG: &str = "the site's wp-config.php";

/// Where the database credentials of a restore come from.
pub fn credentials(
    site: &SiteConfig,
    archived_wp_config: Option<&[u8]>,
    timeouts: Timeouts,
) -> anyhow::Result<(DatabaseConfig, &'static str)> {
    let from_wp = |w: wpconfig::WpConfig| DatabaseConfig {
        name: w.db_name,
        user: w.db_user,
        password: w.db_password,
        host: w.db_host,
        table_prefix: Some(w.table_prefix),
        timeouts,
    };
    if let Some(db) = &site.database {
        return Ok((db.clone(), "config.json"));
    }
    let live = match wpconfig::read(&site.path) {
        Ok(w) => return Ok((from_wp(w), LIVE_WP_CONFIG)),
        Err(e) => e,
    };
    let Some(bytes) = archived_wp_config else {
        bail!(
            "cannot find the database credentials: {live}; the archive holds no wp-config.php either"
        );
    };
    let w = wpconfig::parse_named(
        &String::from_utf8_lossy(bytes),
        "wp-config.php in the archive",
    )
    .context("cannot read the database credentials")?;
    Ok((from_wp(w), "the archive's wp-config.php"))
}

/// Rewrite the restored `wp-config.php` at `wp` ([`rewrite_wp_config`]), never through a
/// symlink: the archive keeps links as they were, and a deploy tool's layout
/// (`wp-config.php -> /var/www/app/shared/wp-config.php`) links to the live site's own file.
/// A link is replaced, in the restored tree only, by a regular file holding the rewritten
/// content, with the mode (and, as root, the owner) of the file it pointed to; what it pointed
/// to is only read. Nothing is written when the content does not change. Returns the link's
/// target when a link was replaced.
pub fn rewrite_wp_config_file(
    wp: &Path,
    db_name: Option<&str>,
    replacements: &[(String, String)],
) -> anyhow::Result<Option<PathBuf>> {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    let link = match wp.symlink_metadata() {
        Ok(m) if m.file_type().is_symlink() => Some(
            std::fs::read_link(wp)
                .with_context(|| format!("cannot read the link {}", wp.display()))?,
        ),
        _ => None,
    };
    let text =
        std::fs::read_to_string(wp).with_context(|| format!("cannot read {}", wp.display()))?;
    let new = rewrite_wp_config(&text, db_name, replacements)?;
    if new == text {
        return Ok(None);
    }
    // Followed: the mode and owner of the file the web server reads today.
    let meta = std::fs::metadata(wp).with_context(|| format!("cannot read {}", wp.display()))?;
    let dir = wp.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".wp-config.php.wpbackup-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let cannot = || format!("cannot write {}", wp.display());
    tmp.write_all(new.as_bytes()).with_context(cannot)?;
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid()))
            .with_context(cannot)?;
    }
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(cannot)?;
    // The rename replaces the link itself, never what it points to.
    tmp.persist(wp).map_err(|e| e.error).with_context(cannot)?;
    if let Some(target) = &link {
        tracing::warn!(
            "{} was a symlink to {}: it is now a regular file with the rewritten content ({} is unchanged)",
            wp.display(),
            target.display(),
            target.display()
        );
    }
    Ok(link)
}

/// A PHP single-quoted string literal.
fn php_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Point a restored wp-config.php at `db_name` (every `DB_NAME` definition) and apply the
/// plain `replacements` (old directory and address to new ones), in live code only: comments
/// (`//`, `#`, `/* */`, found by the PHP lexer of [`wpconfig::comments`]) keep the old values,
/// as a person left them (a commented-out `define('DB_NAME', 'old')` stays a note of the old).
pub fn rewrite_wp_config(
    text: &str,
    db_name: Option<&str>,
    replacements: &[(String, String)],
) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut found = 0;
    let mut at = 0;
    let end = text.len()..text.len();
    for comment in wpconfig::comments(text).into_iter().chain([end]) {
        let mut code = text[at..comment.start].to_string();
        if let Some(name) = db_name {
            let (named, n) = point_db_name(&code, name);
            code = named;
            found += n;
        }
        for (from, to) in replacements {
            if !from.is_empty() && from != to {
                code = code.replace(from.as_str(), to);
            }
        }
        out.push_str(&code);
        out.push_str(&text[comment.clone()]);
        at = comment.end;
    }
    if db_name.is_some() && found == 0 {
        bail!("wp-config.php: DB_NAME is not defined as a plain string");
    }
    Ok(out)
}

/// `code` with the value of every `DB_NAME` definition (`'DB_NAME', '...'` or
/// `DB_NAME = '...'`) replaced by `name`, and how many there were.
fn point_db_name(code: &str, name: &str) -> (String, usize) {
    let mut result = String::with_capacity(code.len());
    let mut rest = code;
    let mut found = 0;
    while let Some(i) = rest.find("DB_NAME") {
        let (before, after) = rest.split_at(i + "DB_NAME".len());
        result.push_str(before);
        rest = after;
        let prev = before[..i].chars().next_back();
        if prev.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        // `'DB_NAME', '...'` or `DB_NAME = '...'`: find the value literal.
        let t = rest.trim_start_matches(['\'', '"']);
        let t2 = t.trim_start();
        let Some(t3) = t2.strip_prefix([',', '=']) else {
            continue;
        };
        let t4 = t3.trim_start();
        let Some(quote) = t4.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            continue;
        };
        let body = &t4[1..];
        let mut end = None;
        let mut escaped = false;
        for (j, c) in body.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == quote {
                end = Some(j);
                break;
            }
        }
        let Some(end) = end else { continue };
        let literal_start = rest.len() - t4.len();
        result.push_str(&rest[..literal_start]);
        result.push_str(&php_str(name));
        rest = &body[end + 1..];
        found += 1;
    }
    result.push_str(rest);
    (result, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wp_config_points_at_the_new_database() {
        let src = "<?php\n// DB_NAME is below\ndefine( 'DB_NAME', 'wp_old' );\ndefine(\"DB_NAME_X\", 'no');\ndefine('DB_USER', 'u');\nconst DB_NAME = \"it\\\"s\";\ndefine('WP_CONTENT_DIR', '/var/www/old/wp-content');\n";
        let out = rewrite_wp_config(
            src,
            Some("wp_new's"),
            &[("/var/www/old".into(), "/srv/clone".into())],
        )
        .unwrap();
        assert_eq!(
            out,
            "<?php\n// DB_NAME is below\ndefine( 'DB_NAME', 'wp_new\\'s' );\ndefine(\"DB_NAME_X\", 'no');\ndefine('DB_USER', 'u');\nconst DB_NAME = 'wp_new\\'s';\ndefine('WP_CONTENT_DIR', '/srv/clone/wp-content');\n"
        );
        assert!(rewrite_wp_config("<?php\n", Some("x"), &[]).is_err());
        assert_eq!(
            rewrite_wp_config("a b a", None, &[("a".into(), "c".into())]).unwrap(),
            "c b c"
        );
    }

    #[test]
    fn commented_out_lines_keep_the_old_values() {
        let src = "<?php
// define('DB_NAME', 'wp_old');
# define( 'DB_NAME', 'wp_older' ); moved from /var/www/old
/* Until 2024 at http://old.example:
define('DB_NAME', 'wp_oldest');
define('WP_HOME', 'http://old.example'); */
define('DB_NAME', 'wp_old'); // was 'DB_NAME', 'wp_old' at http://old.example
define('WP_HOME', 'http://old.example');
define('WP_CONTENT_DIR', '/var/www/old/wp-content'); # not /var/www/old/x
$a = 'http://old.example // in a string'; $b = \"# /var/www/old\";
";
        let out = rewrite_wp_config(
            src,
            Some("wp_clone"),
            &[
                ("/var/www/old".into(), "/srv/clone".into()),
                ("http://old.example".into(), "https://clone.example".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            "<?php
// define('DB_NAME', 'wp_old');
# define( 'DB_NAME', 'wp_older' ); moved from /var/www/old
/* Until 2024 at http://old.example:
define('DB_NAME', 'wp_oldest');
define('WP_HOME', 'http://old.example'); */
define('DB_NAME', 'wp_clone'); // was 'DB_NAME', 'wp_old' at http://old.example
define('WP_HOME', 'https://clone.example');
define('WP_CONTENT_DIR', '/srv/clone/wp-content'); # not /var/www/old/x
$a = 'https://clone.example // in a string'; $b = \"# /srv/clone\";
"
        );
        // Only a commented-out definition: the live file defines none.
        let e = rewrite_wp_config("<?php\n// define('DB_NAME', 'a');\n", Some("b"), &[]);
        assert!(e.is_err(), "{e:?}");
    }

    #[test]
    fn a_symlinked_wp_config_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared-wp-config.php");
        let text = "<?php\ndefine('DB_NAME', 'wp_live');\n";
        std::fs::write(&shared, text).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
        let files = dir.path().join("files");
        std::fs::create_dir(&files).unwrap();
        let wp = files.join("wp-config.php");
        std::os::unix::fs::symlink(&shared, &wp).unwrap();

        let was = rewrite_wp_config_file(&wp, Some("wp_stg"), &[]).unwrap();
        assert_eq!(was.as_deref(), Some(shared.as_path()));
        assert_eq!(std::fs::read_to_string(&shared).unwrap(), text);
        let meta = wp.symlink_metadata().unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert!(std::fs::read_to_string(&wp).unwrap().contains("'wp_stg'"));
        // A regular file is rewritten in place; an unchanged one is not written.
        assert_eq!(
            rewrite_wp_config_file(&wp, Some("wp_2"), &[]).unwrap(),
            None
        );
        assert!(std::fs::read_to_string(&wp).unwrap().contains("'wp_2'"));
        assert_eq!(std::fs::read_dir(&files).unwrap().count(), 1);
    }

    #[test]
    fn siblings_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("site");
        let a = sibling(&t, ".x");
        assert_eq!(a, dir.path().join("site.x"));
        std::fs::create_dir(&a).unwrap();
        assert_eq!(sibling(&t, ".x"), dir.path().join("site.x-2"));
        let slashed = PathBuf::from(format!("{}/", t.display()));
        assert_eq!(sibling(&slashed, ".x"), dir.path().join("site.x-2"));
    }

    #[test]
    fn swap_keeps_the_old_tree() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("site");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("old.txt"), "old").unwrap();
        let staging = dir.path().join("site.restoring-x");
        std::fs::create_dir_all(staging.join("files")).unwrap();
        std::fs::write(staging.join("files/new.txt"), "new").unwrap();
        let aside = swap_into_place(
            Staging {
                dir: staging.clone(),
                keep: false,
            },
            &target,
            "T",
        )
        .unwrap()
        .unwrap();
        assert_eq!(aside, dir.path().join("site.before-restore-T"));
        assert_eq!(
            std::fs::read_to_string(aside.join("old.txt")).unwrap(),
            "old"
        );
        assert_eq!(
            std::fs::read_to_string(target.join("new.txt")).unwrap(),
            "new"
        );
        assert!(!staging.exists());
    }
}
