//! Sites of different owners on one server: a site's owner cannot turn root's backup against
//! another site. Site A belongs to www-data, site B to daemon; what A's owner plants in A must
//! never give A's archive B's database.

use std::path::Path;
use std::process::Command;

use crate::fixture::{self, Fixture};
use crate::util::wordpress::WordPress;

/// `chown -R user: path` (the test runs as root).
fn chown_tree(path: &Path, user: &str) {
    let out = Command::new("chown")
        .args(["-R", "-h", &format!("{user}:{user}")])
        .arg(path)
        .output()
        .expect("run chown");
    assert!(out.status.success(), "chown: {out:?}");
}

/// Everything the archives stored on the primary say, `database.sql` included.
fn stored_text(f: &Fixture) -> String {
    let mut text = String::new();
    for (_, path) in fixture::stored(&f.primary) {
        if !path.to_string_lossy().ends_with(".tar.zst") {
            continue;
        }
        let dir = fixture::extract(&path);
        if let Ok(sql) = std::fs::read(dir.path().join("database.sql")) {
            text.push_str(&String::from_utf8_lossy(&sql));
        }
    }
    text
}

#[test]
fn a_wp_config_linked_to_another_sites_is_refused() {
    let f = Fixture::new("a");
    let b = WordPress::install(&f.db, "b");
    let marker = "only-site-b-knows-this";
    f.db.sql_db(
        &b.db_name,
        &format!(
            "INSERT INTO wp_options (option_name, option_value) VALUES ('b_marker', '{marker}')"
        ),
    );
    chown_tree(&f.site.path, "www-data");
    chown_tree(&b.path, "daemon");
    // A's owner swaps their wp-config.php for a link to B's.
    let link = f.site.path.join("wp-config.php");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(b.path.join("wp-config.php"), &link).unwrap();
    chown_tree(&f.site.path, "www-data");

    let out = f.run(&["backup"]);
    assert!(!out.status.success(), "the backup of A must fail");
    let rows = f.rows();
    let row = rows
        .iter()
        .find(|r| r.status == "ERROR")
        .unwrap_or_else(|| panic!("no ERROR row: {rows:?}"));
    assert!(
        row.details.contains(&link.display().to_string()) && row.details.contains("symlink"),
        "the ERROR row names the link: {}",
        row.details
    );
    assert!(
        !stored_text(&f).contains(marker),
        "A's archive holds B's database"
    );
}

#[test]
fn a_restored_file_is_never_setuid_nor_roots_in_a_users_site() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let f = Fixture::new("blog");
    chown_tree(&f.site.path, "www-data");
    let setuid = f.site.path.join("wp-content/tool");
    std::fs::write(&setuid, "#!/bin/sh\n").unwrap();
    chown_tree(&setuid, "www-data");
    std::fs::set_permissions(&setuid, std::fs::Permissions::from_mode(0o6755)).unwrap();
    // A file root left in the user's site (the test runs as root).
    let rooted = f.site.path.join("wp-content/rooted.txt");
    std::fs::write(&rooted, "root's\n").unwrap();
    assert_eq!(std::fs::metadata(&setuid).unwrap().mode() & 0o6000, 0o6000);

    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0));
    std::fs::remove_file(&setuid).unwrap();
    std::fs::remove_file(&rooted).unwrap();
    let out = f.run(&["restore", "--site", "blog", "--yes"]);
    assert_eq!(out.status.code(), Some(0));

    let www_data = std::fs::metadata(&f.site.path).unwrap().uid();
    assert_ne!(www_data, 0);
    for p in [&setuid, &rooted] {
        let m = std::fs::symlink_metadata(p).unwrap();
        assert_eq!(
            m.mode() & 0o6000,
            0,
            "{} is setuid or setgid after the restore",
            p.display()
        );
        assert_eq!(
            (m.uid(), m.gid()),
            (www_data, www_data),
            "{} is not the site owner's after the restore",
            p.display()
        );
    }
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("wp-content/tool") && said.contains("setuid"),
        "the restore names the setuid file it changed: {said}"
    );
}

/// The paths under a directory whose owner or mode differ between `before` and `after` (or
/// that only one has), the first few, in words; empty when nothing changed.
fn changed(before: &[(String, u32, u32)], after: &[(String, u32, u32)]) -> Vec<String> {
    let (b, a): (std::collections::BTreeSet<_>, std::collections::BTreeSet<_>) =
        (before.iter().collect(), after.iter().collect());
    let mut out: Vec<String> = b
        .symmetric_difference(&a)
        .map(|(p, uid, mode)| {
            let was = if b.contains(&(p.clone(), *uid, *mode)) {
                "before"
            } else {
                "after"
            };
            format!("{was}: {p} uid {uid} mode {mode:o}")
        })
        .collect();
    let n = out.len();
    out.truncate(6);
    if n > 6 {
        out.push(format!("... {} more", n - 6));
    }
    out
}

/// Every path under `dir` with its owner and mode (what a chown or chmod would change).
fn owners_and_modes(dir: &Path) -> Vec<(String, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .flatten()
        .map(|e| {
            let m = e.path().symlink_metadata().unwrap();
            (e.path().display().to_string(), m.uid(), m.mode())
        })
        .collect()
}

/// A process of the site's owner, killed when dropped.
struct Racer(std::process::Child);

