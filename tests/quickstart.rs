//! The README's quick start, with no config.json at all (issue 16, item 2): whatever
//! `backup --path DIR` wrote to `<home>/archives`, `list` shows, `verify` checks, `ls` looks
//! into and `restore --path DIR` brings back, files and database.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::mariadb::MariaDb;
use crate::util::wordpress::{MEDIA_PATH, UNICODE_TITLE, WordPress};

fn run(home: &Path, args: &[&str]) -> Output {
    Command::new(crate::util::bin())
        .args(["--home", &home.to_string_lossy()])
        .args(args)
        .env_remove("WPBACKUP_HOME")
        .env("SERVER_ID", "quick")
        .output()
        .unwrap()
}

fn wpbackup(home: &Path, args: &[&str]) -> Output {
    let out = run(home, args);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "wpbackup {args:?}: {text}");
    out
}

#[test]
fn backup_list_verify_and_restore_with_no_config() {
    let db = MariaDb::start();
    let site = WordPress::install(&db, "quick");
    let home = tempfile::Builder::new()
        .prefix("wpb-quick")
        .tempdir()
        .unwrap();
    let path = site.path.to_string_lossy().into_owned();
    wpbackup(home.path(), &["backup", "--path", &path]);
    assert!(!home.path().join("config.json").exists());

    let listed = String::from_utf8_lossy(&wpbackup(home.path(), &["list"]).stdout).into_owned();
    assert!(
        listed.contains("quick/quick/quick_") && listed.contains("local"),
        "{listed}"
    );
    // verify checks the quick start's archive (issue 26), not an empty list.
    let verified = String::from_utf8_lossy(&wpbackup(home.path(), &["verify"]).stdout).into_owned();
    assert!(
        verified.contains("quick")
            && verified.contains("OK")
            && verified.contains("quick/quick/quick_"),
        "{verified}"
    );
    // --site NAME works wherever `list` showed NAME (issue 26): ls, and restore --only.
    let out = wpbackup(
        home.path(),
        &["--json", "ls", "--site", "quick", "wp-content/uploads"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == MEDIA_PATH),
        "{doc}"
    );
    let aside = home.path().join("aside");
    wpbackup(
        home.path(),
        &[
            "restore",
            "--site",
            "quick",
            "--only",
            MEDIA_PATH,
            "--to",
            &aside.to_string_lossy(),
        ],
    );
    assert_eq!(
        std::fs::read(aside.join(MEDIA_PATH)).unwrap(),
        std::fs::read(site.path.join(MEDIA_PATH)).unwrap()
    );
    // A whole restore needs to know where the site goes: without config.json, --to or --path.
    let out = run(home.path(), &["restore", "--site", "quick", "--yes"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--path DIR") && err.contains("--to DIR"),
        "{err}"
    );
    assert!(!err.contains("config.json not found"), "{err}");
    let clone = home.path().join("clone");
    wpbackup(
        home.path(),
        &[
            "restore",
            "--site",
            "quick",
            "--to",
            &clone.to_string_lossy(),
            "--files-only",
            "--yes",
        ],
    );
    assert_eq!(
        std::fs::read(clone.join(MEDIA_PATH)).unwrap(),
        std::fs::read(site.path.join(MEDIA_PATH)).unwrap()
    );
    // Look inside before restoring (issue 16, item 9): the media file is there, with its size.
    let out = wpbackup(
        home.path(),
        &["--json", "ls", "--path", &path, "wp-content/uploads"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = doc["files"].as_array().unwrap();
    let media_len = std::fs::metadata(site.path.join(MEDIA_PATH)).unwrap().len();
    assert!(
        files
            .iter()
            .any(|f| f["path"] == MEDIA_PATH && f["size"] == media_len && f["kind"] == "f"),
        "{doc}"
    );
    assert!(files.iter().all(|f| {
        f["path"]
            .as_str()
            .unwrap()
            .starts_with("wp-content/uploads")
    }));

    // The worst hour: a file and a post lost.
    let media = site.path.join(MEDIA_PATH);
    let original = std::fs::read(&media).unwrap();
    std::fs::remove_file(&media).unwrap();
    db.sql_db(
        &site.db_name,
        "DELETE FROM wp_posts WHERE post_type = 'post'",
    );
    assert!(!site.post_titles(&db).iter().any(|t| t == UNICODE_TITLE));

    wpbackup(home.path(), &["restore", "--path", &path, "--yes"]);
    assert_eq!(std::fs::read(&media).unwrap(), original);
    assert!(site.post_titles(&db).iter().any(|t| t == UNICODE_TITLE));
}

/// `verify` in the quick start with nothing backed up: it says there is nothing to check and
/// fails, rather than an empty table and success (issue 26).
#[test]
fn verify_with_no_config_and_no_archive_says_nothing_was_checked() {
    let home = tempfile::Builder::new()
        .prefix("wpb-quick-empty")
        .tempdir()
        .unwrap();
    let out = run(home.path(), &["verify"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("nothing to check"), "{err}");
}
