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
    restore_at_with(f, home, at, &[])
}

fn restore_at_with(f: &Fixture, home: &Path, at: &str, extra: &[&str]) -> std::process::Output {
    let out = Command::new(crate::util::bin())
        .args(["--home", &home.to_string_lossy()])
        .args(["restore", "--site", "shop", "--at", at, "--yes"])
        .args(extra)
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
    eprintln!("restore --dry-run --at {t2}:\n{text}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("mariadb-bin."), "{text}");
    // And the last event it would apply before t2: order-t2's total, in wp_postmeta (the
    // other database's later row is not the shop's, and t3's order is after t2).
    let last = text
        .lines()
        .find_map(|l| l.strip_prefix("- the last event of the site's database it would apply: "))
        .unwrap_or_else(|| panic!("no last event in:\n{text}"));
    let when = last
        .strip_prefix("rows inserted into wp_postmeta at ")
        .unwrap_or_else(|| panic!("{last}"));
    assert!(
        when.ends_with(" UTC") && when[..19] < *t2.as_str(),
        "{last} (t2 {t2})"
    );
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

/// `mariadb-binlog`'s output of `file` from `position`, without `--database`.
fn unfiltered(file: &Path, position: &str) -> Vec<u8> {
    let out = Command::new("mariadb-binlog")
        .arg("--no-defaults")
        .arg(format!("--start-position={position}"))
        .arg(file)
        .output()
        .expect("mariadb-binlog");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `sql` fed to the client as `user` (no password) in `database`: whether it succeeded.
fn feed(db: &crate::util::mariadb::MariaDb, user: &str, database: &str, sql: &[u8]) -> bool {
    use std::io::Write;
    let mut child = Command::new("mariadb")
        .arg("--no-defaults")
        .arg(format!("--socket={}", db.socket.display()))
        .args([&format!("--user={user}"), "--binary-mode", database])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("mariadb");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(sql)
        .expect("write");
    child.wait().expect("wait").success()
}

/// The replay as a user without rights on the other database, with a binary log holding its
/// rows (written in a session whose database was the shop's): such a user, given BINLOG
/// REPLAY, does write them when nothing filters (the threat); through the guard alone (no
/// `--database`) nothing of them is applied and the shop's rows are; and the replay itself
/// (`--database` and the guard, its throwaway user) applies the shop's rows only.
#[test]
fn the_replay_applies_nothing_of_another_database_its_binlog_holds() {
    use wpbackup::binlog::replay::{Replay, run};
    use wpbackup::config::{DatabaseConfig, DbHost, Timeouts};

    let db = crate::util::mariadb::MariaDb::with_binlog();
    let (shop, other) = ("shop_db", "other_db");
    db.sql(&format!(
        "CREATE DATABASE {shop}; CREATE DATABASE {other}; CREATE TABLE {shop}.t (id INT PRIMARY KEY, v TEXT); CREATE TABLE {other}.t (id INT PRIMARY KEY, v TEXT); CREATE USER r@localhost; GRANT ALL ON {shop}.* TO r@localhost; GRANT BINLOG REPLAY ON *.* TO r@localhost; FLUSH BINARY LOGS"
    ));
    let status = db.sql("SHOW MASTER STATUS");
    let mut cols = status.split('\t');
    let (file, position) = (
        cols.next().expect("file").to_string(),
        cols.next().expect("position").trim().to_string(),
    );
    db.sql_db(
        shop,
        &format!(
            "BEGIN; INSERT INTO t VALUES (1, 'ours'); INSERT INTO {other}.t VALUES (1, 'theirs'); COMMIT; INSERT INTO {other}.t VALUES (2, 'theirs too')"
        ),
    );
    db.sql("FLUSH BINARY LOGS");
    let dir = db
        .sql("SELECT @@log_bin_basename")
        .trim()
        .rsplit_once('/')
        .map(|(d, _)| d.to_string())
        .expect("the binary log's directory");
    let path = std::path::PathBuf::from(dir).join(&file);
    // Both databases emptied without a trace in the binary log.
    let empty = format!("SET sql_log_bin = 0; DELETE FROM {shop}.t; DELETE FROM {other}.t");
    db.sql(&empty);
    let theirs = format!("SELECT COUNT(*) FROM {other}.t");
    let ours = format!("SELECT * FROM {shop}.t");

    // The threat: rights on the shop's database alone do not keep the other's rows out.
    let events = unfiltered(&path, &position);
    assert!(feed(&db, "r", shop, &events));
    assert_eq!(db.sql(&theirs), "2\n", "row events ignore table rights");
    db.sql(&empty);

    // The guard alone keeps them out.
    let mut guarded = Vec::new();
    let seen = wpbackup::binlog::guard::filter(&events[..], &mut guarded, shop).expect("guard");
    assert_eq!(seen.foreign, [other]);
    assert!(seen.dropped >= 1, "{seen:?}");
    assert!(feed(&db, "r", shop, &guarded));
    assert_eq!(db.sql(&ours), "1\tours\n");
    assert_eq!(db.sql(&theirs), "0\n");
    db.sql(&empty);

    // The replay as restore runs it.
    let admin = DatabaseConfig {
        name: String::new(),
        user: "root".into(),
        password: wpbackup::secret::Secret::new(""),
        host: DbHost::Socket(Some(db.socket.clone())),
        table_prefix: None,
        timeouts: Timeouts::default(),
    };
    run(&Replay {
        admin: &admin,
        database: shop,
        rewrite_to: None,
        files: &[path],
        start_position: position.parse().expect("a position"),
        stop: Some(Utc::now() + chrono::Duration::seconds(5)),
    })
    .expect("the replay");
    assert_eq!(db.sql(&ours), "1\tours\n");
    assert_eq!(db.sql(&theirs), "0\n");
    assert_eq!(
        db.sql("SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'wpbreplay%'"),
        "0\n"
    );
}

/// `binlog` set on a server that writes no binary log: the backup fails and says what to do,
/// rather than storing archives that cannot be brought forward.
#[test]
fn binlog_on_a_server_without_a_binary_log_fails_the_backup_saying_what_to_add() {
    let f = Fixture::new("blog");
    let mut config = f.default_config();
    config["binlog"] = json!({});
    f.write_config(config);
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(1));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("log_bin"), "{said}");
    assert!(f.primary.objects(BUCKET).is_empty(), "nothing stored");
}

/// With `encryption`, the binary log is stored encrypted (a bucket reader learns nothing of
/// any database from it) and a restore to a time decrypts it with --identity.
#[test]
fn an_encrypted_binlog_is_replayed_with_the_identity() {
    let (f, _other) = shop();
    let keys = tempfile::tempdir().expect("tempdir");
    let id = keys.path().join("identity.txt");
    crate::util::run_ok(Command::new("age-keygen").arg("-o").arg(&id));
    let public = crate::util::run_ok(Command::new("age-keygen").arg("-y").arg(&id));
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.home().join("config.json")).unwrap()).unwrap();
    config["encryption"] = json!({ "recipients": [public.trim()] });
    f.write_config(config);
    assert_eq!(f.run(&["backup"]).status.code(), Some(0));
    tick();
    order(&f, "order-t1");
    tick();
    let t1 = now();
    tick();
    ship(&f);
    order(&f, "order-t2");
    ship(&f);
    let binlogs: Vec<String> = f
        .primary
        .objects(BUCKET)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("binlog/") && !k.ends_with(".minisig"))
        .collect();
    assert!(!binlogs.is_empty());
    assert!(
        binlogs.iter().all(|k| k.ends_with(".zst.age")),
        "{binlogs:?}"
    );
    lose_the_shop(&f);
    let home = new_home(&f);
    let out = restore_at_with(&f, home.path(), &t1, &["--identity", &id.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(orders_by_wordpress(&f.site.path), ["order-t1=8.00"]);
}

/// A published post, as WordPress stores one.
fn publish(f: &Fixture, title: &str) {
    f.db.sql_db(
        &f.site.db_name,
        &format!(
            "INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt, post_status, comment_status, ping_status, post_password, post_name, to_ping, pinged, post_modified, post_modified_gmt, post_content_filtered, post_parent, guid, menu_order, post_type, post_mime_type, comment_count) VALUES (1, NOW(), UTC_TIMESTAMP(), 'Written after the nightly.', '{title}', '', 'publish', 'open', 'open', '', '{title}', '', '', NOW(), UTC_TIMESTAMP(), '', 0, '', 0, 'post', '', 0)"
        ),
    );
}

/// drill_log rows: (result, failed, details).
fn drills(f: &Fixture) -> Vec<(String, Option<String>, String)> {
    let conn = rusqlite::Connection::open(f.home().join("backups.db")).expect("backups.db");
    let mut stmt = conn
        .prepare("SELECT result, failed, details FROM drill_log ORDER BY id")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn drill(f: &Fixture, tmp: &Path) -> std::process::Output {
    let out = f
        .cmd(&["drill"])
        .env("TMPDIR", tmp)
        .output()
        .expect("run the drill");
    eprintln!(
        "drill -> {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The drill replays the shipped binary log onto its scratch database to the newest shipped
/// event: a post published after the nightly and shipped is in it (WordPress, booted from the
/// scratch copy, counts it), the shop's posts table has the live one's rows, and nothing of
/// the other database is applied. A shipped file missing from the bucket fails the drill,
/// named.
#[test]
fn the_drill_replays_the_shipped_binlog_onto_its_scratch_database() {
    let (f, other) = shop();
    let published =
        "SELECT COUNT(*) FROM wp_posts WHERE post_type = 'post' AND post_status = 'publish'";
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0));
    let posts_at_backup: u64 =
        f.db.sql_db(&f.site.db_name, "SELECT COUNT(*) FROM wp_posts")
            .trim()
            .parse()
            .expect("a count");
    let published_at_backup: u64 =
        f.db.sql_db(&f.site.db_name, published)
            .trim()
            .parse()
            .expect("a count");
    tick();
    publish(&f, "after-the-nightly");
    f.db.sql(&format!(
        "INSERT INTO `{other}`.t VALUES (3, 'not the shop')"
    ));
    order(&f, "order-after");
    ship(&f);
    let posts_now: u64 =
        f.db.sql_db(&f.site.db_name, "SELECT COUNT(*) FROM wp_posts")
            .trim()
            .parse()
            .expect("a count");
    assert_eq!(posts_now, posts_at_backup + 2);
    let other_before = f.db.sql(&format!("SELECT * FROM `{other}`.t ORDER BY id"));

    let tmp = tempfile::Builder::new()
        .prefix("wpb-pitr-drill")
        .tempdir()
        .expect("tempdir");
    let out = drill(&f, tmp.path());
    assert_eq!(out.status.code(), Some(0));
    let rows = drills(&f);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (result, failed, details) = &rows[0];
    assert_eq!(result, "SUCCESS", "{failed:?} {details}");
    assert!(
        details.contains("the binary log replayed onto it to the newest shipped event"),
        "{details}"
    );
    assert!(
        details.contains(&format!(
            "wp_posts has {posts_now} rows ({posts_at_backup} in the archive), {} published posts ({published_at_backup} in the archive)",
            published_at_backup + 1
        )),
        "{details}"
    );
    // WordPress itself answered the replayed count.
    let booted = details
        .split("; ")
        .find(|p| p.contains("booted: home"))
        .unwrap_or_else(|| panic!("WordPress did not boot: {details}"));
    assert!(
        booted.ends_with(&format!(", {} published posts", published_at_backup + 1)),
        "{booted}"
    );
    assert_eq!(
        f.db.sql(&format!("SELECT * FROM `{other}`.t ORDER BY id")),
        other_before
    );
    assert_eq!(
        f.db.sql(
            "SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'wpbreplay%' OR User LIKE 'wpbdrill%'"
        ),
        "0\n"
    );
    assert_eq!(f.db.sql("SHOW DATABASES LIKE 'wpbdrill%'"), "");

    // The archive's own file gone from the bucket, a later one there: the drill fails, naming it.
    publish(&f, "later");
    ship(&f);
    let mut shipped: Vec<String> = f
        .primary
        .objects(BUCKET)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("binlog/") && k.ends_with(".zst"))
        .collect();
    shipped.sort();
    assert!(shipped.len() >= 2, "{shipped:?}");
    let first = &shipped[0];
    for server in [&f.primary, &f.secondary] {
        for key in [first.clone(), format!("{first}.minisig")] {
            let _ = std::fs::remove_file(server.object_path(BUCKET, &key));
        }
    }
    let name = first
        .rsplit('/')
        .next()
        .and_then(|n| n.rsplit_once('_'))
        .map(|(file, _)| file.to_string())
        .expect("a binlog file name");
    let out = drill(&f, tmp.path());
    assert_eq!(out.status.code(), Some(1));
    let rows = drills(&f);
    let (result, failed, _) = &rows[1];
    assert_eq!(result, "ERROR");
    let failed = failed.clone().unwrap_or_default();
    assert!(failed.contains(&name), "names {name}: {failed}");
}
