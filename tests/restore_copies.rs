//! The copies restores keep of what they replaced (issue 16 item 11): a real restore's copies
//! and hand-made ones from long ago, named exactly as restore names them, are listed by
//! `status` with their age and size; `prune --dry-run` names the old ones and removes nothing;
//! `prune` removes only those (printing and recording each), never what merely looks like a
//! copy, and never what a symlink inside a copy points to.

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::fixture::Fixture;

const OLD: &str = "20200101T000000Z";

/// Copies made by hand, named as restore names them, from long ago: a site's previous files
/// (holding symlinks to `outside`), a second one the same second, a parent wp-config.php and a
/// saved database.
fn old_copies(f: &Fixture, parent: &Path, dir: &str, outside: &Path) -> Vec<PathBuf> {
    let files = parent.join(format!("{dir}.before-restore-{OLD}"));
    std::fs::create_dir_all(files.join("wp-content/uploads")).unwrap();
    std::fs::write(files.join("wp-content/uploads/a.jpg"), vec![7u8; 5000]).unwrap();
    symlink(outside, files.join("wp-content/uploads/linked")).unwrap();
    symlink(outside.join("keep.txt"), files.join("keep-link.txt")).unwrap();
    let second = parent.join(format!("{dir}.before-restore-{OLD}-2"));
    std::fs::create_dir_all(&second).unwrap();
    let wp = parent.join(format!("wp-config.php.before-restore-{OLD}"));
    std::fs::write(&wp, b"<?php // the old parent config").unwrap();
    let saved = f.home().join("before-restore");
    std::fs::create_dir_all(&saved).unwrap();
    let db = saved.join(format!("blog_wp_old_{OLD}.sql.zst"));
    std::fs::write(&db, b"saved").unwrap();
    vec![files, second, wp, db]
}

/// Old-looking names that are not copies: never listed, never touched.
fn look_alikes(f: &Fixture, parent: &Path, dir: &str) -> Vec<PathBuf> {
    let paths = vec![
        parent.join(format!("{dir}.before-restore-{OLD}.tar")),
        parent.join(format!("{dir}.before-restore-old")),
        parent.join(format!("{dir}.before-restore-{OLD}-1")),
        parent.join(format!("{dir}.bak-{OLD}")),
        parent.join("wp-config.php.before-restore-2020"),
        f.home()
            .join(format!("before-restore/blog_wp_old_{OLD}.sql")),
    ];
    for p in &paths {
        std::fs::write(p, b"not a copy").unwrap();
    }
    paths
}

fn json(f: &Fixture, args: &[&str]) -> Value {
    let out = f.run(args);
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice(&out.stdout).expect("--json")
}

/// `status`: the restore's two fresh copies and the four old ones, nothing else; the fresh
/// ones' paths.
fn assert_status_lists_the_copies(
    f: &Fixture,
    old: &[PathBuf],
    decoys: &[PathBuf],
) -> Vec<PathBuf> {
    let out = f.run(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("kept by restores to undo them: 6 copies"),
        "{text}"
    );
    let listed = |p: &Path| {
        text.lines()
            .find(|l| l.ends_with(&*p.to_string_lossy()))
            .map(str::to_string)
    };
    for p in old {
        let line = listed(p).unwrap_or_else(|| panic!("{} not listed:\n{text}", p.display()));
        assert!(
            line.contains("removes it") && line.contains(" days"),
            "{line}"
        );
    }
    for p in decoys {
        assert!(listed(p).is_none(), "{}: {text}", p.display());
    }
    let doc = json(f, &["--json", "status"]);
    let fresh: Vec<_> = doc["restore_copies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["path"].as_str().unwrap().contains(OLD))
        .collect();
    let kinds: Vec<_> = fresh.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 2, "{doc}");
    assert!(
        kinds.contains(&"files") && kinds.contains(&"database"),
        "{doc}"
    );
    fresh
        .iter()
        .map(|c| PathBuf::from(c["path"].as_str().unwrap()))
        .collect()
}