impl Drop for Racer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn restore_only_into_the_site_never_changes_a_path_outside_it() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new("blog");
    chown_tree(&f.site.path, "www-data");
    // The site's owner can reach their site.
    let above = f.site.path.parent().unwrap();
    std::fs::set_permissions(above, std::fs::Permissions::from_mode(0o711)).unwrap();
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0));
    let month = f.site.path.join("wp-content/uploads/2026");
    std::fs::remove_dir_all(&month).unwrap();

    // A stand-in for /etc: root's, private.
    let etc_dir = tempfile::Builder::new()
        .prefix("wpb-etc")
        .tempdir()
        .unwrap();
    let etc = etc_dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    std::fs::write(etc.join("shadow"), "root:x:\n").unwrap();
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o700)).unwrap();
    let before = owners_and_modes(etc_dir.path());

    // The owner, for the whole restore: moves each staging directory away and plants a link
    // to the stand-in in its place.
    let script = r#"cd "$1" || exit 1; i=0
while :; do
  for d in .wpbackup-only-*; do
    [ -d "$d" ] && [ ! -L "$d" ] || continue
    i=$((i+1)); mv "$d" "swapped.$i" 2>/dev/null && ln -s "$2" "$d"
  done
done"#;
    let racer = Racer(
        Command::new("setpriv")
            .args([
                "--reuid=33",
                "--regid=33",
                "--clear-groups",
                "sh",
                "-c",
                script,
                "racer",
            ])
            .arg(&f.site.path)
            .arg(&etc)
            .spawn()
            .expect("start the racing owner"),
    );
    let to = f.site.path.to_string_lossy().into_owned();
    let out = f.run(&[
        "restore",
        "--site",
        "blog",
        "--only",
        "wp-content/uploads/2026",
        "--to",
        &to,
    ]);
    drop(racer);

    let swapped = std::fs::read_dir(&f.site.path)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("swapped."))
        .count();
    assert!(
        swapped > 0,
        "the owner never got to swap the staging directory"
    );
    let after = owners_and_modes(etc_dir.path());
    assert!(
        changed(&before, &after).is_empty(),
        "a path outside the site changed: {:#?}",
        changed(&before, &after)
    );
    assert_eq!(out.status.code(), Some(0), "the restore went through");
    assert!(
        f.site
            .path
            .join(crate::util::wordpress::MEDIA_PATH)
            .is_file(),
        "the file is back in the site"
    );
}

/// `chown user: path` and `chmod mode path`, the path itself only.
fn give(path: &Path, user: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let out = Command::new("chown")
        .args(["-h", &format!("{user}:{user}")])
        .arg(path)
        .output()
        .expect("run chown");
    assert!(out.status.success(), "chown: {out:?}");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_full_restore_beside_the_owners_own_directory_never_changes_a_path_outside_the_site() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new("blog");
    chown_tree(&f.site.path, "www-data");
    // The site's parent is its owner's, as /home/alice is for /home/alice/public_html.
    let home = f.site.path.parent().unwrap().to_path_buf();
    give(&home, "www-data", 0o755);
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0));
    let media = f.site.path.join(crate::util::wordpress::MEDIA_PATH);
    std::fs::remove_file(&media).unwrap();

    // A stand-in for /etc: root's, holding a private `files` of root's (what a restore's
    // staging directory holds), and something for a chmod to change.
    let etc_dir = tempfile::Builder::new()
        .prefix("wpb-etc")
        .tempdir()
        .unwrap();
    let etc = etc_dir.path().join("etc");
    std::fs::create_dir_all(etc.join("files")).unwrap();
    std::fs::write(etc.join("files/shadow"), "root:x:\n").unwrap();
    std::fs::set_permissions(etc.join("files"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = owners_and_modes(etc_dir.path());

    // The owner, for the whole of both restores: every staging directory, kept copy and
    // temporary file wpbackup makes in the parent is moved away and a link to the stand-in
    // planted in its place.
    let script = r#"cd "$1" || exit 1; i=0
while :; do
  for d in blog.* copy.* .wpbackup-* .wp-config.php.*; do
    [ -e "$d" ] && [ ! -L "$d" ] || continue
    i=$((i+1)); mv "$d" "swapped.$i" 2>/dev/null && ln -s "$2" "$d"
  done
done"#;
    let racer = Racer(
        Command::new("setpriv")
            .args([
                "--reuid=33",
                "--regid=33",
                "--clear-groups",
                "sh",
                "-c",
                script,
                "racer",
            ])
            .arg(&home)
            .arg(&etc)
            .spawn()
            .expect("start the racing owner"),
    );
    let in_place = f.run(&["restore", "--site", "blog", "--yes"]);
    let copy = home.join("copy");
    let mut cmd = f.cmd(&["restore", "--site", "blog", "--yes", "--files-only", "--to"]);
    let cloned = cmd.arg(&copy).output().unwrap();
    drop(racer);

    let swapped: Vec<String> = std::fs::read_dir(&home)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("swapped."))
        .collect();
    assert!(
        !swapped.is_empty(),
        "the owner never got to swap anything wpbackup made"
    );
    let after = owners_and_modes(etc_dir.path());
    assert!(
        changed(&before, &after).is_empty(),
        "a path outside the site changed: {:#?}",
        changed(&before, &after)
    );
    let said = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(in_place.status.code(), Some(0), "{}", said(&in_place));
    assert_eq!(cloned.status.code(), Some(0), "{}", said(&cloned));
    assert!(media.is_file(), "the file is back in the site");
    assert!(
        copy.join(crate::util::wordpress::MEDIA_PATH).is_file(),
        "the copy holds the file"
    );
}
