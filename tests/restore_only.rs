//! Taking some files back (`restore --only PATH... --to DIR`, issue 16 item 9), end to end with
//! real servers: with backups.db gone, one upload folder and one plugin come back into a new
//! directory as they were archived (modes, a symlink kept as a link), and a deleted photo
//! back into the live site, without the database or anything else being touched; an existing
//! file is replaced only with --yes; into the site it takes the run lock (exit 75 while
//! another run holds it), aside it goes ahead while a run holds it; a path the archive does
//! not hold, a damaged archive, a directory where the archive has a file, or no --to are
//! refused with nothing written; an encrypted archive needs its identity.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use crate::fixture::{self, BUCKET, Fixture};
use crate::util::wordpress::MEDIA_PATH;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The site's tree as the archive keeps it (the fixture config's excludes left out).
fn site_tree(path: &Path) -> Vec<(String, String)> {
    fixture::tree(path, &|rel| {
        rel == "wp-content/cache" || rel.starts_with("wp-content/cache/") || rel.ends_with(".log")
    })
}

fn backup(f: &Fixture) {
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn blogname(f: &Fixture) -> String {
    f.db.sql_db(
        &f.site.db_name,
        "SELECT option_value FROM wp_options WHERE option_name = 'blogname'",
    )
    .trim()
    .to_string()
}

/// `restore --site blog --only PATHS --to TO` with `extra` arguments.
fn only(f: &Fixture, paths: &[&str], to: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--json", "restore", "--site", "blog", "--only"];
    args.extend_from_slice(paths);
    let to = to.to_string_lossy();
    args.extend_from_slice(&["--to", &to]);
    args.extend_from_slice(extra);
    f.run(&args)
}

/// Names in `dir` that a `--only` run would leave behind (its staging directory).
fn staging_left(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".wpbackup-only-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn only_takes_an_upload_folder_and_a_plugin_back_from_the_bucket_alone() {
    let f = Fixture::new("only");
    let uploads = f.site.path.join("wp-content/uploads");
    std::os::unix::fs::symlink("2026/11/photo.jpg", uploads.join("latest.jpg")).unwrap();
    let plugin = f.site.path.join("wp-content/plugins/akismet");
    let private = plugin.join("akismet.php");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    backup(&f);
    let archived = site_tree(&f.site.path);
    let photo = std::fs::read(f.site.path.join(MEDIA_PATH)).unwrap();

    // The worst day, small: a photo and a plugin deleted, and the site moved on since.
    std::fs::remove_file(f.site.path.join(MEDIA_PATH)).unwrap();
    std::fs::remove_dir_all(&plugin).unwrap();
    f.db.sql_db(
        &f.site.db_name,
        "UPDATE wp_options SET option_value = 'After' WHERE option_name = 'blogname'",
    );
    std::fs::remove_file(f.home().join("backups.db")).unwrap();
    let live = site_tree(&f.site.path);

    let out_dir = tempfile::Builder::new()
        .prefix("wpb-only")
        .tempdir()
        .unwrap();
    let to = out_dir.path().join("back");
    // Aside, into no site's directory: a run holding the lock (the night's backup) is no
    // reason to wait.
    let running = f.hold_run_lock();
    let out = only(
        &f,
        &["wp-content/uploads/", "wp-content/plugins/akismet"],
        &to,
        &[],
    );
    drop(running);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let want: Vec<(String, String)> = archived
        .iter()
        .filter(|(rel, _)| {
            ["wp-content", "wp-content/plugins"].contains(&rel.as_str())
                || rel.starts_with("wp-content/uploads")
                || rel.starts_with("wp-content/plugins/akismet")
        })
        .cloned()
        .collect();
    assert_eq!(
        site_tree(&to),
        want,
        "what came back differs from the archive"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = want
        .iter()
        .filter(|(_, what)| !what.starts_with("dir"))
        .count();
    assert_eq!(doc["files"], files as u64, "{doc}");
    assert_eq!(doc["sha256_source"], "object metadata", "{doc}");
    assert!(doc["bytes"].as_u64().unwrap() > photo.len() as u64, "{doc}");

    // Nothing else changed: not the site, not the database, and no backups.db was made.
    assert_eq!(site_tree(&f.site.path), live);
    assert_eq!(blogname(&f), "After");
    assert!(!f.home().join("backups.db").exists());
    assert!(staging_left(&to).is_empty());

    put_a_deleted_file_back_into_the_live_site(&f, &photo, &live);
}

/// `--to` the site itself: the photo comes back, nothing else of the site changes; an existing
/// file is replaced only with --yes.
fn put_a_deleted_file_back_into_the_live_site(
    f: &Fixture,
    photo: &[u8],
    live: &[(String, String)],
) {
    let media = f.site.path.join(MEDIA_PATH);
    // Into the site while another run holds the lock: exit 75, nothing written.
    let running = f.hold_run_lock();
    let out = only(f, &[MEDIA_PATH], &f.site.path, &[]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("another wpbackup run holds the lock"),
        "{}",
        stderr(&out)
    );
    assert!(!media.exists());
    assert_eq!(site_tree(&f.site.path), live);
    // The same below the site (its uploads folder as DIR): refused before the archive is
    // even read (without the lock, "2026" would be a path the archive does not hold: exit 1).
    let uploads = f.site.path.join("wp-content/uploads");
    let out = only(f, &["2026"], &uploads, &[]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    drop(running);
    assert!(staging_left(&f.site.path).is_empty() && staging_left(&uploads).is_empty());

    let out = only(f, &[MEDIA_PATH], &f.site.path, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::read(&media).unwrap() == photo, "the photo differs");
    let mut now = site_tree(&f.site.path);
    now.retain(|(rel, _)| rel != MEDIA_PATH);
    assert_eq!(now, live, "other files of the site changed");

    std::fs::write(&media, "edited since").unwrap();
    let out = only(f, &[MEDIA_PATH], &f.site.path, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("--yes") && err.contains(MEDIA_PATH), "{err}");
    assert_eq!(std::fs::read(&media).unwrap(), b"edited since");
    let out = only(f, &[MEDIA_PATH], &f.site.path, &["--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::read(&media).unwrap() == photo, "the photo differs");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["replaced"], serde_json::json!([MEDIA_PATH]), "{doc}");
    assert!(staging_left(&f.site.path).is_empty());
}

#[test]
fn only_refuses_before_writing_anything() {
    let f = Fixture::new("only-refuse");
    backup(&f);
    let out_dir = tempfile::Builder::new()
        .prefix("wpb-only")
        .tempdir()
        .unwrap();
    let to = out_dir.path().join("back");
    let nothing_written = |what: &str| {
        assert!(
            !to.exists(),
            "{what}: {:?}",
            std::fs::read_dir(&to).map(|d| d.count())
        );
    };

    let out = f.run(&["restore", "--site", "blog", "--only", MEDIA_PATH]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--only needs --to"),
        "{}",
        stderr(&out)
    );
    let out = only(&f, &["../etc/passwd"], &to, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = only(&f, &[MEDIA_PATH], &to, &["--db-only"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    nothing_written("usage");

    let out = only(
        &f,
        &["wp-content/uploads", "wp-content/uploads/2026/12/gone.jpg"],
        &to,
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("not in archive")
            && err.contains("wp-content/uploads/2026/12/gone.jpg")
            && err.contains("wpbackup ls --site blog"),
        "{err}"
    );
    nothing_written("a missing path");

    // A directory where the archive has the photo: refused, the rest not restored either.
    std::fs::create_dir_all(to.join(MEDIA_PATH)).unwrap();
    let out = only(&f, &["wp-content"], &to, &["--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("or the reverse"), "{}", stderr(&out));
    assert_eq!(fixture::walk_count(&to), 5, "only the directory put there");
    std::fs::remove_dir_all(&to).unwrap();

    let stored = fixture::stored(&f.primary);
    let object = f.primary.object_path(BUCKET, &stored[0].0);
    let mut bytes = std::fs::read(&object).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&object, &bytes).unwrap();
    let out = only(&f, &[MEDIA_PATH], &to, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refusing") && stderr(&out).contains("sha256"),
        "{}",
        stderr(&out)
    );
    nothing_written("a damaged archive");
}

#[test]
fn only_opens_an_encrypted_archive_with_its_identity() {
    let f = Fixture::new("only-enc");
    let keys = tempfile::tempdir().unwrap();
    let (identity, public) = crate::encryption::keygen(keys.path());
    let mut config = f.default_config();
    config["encryption"] = serde_json::json!({ "recipients": [public] });
    f.write_config(config);
    backup(&f);
    let out_dir = tempfile::Builder::new()
        .prefix("wpb-only")
        .tempdir()
        .unwrap();
    let to = out_dir.path().join("back");

    let out = only(&f, &[MEDIA_PATH], &to, &[]);
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("--identity"), "{}", stderr(&out));
    assert!(!to.exists());
    let out = only(
        &f,
        &[MEDIA_PATH],
        &to,
        &["--identity", &identity.to_string_lossy()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(to.join(MEDIA_PATH)).unwrap(),
        std::fs::read(f.site.path.join(MEDIA_PATH)).unwrap()
    );
}