/// `prune --dry-run` names the four old ones and removes nothing.
fn assert_dry_run_names_the_old_ones(f: &Fixture, old: &[PathBuf]) {
    let doc = json(f, &["--json", "prune", "--dry-run"]);
    let planned: BTreeSet<_> = doc["restore_copies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "delete")
        .map(|c| PathBuf::from(c["path"].as_str().unwrap()))
        .collect();
    assert_eq!(planned, old.iter().cloned().collect(), "{doc}");
    assert!(old.iter().all(|p| p.symlink_metadata().is_ok()));
}

/// `prune` removes exactly the old ones, printing and recording each.
fn assert_prune_removes_the_old_ones(f: &Fixture, old: &[PathBuf]) {
    let out = f.run(&["prune"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for p in old {
        assert!(p.symlink_metadata().is_err(), "{} still there", p.display());
        let said = text
            .lines()
            .any(|l| l.contains("deleted") && l.ends_with(&*p.to_string_lossy()));
        assert!(said, "{} removed silently:\n{text}", p.display());
        let recorded = f
            .rows()
            .iter()
            .any(|r| r.status == "SUCCESS" && r.details.contains(&*p.to_string_lossy()));
        assert!(recorded, "{} not in backups.db", p.display());
    }
    assert!(text.contains("deleted 4; kept 2"), "{text}");
}

/// What [`restore_and_plant`] left: the old copies, the look-alikes, and the directory the
/// old copies' symlinks point into.
struct Planted {
    old: Vec<PathBuf>,
    decoys: Vec<PathBuf>,
    outside: PathBuf,
}

/// A backup and a restore (its two fresh copies), then old copies and look-alikes made by
/// hand beside the site and in the home.
fn restore_and_plant(f: &Fixture) -> Planted {
    assert_eq!(f.run(&["backup"]).status.code(), Some(0));
    assert_eq!(
        f.run(&["restore", "--site", "blog", "--yes"]).status.code(),
        Some(0)
    );
    let parent = f.site.path.parent().unwrap().to_path_buf();
    let dir = f.site.path.file_name().unwrap().to_string_lossy();
    let outside = parent.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep.txt"), b"not the copy's").unwrap();
    Planted {
        old: old_copies(f, &parent, &dir, &outside),
        decoys: look_alikes(f, &parent, &dir),
        outside,
    }
}

#[test]
fn restore_copies_are_listed_and_only_old_ones_are_pruned() {
    let f = Fixture::new("copies");
    let Planted {
        old,
        decoys,
        outside,
    } = restore_and_plant(&f);

    let fresh = assert_status_lists_the_copies(&f, &old, &decoys);
    assert_dry_run_names_the_old_ones(&f, &old);
    assert_prune_removes_the_old_ones(&f, &old);
    for p in decoys.iter().chain(&fresh) {
        assert!(p.exists(), "{} was touched", p.display());
    }
    assert_eq!(
        std::fs::read(outside.join("keep.txt")).unwrap(),
        b"not the copy's"
    );
    assert!(f.site.path.join("wp-config.php").exists(), "the live site");
}

/// No timer runs `prune`: the nightly backup removes the copies restores kept once they are
/// older than `restore.keep_copies_days` (issue 26), recording each, and leaves the fresh ones
/// and whatever only looks like a copy.
#[test]
fn the_nightly_backup_removes_old_restore_copies() {
    let f = Fixture::new("copies-nightly");
    let Planted {
        old,
        decoys,
        outside,
    } = restore_and_plant(&f);
    let fresh = assert_status_lists_the_copies(&f, &old, &decoys);

    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(f.run(&["backup"]).status.code(), Some(0));
    for p in &old {
        assert!(p.symlink_metadata().is_err(), "{} still there", p.display());
        let recorded = f
            .rows()
            .iter()
            .any(|r| r.status == "SUCCESS" && r.details.contains(&*p.to_string_lossy()));
        assert!(recorded, "{} not in backups.db", p.display());
    }
    for p in decoys.iter().chain(&fresh) {
        assert!(p.exists(), "{} was touched", p.display());
    }
    assert_eq!(
        std::fs::read(outside.join("keep.txt")).unwrap(),
        b"not the copy's"
    );
}
