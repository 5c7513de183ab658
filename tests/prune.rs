//! `wpbackup prune` against real storages: archives at made-up dates spread over months,
//! written straight into the test S3 server and a local storage, are kept or deleted exactly
//! as the policy counts them; `--dry-run` deletes nothing; other files, other sites and other
//! servers are never touched; the newest good archive survives any policy; and `backup` prunes
//! after a successful run. The copies restores keep are in `restore_copies.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::fixture::{BUCKET, Fixture};

fn key(stamp: &str) -> String {
    format!("test-server/blog/blog_{stamp}.tar.zst")
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Every file under `root` (relative paths), hidden files and checksums left out.
fn files(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if !name.starts_with('.')
                && !name.ends_with(".sha256")
                && !name.ends_with(".minisig")
            {
                out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out
}

fn set(stamps: &[&str]) -> BTreeSet<String> {
    stamps.iter().map(|s| key(s)).collect()
}

/// On the S3 primary: months of archives (no recorded sha256: not "good"), kept by the policy.
const S3_KEPT: [&str; 8] = [
    "20251120T030000Z", // last, daily, monthly
    "20251119T150000Z", // daily (the newest of its day)
    "20251118T030000Z", // daily
    "20251031T030000Z", // monthly
    "20250930T030000Z", // monthly
    "20250831T030000Z", // monthly
    "20250630T030000Z", // monthly
    "20250601T030000Z", // oldest monthly (counts left at the oldest archive)
];
/// On the S3 primary: the archives the policy deletes.
const S3_DELETED: [&str; 5] = [
    "20251119T030000Z",
    "20251110T030000Z",
    "20251020T030000Z",
    "20251015T030000Z",
    "20250910T030000Z",
];
/// On the S3 primary: other files, other sites, other servers.
const UNTOUCHED: [&str; 3] = [
    "test-server/blog/notes.txt",
    "test-server/other/other_20240101T000000Z.tar.zst",
    "old-server/blog/blog_20240101T000000Z.tar.zst",
];
/// On the local storage: the newest archives have no sha256, an older one has: it is the
/// newest good archive, kept although the policy alone would delete it.
const GOOD: &str = "20251119T010000Z";
const LOCAL_KEPT: [&str; 5] = [
    "20251121T030000Z",
    "20251120T030000Z",
    "20251119T030000Z",
    GOOD,
    "20251001T030000Z",
];
const LOCAL_DELETED: [&str; 1] = ["20251121T010000Z"];

/// The fixture's config plus a local storage at `local`, with the months/days policy.
fn config_with_local_storage(f: &Fixture, local: &Path) -> serde_json::Value {
    let mut config = f.default_config();
    config["storage"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "local", "type": "local", "priority": 3, "path": local }));
    config["retention"] = json!({ "keep_last": 1, "keep_daily": 3, "keep_monthly": 6 });
    config
}

/// Made-up archives written straight into the S3 server's directory and the local storage.
fn seed_archives(s3_root: &Path, local: &Path) {
    for s in S3_KEPT.iter().chain(&S3_DELETED) {
        write(&s3_root.join(key(s)), s.as_bytes());
    }
    for k in UNTOUCHED {
        write(&s3_root.join(k), b"not ours to delete");
    }
    for s in LOCAL_KEPT.iter().chain(&LOCAL_DELETED) {
        write(&local.join(key(s)), s.as_bytes());
    }
    let good_path: PathBuf = local.join(key(GOOD));
    write(
        &PathBuf::from(format!("{}.sha256", good_path.display())),
        format!("{}  blog_{GOOD}.tar.zst\n", "ab".repeat(32)).as_bytes(),
    );
    // Good means signed too (issue 23): prune looks for the signature, restore checks it.
    write(
        &PathBuf::from(format!("{}.minisig", good_path.display())),
        b"a signature",
    );
}

/// (storage, key) of every archive the policy deletes.
fn wanted_deletions() -> BTreeSet<(String, String)> {
    S3_DELETED
        .iter()
        .map(|s| ("primary".to_string(), key(s)))
        .chain(LOCAL_DELETED.iter().map(|s| ("local".to_string(), key(s))))
        .collect()
}

