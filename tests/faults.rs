//! Faults injected into real runs: signals in the middle of an upload (SIGTERM, SIGINT,
//! SIGKILL), a storage and a database that accept connections and never answer, a dump tool
//! that stalls, MariaDB killed in the middle of a dump, a local storage that runs out of space.
//! Each test checks that nothing half-done is left looking finished, that the person is told
//! (exit status, backup_log row), and that the next run works.

use std::net::TcpListener;
use std::path::Path;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output};
use std::time::Duration;

use serde_json::json;

use crate::fixture::{self, Fixture};
use crate::util::mariadb::MariaDb;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Start `wpbackup backup` with its output in `log`, and wait until its upload to the primary
/// has begun (s3s-fs keeps the parts of a multipart upload on disk).
fn start_backup_and_wait_for_upload(f: &Fixture, log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    std::fs::create_dir_all(run_tmp(f)).unwrap();
    let mut child = f
        .cmd(&["backup"])
        .env("TMPDIR", run_tmp(f))
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let before = crate::fixture::walk_count(&f.primary.root);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while crate::fixture::walk_count(&f.primary.root) <= before {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before its upload was seen: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        assert!(std::time::Instant::now() < deadline, "no upload started");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// The temporary directory of the runs started by `start_backup_and_wait_for_upload`.
fn run_tmp(f: &Fixture) -> PathBuf {
    f.home().join("tmp")
}

/// Wait for a child, killing it if it hangs far beyond any configured limit (so that a hang
/// fails the test instead of blocking the suite).
pub(crate) fn wait_bounded(mut child: Child, what: &str) -> ExitStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: wpbackup hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn output_bounded(cmd: &mut Command, what: &str) -> (ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("out.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let status = wait_bounded(child, what);
    let text = std::fs::read_to_string(&log).unwrap();
    eprintln!("{what}: {status:?}\n{text}");
    (status, text)
}

/// The first `name` on PATH.
pub(crate) fn which(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed"))
}

fn lock_is_free(f: &Fixture) -> bool {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(f.home().join("wpbackup.lock"))
        .unwrap();
    file.try_lock().is_ok()
}

#[test]
fn sigterm_and_sigint_abort_the_upload_record_it_and_the_next_run_works() {
    let f = Fixture::new("signals");
    f.site.grow(40 * 1024 * 1024);
    for (sig, code, name) in [
        (libc::SIGTERM, 143, "SIGTERM"),
        (libc::SIGINT, 130, "SIGINT"),
    ] {
        let stored_before = fixture::stored(&f.primary).len();
        let recorded_before = if f.home().join("backups.db").exists() {
            f.archive_rows().len()
        } else {
            0
        };
        let log = f.home().join(format!("{name}.log"));
        let child = start_backup_and_wait_for_upload(&f, &log);
        unsafe {
            libc::kill(child.id() as i32, sig);
        }
        let status = wait_bounded(child, name);
        let text = std::fs::read_to_string(&log).unwrap();
        eprintln!("--- {name} run:\n{text}");
        assert_eq!(status.code(), Some(code), "{name}: {text}");

        // The interruption is recorded and said; nothing new is stored anywhere.
        let rows = f.rows();
        let last = rows.last().unwrap();
        assert_eq!(last.status, "ERROR", "{last:?}");
        assert!(
            last.details.contains(&format!("interrupted by {name}")),
            "{last:?}"
        );
        assert!(text.contains(name), "{text}");
        assert_eq!(fixture::stored(&f.primary).len(), stored_before, "{name}");
        assert!(fixture::stored(&f.secondary).is_empty(), "{name}");
        assert_eq!(f.archive_rows().len(), recorded_before);
        assert!(lock_is_free(&f), "the lock must be released");
        // The dump's temporary files went with it.
        let left: Vec<_> = std::fs::read_dir(run_tmp(&f)).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        // The multipart upload was aborted: s3s-fs holds no parts of it any more.
        let residue: Vec<_> = fixture::tree(&f.primary.root, &|_| false)
            .into_iter()
            .filter(|(p, kind)| !kind.starts_with("dir") && !p.ends_with(".json"))
            .filter(|(p, _)| {
                // A stored archive, or its signature (issue 23).
                !fixture::stored(&f.primary)
                    .iter()
                    .any(|(k, _)| p.ends_with(k.as_str()) || p.ends_with(&format!("{k}.minisig")))
            })
            .collect();
        eprintln!(
            "primary after {name}: {:?}",
            fixture::tree(&f.primary.root, &|_| false)
        );
        assert!(residue.is_empty(), "{residue:?}");

        // The next run works normally (a second later: keys are made to the second).
        std::thread::sleep(Duration::from_millis(1100));
        let out = f.run(&["backup"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(f.rows().last().unwrap().status, "SUCCESS");
        assert_eq!(fixture::stored(&f.primary).len(), stored_before + 1);
    }
}

#[test]
fn sigkill_mid_upload_leaves_a_working_next_run() {
    let f = Fixture::new("sigkill");
    f.site.grow(40 * 1024 * 1024);
    let log = f.home().join("killed.log");
    let mut child = start_backup_and_wait_for_upload(&f, &log);
    child.kill().unwrap();
    child.wait().unwrap();
    // The lock file still names the dead run, but the kernel released its lock.
    let holder = std::fs::read_to_string(f.home().join("wpbackup.lock")).unwrap();
    assert!(holder.contains(&format!("pid {}", child.id())), "{holder}");
    assert!(fixture::stored(&f.primary).is_empty());

    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let conn = rusqlite::Connection::open(f.home().join("backups.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let rows = f.rows();
    assert_eq!(rows.last().unwrap().status, "SUCCESS", "{rows:?}");
    assert_eq!(fixture::stored(&f.primary).len(), 1);
    let out = f.run(&["verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_storage_and_a_database_that_never_answer_are_given_up_on() {
    let f = Fixture::new("silent");
    // Accepts connections (the kernel completes them) and never says a word.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let silent_port = silent.local_addr().unwrap().port();
    let mut config = f.default_config();
    config["storage"][0]["endpoint"] = json!(silent_url);
    config["upload"] = json!({ "part_size_mib": 5, "connect_timeout_secs": 1, "timeout_secs": 2, "max_attempts": 1 });
    config["database"] = json!({ "connect_timeout_secs": 2 });
    // A second site whose database server never answers either.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("index.php"), "<?php").unwrap();
    config["sites"].as_array_mut().unwrap().push(json!({
        "name": "mute", "path": other.path(),
        "database": { "name": "wp", "user": "wp", "password_env": "MUTE_DB_PASSWORD",
                      "host": format!("127.0.0.1:{silent_port}") }
    }));
    f.write_config(config);
    f.write_env(&[("MUTE_DB_PASSWORD", "pw")]);

    let (status, text) = output_bounded(&mut f.cmd(&["backup"]), "silent servers");
    assert_eq!(status.code(), Some(1), "{text}");
    let rows = f.rows();
    let blog = rows.iter().find(|r| r.site_name == "blog").unwrap();
    assert_eq!(blog.status, "WARNING", "{blog:?}");
    assert_eq!(blog.storage_name.as_deref(), Some("secondary"));
    assert!(
        blog.details.contains("primary") && blog.details.contains("timed out"),
        "{blog:?}"
    );
    assert_eq!(fixture::stored(&f.secondary).len(), 1);
    let mute = rows.iter().find(|r| r.site_name == "mute").unwrap();
    assert_eq!(mute.status, "ERROR", "{mute:?}");
    assert!(mute.details.contains("handshake"), "{mute:?}");
    drop(silent);
}

#[test]
fn a_primary_that_freezes_mid_upload_is_given_up_on() {
    let f = Fixture::new("frozen");
    f.site.grow(40 * 1024 * 1024);
    let mut config = f.default_config();
    config["upload"] = json!({ "part_size_mib": 5, "connect_timeout_secs": 1, "timeout_secs": 2, "max_attempts": 1 });
    f.write_config(config);
    let log = f.home().join("frozen.log");
    let child = start_backup_and_wait_for_upload(&f, &log);
    // SIGSTOP: the kernel still accepts connections for it, but nothing answers any more.
    let pgid = f.primary.pid().unwrap() as i32;
    unsafe {
        libc::kill(-pgid, libc::SIGSTOP);
    }
    let status = wait_bounded(child, "frozen primary");
    unsafe {
        libc::kill(-pgid, libc::SIGCONT);
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "{text}");
    let rows = f.rows();
    assert_eq!(rows[0].status, "WARNING", "{:?}", rows[0]);
    assert_eq!(rows[0].storage_name.as_deref(), Some("secondary"));
    assert!(
        rows[0].details.contains("primary") && rows[0].details.contains("timed out"),
        "{:?}",
        rows[0]
    );
    assert!(fixture::stored(&f.primary).is_empty());
    let out = f.run(&["verify", "--storage", "secondary"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_dump_that_stalls_is_stopped_and_nothing_is_stored() {
    let f = Fixture::new("stall");
    let mut config = f.default_config();
    config["database"] = json!({ "stall_timeout_secs": 2 });
    f.write_config(config);
    // A dump tool that starts, then hangs as one waiting on a frozen server would.
    let (_fake, path) = crate::fixture::fake_tool(
        "mariadb-dump",
        "#!/bin/sh\necho '-- MariaDB dump 10.19'\nexec sleep 600\n",
    );
    let (status, text) = output_bounded(f.cmd(&["backup"]).env("PATH", path), "stalled dump");
    assert_eq!(status.code(), Some(1), "{text}");
    let rows = f.rows();
    assert_eq!(rows[0].status, "ERROR");
    assert!(
        rows[0].details.contains("wrote nothing for 2s")
            && rows[0].details.contains("stall_timeout_secs"),
        "{:?}",
        rows[0]
    );
    assert!(fixture::stored(&f.primary).is_empty() && fixture::stored(&f.secondary).is_empty());
    // The stalled tool was stopped, not left behind.
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&ps.stdout).contains("sleep 600"));
}

#[test]
fn mariadb_killed_mid_dump_fails_that_site_only() {
    let f = Fixture::new("dbkill");
    // The victim: a second site on a MariaDB of its own, with enough data that its dump
    // takes a while (its tables made by SQL: only what a backup reads).
    let mut victim_db = MariaDb::start();
    victim_db.create_db_user("victim", "victim", "victim-pw");
    victim_db.sql_db(
        "victim",
        "CREATE TABLE wp_options (option_name VARCHAR(191) PRIMARY KEY, option_value LONGTEXT);
         INSERT INTO wp_options VALUES ('siteurl', 'http://victim.example');
         CREATE TABLE big (id INT PRIMARY KEY AUTO_INCREMENT, v LONGTEXT);
         INSERT INTO big (v) SELECT REPEAT(MD5(seq), 3000) FROM seq_1_to_400;",
    );
    let victim_files = tempfile::tempdir().unwrap();
    std::fs::write(victim_files.path().join("index.php"), "<?php // victim").unwrap();
    let mut config = f.default_config();
    let blog = config["sites"][0].clone();
    config["sites"] = json!([{
        "name": "victim", "path": victim_files.path(),
        "database": { "name": "victim", "user": "victim", "password_env": "VICTIM_DB_PASSWORD",
                      "host": format!("127.0.0.1:{}", victim_db.port) }
    }, blog]);
    f.write_config(config);
    f.write_env(&[("VICTIM_DB_PASSWORD", "victim-pw")]);

    // The real dump tool, behind a reader that stops for a moment after the first 64 KiB:
    // the dump is then blocked mid-way, and the marker file says so.
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("dump-started");
    let real = which("mariadb-dump");
    let (_fake, path) = crate::fixture::fake_tool(
        "mariadb-dump",
        &format!(
            "#!/bin/bash\nset -o pipefail\n'{}' \"$@\" | {{ head -c 65536; if [ ! -e '{m}' ]; then touch '{m}'; sleep 4; fi; cat; }}\n",
            real.display(),
            m = marker.display()
        ),
    );
    let log = f.home().join("run.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = f
        .cmd(&["backup"])
        .env("PATH", path)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the dump never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    victim_db.kill();
    let status = wait_bounded(child, "MariaDB killed");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "{text}");

    let rows = f.rows();
    let v = rows.iter().find(|r| r.site_name == "victim").unwrap();
    eprintln!("{text}");
    assert_eq!(v.status, "ERROR", "{v:?}");
    assert!(v.details.contains("dump failed"), "{v:?}");
    let b = rows.iter().find(|r| r.site_name == "blog").unwrap();
    assert_eq!(b.status, "SUCCESS", "{b:?}");
    let stored = fixture::stored(&f.primary);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].0.contains("/blog/"), "{stored:?}");
    assert!(fixture::stored(&f.secondary).is_empty());
    assert!(f.archive_rows().iter().all(|a| !a.0.contains("victim")));

    // Once the database is back, the next run backs the victim up again.
    victim_db.restart();
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = f.rows();
    let v = rows.iter().rev().find(|r| r.site_name == "victim").unwrap();
    assert_eq!(v.status, "SUCCESS", "{v:?}");
    assert!(f.archive_rows().iter().any(|a| a.0.contains("victim")));
}

#[test]
fn a_local_storage_out_of_space_is_a_clear_error_and_leaves_no_partial_file() {
    let f = Fixture::new("nospace");
    f.site.grow(8 * 1024 * 1024);
    let store = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = f.default_config();
    config["storage"] =
        json!([{ "name": "disk", "type": "local", "priority": 1, "path": store.path() }]);
    f.write_config(config);
    // The real dump tool, started late: the storage fails while the dump still runs, and
    // its temporary files (the dump, the defaults file holding the password) must go too.
    let (_fake, path) = crate::fixture::fake_tool(
        "mariadb-dump",
        &format!(
            "#!/bin/sh\nsleep 2\nexec '{}' \"$@\"\n",
            which("mariadb-dump").display()
        ),
    );
    // No file of the process may grow past 2 MiB (the archive is ~8 MiB): writes then fail
    // with EFBIG, as they fail with ENOSPC on a full disk.
    let mut cmd = f.cmd(&["backup"]);
    cmd.env("TMPDIR", tmp.path()).env("PATH", path);
    crate::util::limit_file_size(&mut cmd, 2 * 1024 * 1024);
    let (status, text) = output_bounded(&mut cmd, "out of space");
    assert_eq!(status.code(), Some(1), "{text}");
    let rows = f.rows();
    assert_eq!(rows[0].status, "ERROR", "{:?}", rows[0]);
    assert!(
        rows[0].details.contains("disk") && rows[0].details.contains("out of space"),
        "{:?}",
        rows[0]
    );
    // No partial archive, no leftover temporary files.
    let files = fixture::tree(store.path(), &|_| false);
    assert!(files.iter().all(|(_, k)| k.starts_with("dir")), "{files:?}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(f.archive_rows().is_empty());
}

#[test]
fn a_temporary_directory_out_of_space_is_a_clear_error_and_leaves_nothing() {
    let f = Fixture::new("tmpfull");
    // A database whose compressed dump (the only big file written locally: the archive goes
    // to S3) is well past the limit.
    f.db.sql_db(
        &f.site.db_name,
        "CREATE TABLE big (id INT PRIMARY KEY AUTO_INCREMENT, v TEXT);
         INSERT INTO big (v) SELECT HEX(RANDOM_BYTES(1024)) FROM seq_1_to_3000;",
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = f.cmd(&["backup"]);
    cmd.env("TMPDIR", tmp.path());
    crate::util::limit_file_size(&mut cmd, 1024 * 1024);
    let (status, text) = output_bounded(&mut cmd, "temporary directory full");
    assert_eq!(status.code(), Some(1), "{text}");
    let rows = f.rows();
    assert_eq!(rows[0].status, "ERROR", "{:?}", rows[0]);
    assert!(
        rows[0]
            .details
            .contains("temporary directory is out of space")
            && rows[0].details.contains("TMPDIR"),
        "{:?}",
        rows[0]
    );
    assert!(fixture::stored(&f.primary).is_empty() && fixture::stored(&f.secondary).is_empty());
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
