//! Security checks as tests: what the tool creates (backups.db, the lock, local archives and
//! their checksums, temporary files, the copy of a database saved before a restore) is private
//! even under `umask 000`; no secret shows in any process's command line or environment during
//! backup, verify and restore, nor in logs at trace level, backups.db, object keys or object
//! metadata.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::fixture::{self, Fixture, PRIMARY_SECRET, SECONDARY_SECRET};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// What a watched run showed.
struct Watched {
    code: Option<i32>,
    logs: String,
    /// Processes whose command line or environment held a secret.
    leaks: Vec<String>,
    /// Files that appeared in the watched directory, with their modes.
    seen: Vec<(String, u32)>,
}

/// Run `cmd` to the end while watching every process's command line and environment, and
/// the modes of the files that appear in `watch_dir`.
fn run_watched(mut cmd: Command, secrets: &[&str], watch_dir: &Path) -> Watched {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("out.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut child = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let mut leaks = Vec::new();
    let mut seen: Vec<(String, u32)> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let done = child.try_wait().unwrap().is_some();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            // The test's own S3 servers take their keys as arguments by design.
            if cmdline.contains("s3s-fs") {
                continue;
            }
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            let environ = String::from_utf8_lossy(&environ).replace('\0', " ");
            for s in secrets {
                for (what, text) in [("command line", &cmdline), ("environment", &environ)] {
                    if text.contains(s) {
                        let leak = format!("{what} of {cmdline}");
                        if !leaks.contains(&leak) {
                            leaks.push(leak);
                        }
                    }
                }
            }
        }
        for e in walkdir::WalkDir::new(watch_dir)
            .min_depth(1)
            .into_iter()
            .flatten()
        {
            let p = e.path().to_string_lossy().into_owned();
            if let Ok(meta) = e.metadata()
                && !seen.iter().any(|(q, _)| *q == p)
            {
                seen.push((p, meta.permissions().mode() & 0o777));
            }
        }
        if done {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the run hung");
        std::thread::sleep(Duration::from_millis(5));
    }
    Watched {
        code: child.wait().unwrap().code(),
        logs: std::fs::read_to_string(&log).unwrap(),
        leaks,
        seen,
    }
}

/// `cmd` runs with umask 000: every private mode must come from the tool itself.
fn with_open_umask(cmd: &mut Command) {
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
}

/// `wpbackup args` at trace level with temporary files in `tmp`, under umask 000, watched.
fn run_traced(f: &Fixture, args: &[&str], tmp: &Path, secrets: &[&str]) -> Watched {
    let mut cmd = f.cmd(args);
    cmd.env("RUST_LOG", "trace").env("TMPDIR", tmp);
    with_open_umask(&mut cmd);
    run_watched(cmd, secrets, tmp)
}

/// Backup to S3, then to the local storage, both under umask 000 and at trace level, with no
/// secret in any process: (their logs, the temporary files seen with their modes).
fn backup_to_s3_and_disk_watched(
    f: &Fixture,
    tmp: &Path,
    secrets: &[&str],
) -> (String, Vec<(String, u32)>) {
    let mut all_logs = String::new();
    let mut tmp_files = Vec::new();
    for extra in [&[][..], &["--storage", "disk"][..]] {
        let mut args = vec!["-vv", "backup"];
        args.extend_from_slice(extra);
        let Watched {
            code,
            logs,
            leaks,
            seen,
        } = run_traced(f, &args, tmp, secrets);
        assert_eq!(code, Some(0), "{logs}");
        assert!(leaks.is_empty(), "secrets visible in processes: {leaks:?}");
        all_logs.push_str(&logs);
        tmp_files.extend(seen);
    }
    (all_logs, tmp_files)
}

/// The temporary files (the dump) were private while they existed, and are gone; the MySQL
/// defaults file holding the password was never one of them (it lives in memory).
fn assert_temporary_files_were_private_and_are_gone(tmp_files: &[(String, u32)], tmp: &Path) {
    eprintln!("temporary files seen: {tmp_files:?}");
    assert!(
        tmp_files.iter().any(|(p, _)| p.contains("wpbackup-dump-")),
        "no temporary dump file was seen: {tmp_files:?}"
    );
    assert!(
        !tmp_files.iter().any(|(p, _)| p.contains(".cnf")),
        "a defaults file was written to disk: {tmp_files:?}"
    );
    for (p, m) in tmp_files {
        assert_eq!(m & 0o077, 0, "{p} had mode {m:o}");
    }
    assert_eq!(std::fs::read_dir(tmp).unwrap().count(), 0);
}