/// (storage, key) of the archives `prune --json` plans to delete.
fn planned_deletions(stdout: &[u8]) -> BTreeSet<(String, String)> {
    let doc: serde_json::Value = serde_json::from_slice(stdout).unwrap();
    doc["archives"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "delete")
        .map(|a| {
            (
                a["storage"].as_str().unwrap().to_string(),
                a["key"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `--dry-run`: the plan, nothing deleted.
fn assert_dry_run_plans_and_deletes_nothing(f: &Fixture, s3_root: &Path, local: &Path) {
    let before_s3 = files(s3_root);
    let before_local = files(local);
    let out = f.run(&["--json", "prune", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(planned_deletions(&out.stdout), wanted_deletions());
    assert_eq!(files(s3_root), before_s3);
    assert_eq!(files(local), before_local);
}

/// The real thing: exactly the planned archives go, and every deletion is recorded.
fn assert_prune_deletes_what_the_policy_says(f: &Fixture, s3_root: &Path, local: &Path) {
    let out = f.run(&["prune"]);
    assert_eq!(out.status.code(), Some(0));
    let mut s3_left: BTreeSet<String> = set(&S3_KEPT);
    s3_left.extend(UNTOUCHED.iter().map(|s| s.to_string()));
    assert_eq!(files(s3_root), s3_left);
    assert_eq!(files(local), set(&LOCAL_KEPT));
    let rows = f.rows();
    let deleted: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| {
            assert_eq!(r.status, "SUCCESS", "{r:?}");
            assert!(r.details.contains("retention"), "{r:?}");
            (
                r.storage_name.clone().unwrap(),
                r.archive_key.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(deleted, wanted_deletions(), "every deletion is recorded");
}

/// A backup prunes after it has stored the site: keep_last 3 leaves the new archive and the
/// two newest made-up ones on the primary; the local storage keeps its newest good one.
fn assert_backup_prunes_after_storing(
    f: &Fixture,
    mut config: serde_json::Value,
    s3_root: &Path,
    local: &Path,
) {
    config["retention"] = json!({ "keep_last": 3 });
    f.write_config(config);
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0));
    let backup_row = f
        .rows()
        .into_iter()
        .find(|r| {
            r.archive_key
                .as_deref()
                .is_some_and(|k| !k.contains("2025"))
        })
        .expect("the backup's row");
    assert_eq!(backup_row.status, "SUCCESS", "{backup_row:?}");
    let new_key = backup_row.archive_key.unwrap();
    let mut s3_left: BTreeSet<String> = set(&["20251120T030000Z", "20251119T150000Z"]);
    s3_left.insert(new_key);
    s3_left.extend(UNTOUCHED.iter().map(|s| s.to_string()));
    assert_eq!(files(s3_root), s3_left);
    assert_eq!(
        files(local),
        set(&[
            "20251121T030000Z",
            "20251120T030000Z",
            "20251119T030000Z",
            GOOD
        ])
    );
}

#[test]
fn prune_keeps_exactly_what_the_policy_says() {
    let f = Fixture::new("prune");
    let local = f.home().join("local-store");
    let config = config_with_local_storage(&f, &local);
    f.write_config(config.clone());
    let s3_root = f.primary.root.join(BUCKET);
    seed_archives(&s3_root, &local);

    assert_dry_run_plans_and_deletes_nothing(&f, &s3_root, &local);
    assert_prune_deletes_what_the_policy_says(&f, &s3_root, &local);
    assert_backup_prunes_after_storing(&f, config, &s3_root, &local);
}

#[test]
fn prune_without_retention_keeps_every_archive_and_says_so() {
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("store");
    std::fs::write(
        home.path().join("config.json"),
        json!({ "server_id": "s", "storage": [
            { "name": "local", "type": "local", "priority": 1, "path": store } ] })
        .to_string(),
    )
    .unwrap();
    write(&store.join("s/blog/blog_20250101T000000Z.tar.zst"), b"x");
    let out = std::process::Command::new(crate::util::bin())
        .args(["--home", &home.path().to_string_lossy(), "prune"])
        .env_remove("WPBACKUP_HOME")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("no \"retention\"") && text.contains("every archive is kept"),
        "{text}"
    );
    assert!(store.join("s/blog/blog_20250101T000000Z.tar.zst").exists());
}
