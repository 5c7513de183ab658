//! `wpbackup backup` against real servers: the archive is complete and opens with plain tar,
//! the dump restores the site's posts, failover lands the archive on the secondary with a
//! WARNING that says why, failures are ERRORs that leave nothing half-written, secrets stay out
//! of `ps`, logs, backups.db and keys, option files of the system or the user change no dump,
//! and memory does not grow with the site.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use tempfile::TempDir;

use crate::fixture::{self, BUCKET, Fixture, PRIMARY_SECRET, SECONDARY_SECRET};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Things the archive must keep or leave out: symlinks (one dangling), an excluded cache
/// directory and log, a fifo, and a file nobody can read (unless the test runs as root).
/// Returns whether the test runs as root.
fn add_files_to_keep_or_leave_out(site: &Path) -> bool {
    std::os::unix::fs::symlink("wp-content/uploads", site.join("uploads-link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", site.join("dangling-link")).unwrap();
    std::fs::create_dir_all(site.join("wp-content/cache/page")).unwrap();
    std::fs::write(site.join("wp-content/cache/page/index.html"), "cached").unwrap();
    std::fs::write(site.join("wp-content/debug.log"), "log line").unwrap();
    let unreadable = site.join("wp-content/private.txt");
    std::fs::write(&unreadable, "secret stuff").unwrap();
    let fifo = site.join("wp-content/a-fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let as_root = unsafe { libc::geteuid() } == 0;
    if !as_root {
        std::fs::set_permissions(
            &unreadable,
            std::os::unix::fs::PermissionsExt::from_mode(0o000),
        )
        .unwrap();
    }
    as_root
}

/// One backup_log row for the blog on the primary: SUCCESS, or a WARNING naming the file it
/// could not read.
fn assert_one_row_for_the_blog(f: &Fixture, as_root: bool) -> fixture::Row {
    let rows = f.rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row.site_name, "blog");
    assert_eq!(row.server_id, "test-server");
    assert_eq!(row.storage_name.as_deref(), Some("primary"));
    if as_root {
        assert_eq!(row.status, "SUCCESS", "{row:?}");
    } else {
        assert_eq!(row.status, "WARNING", "{row:?}");
        assert!(row.details.contains("private.txt"), "{row:?}");
    }
    row.clone()
}

/// The archive is on the primary only, under the documented key: (key, path on disk).
fn assert_stored_on_the_primary_only(f: &Fixture, row: &fixture::Row) -> (String, PathBuf) {
    let on_primary = fixture::stored(&f.primary);
    assert_eq!(on_primary.len(), 1, "{on_primary:?}");
    assert!(fixture::stored(&f.secondary).is_empty());
    let (key, path) = on_primary[0].clone();
    assert!(
        key.starts_with("test-server/blog/blog_") && key.ends_with("Z.tar.zst"),
        "{key}"
    );
    assert_eq!(row.archive_key.as_deref(), Some(key.as_str()));
    (key, path)
}

/// s3_archives records its size and sha256, which match the stored bytes.
fn assert_size_and_sha256_recorded(f: &Fixture, key: &str, path: &Path) {
    let archives = f.archive_rows();
    assert_eq!(archives.len(), 1);
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(archives[0].0, *key);
    assert_eq!(archives[0].2 as usize, bytes.len());
    let sha = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(stdout(&sha).starts_with(&archives[0].3), "sha256 mismatch");
}

/// Plain tar opens it; files/ equals the site minus excludes, fifo and unreadable file.
/// Returns the extracted archive.
fn assert_archive_matches_site(site: &Path, archive: &Path, as_root: bool) -> TempDir {
    let x = fixture::extract(archive);
    let skip = |rel: &str| {
        rel == "wp-content/cache"
            || rel.starts_with("wp-content/cache/")
            || rel.ends_with(".log")
            || rel == "wp-content/a-fifo"
            || (!as_root && rel == "wp-content/private.txt")
    };
    let want = fixture::tree(site, &skip);
    let got = fixture::tree(&x.path().join("files"), &|_| false);
    assert!(want.iter().any(|(p, _)| p == "uploads-link"));
    assert!(want.iter().any(|(p, _)| p == "dangling-link"));
    assert_eq!(got, want, "extracted files differ from the site");
    x
}

/// manifest.json says what is inside; the dump matches its sha256 and is complete.
fn assert_manifest_describes_the_site_and_dump(f: &Fixture, x: &Path) {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(x.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["site"], "blog");
    assert_eq!(manifest["server_id"], "test-server");
    assert_eq!(manifest["database_name"], f.site.db_name.as_str());
    assert_eq!(manifest["table_prefix"], "wp_");
    assert_eq!(manifest["siteurl"], f.site.url.as_str());
    assert_eq!(
        manifest["wordpress_version"]
            .as_str()
            .map(|v| v.starts_with('6')),
        Some(true)
    );
    let dump = std::fs::read(x.join("database.sql")).unwrap();
    let dump_sha = Command::new("sha256sum")
        .arg(x.join("database.sql"))
        .output()
        .unwrap();
    assert!(stdout(&dump_sha).starts_with(manifest["database_sha256"].as_str().unwrap()));
    let tail = String::from_utf8_lossy(&dump[dump.len().saturating_sub(200)..]).into_owned();
    assert!(tail.contains("-- Dump completed"), "dump tail: {tail}");
}

/// database.sql loaded into a fresh database holds the site's posts, non-ASCII intact.
fn assert_dump_restores_the_posts(f: &Fixture, dump: &Path) {
    f.db.sql("CREATE DATABASE restored CHARACTER SET utf8mb4");
    let load = Command::new("mariadb")
        .args(["--no-defaults", "-uroot", "--default-character-set=utf8mb4"])
        .arg(format!("--socket={}", f.db.socket.display()))
        .arg("restored")
        .stdin(std::fs::File::open(dump).unwrap())
        .output()
        .unwrap();
    assert!(load.status.success(), "{}", stderr(&load));
    let titles = f.db.sql_db(
        "restored",
        "SELECT post_title FROM wp_posts WHERE post_status='publish' AND post_type='post' ORDER BY post_title",
    );
    let original = f.site.post_titles(&f.db);
    assert!(!original.is_empty());
    for t in &original {
        assert!(
            titles.lines().any(|l| l == t),
            "post {t:?} missing from the restored database:\n{titles}"
        );
    }
    assert!(
        original.iter().any(|t| !t.is_ascii()),
        "the fixture should have a non-ASCII title"
    );
}

#[test]
fn backup_archive_holds_the_site_and_a_restorable_dump() {
    let f = Fixture::new("roundtrip");
    let site = &f.site.path;
    let as_root = add_files_to_keep_or_leave_out(site);

    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let row = assert_one_row_for_the_blog(&f, as_root);
    let (key, path) = assert_stored_on_the_primary_only(&f, &row);
    assert_size_and_sha256_recorded(&f, &key, &path);
    let x = assert_archive_matches_site(site, &path, as_root);
    assert_manifest_describes_the_site_and_dump(&f, x.path());
    assert_dump_restores_the_posts(&f, &x.path().join("database.sql"));
}

#[test]
fn failover_when_the_primary_is_down() {
    let mut f = Fixture::new("down");
    f.primary.kill();
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = f.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "WARNING", "{:?}", rows[0]);
    assert_eq!(rows[0].storage_name.as_deref(), Some("secondary"));
    assert!(rows[0].details.contains("primary"), "{:?}", rows[0]);
    assert_eq!(fixture::stored(&f.secondary).len(), 1);
}