/// The home's files: backups.db (and its WAL and shared memory) and the lock.
fn assert_home_files_are_private(home: &Path) {
    for name in ["backups.db", "wpbackup.lock"] {
        assert_eq!(mode(&home.join(name)), 0o600, "{name}");
    }
    for name in ["backups.db-wal", "backups.db-shm"] {
        let p = home.join(name);
        if p.exists() {
            assert_eq!(mode(&p) & 0o077, 0, "{name}");
        }
    }
}

/// The local archive, its checksum and its directories.
fn assert_local_archive_is_private(disk: &Path) {
    let archives: Vec<_> = walkdir::WalkDir::new(disk)
        .into_iter()
        .flatten()
        .map(|e| e.path().to_path_buf())
        .collect();
    assert!(
        archives
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".tar.zst"))
    );
    for p in &archives {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(p), want, "{}", p.display());
    }
}

/// verify and restore, watched the same way: their logs. The database saved before the restore
/// is private.
fn verify_and_restore_watched(f: &Fixture, tmp: &Path, secrets: &[&str]) -> String {
    let mut all_logs = String::new();
    for args in [
        &["-vv", "verify", "--all"][..],
        &["-vv", "restore", "--site", "blog", "--yes"][..],
    ] {
        let Watched {
            code,
            logs,
            leaks,
            seen,
        } = run_traced(f, args, tmp, secrets);
        assert_eq!(code, Some(0), "{args:?}: {logs}");
        assert!(
            leaks.is_empty(),
            "{args:?}: secrets visible in processes: {leaks:?}"
        );
        for (p, m) in &seen {
            assert_eq!(m & 0o077, 0, "{p} had mode {m:o}");
        }
        all_logs.push_str(&logs);
    }
    let saved = f.home().join("before-restore");
    assert_eq!(mode(&saved), 0o700);
    for e in std::fs::read_dir(&saved).unwrap().flatten() {
        assert_eq!(mode(&e.path()), 0o600, "{}", e.path().display());
    }
    all_logs
}

/// The text of backups.db and its WAL.
fn backups_db_text(home: &Path) -> String {
    let mut db_text = Vec::new();
    for name in ["backups.db", "backups.db-wal"] {
        db_text.extend(std::fs::read(home.join(name)).unwrap_or_default());
    }
    String::from_utf8_lossy(&db_text).into_owned()
}

/// Every path under both S3 servers' roots, and the contents of every file there that is not
/// an archive: object keys and object metadata.
fn object_keys_and_metadata(f: &Fixture) -> String {
    let archive_files: Vec<_> = fixture::stored(&f.primary)
        .into_iter()
        .chain(fixture::stored(&f.secondary))
        .map(|(_, p)| p)
        .collect();
    let mut metadata = String::new();
    for server in [&f.primary, &f.secondary] {
        for e in walkdir::WalkDir::new(&server.root).into_iter().flatten() {
            metadata.push_str(&e.path().to_string_lossy());
            if e.file_type().is_file() && !archive_files.contains(&e.path().to_path_buf()) {
                metadata.push_str(&String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()));
            }
        }
    }
    metadata
}

/// No secret in the logs, backups.db (and its WAL), object keys or object metadata.
fn assert_no_secret_is_written_down(f: &Fixture, all_logs: &str, secrets: &[&str]) {
    assert!(all_logs.lines().count() > 20, "expected trace logs");
    let db_text = backups_db_text(f.home());
    let metadata = object_keys_and_metadata(f);
    assert!(
        metadata.contains("sha256"),
        "the object metadata was not found"
    );
    for s in secrets {
        assert!(!all_logs.contains(s), "a secret is in the logs");
        assert!(!db_text.contains(s), "a secret is in backups.db");
        assert!(
            !metadata.contains(s),
            "a secret is in object keys or metadata"
        );
    }
}

#[test]
fn files_the_tool_creates_are_private_and_secrets_stay_hidden() {
    let f = Fixture::new("private");
    let store = tempfile::tempdir().unwrap();
    let disk = store.path().join("disk");
    let tmp = tempfile::tempdir().unwrap();
    let mut config = f.default_config();
    config["storage"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "disk", "type": "local", "priority": 3, "path": disk }));
    f.write_config(config);
    let db_password = f.site.db_password.clone();
    let secrets = [db_password.as_str(), PRIMARY_SECRET, SECONDARY_SECRET];

    let (mut all_logs, tmp_files) = backup_to_s3_and_disk_watched(&f, tmp.path(), &secrets);
    assert_temporary_files_were_private_and_are_gone(&tmp_files, tmp.path());
    assert_home_files_are_private(f.home());
    assert_local_archive_is_private(&disk);
    all_logs.push_str(&verify_and_restore_watched(&f, tmp.path(), &secrets));
    assert_no_secret_is_written_down(&f, &all_logs, &secrets);
}

