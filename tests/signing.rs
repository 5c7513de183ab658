//! Signed archives (issue 23), with real servers: whoever can write to a bucket cannot make a
//! server restore anything. A forged archive (the genuine one unpacked, its database.sql
//! given a canary, repacked with plain `tar --zstd`, its `.sha256` rewritten, stored
//! under a newer key) is refused by restore, `restore --only`, `ls`, `verify` and the drill,
//! unsigned, with a copied signature, signed by another key, and in place of the genuine
//! archive under the genuine signature; nothing changes in the database or the files. A
//! plaintext archive where `encryption` is configured is refused. A key rotation: the old
//! key's archives restore while it is trusted, and are refused once it is removed. The worst
//! day: a new home with only config.json (its trusted_keys) restores; with only the bucket,
//! `--trusted-key`. The signature is checked by hand with the `minisign` tool.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::fixture::{self, Fixture};
use crate::util::minisign;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// A checksum of every table of the live database, and the site's files.
fn live(f: &Fixture) -> (String, Vec<(String, String)>) {
    let tables = f.db.sql_db(&f.site.db_name, "SHOW TABLES");
    let list: Vec<String> = tables.lines().map(|t| format!("`{t}`")).collect();
    let sums = f.db.sql_db(
        &f.site.db_name,
        &format!("CHECKSUM TABLE {} EXTENDED", list.join(", ")),
    );
    (sums, fixture::tree(&f.site.path, &|_| false))
}

fn config(f: &Fixture) -> Value {
    serde_json::from_slice(&std::fs::read(f.home().join("config.json")).unwrap()).unwrap()
}

/// The archives of site blog in a local storage, oldest first: (key, path).
fn archives(store: &Path) -> Vec<(String, PathBuf)> {
    let dir = store.join("test-server/blog");
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.zst"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (format!("test-server/blog/{name}"), p)
        })
        .collect();
    v.sort();
    v
}

fn sig_path(archive: &Path) -> PathBuf {
    PathBuf::from(format!("{}.minisig", archive.display()))
}