#[test]
fn failover_when_the_primary_rejects_the_secret_key() {
    let f = Fixture::new("badkey");
    f.write_env(&[("PRIMARY_SECRET_KEY", "not-the-right-secret")]);
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = f.rows();
    assert_eq!(rows[0].status, "WARNING", "{:?}", rows[0]);
    assert_eq!(rows[0].storage_name.as_deref(), Some("secondary"));
    let d = rows[0].details.to_lowercase();
    assert!(
        d.contains("primary") && (d.contains("credential") || d.contains("signature")),
        "{d}"
    );
    // What to fix is named: the two .env variables of that storage (issue 16, item 6).
    assert!(
        rows[0]
            .details
            .contains("check PRIMARY_ACCESS_KEY and PRIMARY_SECRET_KEY in .env"),
        "{}",
        rows[0].details
    );
    assert!(fixture::stored(&f.primary).is_empty());
    assert_eq!(fixture::stored(&f.secondary).len(), 1);
}

#[test]
fn failover_when_the_primary_bucket_is_missing() {
    let f = Fixture::new("nobucket");
    std::fs::remove_dir_all(f.primary.root.join(BUCKET)).unwrap();
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = f.rows();
    assert_eq!(rows[0].status, "WARNING", "{:?}", rows[0]);
    assert!(rows[0].details.contains("bucket"), "{:?}", rows[0]);
    assert_eq!(fixture::stored(&f.secondary).len(), 1);
}

