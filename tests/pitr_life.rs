//! The shipped binary log's lifecycle (issue 27 item 3) with a real binary log: `prune` keeps
//! exactly the files the kept restore points need, `verify` checks them and names a damaged or
//! missing one, and `list`, `status` and the report show the point-in-time window, a stale
//! shipping flagged.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fixture::{BUCKET, Fixture};

/// Apart by more than a second: binary log events and archive keys are stamped to the second.
fn tick() {
    std::thread::sleep(Duration::from_millis(1200));
}

fn ship(f: &Fixture) {
    let out = f.run(&["binlog"]);
    assert_eq!(out.status.code(), Some(0));
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn text_of(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The binary log file the server writes to now.
fn current_file(f: &Fixture) -> String {
    let status = f.db.sql("SHOW MASTER STATUS");
    status
        .split('\t')
        .next()
        .expect("SHOW MASTER STATUS")
        .to_string()
}

/// The shipped files on the primary bucket, by file name, sorted; and whether each has its
/// signature beside it.
fn shipped(f: &Fixture) -> Vec<(String, bool)> {
    let keys: Vec<String> = f
        .primary
        .objects(BUCKET)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("binlog/"))
        .collect();
    let mut out: Vec<(String, bool)> = keys
        .iter()
        .filter(|k| k.ends_with(".zst"))
        .map(|k| {
            let file = k
                .rsplit('/')
                .next()
                .and_then(|n| n.rsplit_once('_'))
                .map(|(file, _)| file.to_string())
                .expect("a binlog key");
            (file, keys.contains(&format!("{k}.minisig")))
        })
        .collect();
    out.sort();
    out
}

fn home_db(f: &Fixture) -> rusqlite::Connection {
    rusqlite::Connection::open(f.home().join("backups.db")).expect("open backups.db")
}

fn insert(f: &Fixture, title: &str) {
    f.db.sql_db(
        &f.site.db_name,
        &format!(
            "INSERT INTO wp_options (option_name, option_value, autoload) VALUES ('{title}', 'x', 'no')"
        ),
    );
}

#[test]
fn prune_keeps_exactly_the_binlogs_the_kept_points_need() {
    let f = Fixture::with_binlog("shop");
    let mut config = f.default_config();
    config["sites"][0]["name"] = json!("shop");
    config["binlog"] = json!({});
    config["retention"] = json!({ "keep_last": 1 });
    f.write_config(config);
    f.write_env(&[("MYSQL_UNIX_PORT", &f.db.socket.to_string_lossy())]);

    // Files shipped before any archive, then the first nightly point and its files.
    insert(&f, "before-any-point");
    ship(&f);
    ship(&f);
    tick();
    assert_eq!(f.run(&["backup"]).status.code(), Some(0));
    insert(&f, "after-point-1");
    ship(&f);
    ship(&f);
    tick();
    // The second point: its dump's position is in the file written now (nothing rotates it
    // before the dump). Keeping the last archive only, the backup deletes the first.
    let needed = current_file(&f);
    assert_eq!(f.run(&["backup"]).status.code(), Some(0));
    insert(&f, "after-point-2");
    ship(&f);
    ship(&f);
    let before = shipped(&f);
    assert!(before.iter().all(|(_, signed)| *signed), "{before:?}");
    let expect_kept: Vec<String> = before
        .iter()
        .map(|(file, _)| file.clone())
        .filter(|file| *file >= needed)
        .collect();
    let expect_gone: Vec<String> = before
        .iter()
        .map(|(file, _)| file.clone())
        .filter(|file| *file < needed)
        .collect();
    assert!(
        expect_gone.len() >= 3 && expect_kept.len() >= 2,
        "files {before:?}, the kept point's {needed}"
    );

    // The dry run names exactly those, and deletes nothing.
    let out = f.run(&["--json", "prune", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text_of(&out));
    let doc = json_of(&out);
    let mut would: Vec<String> = doc["binlog"]["files"]
        .as_array()
        .expect("binlog.files")
        .iter()
        .filter(|b| b["action"] == "delete")
        .map(|b| b["file"].as_str().unwrap().to_string())
        .collect();
    would.sort();
    assert_eq!(would, expect_gone, "{doc}");
    assert_eq!(shipped(&f), before, "a dry run deletes nothing");
    let out = f.run(&["prune", "--dry-run"]);
    assert!(text_of(&out).contains("would delete"), "{}", text_of(&out));

    // The prune: the kept point's file and every later one stay, with their signatures.
    let out = f.run(&["prune"]);
    assert_eq!(out.status.code(), Some(0), "{}", text_of(&out));
    let after = shipped(&f);
    let kept: Vec<String> = after.iter().map(|(file, _)| file.clone()).collect();
    assert_eq!(kept, expect_kept);
    assert!(after.iter().all(|(_, signed)| *signed), "{after:?}");
    let sigs = f
        .primary
        .objects(BUCKET)
        .into_iter()
        .filter(|(k, _)| k.starts_with("binlog/") && k.ends_with(".minisig"))
        .count();
    assert_eq!(sigs, kept.len(), "no signature left without its file");
    // A second prune has nothing more to delete.
    let doc = json_of(&f.run(&["--json", "prune"]));
    assert!(
        doc["binlog"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["action"] == "keep"),
        "{doc}"
    );

    // verify checks each kept file: all sound.
    let out = f.run(&["--json", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text_of(&out));
    let doc = json_of(&out);
    let checked = doc["binlog_files"].as_array().expect("binlog_files");
    assert!(checked.len() >= kept.len(), "{doc}");
    assert!(checked.iter().all(|c| c["ok"] == true), "{doc}");

    // The window: from the kept point (the first was pruned) to the newest shipped second.
    let point2 = home_db(&f)
        .query_row(
            "SELECT created_at FROM s3_archives ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get::<_, String>(0),
        )
        .expect("the kept point");
    for args in [&["status"][..], &["list"][..], &["report", "--dry-run"][..]] {
        let out = f.run(args);
        let text = text_of(&out);
        assert!(
            text.contains(&format!("recoverable to any second from {point2} to ")),
            "{args:?}: {text}"
        );
        assert!(!text.contains("STALE SHIPPING"), "{args:?}: {text}");
    }

    // Shipping stopped an hour ago: flagged as a stale backup is.
    home_db(&f)
        .execute_batch(
            "UPDATE binlog_files SET last_event = datetime('now', '-1 hour'), first_event = datetime('now', '-2 hours')",
        )
        .expect("age the shipping");
    for args in [&["status"][..], &["report", "--dry-run"][..]] {
        let text = text_of(&f.run(args));
        assert!(text.contains("STALE SHIPPING"), "{args:?}: {text}");
    }

    // A damaged file and a missing one: verify names both and fails.
    let keys: Vec<String> = f
        .primary
        .objects(BUCKET)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("binlog/") && k.ends_with(".zst"))
        .collect();
    let mut keys = keys;
    keys.sort();
    let (damaged, missing) = (&keys[0], &keys[1]);
    let path = f.primary.object_path(BUCKET, damaged);
    let mut bytes = std::fs::read(&path).expect("read the object");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, bytes).expect("damage it");
    std::fs::remove_file(f.primary.object_path(BUCKET, missing)).expect("remove it");
    let name = |k: &str| {
        k.rsplit('/')
            .next()
            .and_then(|n| n.rsplit_once('_'))
            .map(|(file, _)| file.to_string())
            .unwrap()
    };
    let out = f.run(&["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text_of(&out));
    let text = text_of(&out);
    assert!(text.contains(&name(damaged)), "names {damaged}: {text}");
    assert!(text.contains(&name(missing)), "names {missing}: {text}");
}
