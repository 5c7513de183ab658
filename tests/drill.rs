//! `wpbackup drill` with real servers: a site backed up to s3s-fs is proven restorable from the
//! bucket alone (backups.db deleted first): the dump loads with the rows the backup counted,
//! the files match the manifest, WordPress boots and answers with the recorded home and
//! published posts; the result is in drill_log (pushed to D1 exactly once), `status` and
//! `report`; the scratch database and directory are gone and the live site is unchanged. It
//! fails, naming the cause, on an archive whose dump was cut, on one whose rows differ from
//! those counted, on credentials that no longer work and on an archive without wp-config.php;
//! a SIGTERM cleans everything up.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;

use crate::fixture::{self, Fixture};
use crate::util::d1::D1Sim;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Where a fixture's drills make their scratch directories (removed with the test).
struct Drills {
    tmp: tempfile::TempDir,
}

impl Drills {
    fn new() -> Drills {
        Drills {
            tmp: tempfile::Builder::new()
                .prefix("wpb-drill")
                .tempdir()
                .unwrap(),
        }
    }

    /// `wpbackup drill ARGS` as root through the test server's socket would be let in.
    fn cmd(&self, f: &Fixture, args: &[&str]) -> Command {
        let mut cmd = f.cmd(&["drill"]);
        cmd.args(args)
            .env("MYSQL_UNIX_PORT", &f.db.socket)
            .env("TMPDIR", self.tmp.path());
        cmd
    }

    fn run(&self, f: &Fixture, args: &[&str]) -> Output {
        let out = self.cmd(f, args).output().unwrap();
        eprintln!("drill {args:?} -> {:?}\n{}", out.status, text(&out));
        out
    }

    /// Nothing of a drill is left: no scratch directory, database or grant.
    fn assert_clean(&self, f: &Fixture) {
        let left: Vec<_> = std::fs::read_dir(self.tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "scratch left in TMPDIR: {left:?}");
        let dbs = f.db.sql("SHOW DATABASES LIKE 'wpbdrill%'");
        assert_eq!(dbs.trim(), "", "scratch database left");
        let grants =
            f.db.sql("SELECT COUNT(*) FROM mysql.db WHERE Db LIKE 'wpbdrill%'");
        assert_eq!(grants.trim(), "0", "grant on a scratch database left");
        let users =
            f.db.sql("SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'wpbdrill%'");
        assert_eq!(users.trim(), "0", "a scratch database's user left");
    }
}

/// A checksum of every table of the live database.
fn live_database(f: &Fixture) -> String {
    let tables = f.db.sql_db(&f.site.db_name, "SHOW TABLES");
    let list: Vec<String> = tables.lines().map(|t| format!("`{t}`")).collect();
    f.db.sql_db(
        &f.site.db_name,
        &format!("CHECKSUM TABLE {} EXTENDED", list.join(", ")),
    )
}

fn site_tree(f: &Fixture) -> Vec<(String, String)> {
    fixture::tree(&f.site.path, &|_| false)
}