#[test]
fn all_storages_failing_is_an_error_and_leaves_nothing() {
    let mut f = Fixture::new("allfail");
    // The primary is gone; the secondary answers but with the wrong key.
    f.primary.kill();
    f.write_env(&[("SECONDARY_SECRET_KEY", "wrong")]);
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = f.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "ERROR");
    assert!(
        rows[0].details.contains("primary") && rows[0].details.contains("secondary"),
        "{:?}",
        rows[0]
    );
    assert!(f.archive_rows().is_empty());
    assert!(fixture::stored(&f.secondary).is_empty());
    // No stray files in the bucket directories either (multipart residue, temporaries).
    let files = fixture::tree(&f.secondary.root.join(BUCKET), &|_| false);
    assert!(
        files.iter().all(|(_, kind)| kind.starts_with("dir")),
        "{files:?}"
    );
}

#[test]
fn upload_failing_midway_fails_over_and_aborts_the_multipart_upload() {
    let mut f = Fixture::new("midway");
    // Enough incompressible data for several 5 MiB parts; the primary is killed once the
    // upload has begun, so later parts fail.
    f.site.grow(24 * 1024 * 1024);
    let primary_bucket = f.primary.root.join(BUCKET);
    let mut child = f
        .cmd(&["backup"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // Wait until the upload to the primary has started (s3s-fs keeps parts on disk).
    while std::time::Instant::now() < deadline {
        let started = crate::fixture::walk_count(&f.primary.root) > 1;
        if started {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    f.primary.kill();
    let status = child.wait().unwrap();
    let rows = f.rows();
    assert!(status.success(), "{rows:?}");
    assert_eq!(
        rows[0].storage_name.as_deref(),
        Some("secondary"),
        "{:?}",
        rows[0]
    );
    assert_eq!(rows[0].status, "WARNING");
    assert!(rows[0].details.contains("primary"), "{:?}", rows[0]);
    assert_eq!(fixture::stored(&f.secondary).len(), 1);
    assert!(!primary_bucket.exists() || fixture::stored(&f.primary).is_empty());
    // The copy on the secondary is whole: verify reads it end to end against its manifest.
    let out = f.run(&["verify", "--storage", "secondary"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("OK"), "{}", stdout(&out));
}

#[test]
fn wrong_database_password_is_an_error_naming_the_site() {
    let f = Fixture::new("badpw");
    let mut config = f.default_config();
    config["sites"][0]["database"] = json!({
        "name": f.site.db_name, "user": f.site.db_user, "password_env": "BLOG_DB_PASSWORD",
        "host": format!("127.0.0.1:{}", f.db.port)
    });
    config["sites"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "second", "path": f.site.path}));
    f.write_config(config);
    f.write_env(&[("BLOG_DB_PASSWORD", "definitely-wrong")]);
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(1));
    let rows = f.rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let blog = rows.iter().find(|r| r.site_name == "blog").unwrap();
    assert_eq!(blog.status, "ERROR");
    assert!(blog.details.contains("Access denied"), "{blog:?}");
    assert!(!blog.details.contains("definitely-wrong"));
    // One site failing never stops the others.
    let second = rows.iter().find(|r| r.site_name == "second").unwrap();
    assert_eq!(second.status, "SUCCESS", "{second:?}");
    assert!(stdout(&out).contains("blog") && stdout(&out).contains("ERROR"));
}

#[test]
fn a_dump_without_its_completion_line_is_never_stored() {
    let f = Fixture::new("truncated");
    // A dump tool that exits 0 but stops early, as a killed or broken dump would look.
    let (_fake, path) = crate::fixture::fake_tool(
        "mariadb-dump",
        "#!/bin/sh\necho '-- MariaDB dump'\necho 'CREATE TABLE wp_posts (id int);'\nexit 0\n",
    );
    let out = f.cmd(&["backup"]).env("PATH", path).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = f.rows();
    assert_eq!(rows[0].status, "ERROR");
    assert!(rows[0].details.contains("completion line"), "{:?}", rows[0]);
    assert!(fixture::stored(&f.primary).is_empty() && fixture::stored(&f.secondary).is_empty());
    assert!(f.archive_rows().is_empty());
}

/// Issue 12, item 12: option files other than wpbackup's own are never read by the database
/// tools. The tools are run with `HOME` pointing at a `.my.cnf` (read like `/etc/mysql/...`)
/// that would make the dump hold no rows (`[mysqldump] no-data`, yet still end with its
/// completion line) and the client print rows another way (`[mysql] vertical`): the backup
/// still stores a dump that restores the posts, and the site's address in its manifest. The
/// one setting still followed is the socket it names, for a site on plain `localhost` (this
/// machine's default socket is another server's).
#[test]
fn option_files_of_the_system_and_the_user_change_no_dump() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new("mycnf");
    f.db.sql(&format!(
        "CREATE USER 'mycnf'@'localhost' IDENTIFIED BY 'mycnf-pw-1'; GRANT ALL ON `{}`.* TO 'mycnf'@'localhost';",
        f.site.db_name
    ));
    let mut config = f.default_config();
    config["sites"][0]["database"] = json!({
        "name": f.site.db_name, "user": "mycnf", "password_env": "BLOG_DB_PASSWORD",
        "host": "localhost"
    });
    f.write_config(config);
    f.write_env(&[("BLOG_DB_PASSWORD", "mycnf-pw-1")]);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join(".my.cnf"),
        format!(
            "[client]\nsocket={}\n[mysqldump]\nno-data\n[mysql]\nvertical\n",
            f.db.socket.display()
        ),
    )
    .unwrap();
    let wrap = |tool: &str| {
        let real = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        format!(
            "#!/bin/sh\nHOME='{}' exec '{}' \"$@\"\n",
            home.path().display(),
            stdout(&real).trim()
        )
    };
    let (fake, path) = crate::fixture::fake_tool("mariadb-dump", &wrap("mariadb-dump"));
    let client = fake.path().join("mariadb");
    std::fs::write(&client, wrap("mariadb")).unwrap();
    std::fs::set_permissions(&client, std::fs::Permissions::from_mode(0o755)).unwrap();

    let out = f.cmd(&["backup"]).env("PATH", path).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stored = fixture::stored(&f.primary);
    assert_eq!(stored.len(), 1, "{stored:?}");
    let x = fixture::extract(&stored[0].1);
    assert_manifest_describes_the_site_and_dump(&f, x.path());
    assert_dump_restores_the_posts(&f, &x.path().join("database.sql"));
}

