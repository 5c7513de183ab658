//! The README's quick start, with no config.json at all (issue 16, item 2): whatever
//! `backup --path DIR` wrote to `<home>/archives`, `list` shows, `verify` checks, `ls` looks
//! into and `restore --path DIR` brings back, files and database.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::mariadb::MariaDb;
use crate::util::wordpress::{MEDIA_PATH, UNICODE_TITLE, WordPress};

fn wpbackup(home: &Path, args: &[&str]) -> Output {
    let out = Command::new(crate::util::bin())
        .args(["--home", &home.to_string_lossy()])
        .args(args)
        .env_remove("WPBACKUP_HOME")
        .env("SERVER_ID", "quick")
        .output()
        .unwrap();
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
    wpbackup(home.path(), &["verify"]);
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