/// The genuine archive at `genuine`, doctored: its database.sql sets the blog's name to a
/// canary (manifest.json updated to match, so the archive is otherwise whole), repacked with plain `tar --zstd` into `to`, with a `.sha256` beside it.
fn forge(genuine: &Path, to: &Path) {
    use sha2::Digest as _;
    let x = fixture::extract(genuine);
    let dump = x.path().join("database.sql");
    let sql = std::fs::read_to_string(&dump).unwrap();
    let at = sql.rfind("-- Dump completed").expect("the completion line");
    let sql = format!(
        "{}UPDATE `wp_options` SET `option_value` = 'FORGED-CANARY' WHERE `option_name` = 'blogname';\n{}",
        &sql[..at],
        &sql[at..]
    );
    std::fs::write(&dump, &sql).unwrap();
    let mpath = x.path().join("manifest.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m["database_sha256"] = hex::encode(sha2::Sha256::digest(sql.as_bytes())).into();
    m["database_bytes"] = sql.len().into();
    std::fs::write(&mpath, m.to_string()).unwrap();
    let names: Vec<String> = std::fs::read_dir(x.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let out = Command::new("tar")
        .arg("--zstd")
        .arg("-cf")
        .arg(to)
        .arg("-C")
        .arg(x.path())
        .args(&names)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let name = to.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::write(
        format!("{}.sha256", to.display()),
        format!("{}  {name}\n", sha256_of(to)),
    )
    .unwrap();
}

/// `drill` as root through the test server's socket; its scratch directories in `tmp`.
fn drill(f: &Fixture, tmp: &Path) -> Output {
    let out = f
        .cmd(&["drill"])
        .env("MYSQL_UNIX_PORT", &f.db.socket)
        .env("TMPDIR", tmp)
        .output()
        .unwrap();
    eprintln!("drill -> {:?}\n{}", out.status, text(&out));
    out
}

/// Every reader refuses `key`, naming it and `why`: restore, restore --only, ls and verify
/// with exit status 2, the drill as a failed drill with exit status 2 too.
fn assert_refused(f: &Fixture, key: &str, why: &str) {
    let file = key.rsplit('/').next().unwrap();
    let only = tempfile::tempdir().unwrap();
    let only_to = only.path().join("back");
    let runs: Vec<(&str, Vec<String>)> = vec![
        (
            "restore",
            vec![
                "restore".into(),
                "--site".into(),
                "blog".into(),
                "--archive".into(),
                file.into(),
                "--yes".into(),
            ],
        ),
        (
            "restore --only",
            vec![
                "restore".into(),
                "--site".into(),
                "blog".into(),
                "--archive".into(),
                file.into(),
                "--only".into(),
                "wp-config.php".into(),
                "--to".into(),
                only_to.to_string_lossy().into_owned(),
            ],
        ),
        (
            "ls",
            vec![
                "ls".into(),
                "--site".into(),
                "blog".into(),
                "--archive".into(),
                file.into(),
            ],
        ),
        (
            "verify",
            vec!["verify".into(), "--archive".into(), key.into()],
        ),
    ];
    for (what, args) in runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = f.run(&args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {said}");
        assert!(said.contains(key) && said.contains(why), "{what}: {said}");
    }
    assert!(
        !only_to.exists(),
        "restore --only wrote {}",
        only_to.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = drill(f, tmp.path());
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("FAILED") && said.contains(why), "{said}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "scratch left: {left:?}");
}

#[test]
fn a_forged_archive_is_refused_by_every_reader_and_nothing_changes() {
    let (f, store) = Fixture::with_local_storage("sign-forged");
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (key, genuine) = archives(store.path()).remove(0);
    assert!(sig_path(&genuine).exists(), "no signature beside {key}");
    let own = config(&f)["trusted_keys"][0].as_str().unwrap().to_string();
    let before = live(&f);

    // A day newer than the genuine archive: what restore, ls and the drill would pick.
    let newer_name = genuine
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replacen("blog_20", "blog_21", 1);
    let newer = genuine.with_file_name(&newer_name);
    let newer_key = format!("test-server/blog/{newer_name}");
    forge(&genuine, &newer);

    // 1. No signature at all.
    assert_refused(&f, &newer_key, "has no signature");
    // 2. The genuine archive's signature copied beside it.
    std::fs::copy(sig_path(&genuine), sig_path(&newer)).unwrap();
    assert_refused(&f, &newer_key, "is for another archive");
    // 3. Signed, in wpbackup's own format, by a key nobody trusts.
    let keys = tempfile::tempdir().unwrap();
    let (other_secret, other_public) = minisign::new_key(keys.path());
    minisign::sign(&other_secret, &newer, &newer_key, &sig_path(&newer));
    let other_id = minisign_id(&other_public);
    assert_refused(
        &f,
        &newer_key,
        &format!("signed by key {other_id}, which is not trusted"),
    );
    // 4. The genuine archive replaced in place by the forged bytes, under its own signature;
    // no backups.db to record its first sha256 (the worst day's view, a new server).
    for name in ["backups.db", "backups.db-wal", "backups.db-shm"] {
        let _ = std::fs::remove_file(f.home().join(name));
    }
    std::fs::remove_file(&newer).unwrap();
    std::fs::remove_file(sig_path(&newer)).unwrap();
    std::fs::remove_file(format!("{}.sha256", newer.display())).unwrap();
    let kept = keys.path().join("genuine.tar.zst");
    std::fs::copy(&genuine, &kept).unwrap();
    forge(&kept, &genuine);
    let own_id = minisign_id(&own);
    assert_refused(&f, &key, &format!("are not the ones key {own_id} signed"));

    assert_eq!(live(&f), before, "the live site changed");
    let name = f.db.sql_db(
        &f.site.db_name,
        "SELECT option_value FROM wp_options WHERE option_name = 'blogname'",
    );
    assert!(!name.contains("FORGED"), "{name}");
}

/// The key id minisign prints for a public key string (its bytes 2..10, little-endian).
fn minisign_id(public: &str) -> String {
    use base64::Engine as _;
    let bin = base64::engine::general_purpose::STANDARD
        .decode(public)
        .unwrap();
    format!(
        "{:016X}",
        u64::from_le_bytes(bin[2..10].try_into().unwrap())
    )
}

#[test]
fn a_plaintext_archive_is_refused_where_encryption_is_configured() {
    let (f, store) = Fixture::with_local_storage("sign-plain");
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (key, _) = archives(store.path()).remove(0);
    let ids = tempfile::tempdir().unwrap();
    let id = ids.path().join("key.txt");
    crate::util::run_ok(Command::new("age-keygen").arg("-o").arg(&id));
    let public = crate::util::run_ok(Command::new("age-keygen").arg("-y").arg(&id));
    let mut c = config(&f);
    c["encryption"] = json!({ "recipients": [public.trim()] });
    f.write_config(c);
    let before = live(&f);
    let id = id.to_string_lossy().into_owned();
    for args in [
        vec!["restore", "--site", "blog", "--yes", "--identity", &id],
        vec!["verify", "--identity", &id],
    ] {
        let out = f.run(&args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(2), "{said}");
        assert!(
            said.contains(&key) && said.contains("it is not encrypted"),
            "{said}"
        );
    }
    assert_eq!(live(&f), before);
}

#[test]
fn keys_rotate_and_a_new_server_restores_with_config_json_or_a_key_given() {
    let (f, store) = Fixture::with_local_storage("sign-rotate");
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The first backup made the key (0600), trusted it in config.json and printed it.
    let home = f.home().to_path_buf();
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode(&home.join("signing.key")), 0o600);
    let a = config(&f)["trusted_keys"][0].as_str().unwrap().to_string();
    assert!(text(&out).contains(&a), "{}", text(&out));
    let (key_a, path_a) = archives(store.path()).remove(0);

    // By hand, as formats.md says: the tool checks the archive against the key.
    let out = minisign::verify(&path_a, &sig_path(&path_a), &a);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    let sha = sha256_of(&path_a);
    assert!(said.contains(&minisign::comment(&key_a, &sha)), "{said}");
    let bad = tempfile::tempdir().unwrap();
    let copy = bad.path().join("copy.tar.zst");
    let mut bytes = std::fs::read(&path_a).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&copy, bytes).unwrap();
    assert!(
        !minisign::verify(&copy, &sig_path(&path_a), &a)
            .status
            .success()
    );

    // Rotation: the old key moved away, the next backup makes and trusts a new one.
    std::fs::rename(home.join("signing.key"), bad.path().join("old-signing.key")).unwrap();
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let trusted = config(&f)["trusted_keys"].clone();
    let b = trusted[0].as_str().unwrap().to_string();
    assert_ne!(a, b);
    assert_eq!(trusted, json!([b, a]));
    let file_a = key_a.rsplit('/').next().unwrap().to_string();
    let restore_a = ["restore", "--site", "blog", "--archive", &file_a, "--yes"];
    let out = f.run(&restore_a);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Key A removed from trusted_keys: its archives are refused, unless given again.
    let mut c = config(&f);
    c["trusted_keys"] = json!([b]);
    f.write_config(c.clone());
    let out = f.run(&restore_a);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let id_a = minisign_id(&a);
    assert!(
        text(&out).contains(&format!("signed by key {id_a}, which is not trusted")),
        "{}",
        text(&out)
    );
    let mut with_a = restore_a.to_vec();
    with_a.extend(["--trusted-key", &a]);
    let out = f.run(&with_a);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The worst day: a new server with config.json (trusted_keys) and the storage only.
    let new_home = tempfile::tempdir().unwrap();
    let nh = new_home.path().to_string_lossy().into_owned();
    std::fs::copy(home.join(".env"), new_home.path().join(".env")).unwrap();
    std::fs::write(new_home.path().join("config.json"), c.to_string()).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let to = elsewhere.path().join("blog");
    let to_s = to.to_string_lossy().into_owned();
    let restore_new = |extra: &[&str]| {
        let mut cmd = Command::new(crate::util::bin());
        cmd.args([
            "--home",
            &nh,
            "restore",
            "--site",
            "blog",
            "--files-only",
            "--yes",
            "--to",
            &to_s,
        ])
        .args(extra)
        .env_remove("WPBACKUP_HOME");
        let out = cmd.output().unwrap();
        eprintln!(
            "restore (new server) {extra:?} -> {:?}\n{}",
            out.status,
            text(&out)
        );
        out
    };
    let out = restore_new(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(to.join("wp-config.php").exists());
    std::fs::remove_dir_all(&to).unwrap();
    // Only the bucket: config.json without trusted_keys; the key given on the command line.
    c.as_object_mut().unwrap().remove("trusted_keys");
    std::fs::write(new_home.path().join("config.json"), c.to_string()).unwrap();
    let out = restore_new(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!to.exists());
    let out = restore_new(&["--trusted-key", &b]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(to.join("wp-config.php").exists());
    assert!(!new_home.path().join("signing.key").exists());
}