#[test]
fn a_second_concurrent_run_exits_75() {
    let f = Fixture::new("locked");
    let lock = f.hold_run_lock();
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(75));
    assert!(
        stderr(&out).contains("another wpbackup run holds the lock"),
        "{}",
        stderr(&out)
    );
    drop(lock);
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn secrets_stay_out_of_ps_logs_db_and_keys() {
    let f = Fixture::new("secrets");
    let db_password = f.site.db_password.clone();
    let secrets = [db_password.as_str(), PRIMARY_SECRET, SECONDARY_SECRET];
    // Output goes to a file: a pipe nobody reads while ps is polled would fill up and block.
    let log_path = f.home().join("run.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = f
        .cmd(&["-vv", "backup"])
        .env("RUST_LOG", "trace")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    // Watch every process's command line while the backup (and its dump) runs.
    let mut seen_dump = false;
    let mut leaks = Vec::new();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
        let ps = stdout(&ps);
        seen_dump |= ps.contains("--defaults-file=");
        // The test's own S3 servers take their keys as arguments; every other process is checked.
        for line in ps.lines().filter(|l| !l.contains("s3s-fs --host")) {
            if secrets.iter().any(|s| line.contains(s)) && !leaks.contains(&line.to_string()) {
                leaks.push(line.to_string());
            }
        }
    }
    let status = child.wait().unwrap();
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(status.success(), "{logs}");
    assert!(leaks.is_empty(), "secrets on command lines: {leaks:?}");
    assert!(logs.lines().count() > 5, "expected verbose logs");
    let db_text = std::fs::read(f.home().join("backups.db")).unwrap();
    for s in secrets {
        assert!(!logs.contains(s), "secret in the log output");
        assert!(
            !String::from_utf8_lossy(&db_text).contains(s),
            "secret in backups.db"
        );
        for (key, _) in fixture::stored(&f.primary) {
            assert!(!key.contains(s));
        }
    }
    eprintln!("dump seen in ps: {seen_dump}");
}

