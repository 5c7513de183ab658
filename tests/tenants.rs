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