/// drill_log rows: (site, archive_key, result, failed, recovery_secs).
fn drill_rows(f: &Fixture) -> Vec<(String, String, String, Option<String>, f64)> {
    let conn = rusqlite::Connection::open(f.home().join("backups.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT site_name, archive_key, result, failed, recovery_secs FROM drill_log ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn remove_backups_db(f: &Fixture) {
    for name in ["backups.db", "backups.db-wal", "backups.db-shm"] {
        let _ = std::fs::remove_file(f.home().join(name));
    }
}

#[test]
fn a_drill_proves_the_site_restorable_from_the_bucket_alone() {
    let f = Fixture::new("drill-ok");
    let sim = D1Sim::start();
    let env = sim.env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    f.write_env(&pairs);
    let out = f.run(&["backup", "--no-sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let key = fixture::stored(&f.primary)[0].0.clone();
    let (tree, live) = (site_tree(&f), live_database(&f));
    // The worst day's view: only the bucket.
    remove_backups_db(&f);

    let d = Drills::new();
    let out = d.run(&f, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("PASSED") && said.contains(&key), "{said}");
    assert!(
        said.contains("the dump loads") && said.contains("sampled files"),
        "{said}"
    );
    let posts = f.site.post_titles(&f.db).len();
    let home = format!("home {}, {posts} published posts", f.site.url);
    assert!(said.contains(&home), "{said}");
    let rows = drill_rows(&f);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (site, archive, result, failed, secs) = &rows[0];
    assert_eq!(
        (site.as_str(), archive, result.as_str()),
        ("blog", &key, "SUCCESS")
    );
    assert_eq!(failed, &None);
    assert!(*secs > 0.0, "{secs}");
    d.assert_clean(&f);
    assert_eq!(site_tree(&f), tree, "the live files changed");
    assert_eq!(live_database(&f), live, "the live database changed");

    // status and report show the last proven restore.
    let out = f.run(&["status"]);
    assert!(
        text(&out).contains("PROVEN") && text(&out).contains("just now, "),
        "{}",
        text(&out)
    );
    let out = f.run(&["report", "--dry-run"]);
    let report = text(&out);
    assert!(
        report.contains("Last proven restore: just now, "),
        "{report}"
    );
    assert!(report.contains(&format!("({key})")), "{report}");

    // The drill pushed its row to D1; pushing again adds nothing.
    let d1_rows = || {
        sim.count(
            "SELECT COUNT(*) AS n FROM drill_log WHERE site_name = 'blog' AND result = 'SUCCESS'",
            json!([]),
        )
    };
    assert_eq!(d1_rows(), 1);
    let out = f.run(&["sync-d1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(d1_rows(), 1, "a drill row pushed twice");
    d.run(&f, &["--site", "blog"]);
    let out = f.run(&["sync-d1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(d1_rows(), 2);
}

/// A fixture whose archives go to a local directory, where they are easy to doctor.
fn local_fixture(name: &str) -> (Fixture, tempfile::TempDir) {
    let (f, store) = Fixture::with_local_storage(name);
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    (f, store)
}

/// Rewrite the archive under `store` with plain tar after `edit` changed its extracted
/// contents, and its sha256 file, and sign it again with the key in `home`: as the server
/// itself would have stored a damaged archive.
fn rewrite_archive(home: &Path, store: &Path, edit: impl FnOnce(&Path)) {
    use sha2::{Digest, Sha256};
    let dir = store.join("test-server/blog");
    let archive = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.zst"))
        .expect("an archive");
    let work = tempfile::tempdir().unwrap();
    let tar = |args: &[&str]| {
        let out = Command::new("tar").args(args).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    };
    let (w, a) = (
        work.path().to_string_lossy().into_owned(),
        archive.to_string_lossy().into_owned(),
    );
    tar(&["--zstd", "-xf", &a, "-C", &w]);
    edit(work.path());
    tar(&[
        "--zstd",
        "-cf",
        &a,
        "-C",
        &w,
        "files",
        "database.sql",
        "manifest.json",
    ]);
    let sum = hex::encode(Sha256::digest(std::fs::read(&archive).unwrap()));
    let name = archive.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::write(
        dir.join(format!("{name}.sha256")),
        format!("{sum}  {name}\n"),
    )
    .unwrap();
    let key = format!("test-server/blog/{name}");
    let sig = dir.join(format!("{name}.minisig"));
    crate::util::minisign::sign(&home.join("signing.key"), &archive, &key, &sig);
}

/// `database.sql` as `edit` makes it, with manifest.json describing the new dump.
fn rewrite_dump(dir: &Path, edit: impl FnOnce(&str) -> String) {
    use sha2::{Digest, Sha256};
    let sql = edit(&std::fs::read_to_string(dir.join("database.sql")).unwrap());
    std::fs::write(dir.join("database.sql"), &sql).unwrap();
    let path = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    m["database_sha256"] = hex::encode(Sha256::digest(sql.as_bytes())).into();
    m["database_bytes"] = sql.len().into();
    std::fs::write(&path, m.to_string()).unwrap();
}

/// The drill fails (exit 1) saying `cause`, recorded with it; nothing is left.
fn assert_fails(f: &Fixture, d: &Drills, cause: &str) {
    let out = d.run(f, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("FAILED") && text(&out).contains(cause),
        "{}",
        text(&out)
    );
    let (_, _, result, failed, _) = drill_rows(f).pop().unwrap();
    assert_eq!(result, "ERROR");
    assert!(
        failed.as_deref().is_some_and(|t| t.contains(cause)),
        "{failed:?}"
    );
    d.assert_clean(f);
}

#[test]
fn a_drill_fails_on_a_cut_dump_and_on_rows_that_differ_from_those_counted() {
    let (f, store) = local_fixture("drill-cut");
    let d = Drills::new();
    let pristine = tempfile::tempdir().unwrap();
    let copy = |from: &Path, to: &Path| {
        crate::util::run_ok(Command::new("cp").arg("-a").arg(from.join(".")).arg(to));
    };
    copy(store.path(), pristine.path());

    // Cut in the middle, as a full disk or a killed dump would leave it.
    rewrite_archive(f.home(), store.path(), |dir| {
        let sql = std::fs::read(dir.join("database.sql")).unwrap();
        std::fs::write(dir.join("database.sql"), &sql[..sql.len() / 2]).unwrap();
    });
    // On the worst day, no backups.db knows the archive's first sha256.
    remove_backups_db(&f);
    assert_fails(&f, &d, "the dump is incomplete");

    // Whole in form, but a table's rows are gone: the import succeeds, the count does not.
    copy(pristine.path(), store.path());
    rewrite_archive(f.home(), store.path(), |dir| {
        rewrite_dump(dir, |sql| {
            // The statement, from its INSERT line to the line that ends it.
            let mut inside = false;
            let mut kept = String::new();
            for l in sql.lines() {
                inside = inside || l.starts_with("INSERT INTO `wp_comments`");
                if !inside {
                    kept.push_str(l);
                    kept.push('\n');
                }
                inside = inside && !l.ends_with(';');
            }
            kept
        })
    });
    remove_backups_db(&f);
    assert_fails(&f, &d, "wp_comments has 0 rows, the backup counted ");
}

#[test]
fn a_drill_fails_when_the_archived_credentials_no_longer_work() {
    let (f, _store) = local_fixture("drill-creds");
    let user = &f.site.db_user;
    f.db.sql(&format!(
        "ALTER USER '{user}'@'%' IDENTIFIED BY 'changed-since'; ALTER USER '{user}'@'localhost' IDENTIFIED BY 'changed-since';"
    ));
    let d = Drills::new();
    assert_fails(
        &f,
        &d,
        "WordPress could not connect to the database with the credentials in the archive's wp-config.php",
    );
}

#[test]
fn a_drill_fails_on_an_archive_without_wp_config_php() {
    let f = Fixture::new("drill-nowp");
    let user = &f.site.db_user;
    f.db.sql(&format!(
        "ALTER USER '{user}'@'%' IDENTIFIED BY 'plain-pass'; ALTER USER '{user}'@'localhost' IDENTIFIED BY 'plain-pass';"
    ));
    let mut config = f.default_config();
    // A site whose credentials are in config.json and whose wp-config.php is left out.
    config["sites"][0]["exclude"] = json!(["wp-config.php"]);
    config["sites"][0]["database"] = json!({
        "name": f.site.db_name, "user": f.site.db_user, "password_env": "SITE_DB_PASSWORD",
        "host": format!("127.0.0.1:{}", f.db.port),
    });
    f.write_config(config);
    f.write_env(&[("SITE_DB_PASSWORD", "plain-pass")]);
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let d = Drills::new();
    assert_fails(&f, &d, "the archive holds no wp-config.php");
}

#[test]
fn a_sigterm_during_the_drill_removes_the_scratch_database_and_directory() {
    use std::os::unix::fs::PermissionsExt;
    let (f, _store) = local_fixture("drill-term");
    // A php that says it started and then hangs, as WordPress waiting on something would.
    let (fake, path) = fixture::fake_tool(
        "php",
        "#!/bin/sh\ntouch \"$(dirname \"$0\")/started\"\nexec sleep 120\n",
    );
    // php runs as nobody: it must be able to leave its mark.
    std::fs::set_permissions(fake.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let started = fake.path().join("started");
    let d = Drills::new();
    let mut child = d
        .cmd(&f, &[])
        .env("PATH", &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !started.exists()
        && std::time::Instant::now() < deadline
        && child.try_wait().unwrap().is_none()
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The scratch database exists while php runs.
    let during = f.db.sql("SHOW DATABASES LIKE 'wpbdrill%'");
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    eprintln!("{}", text(&out));
    assert!(started.exists(), "php never started: {}", text(&out));
    assert!(during.contains("wpbdrill_blog_"), "{during:?}");
    assert_eq!(out.status.code(), Some(143), "{}", text(&out));
    d.assert_clean(&f);
    let (_, _, result, failed, _) = drill_rows(&f).pop().unwrap();
    assert_eq!(result, "ERROR");
    assert!(
        failed
            .as_deref()
            .is_some_and(|t| t.contains("interrupted by SIGTERM")),
        "{failed:?}"
    );
}

#[test]
fn a_drill_on_the_server_of_drill_database_boots_wordpress_against_it() {
    let (f, store) = Fixture::with_local_storage("drill-server");
    // A planted plugin records the credentials the drill's php holds.
    let spy = tempfile::Builder::new()
        .prefix("wpb-spy")
        .tempdir()
        .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(spy.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    }
    let report = spy.path().join("creds.txt");
    // A service on another loopback port: the database is reached over TCP here, and php
    // through the drill's relay must reach that database and nothing else.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mu = f.site.path.join("wp-content/mu-plugins");
    std::fs::create_dir_all(&mu).unwrap();
    std::fs::write(
        mu.join("creds.php"),
        format!(
            "<?php $tcp = @fsockopen('127.0.0.1', {port}, $errno, $errstr, 3); file_put_contents('{}', DB_USER . \"\\n\" . DB_PASSWORD . \"\\n\" . ($tcp ? 'reached' : 'unreached'));",
            report.display()
        ),
    )
    .unwrap();
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A server (here the same one) and a user of its own for the drills' scratch databases;
    // the site's user may not create databases and root is not let in.
    f.db.sql(
        "CREATE USER 'driller'@'%' IDENTIFIED BY 'drill-pass'; GRANT ALL ON *.* TO 'driller'@'%' WITH GRANT OPTION;",
    );
    let mut config = f.default_config();
    config["storage"] =
        json!([{ "name": "disk", "type": "local", "priority": 1, "path": store.path() }]);
    config["drill"] = json!({ "database": {
        "host": format!("127.0.0.1:{}", f.db.port), "user": "driller", "password_env": "DRILL_DB_PASSWORD",
    }});
    f.write_config(config);
    f.write_env(&[("DRILL_DB_PASSWORD", "drill-pass")]);
    let d = Drills::new();
    let out = d
        .cmd(&f, &[])
        .env_remove("MYSQL_UNIX_PORT")
        .output()
        .unwrap();
    eprintln!("{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("WordPress") && text(&out).contains("booted"),
        "{}",
        text(&out)
    );
    let (_, _, result, _, _) = drill_rows(&f).pop().unwrap();
    assert_eq!(result, "SUCCESS");
    let held = std::fs::read_to_string(&report).expect("the planted plugin ran");
    let held: Vec<&str> = held.split('\n').collect();
    assert!(
        held[0].starts_with("wpbdrill_") && held[1] != "drill-pass",
        "php held drill.database's credentials: {}",
        held[0]
    );
    assert_eq!(
        held[2], "unreached",
        "php reached a TCP service other than the scratch database"
    );
    d.assert_clean(&f);
    drop(listener);
}

#[test]
fn a_site_whose_wp_config_is_above_it_boots_from_the_archived_parent_config() {
    let f = Fixture::new("drill-parent");
    // WordPress loads wp-config.php from the directory above the site (issue 12 item 10).
    let above = f.site.path.parent().unwrap().join("wp-config.php");
    std::fs::rename(f.site.path.join("wp-config.php"), &above).unwrap();
    let text_before = std::fs::read(&above).unwrap();
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let d = Drills::new();
    let out = d.run(&f, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let posts = f.site.post_titles(&f.db).len();
    let said = text(&out);
    assert!(
        said.contains(&format!("home {}, {posts} published posts", f.site.url)),
        "{said}"
    );
    assert_eq!(
        std::fs::read(&above).unwrap(),
        text_before,
        "the live wp-config.php changed"
    );
    d.assert_clean(&f);
}

/// Processes whose command line holds `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let line = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if line.contains(needle) {
                found.push(format!("{}: {line}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn the_drills_php_runs_as_a_fresh_uid_with_throwaway_credentials_reaching_and_reading_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new("drill-sandbox");
    // The site belongs to www-data (uid 33), its wp-config.php 0640 as hosts set it, in a
    // directory anyone may traverse; another site's wp-config.php belongs to daemon (uid 1),
    // readable by the web server's group (www-data), as hosts set it.
    let site_parent = f.site.path.parent().unwrap();
    std::fs::set_permissions(site_parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let other = tempfile::Builder::new()
        .prefix("wpb-other")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(other.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let other_config = other.path().join("wp-config.php");
    std::fs::write(
        &other_config,
        "<?php define('DB_PASSWORD', 'other-site-secret');",
    )
    .unwrap();
    std::os::unix::fs::chown(&other_config, Some(1), Some(33)).unwrap();
    std::fs::set_permissions(&other_config, std::fs::Permissions::from_mode(0o640)).unwrap();
    // Where the planted plugin reports (anyone may write there).
    let spy = tempfile::Builder::new()
        .prefix("wpb-spy")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(spy.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let report = spy.path().join("report.json");
    // A service on another loopback port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let live = f.site.path.display().to_string();
    let plugin = format!(
        r#"<?php
if (strpos(ABSPATH, '{live}') === 0) {{ return; }}
preg_match('/^Uid:\s+(\d+)/m', (string) file_get_contents('/proc/self/status'), $m);
$tcp = @fsockopen('127.0.0.1', {port}, $errno, $errstr, 3);
exec('setsid sleep 987654 > /dev/null 2>&1 &');
file_put_contents('{report}', json_encode(array(
    'uid' => (int) $m[1],
    'user' => DB_USER,
    'password' => DB_PASSWORD,
    'tcp' => $tcp !== false,
    'other' => @file_get_contents('{other}') !== false,
    'live' => @file_get_contents('{live}/wp-config.php') !== false,
)));
"#,
        report = report.display(),
        other = other_config.display(),
    );
    let mu = f.site.path.join("wp-content/mu-plugins");
    std::fs::create_dir_all(&mu).unwrap();
    std::fs::write(mu.join("spy.php"), plugin).unwrap();
    let status = Command::new("chown")
        .args(["-R", "33:33"])
        .arg(&f.site.path)
        .status()
        .unwrap();
    assert!(status.success());
    let wp = f.site.path.join("wp-config.php");
    std::fs::set_permissions(&wp, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = f.run(&["backup", "--no-sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // What a drill killed with SIGKILL left long ago: its database and that database's user,
    // both removed by this drill (assert_clean).
    f.db.sql(
        "CREATE DATABASE wpbdrill_blog_20200101t000000z_0001; CREATE USER 'wpbdrill_20200101t000000z_0a0b0c'@'%' IDENTIFIED BY 'x'; CREATE USER 'wpbdrill_20200101t000000z_0a0b0c'@'localhost' IDENTIFIED BY 'x'; GRANT ALL ON wpbdrill_blog_20200101t000000z_0001.* TO 'wpbdrill_20200101t000000z_0a0b0c'@'%';",
    );

    let d = Drills::new();
    let out = d.run(&f, &[]);
    let forked = processes_with("sleep 987654");
    for p in &forked {
        if let Some(pid) = p.split(':').next() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("the planted plugin ran")).unwrap();
    eprintln!("the plugin saw {said}");
    let uid = said["uid"].as_u64().unwrap();
    assert!(
        ![0, 33, 1, 65534].contains(&uid),
        "php ran as uid {uid}: root, the site's owner, the other site's or nobody"
    );
    let user = said["user"].as_str().unwrap();
    let password = said["password"].as_str().unwrap();
    assert!(
        user.starts_with("wpbdrill_") && user != f.site.db_user && user != "root",
        "php held the credentials of {user}"
    );
    assert_ne!(password, f.site.db_password, "php held the site's password");
    assert_eq!(said["tcp"], json!(false), "php reached a TCP service");
    assert_eq!(
        said["other"],
        json!(false),
        "php read another site's wp-config.php"
    );
    assert_eq!(
        said["live"],
        json!(false),
        "php read the live wp-config.php"
    );
    assert_eq!(
        forked,
        Vec::<String>::new(),
        "a process php started outlived the drill"
    );
    d.assert_clean(&f);
    drop(listener);
}

#[test]
fn a_drill_never_reads_another_sites_wp_config_through_a_link_in_the_archive() {
    use std::os::unix::fs::PermissionsExt;
    let (f, store) = Fixture::with_local_storage("drill-link");
    // Site B: daemon's (uid 1), its wp-config.php readable by the web server's group, as hosts
    // set it, naming B's own database user. That user may reach every database (as a hosting
    // panel's often may), so only the drill's own rule keeps A's code from B's credentials.
    let b = tempfile::Builder::new()
        .prefix("wpb-site-b")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(b.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let b_secret = "b-site-secret-7d1f";
    f.db.sql(&format!(
        "CREATE USER 'b_user'@'%' IDENTIFIED BY '{b_secret}'; CREATE USER 'b_user'@'localhost' IDENTIFIED BY '{b_secret}'; GRANT ALL ON *.* TO 'b_user'@'%'; GRANT ALL ON *.* TO 'b_user'@'localhost';"
    ));
    let a_config = std::fs::read_to_string(f.site.path.join("wp-config.php")).unwrap();
    let b_config = b.path().join("wp-config.php");
    std::fs::write(
        &b_config,
        a_config
            .lines()
            .map(|l| match l {
                l if l.contains("'DB_USER'") => "define( 'DB_USER', 'b_user' );".to_string(),
                l if l.contains("'DB_PASSWORD'") => {
                    format!("define( 'DB_PASSWORD', '{b_secret}' );")
                }
                l => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    std::os::unix::fs::chown(&b_config, Some(1), Some(33)).unwrap();
    std::fs::set_permissions(&b_config, std::fs::Permissions::from_mode(0o640)).unwrap();
    // A's planted plugin reports its uid, its password and whether its wp-config.php holds B's.
    let spy = tempfile::Builder::new()
        .prefix("wpb-spy")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(spy.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let report = spy.path().join("report.json");
    let live = f.site.path.display().to_string();
    let plugin = format!(
        r#"<?php
if (strpos(ABSPATH, '{live}') === 0) {{ return; }}
preg_match('/^Uid:\s+(\d+)/m', (string) file_get_contents('/proc/self/status'), $m);
file_put_contents('{report}', json_encode(array(
    'uid' => (int) $m[1],
    'password' => DB_PASSWORD,
    'config' => (string) @file_get_contents(ABSPATH . 'wp-config.php'),
)));
"#,
        report = report.display(),
    );
    let mu = f.site.path.join("wp-content/mu-plugins");
    std::fs::create_dir_all(&mu).unwrap();
    std::fs::write(mu.join("spy.php"), plugin).unwrap();
    let status = Command::new("chown")
        .args(["-R", "33:33"])
        .arg(&f.site.path)
        .status()
        .unwrap();
    assert!(status.success());
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A's owner made their wp-config.php a link to B's, and the archive holds the link.
    remove_backups_db(&f);
    rewrite_archive(f.home(), store.path(), |w| {
        let wp = w.join("files/wp-config.php");
        let size = std::fs::metadata(&wp).unwrap().len();
        std::fs::remove_file(&wp).unwrap();
        std::os::unix::fs::symlink(&b_config, &wp).unwrap();
        let path = w.join("manifest.json");
        let mut m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        m["bytes"] = (m["bytes"].as_u64().unwrap() - size).into();
        std::fs::write(&path, m.to_string()).unwrap();
    });

    let d = Drills::new();
    let out = d.run(&f, &[]);
    let said = text(&out);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("symlink") && said.contains(&b_config.display().to_string()),
        "the drill names the link it would not read through: {said}"
    );
    assert!(
        !said.contains(b_secret),
        "B's password in the drill's output"
    );
    if let Ok(seen) = std::fs::read(&report) {
        let seen: serde_json::Value = serde_json::from_slice(&seen).unwrap();
        assert_ne!(seen["uid"], json!(1), "php ran as B's owner");
        assert!(
            !seen.to_string().contains(b_secret),
            "php saw B's password: {seen}"
        );
    }
    d.assert_clean(&f);

    // The same link to a file of A's own owner (a deploy tool's shared wp-config.php) is
    // read through: the drill boots from it.
    std::os::unix::fs::chown(&b_config, Some(33), Some(33)).unwrap();
    let out = d.run(&f, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let seen: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("the planted plugin ran")).unwrap();
    assert_ne!(seen["uid"], json!(33), "php ran as the site's owner");
    assert_ne!(seen["password"], json!(b_secret), "php connected as b_user");
    d.assert_clean(&f);
}

/// Issue 23, item 3: a genuine archive (signed by the server itself) whose `database.sql` holds
/// a statement that touches grants, users or another database, as written by a site whose
/// database was taken over, or hidden where a line-by-line check does not look: the drill
/// refuses it before importing anything, with exit status 2, naming the statement; no scratch
/// database or user is left and nothing outside changed (the site user's grants included).
#[test]
fn a_drill_refuses_a_signed_dump_that_grants_before_importing_it() {
    let (f, store) = local_fixture("drill-grant");
    let d = Drills::new();
    let pristine = tempfile::tempdir().unwrap();
    let copy = |from: &Path, to: &Path| {
        crate::util::run_ok(Command::new("cp").arg("-a").arg(from.join(".")).arg(to));
    };
    copy(store.path(), pristine.path());
    let user = &f.site.db_user;
    let grants = |f: &Fixture| {
        ["%", "localhost"].map(|host| f.db.sql(&format!("SHOW GRANTS FOR '{user}'@'{host}'")))
    };
    let grants_before = grants(&f);
    let live_before = live_database(&f);
    let tree_before = site_tree(&f);
    let databases = |f: &Fixture| f.db.sql("SHOW DATABASES");
    let databases_before = databases(&f);

    for (bad, said) in [
        (
            format!("GRANT ALL ON *.* TO '{user}'@'%' WITH GRANT OPTION;"),
            "a grant (\"GRANT ALL",
        ),
        ("CREATE USER 'wpb_evil'@'%';".to_string(), "a user or role"),
        // Where main's line check did not look: a version comment whose body runs, a comment
        // between two words, a second statement after another on one line.
        (
            format!("/*!50000 GRANT ALL ON *.* TO '{user}'@'%' */;"),
            "a grant",
        ),
        (
            "CREATE/**/DATABASE wpb_evil;".to_string(),
            "a statement on a whole database",
        ),
        (
            "INSERT INTO `wp_options` VALUES (990,'x','y','no'); USE mysql;".to_string(),
            "a switch to another database",
        ),
    ] {
        copy(pristine.path(), store.path());
        rewrite_archive(f.home(), store.path(), |dir| {
            rewrite_dump(dir, |sql| {
                // Before the first table, after the dump's header.
                let at = sql.find("DROP TABLE IF EXISTS").unwrap();
                format!("{}{bad}\n{}", &sql[..at], &sql[at..])
            })
        });
        remove_backups_db(&f);
        let out = d.run(&f, &[]);
        let text = text(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {text}");
        assert!(
            text.contains("FAILED")
                && text.contains("database.sql statement ")
                && text.contains(said),
            "{bad}: {text}"
        );
        let (_, _, result, failed, _) = drill_rows(&f).pop().unwrap();
        assert_eq!(result, "ERROR");
        assert!(failed.is_some_and(|t| t.contains(said)), "{bad}");
        d.assert_clean(&f);
        assert_eq!(
            grants(&f),
            grants_before,
            "{bad}: the site user's grants changed"
        );
        assert_eq!(
            databases(&f),
            databases_before,
            "{bad}: the databases changed"
        );
        assert_eq!(
            f.db.sql("SELECT COUNT(*) FROM mysql.user WHERE User = 'wpb_evil'")
                .trim(),
            "0",
            "{bad}"
        );
    }
    assert_eq!(live_database(&f), live_before, "the live database changed");
    assert_eq!(site_tree(&f), tree_before, "the live site changed");
}

/// Issue 23 item 3: the drill's throwaway user imports the dump, and cannot define objects for
/// another user; a site whose trigger and view were defined by root still drills, because the
/// dump's DEFINER= clauses are taken out on the way, as a restore takes them out.
#[test]
fn a_drill_passes_on_a_site_whose_trigger_and_view_root_defined() {
    let (f, _store) = Fixture::with_local_storage("drill-definer");
    crate::restore::add_root_defined_objects(&f);
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let d = Drills::new();
    let out = d.run(&f, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("PASSED"), "{}", text(&out));
    d.assert_clean(&f);
}