/// Peak RSS (the process's own VmHWM) of a backup of a small and of a large site.
#[test]
fn peak_memory_does_not_grow_with_the_site() {
    let f = Fixture::new("memory");
    // Local storage as the only target keeps this test about the pipeline, not the network.
    let local = tempfile::tempdir().unwrap();
    let mut config = f.default_config();
    config["storage"] =
        json!([{ "name": "disk", "type": "local", "priority": 1, "path": local.path() }]);
    f.write_config(config);

    f.site.grow(32 * 1024 * 1024);
    let (code, small, _) = crate::fixture::run_measured(f.cmd(&["backup"]));
    assert_eq!(code, 0);
    f.site.grow(320 * 1024 * 1024);
    let (code, large, _) = crate::fixture::run_measured(f.cmd(&["backup"]));
    assert_eq!(code, 0);
    let mib = |b: u64| b as f64 / 1048576.0;
    eprintln!(
        "peak RSS: site +32 MiB: {:.1} MiB; site +352 MiB: {:.1} MiB",
        mib(small),
        mib(large)
    );
    assert!(
        large < small + 24 * 1024 * 1024,
        "peak RSS grew with the site: {:.1} -> {:.1} MiB",
        mib(small),
        mib(large)
    );
    assert!(large < 150 * 1024 * 1024, "peak RSS {:.1} MiB", mib(large));
}

#[test]
fn an_archive_too_large_for_one_copy_gets_its_sha256_by_a_copy_in_parts() {
    // S3 copies at most 5 GiB in one CopyObject; the sha256 metadata of a larger archive is
    // set by copying it onto itself in parts. The debug build lowers the limit to 5 MiB so
    // the test site's archive (~37 MiB) goes that way.
    let f = Fixture::new("bigcopy");
    let out = f
        .cmd(&["-v", "backup"])
        .env("WPBACKUP_TEST_SINGLE_COPY_LIMIT", (5u64 << 20).to_string())
        .output()
        .expect("run wpbackup");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = fixture::stored(&f.primary);
    assert_eq!(stored.len(), 1, "{stored:?}");
    let (key, path) = &stored[0];
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.len() > 2 * (5 << 20),
        "{} bytes: too small to need parts",
        bytes.len()
    );
    let parts = (bytes.len() as u64).div_ceil(5 << 20);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(&format!("copied onto themselves in {parts} parts")),
        "{log}"
    );
    // The object is the archive, unchanged by the copy: it still opens.
    let dir = fixture::extract(path);
    assert!(dir.path().join("files/wp-config.php").is_file());

    // With backups.db gone, the only record of the sha256 is the object's metadata: verify
    // must find it there and match it against the bytes.
    std::fs::remove_file(f.home().join("backups.db")).unwrap();
    let out = f.run(&["verify", "--archive", key]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("OK"), "{}", stdout(&out));
    assert!(stdout(&out).contains("object metadata"), "{}", stdout(&out));
}

