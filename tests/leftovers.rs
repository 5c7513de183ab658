//! What a killed run leaves on a storage is removed by the next run: a local storage's hidden
//! partial file (only this server's, only old ones), and on S3 the unfinished multipart
//! uploads, which s3s-fs 0.14 cannot list (ListMultipartUploads answers NotImplemented): the
//! run then warns, says what to do, and the backup still succeeds.

use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::Duration;

use serde_json::json;

use crate::fixture::Fixture;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A child process killed when the test ends, passed or failed.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Hidden files in `dir` (partial files of uploads).
fn hidden(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// Start `wpbackup backup` and SIGKILL it once its partial file is being written in `dir`.
fn kill_mid_upload(f: &Fixture, dir: &Path) -> Vec<String> {
    let log = f.home().join("killed.log");
    let out = std::fs::File::create(&log).unwrap();
    // The killed run cannot remove its temporary files (the dump, the defaults file with the
    // password): they go in the fixture's home, removed with it, not in /tmp.
    let tmp = f.home().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let child = f
        .cmd(&["backup"])
        .env("TMPDIR", &tmp)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let mut run = Running(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while hidden(dir).is_empty() {
        assert!(
            run.0.try_wait().unwrap().is_none(),
            "the backup ended before its upload was seen: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(std::time::Instant::now() < deadline, "no upload started");
        std::thread::sleep(Duration::from_millis(10));
    }
    run.0.kill().unwrap();
    run.0.wait().unwrap();
    hidden(dir)
}

/// A partial file of another server's upload, last written two days ago.
fn plant_other_servers(root: &Path) -> PathBuf {
    let p = root.join("other-server/blog/.blog_20260101T030000Z.tar.zst.partial-99");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, b"not ours").unwrap();
    let t = std::time::SystemTime::now() - Duration::from_secs(48 * 3600);
    filetime::set_file_mtime(&p, filetime::FileTime::from_system_time(t)).unwrap();
    p
}

#[test]
fn a_killed_runs_partial_file_on_a_local_storage_is_removed_by_the_next_run() {
    let f = Fixture::new("leftlocal");
    f.site.grow(40 * 1024 * 1024);
    let root = f.home().join("archives");
    let mut config = f.default_config();
    config["storage"] = json!([{ "name": "disk", "type": "local", "priority": 1, "path": root }]);
    f.write_config(config);
    let other = plant_other_servers(&root);
    let site_dir = root.join("test-server/blog");

    let left = kill_mid_upload(&f, &site_dir);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].contains(".tar.zst.partial-"), "{left:?}");

    // Too young to be removed with the real minimum age: a live run looks the same.
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(hidden(&site_dir), left);

    // Old enough (the minimum lowered to 0 for the test): removed and said.
    std::thread::sleep(Duration::from_millis(1100));
    let out = f
        .cmd(&["backup"])
        .env("WPBACKUP_TEST_LEFTOVER_AGE_SECS", "0")
        .output()
        .unwrap();
    let err = stderr(&out);
    eprintln!("{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(hidden(&site_dir).is_empty(), "{:?}", hidden(&site_dir));
    let said = err
        .lines()
        .find(|l| l.contains("left unfinished") && l.contains("disk"))
        .unwrap_or_else(|| panic!("no line about the removal: {err}"));
    assert!(said.contains("test-server/blog/blog_"), "{said}");
    assert!(other.exists(), "another server's partial file must be kept");
    let archives: Vec<_> = std::fs::read_dir(&site_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tar.zst"))
        .collect();
    assert_eq!(archives.len(), 2);
}

#[test]
fn an_s3_storage_that_cannot_list_unfinished_uploads_is_a_warning_not_a_failure() {
    let f = Fixture::new("leftmpu");
    let out = f.run(&["backup"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(f.rows().last().unwrap().status, "SUCCESS");
    for storage in ["primary", "secondary"] {
        let warned = err.lines().find(|l| {
            l.contains("WARN") && l.contains(storage) && l.contains("ListMultipartUploads")
        });
        let line = warned.unwrap_or_else(|| panic!("no warning for {storage}: {err}"));
        assert!(line.contains("lifecycle rule"), "{line}");
        assert!(!line.contains(crate::fixture::PRIMARY_SECRET), "{line}");
    }

    // Issue 26: said once per storage. The next run does not warn again (it says it at
    // DEBUG, with -v), remembering it in a 0600 file in the home.
    let out = f.run(&["-v", "backup"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let again: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("ListMultipartUploads"))
        .collect();
    assert!(again.is_empty(), "warned again: {again:#?}");
    for storage in ["primary", "secondary"] {
        assert!(
            err.lines().any(|l| l.contains("DEBUG")
                && l.contains(storage)
                && l.contains("ListMultipartUploads")),
            "no DEBUG line for {storage} with -v: {err}"
        );
    }
    let noted = f.home().join("storages-without-upload-listing.json");
    let meta = std::fs::metadata(&noted).expect("the storages noted");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&noted).unwrap();
    assert!(
        text.contains("primary") && text.contains("secondary"),
        "{text}"
    );
    assert!(!text.contains(crate::fixture::PRIMARY_SECRET), "{text}");
}
