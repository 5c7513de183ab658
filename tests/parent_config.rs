//! A site whose `wp-config.php` lives in the directory above it (a layout WordPress supports,
//! issue 12 item 10): the archive holds it as `parent/wp-config.php`, plain tar shows it, and a
//! restore on a new server (no site, no config, no database) takes the credentials from it and
//! puts it back, so the site serves its posts again. A clone gets a rewritten copy beside it,
//! never replacing another site's. `--path .../wp-content` is refused with the directory to
//! use (issue 16 item 6).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::fixture::{self, Fixture};
use crate::util::wordpress::{WordPress, http_get, serve_dir};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Move the site's wp-config.php to the directory above it; returns its new path.
fn config_to_parent(site: &WordPress) -> PathBuf {
    let moved = site.path.parent().unwrap().join("wp-config.php");
    std::fs::rename(site.path.join("wp-config.php"), &moved).unwrap();
    std::fs::set_permissions(&moved, std::fs::Permissions::from_mode(0o640)).unwrap();
    moved
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The front page at `url` answers 200 with the site's posts.
fn assert_serves_posts(url: &str) -> String {
    let (status, body) = http_get(&format!("{url}/"));
    let html = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("First post about backups") && html.contains("Third post"),
        "{html}"
    );
    html
}

/// Names in the archive, as `tar --zstd -tf` lists them.
fn tar_names(archive: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .arg("--zstd")
        .arg("-tf")
        .arg(archive)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().map(str::to_string).collect()
}

#[test]
fn the_parent_config_is_archived_and_a_new_server_serves_the_site_again() {
    let f = Fixture::new("parent-cfg");
    let config = config_to_parent(&f.site);
    let text = std::fs::read(&config).unwrap();
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stored = fixture::stored(&f.primary);
    assert_eq!(stored.len(), 1, "{stored:?}");

    // Plain tar shows it beside files/, which stays the site's own tree.
    let names = tar_names(&stored[0].1);
    assert!(
        names.iter().any(|n| n == "parent/wp-config.php"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n == "files/wp-config.php"),
        "{names:?}"
    );
    let x = fixture::extract(&stored[0].1);
    assert_eq!(
        std::fs::read(x.path().join("parent/wp-config.php")).unwrap(),
        text
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(x.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["parent_wp_config"]["bytes"], text.len());
    let out = f.run(&["verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // A new server: no site, no wp-config.php anywhere, no database.
    std::fs::remove_dir_all(&f.site.path).unwrap();
    std::fs::remove_file(&config).unwrap();
    f.db.sql(&format!("DROP DATABASE `{}`", f.site.db_name));
    let out = f.run(&["restore", "--site", "blog"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&config.display().to_string()),
        "{}",
        stdout(&out)
    );

    assert_eq!(std::fs::read(&config).unwrap(), text);
    assert_eq!(mode(&config), 0o640);
    assert!(!f.site.path.join("wp-config.php").exists());
    let _php = f.site.serve();
    assert_serves_posts(&f.site.url);
}

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `restore --to DIR` with a new database and address, as root through the test server's socket.
fn clone(f: &Fixture, to: &Path, db: &str, url: &str, yes: bool) -> Output {
    let mut cmd = f.cmd(&["restore", "--site", "blog", "--to"]);
    cmd.arg(to).args(["--db-name", db, "--url", url]);
    if yes {
        cmd.arg("--yes");
    }
    let out = cmd.env("MYSQL_UNIX_PORT", &f.db.socket).output().unwrap();
    eprintln!(
        "restore -> {:?}\n{}{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    out
}

#[test]
fn a_clone_gets_its_own_parent_config_and_never_replaces_another_sites() {
    let f = Fixture::new("parent-clone");
    let live_config = config_to_parent(&f.site);
    let live_text = std::fs::read(&live_config).unwrap();
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let dir = tempfile::Builder::new()
        .prefix("wpb-clone")
        .tempdir()
        .unwrap();
    let target = dir.path().join("staging");
    let there = dir.path().join("wp-config.php");
    let port = crate::util::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let db = format!("{}_stg", f.site.db_name);
    let other = "<?php // another site's configuration\n";
    std::fs::write(&there, other).unwrap();
    std::fs::create_dir(dir.path().join("other")).unwrap();
    std::fs::write(dir.path().join("other/wp-settings.php"), "<?php\n").unwrap();
    let untouched = |what: &str| {
        assert_eq!(std::fs::read_to_string(&there).unwrap(), other, "{what}");
        let mut names = names_in(dir.path());
        names.retain(|n| n != "other");
        assert_eq!(names, ["wp-config.php"], "nothing else was left: {what}");
        let found = f.db.sql(&format!("SHOW DATABASES LIKE '{db}'"));
        assert!(found.trim().is_empty(), "{what}");
    };

    // Another WordPress root beside the clone loads that wp-config.php: refused, even with --yes.
    let out = clone(&f, &target, &db, &url, true);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("other") && err.contains("nothing was changed"),
        "{err}"
    );
    untouched("another site's");

    // Only a wp-config.php there: replacing it must be confirmed (no terminal: --yes).
    std::fs::remove_dir_all(dir.path().join("other")).unwrap();
    let out = clone(&f, &target, &db, &url, false);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&there.display().to_string()) && stderr(&out).contains("--yes"),
        "{}",
        stderr(&out)
    );
    untouched("not confirmed");

    let out = clone(&f, &target, &db, &url, true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let kept: Vec<PathBuf> = names_in(dir.path())
        .iter()
        .filter(|n| n.starts_with("wp-config.php.before-restore-"))
        .map(|n| dir.path().join(n))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read_to_string(&kept[0]).unwrap(), other);
    assert_eq!(mode(&kept[0]), 0o600);
    let text = std::fs::read_to_string(&there).unwrap();
    assert!(text.contains(&format!("'{db}'")), "{text}");
    assert_eq!(mode(&there), 0o640, "the archived mode");

    // The clone runs on its own database; the original's configuration is untouched.
    let _php = serve_dir(&target, port);
    let html = assert_serves_posts(&url);
    assert!(html.contains(&format!("{url}/?p=")), "{html}");
    assert_eq!(std::fs::read(&live_config).unwrap(), live_text);
}

#[test]
fn path_to_a_folder_inside_a_site_is_refused_with_the_site_to_use() {
    let d = tempfile::Builder::new()
        .prefix("wpb-inside")
        .tempdir()
        .unwrap();
    let site = d.path().join("example.com");
    std::fs::create_dir_all(site.join("wp-content/uploads")).unwrap();
    std::fs::write(site.join("wp-settings.php"), "<?php\n").unwrap();
    std::fs::write(
        site.join("wp-config.php"),
        "<?php define('DB_NAME','wp'); define('DB_USER','u'); define('DB_PASSWORD','p'); define('DB_HOST','127.0.0.1:1');\n",
    )
    .unwrap();
    let home = d.path().join("home");
    for inside in ["wp-content", "wp-content/uploads"] {
        let path = site.join(inside);
        for cmd in [
            &["backup", "--path"][..],
            &["restore", "--yes", "--path"],
            &["ls", "--path"],
        ] {
            let out = Command::new(crate::util::bin())
                .arg("--home")
                .arg(&home)
                .args(cmd)
                .arg(&path)
                .env_remove("WPBACKUP_HOME")
                .output()
                .unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{cmd:?} {inside}: {err}");
            let canon = site.canonicalize().unwrap();
            assert!(
                err.contains(&format!("use --path {}", canon.display())),
                "{cmd:?} {inside}: {err}"
            );
        }
    }
    assert!(!home.join("archives").exists(), "nothing may be stored");
}
