//! `wpbackup ls` against the real servers (issue 26 item 3, security issue 22): a
//! differential archive is listed as the restore point it makes with its full (unchanged
//! files from the full, changed and new ones from the differential, deleted ones not at all),
//! each path with the archive it comes from; `--changes` lists the differential alone; a
//! path prefix lists what `restore --only` of it brings back. A file whose name carries a
//! terminal escape sequence is shown escaped, in `ls` and in the error that names it, and
//! exactly in `--json`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use crate::differential::{full_then_differential, keys};
use crate::fixture::{self, Fixture};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `--json ls ARGS`: its document.
fn ls_json(f: &Fixture, args: &[&str]) -> Value {
    let mut all = vec!["--json", "ls", "--site", "blog"];
    all.extend_from_slice(args);
    let out = f.run(&all);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Each listed path and the key of the archive it comes from.
fn sources(doc: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for f in doc["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap().to_string();
        let from = f["from"].as_str().unwrap().to_string();
        assert!(out.insert(path.clone(), from).is_none(), "{path} twice");
    }
    out
}

#[test]
fn ls_of_a_differential_lists_the_restore_point_with_where_each_path_comes_from() {
    let f = Fixture::new("lsdiff");
    full_then_differential(&f, &["backup"]);
    let k = keys(&f);
    assert_eq!(k.len(), 2, "{k:?}");
    let (full, diff) = (k[0].as_str(), k[1].as_str());
    assert!(diff.contains(".diff-"), "{k:?}");

    // The whole restore point: every path the site has, none it deleted.
    let doc = ls_json(&f, &[]);
    assert_eq!(doc["key"], diff);
    assert_eq!(doc["restore_point"], json!([diff, full]));
    let from = sources(&doc);
    let live: Vec<String> = fixture::tree(&f.site.path, &|_| false)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        from.keys().cloned().collect::<Vec<_>>(),
        live,
        "ls lists what a restore makes"
    );
    let uploads = "wp-content/uploads";
    assert_eq!(
        from["wp-includes/version.php"], full,
        "unchanged: the full's"
    );
    assert_eq!(from["wp-config.php"], full);
    assert_eq!(from["wp-content/plugins/wpb-test/wpb-test.php"], diff);
    assert_eq!(from[&format!("{uploads}/new-photo.jpg")], diff);
    assert!(!from.contains_key(&format!("{uploads}/old-notes.txt")));
    let logo = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == format!("{uploads}/logo.png"))
        .unwrap();
    assert_eq!(
        (&logo["kind"], &logo["link"], &logo["from"]),
        (&json!("l"), &json!("new-photo.jpg"), &json!(diff)),
        "the file the differential replaced by a symlink: {logo}"
    );
    let edited = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "wp-content/plugins/wpb-test/wpb-test.php")
        .unwrap();
    assert_eq!(
        edited["size"],
        "<?php // version 2, edited after the full backup\n".len()
    );

    // The table: FROM is the time in the key of the archive each path comes from.
    let out = f.run(&["ls", "--site", "blog"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.starts_with("KIND"), "{table}");
    assert!(table.lines().next().unwrap().contains("FROM"), "{table}");
    let row = |path: &str| {
        table
            .lines()
            .find(|l| l.ends_with(&format!("  {path}")))
            .unwrap_or_else(|| panic!("no {path} in\n{table}"))
            .to_string()
    };
    assert!(
        row("wp-includes/version.php").contains("20261101T030000Z"),
        "{table}"
    );
    assert!(
        row("wp-content/plugins/wpb-test/wpb-test.php").contains("20261102T030000Z"),
        "{table}"
    );
    assert!(!table.contains("old-notes.txt"), "{table}");

    // --changes: the differential alone, and what it deleted.
    let doc = ls_json(&f, &["--changes"]);
    assert_eq!(doc["restore_point"], json!([diff]));
    let changes = sources(&doc);
    assert!(changes.values().all(|k| k == diff), "{doc}");
    assert!(changes.contains_key("wp-content/plugins/wpb-test/wpb-test.php"));
    assert!(!changes.contains_key("wp-includes/version.php"), "{doc}");
    assert_eq!(doc["deleted"], json!([format!("{uploads}/old-notes.txt")]));

    // A path prefix lists what `restore --only` of it brings back, from both archives.
    let prefix = "wp-content";
    let listed: Vec<String> = sources(&ls_json(&f, &[prefix])).into_keys().collect();
    assert!(listed.iter().all(|p| Path::new(p).starts_with(prefix)));
    let to = tempfile::Builder::new()
        .prefix("wpb-lsonly")
        .tempdir()
        .unwrap();
    let mut cmd = f.cmd(&[
        "restore", "--site", "blog", "--yes", "--only", prefix, "--to",
    ]);
    let out = cmd.arg(to.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let restored: Vec<String> = fixture::tree(to.path(), &|_| false)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(listed, restored, "ls PATH and restore --only PATH disagree");
}

#[test]
fn names_with_terminal_escapes_are_shown_escaped_and_exact_in_json() {
    let f = Fixture::new("lsevil");
    let name = "evil\u{1b}]0;pwned\u{7}.txt";
    let uploads = f.site.path.join("wp-content/uploads");
    std::fs::write(uploads.join(name), "x").unwrap();
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = f.run(&["ls", "--site", "blog", "wp-content/uploads"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(
        !out.stdout.contains(&0x1b) && !out.stdout.contains(&0x07),
        "a raw control character reached the terminal: {shown:?}"
    );
    assert!(
        shown.contains(r"wp-content/uploads/evil\x1b]0;pwned\x07.txt"),
        "{shown}"
    );
    // --json is for scripts: the name exactly as it is.
    let doc = ls_json(&f, &["wp-content/uploads"]);
    let path = format!("wp-content/uploads/{name}");
    assert!(
        doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == path.as_str()),
        "{doc}"
    );

    // An error naming it: `restore --only` refuses a directory where the archive has that
    // file, and says so without the escape sequence.
    let to = tempfile::Builder::new()
        .prefix("wpb-lsevil")
        .tempdir()
        .unwrap();
    std::fs::create_dir_all(to.path().join("wp-content/uploads").join(name)).unwrap();
    let mut cmd = f.cmd(&[
        "restore", "--site", "blog", "--yes", "--only", &path, "--to",
    ]);
    let out = cmd.arg(to.path()).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(r"evil\x1b]0;pwned\x07.txt"), "{err}");
    assert!(
        !out.stderr.contains(&0x1b) && !out.stderr.contains(&0x07),
        "{err:?}"
    );
}
