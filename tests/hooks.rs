//! Issue 26 item 3 against real servers: a site's hooks run before and after its backup and
//! restore, in order, with their environment (a failing `before_backup` hook stops that site
//! with its output in the ERROR row, nothing stored, the other sites still backed up; a failing
//! `before_restore` changes nothing); `exclude_tables` keeps a table's structure in the dump
//! but not its rows, and a restore brings it back empty; `upload.max_mib_per_sec` keeps an
//! upload no faster than the limit allows.

use std::path::Path;

use serde_json::{Value, json};

use crate::fixture::{self, Fixture};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A hook that appends `line` (shell words, expanded) to `log`, then runs `then`.
fn sh(log: &Path, line: &str, then: &str) -> Value {
    json!([
        "sh",
        "-c",
        format!("echo \"{line}\" >> '{}'; {then}", log.display())
    ])
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The keys stored in either bucket for `site`.
fn keys_of(f: &Fixture, site: &str) -> Vec<String> {
    [&f.primary, &f.secondary]
        .into_iter()
        .flat_map(fixture::stored)
        .map(|(k, _)| k)
        .filter(|k| k.contains(&format!("/{site}/")))
        .collect()
}

#[test]
fn a_failing_before_backup_hook_stops_that_site_and_after_hooks_always_run() {
    let f = Fixture::new("hooks-backup");
    let logs = tempfile::tempdir().unwrap();
    let (blocked, good) = (
        logs.path().join("blocked.log"),
        logs.path().join("good.log"),
    );
    let mut config = f.default_config();
    let path = &f.site.path;
    config["sites"] = json!([
        {
            "name": "blocked", "path": path,
            "hooks": {
                "before_backup": [
                    sh(&blocked, "before $WPBACKUP_SITE $WPBACKUP_PHASE", ""),
                    ["sh", "-c", "echo 'maintenance mode refused: the disk is full'; echo on-stderr >&2; exit 3"],
                    sh(&blocked, "never", ""),
                ],
                "after_backup": [sh(&blocked, "after $WPBACKUP_STATUS key=${WPBACKUP_ARCHIVE_KEY:-none}", "")],
            }
        },
        {
            "name": "good", "path": path,
            "hooks": {
                // Maintenance on for the backup: the walk sees its file, the after hook removes it.
                "before_backup": [sh(&good, "before $WPBACKUP_SITE $(pwd)", "touch .maintenance")],
                "after_backup": [
                    sh(&good, "after $WPBACKUP_STATUS $WPBACKUP_STORAGE $WPBACKUP_ARCHIVE_KEY", "rm .maintenance"),
                    ["sh", "-c", "echo 'cache flush failed'; exit 1"],
                    sh(&good, "after again", ""),
                ],
            }
        }
    ]);
    f.write_config(config);

    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = f.rows();
    let row = |site: &str| rows.iter().find(|r| r.site_name == site).unwrap().clone();

    // The failing before hook: an ERROR naming it with its output (stdout and stderr), the
    // rest of its list not run, nothing stored; its after hook ran, told it failed.
    let b = row("blocked");
    assert_eq!(b.status, "ERROR", "{b:?}");
    assert!(
        b.details.contains("before_backup hook [1]"),
        "{}",
        b.details
    );
    assert!(b.details.contains("exit status 3"), "{}", b.details);
    assert!(
        b.details
            .contains("maintenance mode refused: the disk is full")
            && b.details.contains("on-stderr"),
        "{}",
        b.details
    );
    assert!(b.archive_key.is_none(), "{b:?}");
    assert!(
        keys_of(&f, "blocked").is_empty(),
        "{:?}",
        keys_of(&f, "blocked")
    );
    assert_eq!(
        read(&blocked),
        "before blocked before_backup\nafter error key=none\n"
    );

    // The other site: backed up between its hooks, in order; a failing after hook is a
    // WARNING with its output, the archive stored, the after hooks after it still run.
    let g = row("good");
    assert_eq!(g.status, "WARNING", "{g:?}");
    assert!(g.details.contains("after_backup hook [1]"), "{}", g.details);
    assert!(g.details.contains("cache flush failed"), "{}", g.details);
    let key = g.archive_key.clone().expect("good stored");
    assert_eq!(keys_of(&f, "good"), std::slice::from_ref(&key));
    let site_dir = path.canonicalize().unwrap();
    assert_eq!(
        read(&good),
        format!(
            "before good {}\nafter success primary {key}\nafter again\n",
            site_dir.display()
        )
    );
    assert!(!path.join(".maintenance").exists());
    // The before hook ran before the files were read: its file is in the archive.
    let archive = f.primary.object_path(fixture::BUCKET, &key);
    let x = fixture::extract(&archive);
    assert!(x.path().join("files/.maintenance").is_file());
}

#[test]
fn restore_hooks_run_around_the_restore_and_a_failing_before_restore_changes_nothing() {
    let f = Fixture::new("hooks-restore");
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("restore.log");
    let with_hooks = |hooks: Value| {
        let mut config = f.default_config();
        config["sites"][0]["hooks"] = hooks;
        f.write_config(config);
    };
    std::fs::write(f.site.path.join("changed-after-backup.txt"), "live").unwrap();

    // A before_restore hook that fails: the restore stops with its output, nothing changed;
    // after_restore still runs, told it failed.
    with_hooks(json!({
        "before_restore": [["sh", "-c", "echo 'cannot stop php-fpm'; exit 7"]],
        "after_restore": [sh(&log, "after $WPBACKUP_STATUS", "")],
    }));
    let out = f.run(&["restore", "--site", "blog", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("before_restore hook [0]"), "{err}");
    assert!(err.contains("cannot stop php-fpm"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(f.site.path.join("changed-after-backup.txt").exists());
    let parent = f.site.path.parent().unwrap();
    let aside: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".before-restore-") || n.contains(".restoring-"))
        .collect();
    assert!(aside.is_empty(), "{aside:?}");
    assert_eq!(read(&log), "after error\n");
    let last = f.rows().pop().unwrap();
    assert_eq!(last.status, "ERROR", "{last:?}");
    assert!(
        last.details.contains("cannot stop php-fpm"),
        "{}",
        last.details
    );

    // Hooks that pass: before, the restore, after (one failing after hook: a WARNING).
    std::fs::remove_file(&log).unwrap();
    let before = format!(
        "echo \"before $WPBACKUP_ARCHIVE_KEY to=$WPBACKUP_RESTORE_TO\" >> '{}'; test -e changed-after-backup.txt && echo live-still-there >> '{}'",
        log.display(),
        log.display()
    );
    with_hooks(json!({
        "before_restore": [["sh", "-c", before]],
        "after_restore": [
            ["sh", "-c", format!("test -e changed-after-backup.txt || echo \"after $WPBACKUP_STATUS restored\" >> '{}'", log.display())],
            ["sh", "-c", "echo 'cache warmup failed'; exit 2"],
        ],
    }));
    let out = f.run(&["restore", "--site", "blog", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!f.site.path.join("changed-after-backup.txt").exists());
    let last = f.rows().pop().unwrap();
    let key = last.archive_key.clone().unwrap();
    assert_eq!(
        read(&log),
        format!(
            "before {key} to={}\nlive-still-there\nafter success restored\n",
            f.site.path.display()
        )
    );
    assert_eq!(last.status, "WARNING", "{last:?}");
    assert!(
        last.details.contains("after_restore hook [1]"),
        "{}",
        last.details
    );
    assert!(
        last.details.contains("cache warmup failed"),
        "{}",
        last.details
    );
}

#[test]
fn an_excluded_table_keeps_its_structure_but_not_its_rows() {
    let f = Fixture::new("exclude-tables");
    f.db.sql_db(
        &f.site.db_name,
        "CREATE TABLE wp_big_log (id INT PRIMARY KEY AUTO_INCREMENT, line VARCHAR(64), KEY by_line (line));
         INSERT INTO wp_big_log (line) VALUES ('needle-row-one'), ('needle-row-two'), ('needle-row-three');",
    );
    let mut config = f.default_config();
    config["sites"][0]["exclude_tables"] = json!(["wp_big_log", "wp_no_such_table"]);
    f.write_config(config);

    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let row = f.rows().pop().unwrap();
    // A name the database does not have: a warning that names it, the archive stored.
    assert_eq!(row.status, "WARNING", "{row:?}");
    assert!(row.details.contains("wp_no_such_table"), "{}", row.details);
    assert!(!row.details.contains("wp_big_log"), "{}", row.details);
    let key = row.archive_key.unwrap();

    let x = fixture::extract(&f.primary.object_path(fixture::BUCKET, &key));
    let sql = std::fs::read_to_string(x.path().join("database.sql")).unwrap();
    assert!(sql.contains("CREATE TABLE `wp_big_log`"), "no structure");
    assert!(sql.contains("KEY `by_line`"), "no index");
    assert!(
        !sql.contains("INSERT INTO `wp_big_log`"),
        "its rows were dumped"
    );
    assert!(!sql.contains("needle-row"), "its rows were dumped");
    assert!(
        sql.contains("INSERT INTO `wp_posts`"),
        "other tables lost their rows"
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(x.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["excluded_tables"], json!(["wp_big_log"]));
    assert_eq!(manifest["table_rows"]["wp_big_log"], json!(0));

    // Restored: the table is there, empty; the posts are back.
    let titles = f.site.post_titles(&f.db);
    let out = f.run(&["restore", "--site", "blog", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let count =
        f.db.sql_db(&f.site.db_name, "SELECT COUNT(*) FROM wp_big_log");
    assert_eq!(count.trim(), "0");
    assert_eq!(f.site.post_titles(&f.db), titles);
}

#[test]
fn an_upload_is_no_faster_than_its_limit() {
    let f = Fixture::new("bandwidth");
    // Incompressible data, so the archive is mostly bytes the limit must pace.
    f.site.grow(6 * 1024 * 1024);
    let limit_mib = 2.0;
    let mut config = f.default_config();
    config["upload"]["max_mib_per_sec"] = json!(limit_mib);
    f.write_config(config);

    let started = std::time::Instant::now();
    let out = f.run(&["backup"]);
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let archives = f.archive_rows();
    assert_eq!(archives.len(), 1, "{archives:?}");
    let bytes = archives[0].2 as f64;
    assert!(bytes > 6.0 * 1024.0 * 1024.0, "{bytes}");
    // Not faster than the limit allows (generous slack); no bound on how slow.
    let mib_per_sec = bytes / (1024.0 * 1024.0) / elapsed;
    assert!(
        mib_per_sec <= limit_mib * 1.5,
        "{bytes} bytes in {elapsed:.1}s: {mib_per_sec:.2} MiB/s, limit {limit_mib}"
    );
}
