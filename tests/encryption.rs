//! Client-side encryption with age, against real servers and the standard `age` tool: an
//! encrypted archive holds no plaintext in the bucket, opens by hand with `age -d` and
//! `tar --zstd -x`, verifies and restores with `--identity` (and fails clearly without it), and
//! an archive encrypted by the `age` command-line tool restores with wpbackup.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;

use crate::fixture::{self, Fixture};
use crate::util::run_ok;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A new age identity in `dir` (made by `age-keygen`): (identity file, public key).
pub fn keygen(dir: &Path) -> (PathBuf, String) {
    let id = dir.join("identity.txt");
    run_ok(Command::new("age-keygen").arg("-o").arg(&id));
    let public = run_ok(Command::new("age-keygen").arg("-y").arg(&id))
        .trim()
        .to_string();
    assert!(public.starts_with("age1"), "{public}");
    (id, public)
}

fn sha256(path: &Path) -> String {
    run_ok(Command::new("sha256sum").arg(path))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The bucket holds no plaintext: no tar names, no dump, no zstd frame.
fn assert_no_plaintext(object: &Path) {
    let bytes = std::fs::read(object).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    for plain in [
        &b"database.sql"[..],
        b"manifest.json",
        b"wp-config.php",
        b"CREATE TABLE",
        b"\x28\xb5\x2f\xfd",
    ] {
        assert!(
            !contains(&bytes, plain),
            "the stored object contains {:?}",
            String::from_utf8_lossy(plain)
        );
    }
}

/// By hand, with the standard tools alone: age -d (into `workdir`), then tar --zstd -x.
fn assert_opens_with_age_and_tar(f: &Fixture, identity: &Path, object: &Path, workdir: &Path) {
    let plain = workdir.join("archive.tar.zst");
    run_ok(
        Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(identity)
            .arg("-o")
            .arg(&plain)
            .arg(object),
    );
    let x = fixture::extract(&plain);
    let dump = std::fs::read_to_string(x.path().join("database.sql")).unwrap();
    assert!(
        dump.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("-- Dump completed")
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(x.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["site"], "blog");
    assert_eq!(
        std::fs::read(x.path().join("files/wp-config.php")).unwrap(),
        std::fs::read(f.site.path.join("wp-config.php")).unwrap()
    );
}

/// verify: without the identity it fails and says what to do; with it, it passes; a wrong
/// identity is refused by name.
fn assert_verify_needs_the_right_identity(f: &Fixture, id_arg: &str) {
    let out = f.run(&["verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("--identity"),
        "{}",
        all_output(&out)
    );
    let out = f.run(&["verify", "--identity", id_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));

    let other = tempfile::tempdir().unwrap();
    let (wrong, _) = keygen(other.path());
    let out = f.run(&["verify", "--identity", &wrong.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        all_output(&out).contains("none of the identities"),
        "{}",
        all_output(&out)
    );
}

/// restore: without the identity it changes nothing and says why; with it the site is back.
fn assert_restore_needs_the_identity(f: &Fixture, id_arg: &str) {
    let media = f.site.path.join(crate::util::wordpress::MEDIA_PATH);
    let original = std::fs::read(&media).unwrap();
    std::fs::remove_file(&media).unwrap();
    let out = f.run(&["restore", "--site", "blog", "--yes"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("--identity"), "{}", stderr(&out));
    assert!(!media.exists(), "a refused restore must change nothing");
    let out = f.run(&["restore", "--site", "blog", "--yes", "--identity", id_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read(&media).unwrap(), original);
}

#[test]
fn encrypted_archive_opens_with_age_and_tar_and_restores_with_identity() {
    let f = Fixture::new("enc");
    let keys = tempfile::tempdir().unwrap();
    let (identity, public) = keygen(keys.path());
    let mut config = f.default_config();
    config["encryption"] = json!({ "recipients": [public] });
    f.write_config(config);

    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stored = fixture::stored(&f.primary);
    assert_eq!(stored.len(), 1, "{stored:?}");
    let (key, object) = &stored[0];
    assert!(key.ends_with(".tar.zst.age"), "{key}");
    assert_eq!(f.rows()[0].archive_key.as_deref(), Some(key.as_str()));

    assert_no_plaintext(object);
    // The recorded sha256 is that of the stored (encrypted) object.
    let archives = f.archive_rows();
    assert_eq!(archives[0].3, sha256(object));

    assert_opens_with_age_and_tar(&f, &identity, object, keys.path());
    let id_arg = identity.to_string_lossy().into_owned();
    assert_verify_needs_the_right_identity(&f, &id_arg);
    assert_restore_needs_the_identity(&f, &id_arg);
}

#[test]
fn archive_encrypted_by_the_age_tool_restores_with_wpbackup() {
    let f = Fixture::new("enc-cli");
    let keys = tempfile::tempdir().unwrap();
    let (identity, public) = keygen(keys.path());
    let store = tempfile::tempdir().unwrap();
    let mut config = f.default_config();
    config["storage"] =
        json!([{ "name": "disk", "type": "local", "priority": 1, "path": store.path() }]);
    f.write_config(config.clone());

    // A plain archive, then encrypted by hand with `age -r` under a key of its own.
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dir = store.path().join("test-server/blog");
    let plain = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.zst"))
        .expect("a plain archive");
    let name = "blog_20200102T030405Z.tar.zst.age";
    let sealed = dir.join(name);
    run_ok(
        Command::new("age")
            .arg("-r")
            .arg(&public)
            .arg("-o")
            .arg(&sealed)
            .arg(&plain),
    );
    std::fs::write(
        dir.join(format!("{name}.sha256")),
        format!("{}  {name}\n", sha256(&sealed)),
    )
    .unwrap();

    let out = f.run(&["list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(name));
    let id_arg = identity.to_string_lossy().into_owned();
    // Made by hand, it has no signature: read only when told to (issue 23).
    let out = f.run(&["verify", "--archive", name, "--identity", &id_arg]);
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("has no signature"),
        "{}",
        all_output(&out)
    );
    let out = f.run(&[
        "verify",
        "--archive",
        name,
        "--identity",
        &id_arg,
        "--trust-unsigned",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));

    let media = f.site.path.join(crate::util::wordpress::MEDIA_PATH);
    let original = std::fs::read(&media).unwrap();
    std::fs::remove_file(&media).unwrap();
    let out = f.run(&[
        "restore",
        "--site",
        "blog",
        "--archive",
        name,
        "--yes",
        "--identity",
        &id_arg,
        "--trust-unsigned",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read(&media).unwrap(), original);
    assert!(
        stdout_of(&out).contains(name),
        "the restore should name the archive: {}",
        stdout_of(&out)
    );
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn encryption_streams_with_the_same_memory_bound() {
    let f = Fixture::new("enc-mem");
    f.site.grow(128 * 1024 * 1024);
    let keys = tempfile::tempdir().unwrap();
    let (_, public) = keygen(keys.path());
    let store = tempfile::tempdir().unwrap();
    let mut config = f.default_config();
    config["storage"] =
        json!([{ "name": "disk", "type": "local", "priority": 1, "path": store.path() }]);
    f.write_config(config.clone());
    let (code, plain, plain_secs) = crate::fixture::run_measured(f.cmd(&["backup"]));
    assert_eq!(code, 0);
    config["encryption"] = json!({ "recipients": [public] });
    f.write_config(config);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, sealed, sealed_secs) = crate::fixture::run_measured(f.cmd(&["backup"]));
    assert_eq!(code, 0);
    let mib = |b: u64| b as f64 / 1048576.0;
    eprintln!(
        "site +128 MiB to local storage: plain {:.1} MiB peak RSS, {plain_secs:.2}s; encrypted {:.1} MiB, {sealed_secs:.2}s",
        mib(plain),
        mib(sealed)
    );
    // age adds one 64 KiB chunk buffer: the memory bound does not change.
    assert!(
        sealed < plain + 16 * 1024 * 1024,
        "encryption raised peak RSS from {:.1} to {:.1} MiB",
        mib(plain),
        mib(sealed)
    );
    let names: Vec<String> = walkdir::WalkDir::new(store.path())
        .into_iter()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.ends_with(".tar.zst.age")).count(),
        1,
        "{names:?}"
    );
}
