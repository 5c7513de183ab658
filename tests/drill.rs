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
    let (f, store) = local_fixture("drill-server");
    // A server (here the same one) and a user of its own for the drills' scratch databases;
    // the site's user may not create databases and root is not let in.
    f.db.sql(
        "CREATE USER 'driller'@'%' IDENTIFIED BY 'drill-pass'; GRANT ALL ON *.* TO 'driller'@'%';",
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
    d.assert_clean(&f);
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
