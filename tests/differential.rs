//! Differential archives (issue 13) against the real servers: a full backup, a site changed
//! in every way a site changes (a post, an upload, a plugin file edited, a file deleted, a
//! file replaced by a symlink), a differential backup that holds only that, a restore by hand
//! with plain `tar` as formats.md says, and a restore on a "new server" from the bucket alone
//! (no site, no database, no backups.db, no index) that serves the new post. Then chains: a
//! differential whose base left the bucket becomes a full, and prune never leaves a
//! differential without its base.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::fixture::{self, BUCKET, Fixture};
use crate::util::wordpress::http_get;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `wpbackup ARGS` at the simulated time `day` (days after 2026-11-01 03:00 UTC).
pub(crate) fn at_day(f: &Fixture, day: u32, args: &[&str]) -> Output {
    let now = format!("2026-11-{:02}T03:00:00Z", day + 1);
    let out = f.cmd(args).env("WPBACKUP_NOW", &now).output().unwrap();
    eprintln!(
        "wpbackup {args:?} at {now} -> {:?}\n{}{}",
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
    out
}

/// Config with differentials on (the defaults: a full every 30 days, a level 1 every 6).
pub(crate) fn config(f: &Fixture, extra: Value) -> Value {
    let mut c = f.default_config();
    c["differential"] = json!({});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

/// The primary bucket's keys, oldest first.
pub(crate) fn keys(f: &Fixture) -> Vec<String> {
    let mut k: Vec<String> = fixture::stored(&f.primary)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    k.sort();
    k
}

fn manifest_of(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Every change a site sees between two nights.
pub(crate) fn change_the_site(f: &Fixture) {
    let site = &f.site.path;
    f.db.sql_db(
        &f.site.db_name,
        "INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt, post_status, post_name, post_modified, post_modified_gmt, to_ping, pinged, post_content_filtered, post_type) \
         VALUES (1, NOW(), UTC_TIMESTAMP(), 'Written after the full backup.', 'Posted between two backups', '', 'publish', 'between-backups', NOW(), UTC_TIMESTAMP(), '', '', '', 'post')",
    );
    std::fs::write(
        site.join("wp-content/uploads/new-photo.jpg"),
        crate::util::wordpress::noise(7, 300_000),
    )
    .unwrap();
    std::fs::write(
        site.join("wp-content/plugins/wpb-test/wpb-test.php"),
        "<?php // version 2, edited after the full backup\n",
    )
    .unwrap();
    std::fs::remove_file(site.join("wp-content/uploads/old-notes.txt")).unwrap();
    std::fs::remove_file(site.join("wp-content/uploads/logo.png")).unwrap();
    std::os::unix::fs::symlink("new-photo.jpg", site.join("wp-content/uploads/logo.png")).unwrap();
}

/// What the site has before the full backup, to be changed afterwards.
pub(crate) fn prepare_the_site(f: &Fixture) {
    let site = &f.site.path;
    std::fs::create_dir_all(site.join("wp-content/plugins/wpb-test")).unwrap();
    std::fs::write(
        site.join("wp-content/plugins/wpb-test/wpb-test.php"),
        "<?php // version 1\n",
    )
    .unwrap();
    std::fs::write(
        site.join("wp-content/uploads/old-notes.txt"),
        "to be deleted\n",
    )
    .unwrap();
    std::fs::write(
        site.join("wp-content/uploads/logo.png"),
        b"a regular file first",
    )
    .unwrap();
}

/// A fixture site with differentials on, backed up full on day 0 and, changed, again on day 1
/// with `day1_args` (`backup` and its flags): that second run's output.
pub(crate) fn full_then_differential(f: &Fixture, day1_args: &[&str]) -> Output {
    f.write_config(config(f, json!({})));
    prepare_the_site(f);
    let out = at_day(f, 0, &["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    change_the_site(f);
    let out = at_day(f, 1, day1_args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    out
}

/// The site's tree as a restore must give it (excludes left out: none exist here).
fn tree(root: &Path) -> Vec<(String, String)> {
    fixture::tree(root, &|_| false)
}

/// `tar --zstd -xf` each archive into `dir`, oldest first, then remove what `deleted.nul`
/// names: formats.md's restore by hand, run as a person would.
fn restore_by_hand(archives: &[&Path], dir: &Path) {
    for a in archives {
        let out = Command::new("tar")
            .arg("--zstd")
            .arg("-xf")
            .arg(a)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = Command::new("sh")
        .args(["-c", "xargs -0 -r rm -rf -- < deleted.nul"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The differential `k[1]` holds the changes, the complete dump and the site's paths, not the
/// rest; the paths of the full `k[0]` and of it on disk.
fn assert_only_the_changes(f: &Fixture, k: &[String]) -> (std::path::PathBuf, std::path::PathBuf) {
    let (full, diff) = (
        f.primary.object_path(BUCKET, &k[0]),
        f.primary.object_path(BUCKET, &k[1]),
    );
    let x = fixture::extract(&diff);
    let m = manifest_of(x.path());
    assert_eq!(m["kind"], "differential");
    assert_eq!(m["differential"]["level"], 1);
    assert_eq!(m["differential"]["base"]["key"], k[0].as_str());
    let files = x.path().join("files");
    assert!(files.join("wp-content/uploads/new-photo.jpg").is_file());
    assert!(
        files
            .join("wp-content/plugins/wpb-test/wpb-test.php")
            .is_file()
    );
    assert!(!files.join("wp-includes/version.php").exists());
    assert!(!files.join("wp-config.php").exists());
    assert!(x.path().join("database.sql").is_file());
    let deleted = std::fs::read(x.path().join("deleted.nul")).unwrap();
    assert_eq!(deleted, b"files/wp-content/uploads/old-notes.txt\0");
    // Since format 2 the site's paths are the member paths.nul, not a list in manifest.json.
    assert!(m["differential"].get("paths").is_none());
    let paths = std::fs::read(x.path().join("paths.nul")).unwrap();
    assert!(
        paths
            .split(|b| *b == 0)
            .any(|p| p == b"files/wp-includes/version.php")
    );
    let (full_size, diff_size) = (
        std::fs::metadata(&full).unwrap().len(),
        std::fs::metadata(&diff).unwrap().len(),
    );
    assert!(diff_size * 3 < full_size, "{diff_size} vs {full_size}");
    (full, diff)
}

/// A drill of the restore point (both archives) boots WordPress from it, and `restore --only`
/// takes a file from the full and one from the differential.
fn drill_and_restore_only(f: &Fixture) {
    // A drill restores the restore point (both archives) and boots WordPress from it.
    let scratch = tempfile::Builder::new()
        .prefix("wpb-drill")
        .tempdir()
        .unwrap();
    let out = f
        .cmd(&["drill"])
        .env("MYSQL_UNIX_PORT", &f.db.socket)
        .env("TMPDIR", scratch.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // `restore --only`: a file the full holds and one the differential changed.
    let only = tempfile::Builder::new()
        .prefix("wpb-only")
        .tempdir()
        .unwrap();
    let mut cmd = f.cmd(&["restore", "--site", "blog", "--yes", "--to"]);
    cmd.arg(only.path()).args([
        "--only",
        "wp-includes/version.php",
        "--only",
        "wp-content/plugins/wpb-test",
    ]);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(only.path().join("wp-includes/version.php")).unwrap(),
        std::fs::read(f.site.path.join("wp-includes/version.php")).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(only.path().join("wp-content/plugins/wpb-test/wpb-test.php"))
            .unwrap(),
        "<?php // version 2, edited after the full backup\n"
    );
}

#[test]
fn a_differential_holds_only_the_changes_and_a_new_server_restores_it_from_the_bucket() {
    let f = Fixture::new("diff");
    let out = full_then_differential(&f, &["backup", "--json"]);
    let k = keys(&f);
    assert_eq!(k.len(), 2, "{k:?}");
    assert!(!k[0].contains(".diff-"), "{k:?}");
    assert_eq!(
        k[1],
        "test-server/blog/blog_20261102T030000Z.diff-20261101T030000Z.tar.zst"
    );
    let json: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["sites"][0]["base_key"], k[0].as_str());

    let (full, diff) = assert_only_the_changes(&f, &k);
    let out = f.run(&["verify", "--site", "blog"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("base "), "{}", stdout(&out));
    drill_and_restore_only(&f);

    // By hand, with plain tar: the same tree as the site.
    let by_hand = tempfile::Builder::new()
        .prefix("wpb-hand")
        .tempdir()
        .unwrap();
    restore_by_hand(&[&full, &diff], by_hand.path());
    let live = tree(&f.site.path);
    assert_eq!(tree(&by_hand.path().join("files")), live);

    // A new server: no site, no database, no backups.db, no index.
    std::fs::remove_dir_all(&f.site.path).unwrap();
    f.db.sql(&format!("DROP DATABASE `{}`", f.site.db_name));
    std::fs::remove_file(f.home().join("backups.db")).unwrap();
    std::fs::remove_dir_all(f.home().join("index")).unwrap();
    let out = f.run(&["restore", "--site", "blog", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tree(&f.site.path), live);
    let uploads = f.site.path.join("wp-content/uploads");
    assert!(!uploads.join("old-notes.txt").exists());
    assert_eq!(
        std::fs::read_link(uploads.join("logo.png")).unwrap(),
        Path::new("new-photo.jpg")
    );
    assert_eq!(
        std::fs::read_to_string(f.site.path.join("wp-content/plugins/wpb-test/wpb-test.php"))
            .unwrap(),
        "<?php // version 2, edited after the full backup\n"
    );
    let _php = f.site.serve();
    let (status, body) = http_get(&format!("{}/", f.site.url));
    let html = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Posted between two backups"), "{html}");
    assert!(html.contains("First post about backups"), "{html}");
}

/// The differentials of a site whose key names `base` (a full's or level 1's time).
fn is_diff_on(key: &str, base_day: u32) -> bool {
    key.contains(&format!(".diff-202611{:02}T030000Z", base_day + 1))
}

#[test]
fn chains_survive_prune_and_a_missing_base_makes_a_full() {
    let f = Fixture::new("chain");
    f.write_config(config(&f, json!({ "retention": { "keep_last": 1 } })));
    for day in 0..3 {
        std::fs::write(
            f.site
                .path
                .join(format!("wp-content/uploads/day-{day}.txt")),
            "x",
        )
        .unwrap();
        let out = at_day(&f, day, &["backup"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    // Full, level 1 on it, level 2 on the level 1; keep_last 1 kept the newest and its chain.
    let k = keys(&f);
    assert_eq!(k.len(), 3, "{k:?}");
    assert!(!k[0].contains(".diff-"), "{k:?}");
    assert!(is_diff_on(&k[1], 0) && is_diff_on(&k[2], 1), "{k:?}");
    let x = fixture::extract(&f.primary.object_path(BUCKET, &k[2]));
    assert_eq!(manifest_of(x.path())["differential"]["level"], 2);

    // The full leaves the bucket: the next run's differential would need it, so it is a full.
    std::fs::remove_file(f.primary.object_path(BUCKET, &k[0])).unwrap();
    let out = at_day(&f, 3, &["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a full archive instead of a level-2 differential"),
        "{}",
        stderr(&out)
    );
    let k = keys(&f);
    let newest = k.last().unwrap();
    assert!(newest.ends_with("blog_20261104T030000Z.tar.zst"), "{k:?}");
    // keep_last 1: the new full alone is kept; the broken chain is gone.
    assert_eq!(k, vec![newest.clone()], "{k:?}");

    // A level 1 on the new full: pruning keeps its base.
    let out = at_day(&f, 4, &["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let k = keys(&f);
    assert_eq!(k.len(), 2, "{k:?}");
    assert!(is_diff_on(&k[1], 3), "{k:?}");
    let out = f.run(&["prune"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(keys(&f), k);
    let out = f.run(&["verify", "--site", "blog"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn an_encrypted_differential_restores_with_its_base() {
    let f = Fixture::new("diff-age");
    let keys_dir = tempfile::Builder::new()
        .prefix("wpb-age")
        .tempdir()
        .unwrap();
    let (identity, public) = crate::encryption::keygen(keys_dir.path());
    f.write_config(config(
        &f,
        json!({ "encryption": { "recipients": [public] } }),
    ));
    prepare_the_site(&f);
    let out = at_day(&f, 0, &["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    change_the_site(&f);
    let out = at_day(&f, 1, &["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let k = keys(&f);
    assert_eq!(k.len(), 2, "{k:?}");
    assert!(
        k[1].ends_with(".diff-20261101T030000Z.tar.zst.age"),
        "{k:?}"
    );
    let id = identity.to_string_lossy().into_owned();
    let out = f.run(&["verify", "--identity", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let live = tree(&f.site.path);
    std::fs::remove_dir_all(&f.site.path).unwrap();
    std::fs::remove_dir_all(f.home().join("index")).unwrap();
    let out = f.run(&["restore", "--site", "blog", "--yes", "--identity", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(tree(&f.site.path), live);
    // No index: the next run is a full archive again, and says why.
    let out = at_day(&f, 2, &["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("no index"), "{}", stderr(&out));
    assert!(keys(&f)[2].ends_with("blog_20261103T030000Z.tar.zst.age"));
}

/// Rewrite the differential archive `key` as wpbackup wrote it before format 2 (issue 25): the
/// site's paths and the deleted ones as lists in manifest.json, no `paths.nul`, format 1; its
/// new size and sha256 recorded in backups.db, as if it had been stored so.
fn rewrite_as_format_1(f: &Fixture, key: &str) {
    let object = f.primary.object_path(BUCKET, key);
    let x = fixture::extract(&object);
    let mut m = manifest_of(x.path());
    let list = |name: &str| -> Vec<Value> {
        std::fs::read(x.path().join(name))
            .unwrap()
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| json!(String::from_utf8_lossy(&p[b"files/".len()..])))
            .collect()
    };
    let d = &mut m["differential"];
    d["paths"] = Value::Array(list("paths.nul"));
    d["deleted"] = Value::Array(list("deleted.nul"));
    let d = d.as_object_mut().unwrap();
    d.remove("paths_nul");
    d.remove("deleted_nul");
    m["format_version"] = json!(1);
    std::fs::write(
        x.path().join("manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(x.path().join("paths.nul")).unwrap();
    let out = Command::new("tar")
        .args(["--zstd", "-cf"])
        .arg(&object)
        .arg("-C")
        .arg(x.path())
        .args(["files", "deleted.nul", "database.sql", "manifest.json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let sig = f.primary.object_path(BUCKET, &format!("{key}.minisig"));
    crate::util::minisign::sign(&f.home().join("signing.key"), &object, key, &sig);
    let bytes = std::fs::read(&object).unwrap();
    use sha2::Digest as _;
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let db = rusqlite::Connection::open(f.home().join("backups.db")).unwrap();
    let old: String = db
        .query_row(
            "SELECT sha256 FROM s3_archives WHERE filename = ?1",
            [key],
            |r| r.get(0),
        )
        .unwrap();
    // s3s-fs keeps the object's metadata (its sha256 among it) in hidden files beside.
    let root = f.primary.object_path(BUCKET, "");
    let root = root.parent().unwrap();
    for e in std::fs::read_dir(root).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".json") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            if text.contains(&old) {
                std::fs::write(e.path(), text.replace(&old, &sha)).unwrap();
            }
        }
    }
    let n = db
        .execute(
            "UPDATE s3_archives SET sha256 = ?1, file_size = ?2 WHERE filename = ?3",
            rusqlite::params![sha, bytes.len() as i64, key],
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn a_differential_made_before_format_2_is_still_listed_and_restored() {
    let f = Fixture::new("diffold");
    full_then_differential(&f, &["backup"]);
    let k = keys(&f);
    assert_eq!(k.len(), 2, "{k:?}");
    let ls = |f: &Fixture| -> Value {
        let out = f.run(&["--json", "ls", "--site", "blog"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["files"].clone()
    };
    let listed = ls(&f);
    rewrite_as_format_1(&f, &k[1]);
    let m = manifest_of(fixture::extract(&f.primary.object_path(BUCKET, &k[1])).path());
    assert_eq!(m["format_version"], 1);
    assert!(m["differential"]["paths"].as_array().unwrap().len() > 10);

    // The same restore point as before the rewrite.
    let after = ls(&f);
    assert!(
        after == listed,
        "ls lists {} paths of the format-1 chain, {} before the rewrite",
        after.as_array().map_or(0, Vec::len),
        listed.as_array().map_or(0, Vec::len)
    );
    let out = f.run(&["--json", "ls", "--site", "blog", "--changes"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["deleted"],
        json!(["wp-content/uploads/old-notes.txt"]),
        "{doc}"
    );
    // Restored with its base: an unchanged file from the full, a changed one from it, and
    // what it deleted stays deleted.
    let to = tempfile::Builder::new()
        .prefix("wpb-old")
        .tempdir()
        .unwrap();
    let mut cmd = f.cmd(&["restore", "--site", "blog", "--yes", "--to"]);
    cmd.arg(to.path()).args([
        "--only",
        "wp-includes",
        "--only",
        "wp-content/plugins/wpb-test",
    ]);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        tree(&to.path().join("wp-includes")),
        tree(&f.site.path.join("wp-includes"))
    );
    assert_eq!(
        std::fs::read_to_string(to.path().join("wp-content/plugins/wpb-test/wpb-test.php"))
            .unwrap(),
        "<?php // version 2, edited after the full backup\n"
    );
    let elsewhere = tempfile::Builder::new()
        .prefix("wpb-old")
        .tempdir()
        .unwrap();
    let mut cmd = f.cmd(&["restore", "--site", "blog", "--yes", "--to"]);
    cmd.arg(elsewhere.path())
        .args(["--only", "wp-content/uploads/old-notes.txt"]);
    let out = cmd.output().unwrap();
    assert_ne!(out.status.code(), Some(0), "a deleted file is not restored");
    assert!(stderr(&out).contains("not in archive"), "{}", stderr(&out));
}