/// Issue 12, item 9: the site (writable by the web server) swaps its own files and folders
/// for symlinks to root's secrets while backups run. Whatever the timing, no byte of those
/// secrets may reach an archive: the walk opens everything by handle, never through a link.
#[test]
fn a_site_swapping_files_for_symlinks_never_gets_outside_bytes_into_the_archive() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let f = Fixture::new("race");
    let secrets = tempfile::tempdir().unwrap();
    let canary: Vec<u8> = b"CANARY-7f3a9c-"
        .iter()
        .copied()
        .cycle()
        .take(4096)
        .collect();
    std::fs::write(secrets.path().join("x.jpg"), &canary).unwrap();
    let race = f.site.path.join("wp-content/uploads/race");
    for i in 0..40 {
        std::fs::create_dir_all(race.join(format!("d{i}"))).unwrap();
        std::fs::write(race.join(format!("d{i}/x.jpg")), vec![b'a'; 4096]).unwrap();
        std::fs::write(race.join(format!("f{i}.jpg")), vec![b'a'; 4096]).unwrap();
    }
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, race, secrets) = (stop.clone(), race.clone(), secrets.path().to_path_buf());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for i in 0..40 {
                    flip(&race, i, &secrets);
                }
            }
        })
    };
    let mut archives = Vec::new();
    for _ in 0..3 {
        let out = f.run(&["backup"]);
        assert_ne!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        archives = fixture::stored(&f.primary);
    }
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    assert!(!archives.is_empty());
    for (key, path) in &archives {
        let tar = zstd::decode_all(std::fs::File::open(path).unwrap()).unwrap();
        assert!(
            !tar.windows(14).any(|w| w == b"CANARY-7f3a9c-"),
            "{key}: bytes from outside the site reached the archive"
        );
    }
}

/// Swap `f{i}.jpg` and `d{i}` for symlinks into `secrets`, then put them back.
fn flip(race: &Path, i: usize, secrets: &Path) {
    let file = race.join(format!("f{i}.jpg"));
    let dir = race.join(format!("d{i}"));
    let (tmp, aside) = (race.join(format!("t{i}")), race.join(format!("a{i}")));
    let _ = std::os::unix::fs::symlink(secrets.join("x.jpg"), &tmp);
    let _ = std::fs::rename(&tmp, &file);
    let _ = std::fs::write(&tmp, vec![b'a'; 4096]);
    let _ = std::fs::rename(&tmp, &file);
    let _ = std::fs::rename(&dir, &aside);
    let _ = std::os::unix::fs::symlink(secrets, &tmp);
    let _ = std::fs::rename(&tmp, &dir);
    let _ = std::fs::remove_file(&dir);
    let _ = std::fs::rename(&aside, &dir);
}

/// Every test SECURITY.md names as the proof of a claim (`module::test_name`, or
/// `cargo test --lib test_name`) exists: a renamed or deleted test cannot leave a claim
/// standing on nothing.
#[test]
fn every_test_security_md_cites_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("SECURITY.md")).expect("SECURITY.md");
    let mut sources = String::new();
    for dir in ["src", "tests"] {
        for e in walkdir::WalkDir::new(root.join(dir)).into_iter().flatten() {
            if e.path().extension().is_some_and(|x| x == "rs") {
                sources += &std::fs::read_to_string(e.path()).unwrap_or_default();
            }
        }
    }
    let cited: Vec<&str> = doc
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|span| {
            let name = span.strip_prefix("cargo test --lib ").unwrap_or(span);
            let is_test = span.starts_with("cargo test --lib ")
                || (name.contains("::") && name.split("::").all(|w| !w.is_empty()));
            let ok = name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c == ':' || c.is_ascii_digit());
            (is_test && ok).then(|| name.rsplit("::").next().unwrap_or(name))
        })
        .collect();
    assert!(cited.len() >= 10, "SECURITY.md cites only {cited:?}");
    let missing: Vec<&&str> = cited
        .iter()
        .filter(|n| !sources.contains(&format!("fn {n}(")))
        .collect();
    assert!(
        missing.is_empty(),
        "SECURITY.md cites tests that do not exist: {missing:?}"
    );
}
