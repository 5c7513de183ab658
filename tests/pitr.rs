//! Point-in-time recovery with a real binary log (issue 27): a MariaDB server started with
//! `--log-bin --binlog-format=ROW --server-id=1`, a WordPress shop and another database on
//! it, the nightly backup, orders (`shop_order` posts and their meta) at T1, T2 and T3 with a
//! row of the other database in between, `wpbackup binlog` after each; then the database and
//! the site are lost and `restore --at` brings the shop back to a second, from the bucket
//! alone on a new home.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::fixture::{BUCKET, Fixture};

/// Apart by more than a second: binary log events are stamped to the second.
fn tick() {
    std::thread::sleep(Duration::from_millis(1200));
}

fn now() -> String {
    Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The shop's fixture: `binlog` on, root's socket in .env, and another database beside it.
fn shop() -> (Fixture, String) {
    let f = Fixture::with_binlog("shop");
    let mut config = f.default_config();
    config["sites"][0]["name"] = json!("shop");
    config["binlog"] = json!({});
    f.write_config(config);
    f.write_env(&[("MYSQL_UNIX_PORT", &f.db.socket.to_string_lossy())]);
    let other = format!("other_{}", std::process::id());
    f.db.sql(&format!(
        "CREATE DATABASE `{other}`; CREATE TABLE `{other}`.t (id INT PRIMARY KEY, v TEXT); INSERT INTO `{other}`.t VALUES (1, 'before')"
    ));
    (f, other)
}

/// An order: a `shop_order` post and its total, as WooCommerce stores them.
fn order(f: &Fixture, title: &str) {
    f.db.sql_db(
        &f.site.db_name,
        &format!(
            "INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt, post_status, comment_status, ping_status, post_password, post_name, to_ping, pinged, post_modified, post_modified_gmt, post_content_filtered, post_parent, guid, menu_order, post_type, post_mime_type, comment_count) VALUES (1, NOW(), UTC_TIMESTAMP(), '', '{title}', '', 'wc-processing', 'closed', 'closed', '', '{title}', '', '', NOW(), UTC_TIMESTAMP(), '', 0, '', 0, 'shop_order', '', 0); INSERT INTO wp_postmeta (post_id, meta_key, meta_value) VALUES (LAST_INSERT_ID(), '_order_total', '{}.00')",
            title.len()
        ),
    );
}

fn ship(f: &Fixture) {
    let out = f.run(&["binlog"]);
    assert_eq!(out.status.code(), Some(0));
}

/// The orders and their totals as WordPress itself reads them (php loading wp-load.php).
fn orders_by_wordpress(site: &Path) -> Vec<String> {
    let script = "require 'wp-load.php'; foreach (get_posts(['post_type' => 'shop_order', 'post_status' => 'any', 'numberposts' => -1, 'orderby' => 'ID', 'order' => 'ASC']) as $p) { echo $p->post_title, '=', get_post_meta($p->ID, '_order_total', true), \"\\n\"; }";
    let out = Command::new("php")
        .current_dir(site)
        .args(["-r", script])
        .output()
        .expect("php");
    assert!(
        out.status.success(),
        "php: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The shop lost: its database dropped, its directory deleted.
fn lose_the_shop(f: &Fixture) {
    f.db.sql(&format!("DROP DATABASE `{}`", f.site.db_name));
    std::fs::remove_dir_all(&f.site.path).expect("remove the site");
}

/// A new home with only config.json and .env (no backups.db, no signing key).
fn new_home(f: &Fixture) -> tempfile::TempDir {
    let home = tempfile::Builder::new()
        .prefix("wpb-newhome")
        .tempdir()
        .expect("tempdir");
    for name in ["config.json", ".env"] {
        std::fs::copy(f.home().join(name), home.path().join(name)).expect("copy");
    }
    home
}

fn restore_at(f: &Fixture, home: &Path, at: &str) -> std::process::Output {
    let out = Command::new(crate::util::bin())
        .args(["--home", &home.to_string_lossy()])
        .args(["restore", "--site", "shop", "--at", at, "--yes"])
        .env_remove("WPBACKUP_HOME")
        .env_remove("RUST_LOG")
        .output()
        .expect("run wpbackup");
    eprintln!(
        "restore --at {at} -> {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = f;
    out
}

#[test]
fn a_lost_shop_comes_back_to_the_second_from_the_bucket_alone() {
    let (f, other) = shop();
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0));
    tick();
    order(&f, "order-t1");
    ship(&f);
    f.db.sql(&format!(
        "UPDATE `{other}`.t SET v = 'between' WHERE id = 1"
    ));
    tick();
    order(&f, "order-t2");
    ship(&f);
    tick();
    let t2 = now();
    tick();
    f.db.sql(&format!("INSERT INTO `{other}`.t VALUES (2, 'later')"));
    order(&f, "order-t3");
    ship(&f);
    // The shipped files are signed and plain zstd (no `encryption` here).
    let keys: Vec<String> = f
        .primary
        .objects(BUCKET)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("binlog/test-server/"))
        .collect();
    assert!(keys.iter().any(|k| k.ends_with(".zst")), "{keys:?}");
    assert!(keys.iter().any(|k| k.ends_with(".zst.minisig")), "{keys:?}");
    // A run with nothing new ships nothing (the rotation's new file is the next run's).
    let out = f.run(&["--json", "binlog"]);
    let said: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(said["shipped"].as_array().map(Vec::len), Some(1), "{said}");

    let other_before = f.db.sql(&format!("SELECT * FROM `{other}`.t ORDER BY id"));
    lose_the_shop(&f);
    let home = new_home(&f);

    // --dry-run names the archive and the binary log files, and changes nothing.
    let out = Command::new(crate::util::bin())
        .args(["--home", &home.path().to_string_lossy()])
        .args(["restore", "--site", "shop", "--at", &t2, "--dry-run"])
        .output()
        .expect("dry run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("mariadb-bin."), "{text}");
    assert!(!f.site.path.exists());

    let out = restore_at(&f, home.path(), &t2);
    assert_eq!(out.status.code(), Some(0));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("the files are the restore point's"), "{said}");
    let rows = f.db.sql_db(
        &f.site.db_name,
        "SELECT p.post_title, m.meta_value FROM wp_posts p JOIN wp_postmeta m ON m.post_id = p.ID AND m.meta_key = '_order_total' WHERE p.post_type = 'shop_order' ORDER BY p.ID",
    );
    assert_eq!(rows, "order-t1\t8.00\norder-t2\t8.00\n");
    assert_eq!(
        orders_by_wordpress(&f.site.path),
        ["order-t1=8.00", "order-t2=8.00"]
    );
    assert_eq!(
        f.db.sql(&format!("SELECT * FROM `{other}`.t ORDER BY id")),
        other_before,
        "the other database is not the restore's"
    );
    // The replay's throwaway user is gone.
    assert_eq!(
        f.db.sql("SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'wpbreplay%'"),
        "0\n"
    );
}

#[test]
fn a_binlog_file_missing_in_the_middle_is_named_and_the_time_before_it_restores() {
    let (f, _other) = shop();
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0));
    tick();
    order(&f, "order-t1");
    // Before the run that closes the file order-t1 is in: the file after it began later.
    tick();
    let t1 = now();
    tick();
    ship(&f);
    order(&f, "order-t2");
    ship(&f);
    tick();
    order(&f, "order-t3");
    ship(&f);
    let mut shipped: Vec<String> = f
        .primary
        .objects(BUCKET)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("binlog/") && k.ends_with(".zst"))
        .collect();
    shipped.sort();
    assert_eq!(shipped.len(), 3, "{shipped:?}");
    // The middle one, on both storages (the second never had it: failover only).
    let middle = &shipped[1];
    for server in [&f.primary, &f.secondary] {
        for key in [middle.clone(), format!("{middle}.minisig")] {
            let _ = std::fs::remove_file(server.object_path(BUCKET, &key));
        }
    }
    let name = middle
        .rsplit('/')
        .next()
        .and_then(|n| n.rsplit_once('_'))
        .map(|(file, _)| file.to_string())
        .expect("a binlog file name");
    lose_the_shop(&f);
    let home = new_home(&f);

    let out = restore_at(&f, home.path(), &now());
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&name), "names {name}: {said}");
    assert!(!f.site.path.exists(), "nothing was restored");

    let out = restore_at(&f, home.path(), &t1);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(orders_by_wordpress(&f.site.path), ["order-t1=8.00"]);
}