/// Issue 12, item 11: a file written to while it is read (a log, a cache, an upload in
/// progress) is archived as far as it goes, but said: the run is a WARNING that names it, and
/// manifest.json lists it under `changed`.
#[test]
fn a_file_that_changes_while_read_is_named_in_the_warning_and_the_manifest() {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicBool, Ordering};
    let f = Fixture::new("changing");
    let rel = "wp-content/uploads/growing.dat";
    let path = f.site.path.join(rel);
    std::fs::write(&path, vec![7u8; 8 << 20]).unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, path) = (stop.clone(), path.clone());
        std::thread::spawn(move || {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                file.write_all(&[1u8; 4096]).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let out = f.run(&["backup"]);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = f.rows();
    assert_eq!(rows[0].status, "WARNING", "{:?}", rows[0]);
    assert!(
        rows[0].details.contains("changed while being read") && rows[0].details.contains(rel),
        "{}",
        rows[0].details
    );
    let stored = fixture::stored(&f.primary);
    let x = fixture::extract(&stored[0].1);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(x.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["changed"], serde_json::json!([rel]), "{manifest}");
}

#[test]
fn runs_one_after_another_never_share_an_archive_key() {
    // Runs name their archives by the second they start: a quick run right after another
    // (a tiny site, a local storage) used to get the same key and overwrite its archive.
    let f = Fixture::new("same-second");
    let store = tempfile::tempdir().unwrap();
    let mut config = f.default_config();
    config["sites"][0]["exclude"] = serde_json::json!(["wp-admin", "wp-includes", "wp-content"]);
    config["storage"] = serde_json::json!([{ "name": "disk", "type": "local", "priority": 1, "path": store.path() }]);
    f.write_config(config);
    for _ in 0..4 {
        let out = f.run(&["backup"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let keys: std::collections::BTreeSet<String> =
        f.rows().into_iter().filter_map(|r| r.archive_key).collect();
    assert_eq!(keys.len(), 4, "four runs, four archives: {keys:?}");
    for key in &keys {
        let out = f.run(&["verify", "--archive", key]);
        assert_eq!(out.status.code(), Some(0), "{key}: {}", stderr(&out));
    }
}

#[test]
fn a_sigterm_as_a_run_starts_is_recorded_as_an_interrupted_run() {
    // A run waits for the next whole second before it starts (its keys must differ from the
    // run before it): a signal in that wait is a stopped run with its rows, not a silent death.
    let f = Fixture::new("early-term");
    let child = f
        .cmd(&["backup"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // As soon as it catches SIGTERM (not after a fixed time: a loaded machine starts it late).
    assert!(crate::fixture::wait_until_catching(
        child.id(),
        libc::SIGTERM
    ));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = crate::faults::wait_bounded(child, "SIGTERM as the run starts");
    assert_eq!(status.code(), Some(143));
    let rows = f.rows();
    assert!(
        rows.iter()
            .any(|r| r.site_name == "blog" && r.details.contains("interrupted by SIGTERM")),
        "{rows:?}"
    );
}

/// Issue 26: `-v` shows wpbackup's own debug lines (one per phase), not the hundreds of the AWS
/// SDK and its HTTP stack; `-vv` adds those.
#[test]
fn verbose_shows_wpbackups_phases_not_the_sdks_debug() {
    let f = Fixture::new("verbose");
    let out = f.cmd(&["-v", "backup"]).output().expect("run wpbackup");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for phase in ["dump", "upload", "completing"] {
        assert!(
            err.lines()
                .any(|l| l.contains("backup phase") && l.contains(&format!("phase=\"{phase}\""))),
            "no `{phase}` phase line with -v: {err}"
        );
    }
    // The SDK's lines are in its spans (`S3.PutObject{rpc.system="aws-api" ...}`); other
    // dependencies' debug (globset's "built glob set") is not wpbackup's either.
    let foreign: Vec<&str> = err
        .lines()
        .filter(|l| {
            l.contains("aws-api") || l.contains("sdk_invocation_id") || l.contains("built glob set")
        })
        .collect();
    assert!(
        foreign.is_empty(),
        "dependencies' debug with -v: {foreign:#?}"
    );
    let out = f.cmd(&["-vv", "backup"]).output().expect("run wpbackup");
    let more = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{more}");
    assert!(more.contains("aws-api"), "-vv adds no SDK debug:\n{more}");
    assert!(more.contains("backup phase"), "{more}");
}
