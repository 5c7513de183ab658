//! `wpbackup list` of full and differential archives (issue 13) on two local storages, without
//! any server: each row says its kind, a differential one names its base found on the same
//! storage, and says so when the base is not there (another storage holding it does not help a
//! restore from this one).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

const FULL: &str = "web-01/blog/blog_20261124T030000Z.tar.zst";
const LEVEL1: &str = "web-01/blog/blog_20261125T030000Z.diff-20261124T030000Z.tar.zst";
const LEVEL2: &str = "web-01/blog/blog_20261126T030000Z.diff-20261125T030000Z.tar.zst";
/// Its base (2026-11-23) is on no storage.
const ORPHAN: &str = "web-01/blog/blog_20261126T040000Z.diff-20261123T030000Z.tar.zst.age";

fn put(root: &Path, key: &str) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"not really an archive").unwrap();
}

fn list(home: &Path, args: &[&str]) -> Output {
    let out = Command::new(crate::util::bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("WPBACKUP_HOME")
        .env_remove("SERVER_ID")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "wpbackup {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A home with two local storages: `disk` holds a full archive, its level 1 and level 2
/// differential archives and a differential one whose base is nowhere; `other` holds only the
/// level 1 archive.
fn home_with_archives() -> tempfile::TempDir {
    let home = tempfile::Builder::new()
        .prefix("wpb-list")
        .tempdir()
        .unwrap();
    let (disk, other) = (home.path().join("disk"), home.path().join("other"));
    let config = json!({
        "server_id": "web-01",
        "sites": [{ "name": "blog", "path": home.path().join("missing/blog") }],
        "storage": [
            { "name": "disk", "type": "local", "priority": 1, "path": disk },
            { "name": "other", "type": "local", "priority": 2, "path": other },
        ],
    });
    std::fs::write(home.path().join("config.json"), config.to_string()).unwrap();
    for key in [FULL, LEVEL1, LEVEL2, ORPHAN] {
        put(&disk, key);
    }
    put(&other, LEVEL1);
    home
}

#[test]
fn list_json_shows_each_archives_kind_and_base_and_a_missing_base() {
    let home = home_with_archives();
    let out = list(home.path(), &["--json", "list"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows: Vec<Value> = doc["archives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            json!([
                a["storage"],
                a["key"],
                a["kind"],
                a["base"],
                a["base_created_at"],
                a["base_missing"]
            ])
        })
        .collect();
    assert_eq!(
        rows,
        [
            json!([
                "disk",
                ORPHAN,
                "differential",
                null,
                "2026-11-23T03:00:00Z",
                true
            ]),
            json!([
                "disk",
                LEVEL2,
                "differential",
                LEVEL1,
                "2026-11-25T03:00:00Z",
                false
            ]),
            json!([
                "disk",
                LEVEL1,
                "differential",
                FULL,
                "2026-11-24T03:00:00Z",
                false
            ]),
            // Its base is on disk, not here: it cannot be restored from this storage.
            json!([
                "other",
                LEVEL1,
                "differential",
                null,
                "2026-11-24T03:00:00Z",
                true
            ]),
            json!(["disk", FULL, "full", null, null, false]),
        ]
    );
}

#[test]
fn list_table_has_kind_and_base_columns() {
    let home = home_with_archives();
    let out = list(home.path(), &["list", "--site", "blog"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "TIME", "(UTC)", "SITE", "KIND", "STORAGE", "SIZE", "IN", "DB", "BASE", "KEY"
        ],
        "{text}"
    );
    // Each row's KIND and BASE cells (the words after the time, site, kind, storage, size and
    // IN DB are the base and the key).
    let cells = |key: &str, storage: &str| -> (String, String) {
        let line = lines
            .iter()
            .find(|l| l.ends_with(key) && l.contains(&format!(" {storage} ")))
            .unwrap_or_else(|| panic!("no row of {key} on {storage}: {text}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        let base = words[8..words.len() - 1].join(" ");
        (words[3].to_string(), base)
    };
    let want = |kind: &str, base: &str| (kind.to_string(), base.to_string());
    assert_eq!(
        cells(LEVEL2, "disk"),
        want(
            "differential",
            "blog_20261125T030000Z.diff-20261124T030000Z.tar.zst"
        )
    );
    assert_eq!(
        cells(LEVEL1, "disk"),
        want("differential", "blog_20261124T030000Z.tar.zst")
    );
    assert_eq!(
        cells(LEVEL1, "other"),
        want("differential", "MISSING (2026-11-24 03:00:00)")
    );
    assert_eq!(
        cells(ORPHAN, "disk"),
        want("differential", "MISSING (2026-11-23 03:00:00)")
    );
    assert_eq!(cells(FULL, "disk"), want("full", "-"));
}

/// A new server with another `server_id` (the worst day, config.json rewritten by hand):
/// restore and `ls` find nothing of their own, and say which server's archives the buckets
/// hold, as `list` does, instead of only "no archive".
#[test]
fn a_wrong_server_id_is_named_with_the_servers_the_buckets_hold() {
    let home = home_with_archives();
    let path = home.path().join("config.json");
    let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["server_id"] = json!("web-02");
    std::fs::write(&path, config.to_string()).unwrap();
    for args in [
        &["ls", "--site", "blog"][..],
        &["restore", "--site", "blog", "--yes"][..],
    ] {
        let out = Command::new(crate::util::bin())
            .arg("--home")
            .arg(home.path())
            .args(args)
            .env_remove("WPBACKUP_HOME")
            .env_remove("SERVER_ID")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            err.contains("of server web-02")
                && err.contains("archives of site blog of server(s) web-01")
                && err.contains("\"server_id\""),
            "{args:?}: {err}"
        );
    }
}
