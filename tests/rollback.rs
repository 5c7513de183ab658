//! Issue 12 item 3: a restore that cannot hurt the live site. An import that fails halfway (a
//! `mariadb` client that runs the dump's first tables and then loses its connection) and one
//! stopped by SIGTERM halfway leave the database exactly as it was (every table's checksum, a
//! view, a trigger whose body holds `;`, a table the archive does not have) and the site
//! serving what it served; a `verify` stopped by SIGINT gives no verdict on the archive; and
//! what can be checked before anything changes (the restored wp-config.php can name the target
//! database, the database answers, no tables of a killed restore are in the way) stops the
//! restore with nothing changed; a `restore --only` stopped by SIGTERM writes nothing into its
//! directory. None of them leaves a staging directory, a copy of
//! database.sql, a defaults file (it holds the password) or a process behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tempfile::TempDir;

use crate::faults::{wait_bounded, which};
use crate::fixture::{self, Fixture};
use crate::restore::{backup, option, restore_leftovers};
use crate::util::wordpress::http_get;

/// The title of the post written on the live site after its backup.
const AFTER: &str = "Written after the backup";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The TMPDIR of the runs (where the defaults file holding the password goes), empty.
fn run_tmp(f: &Fixture) -> PathBuf {
    let tmp = f.home().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    tmp
}

/// Run SQL as the site's own user, as WordPress and its plugins do (read on stdin, so that a
/// trigger's body can hold `;`).
fn site_sql(f: &Fixture, script: &str) -> String {
    let mut child = Command::new("mariadb")
        .args(["--no-defaults", "-h127.0.0.1", "-N", "-B"])
        .arg(format!("-P{}", f.db.port))
        .arg(format!("-u{}", f.site.db_user))
        .arg(&f.site.db_name)
        .env("MYSQL_PWD", &f.site.db_password)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(script.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{script}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A view and a trigger (whose body holds `;`) in the site's database, made by its own user.
fn add_a_view_and_a_trigger(f: &Fixture) {
    site_sql(
        f,
        "CREATE VIEW wpb_published AS SELECT ID, post_title FROM wp_posts WHERE post_status = 'publish';
DELIMITER ;;
CREATE TRIGGER wpb_touch BEFORE UPDATE ON wp_options FOR EACH ROW BEGIN SET @wpb_touched = NEW.option_name; SET NEW.autoload = NEW.autoload; END;;
DELIMITER ;
",
    );
}

/// The live site after its backup: a new post, a new blog name, a table the archive lacks.
fn change_after_backup(f: &Fixture) {
    site_sql(
        f,
        &format!(
            "INSERT INTO wp_posts (post_title, post_content, post_status, post_type, post_date, post_date_gmt, post_excerpt, to_ping, pinged, post_content_filtered) VALUES ('{AFTER}', 'New.', 'publish', 'post', NOW(), UTC_TIMESTAMP(), '', '', '', '');
             UPDATE wp_options SET option_value = 'Changed after the backup' WHERE option_name = 'blogname';
             CREATE TABLE wpb_after (id INT PRIMARY KEY); INSERT INTO wpb_after VALUES (7);"
        ),
    );
}

/// Every table of the site's database with its checksum, every view with its definition, and
/// every trigger with its body.
fn snapshot(f: &Fixture) -> Vec<String> {
    let db = &f.site.db_name;
    let mut out: Vec<String> = f
        .db
        .sql_db(db, "SHOW FULL TABLES")
        .lines()
        .map(|line| match line.split_once('\t') {
            Some((name, "VIEW")) => f.db.sql(&format!(
                "SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = '{name}'"
            )),
            Some((name, _)) => f.db.sql_db(db, &format!("CHECKSUM TABLE `{name}` EXTENDED")),
            None => panic!("{line}"),
        })
        .collect();
    out.sort();
    out.push(f.db.sql(&format!(
        "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{db}'"
    )));
    out
}

/// No staging directory or copy of database.sql beside the site, no defaults file in `tmp`, no
/// table of a restore in the database, no saved copy of a database that is as it was.
fn assert_nothing_left(f: &Fixture, tmp: &Path) {
    let beside = restore_leftovers(&f.site.path);
    assert!(beside.is_empty(), "beside the site: {beside:?}");
    let in_tmp: Vec<_> = std::fs::read_dir(tmp).unwrap().collect();
    assert!(in_tmp.is_empty(), "in TMPDIR: {in_tmp:?}");
    let tables = f.db.sql_db(&f.site.db_name, "SHOW TABLES LIKE 'wpbackup%'");
    assert!(tables.is_empty(), "{tables}");
    let plan = f.home().join("rollback").join("blog.json");
    assert!(!plan.exists(), "the plan is left: {}", plan.display());
    assert_no_saved_copy(f);
}

/// No copy of the database in `<home>/before-restore/` (the database is as it was).
fn assert_no_saved_copy(f: &Fixture) {
    let dir = f.home().join("before-restore");
    let saved = if dir.exists() {
        fixture::tree(&dir, &|_| false)
    } else {
        Vec::new()
    };
    assert!(saved.is_empty(), "{saved:?}");
}

/// The site's front page, served by PHP from the live directory and database.
fn front_page(f: &Fixture) -> String {
    let _php = f.site.serve();
    let (status, body) = http_get(&format!("{}/", f.site.url));
    let html = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 200, "{html}");
    html
}

/// A `mariadb` that runs every query as the real client, but passes an import (a run with
/// `--binary-mode` whose input starts as a dump does: SQL holding trigger definitions comes in
/// binary mode too) on only up to the rows of `wp_posts` (the tables before it replaced,
/// `wp_posts` empty), then runs `then_inside` (still feeding the client), then `then_after`.
fn fake_mariadb(then_inside: &str, then_after: &str) -> (TempDir, String) {
    let real = which("mariadb");
    fixture::fake_tool(
        "mariadb",
        &format!(
            "#!/bin/bash\n\
             case \" $* \" in *' --binary-mode '*) ;; *) exec '{real}' \"$@\" ;; esac\n\
             IFS= read -r first\n\
             case \"$first\" in *'MariaDB dump'*|*'sandbox mode'*) ;; *) {{ printf '%s\\n' \"$first\"; cat; }} | '{real}' \"$@\"; exit ;; esac\n\
             {{ printf '%s\\n' \"$first\"; awk '{{ print }} /^-- Dumping data for table `wp_posts`/ {{ exit }}'; {then_inside}; }} | '{real}' \"$@\"\n\
             {then_after}\n",
            real = real.display()
        ),
    )
}

#[test]
fn an_import_that_fails_halfway_leaves_the_database_as_it_was() {
    let f = Fixture::new("rollback-fail");
    add_a_view_and_a_trigger(&f);
    backup(&f);
    change_after_backup(&f);
    let before = snapshot(&f);
    let tmp = run_tmp(&f);
    let (_fake, path) = fake_mariadb(
        "true",
        "echo 'ERROR 2013 (HY000) at line 300: Lost connection to server during query' >&2; exit 1",
    );
    let out = f
        .cmd(&["restore", "--site", "blog", "--yes"])
        .env("PATH", path)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let err = stderr(&out);
    eprintln!("{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(snapshot(&f), before, "the database changed");
    assert!(
        err.contains("the import into") && err.contains("Lost connection"),
        "{err}"
    );
    assert!(
        err.contains("was put back as it was") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_nothing_left(&f, &tmp);
    assert!(front_page(&f).contains(AFTER));

    // With the real client the same restore succeeds: the archive's content replaces what
    // changed, and the view, the trigger and the table the archive does not have are there.
    let out = f
        .cmd(&["restore", "--site", "blog", "--yes"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let db = &f.site.db_name;
    assert_eq!(option(&f, db, "blogname"), "Test Site");
    assert!(!f.site.post_titles(&f.db).iter().any(|t| t == AFTER));
    assert_eq!(site_sql(&f, "SELECT id FROM wpb_after").trim(), "7");
    assert_eq!(
        site_sql(&f, "SELECT COUNT(*) FROM wpb_published"),
        site_sql(
            &f,
            "SELECT COUNT(*) FROM wp_posts WHERE post_status = 'publish'"
        )
    );
    let trigger = f.db.sql(&format!(
        "SELECT ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{db}' AND TRIGGER_NAME = 'wpb_touch'"
    ));
    assert!(trigger.contains("SET @wpb_touched"), "{trigger}");
    assert!(f.db.sql_db(db, "SHOW TABLES LIKE 'wpbackup%'").is_empty());
    assert!(std::fs::read_dir(&tmp).unwrap().next().is_none());
}

/// Start `wpbackup restore --yes` with `path` and `tmp`, its output in `log`.
fn spawn_restore(f: &Fixture, path: &str, tmp: &Path, log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    f.cmd(&["restore", "--site", "blog", "--yes"])
        .env("PATH", path)
        .env("TMPDIR", tmp)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap()
}

/// Wait until `ready`, failing when `child` ends first (its output is in `log`), or, having
/// stopped it, when it never gets there.
fn wait_while_running(child: &mut Child, log: &Path, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "wpbackup ended first: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("never got there");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The processes whose command line mentions one of `paths`.
fn processes_mentioning(paths: &[&Path]) -> Vec<String> {
    let ps = Command::new("ps")
        .args(["-eo", "pid,args"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| paths.iter().any(|p| l.contains(&*p.to_string_lossy())))
        .map(str::to_string)
        .collect()
}

/// A `wpbackup restore --yes` whose import stopped halfway (its client connected, the tables
/// before `wp_posts` replaced) and waits there as long as `ctl` exists.
struct Paused {
    child: Child,
    log: PathBuf,
    ctl: TempDir,
    /// The fake `mariadb`'s directory (its processes name it).
    fake: TempDir,
}

fn restore_paused_mid_import(f: &Fixture, tmp: &Path, log: &str) -> Paused {
    let ctl = tempfile::tempdir().unwrap();
    let started = ctl.path().join("import-started");
    let (fake, path) = fake_mariadb(
        &format!(
            "touch '{}'; while [ -d '{}' ]; do sleep 0.1; done",
            started.display(),
            ctl.path().display()
        ),
        "",
    );
    let log = f.home().join(log);
    let mut child = spawn_restore(f, &path, tmp, &log);
    wait_while_running(&mut child, &log, || started.exists());
    Paused {
        child,
        log,
        ctl,
        fake,
    }
}

#[test]
fn a_restore_stopped_by_sigterm_during_the_import_changes_nothing() {
    let f = Fixture::new("rollback-term");
    backup(&f);
    change_after_backup(&f);
    let before = snapshot(&f);
    let tmp = run_tmp(&f);
    // `ctl` kept until the end: the import waits as long as it exists.
    let Paused {
        child,
        log,
        ctl: _ctl,
        fake,
    } = restore_paused_mid_import(&f, &tmp, "term.log");
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = wait_bounded(child, "SIGTERM mid-import");
    let text = std::fs::read_to_string(&log).unwrap();
    eprintln!("{text}");
    assert_eq!(status.code(), Some(143), "{text}");
    assert!(
        text.contains("interrupted by SIGTERM")
            && text.contains("was put back as it was")
            && text.contains("nothing was changed"),
        "{text}"
    );
    // The client and the script around it were stopped, not left importing.
    let left = processes_mentioning(&[fake.path(), &tmp]);
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(snapshot(&f), before, "the database changed");
    assert_nothing_left(&f, &tmp);
    let row = f.rows().pop().unwrap();
    assert_eq!(row.status, "ERROR", "{row:?}");
    assert!(row.details.contains("interrupted by SIGTERM"), "{row:?}");
    assert!(front_page(&f).contains(AFTER));
}

/// The local storage's one archive: its key and its path.
fn stored_archive(store: &Path) -> (String, PathBuf) {
    let files = fixture::tree(store, &|_| false);
    let (rel, _) = files
        .iter()
        .find(|(p, _)| p.ends_with(".tar.zst"))
        .expect("an archive");
    (rel.clone(), store.join(rel))
}

/// Open the FIFO at `path` for writing once a reader has opened it (while `child` runs).
fn open_when_read(path: &Path, child: &mut Child, log: &Path) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::cell::RefCell::new(None);
    wait_while_running(child, log, || {
        // Without a reader, a non-blocking open for writing fails (ENXIO).
        let open = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path);
        match open {
            Ok(file) => opened.replace(Some(file)).is_none(),
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => false,
            Err(e) => panic!("{}: {e}", path.display()),
        }
    });
    opened.into_inner().expect("opened")
}

/// Run `cmd`, which reads the FIFO `archive`: feed it the first 4 KiB of `bytes`, send `sig`,
/// and wait for it to end. Its exit status and everything it printed.
fn signalled_mid_read(
    f: &Fixture,
    cmd: &mut Command,
    archive: &Path,
    bytes: &[u8],
    sig: i32,
) -> (std::process::ExitStatus, String) {
    let log = f.home().join("signalled.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut child = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let mut pipe = open_when_read(archive, &mut child, &log);
    pipe.write_all(&bytes[..4096]).unwrap();
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
    let status = wait_bounded(child, "a signal mid-read");
    drop(pipe);
    let text = std::fs::read_to_string(&log).unwrap();
    eprintln!("{text}");
    (status, text)
}

/// A backup to the local storage `store`, whose archive is then replaced by a FIFO: it
/// arrives as slowly as the test lets it. Its key, path and bytes.
fn archive_through_a_pipe(f: &Fixture, store: &Path) -> (String, PathBuf, Vec<u8>) {
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (key, archive) = stored_archive(store);
    let bytes = std::fs::read(&archive).unwrap();
    std::fs::remove_file(&archive).unwrap();
    let c = std::ffi::CString::new(archive.to_string_lossy().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    (key, archive, bytes)
}

#[test]
fn a_restore_only_stopped_by_sigterm_writes_nothing_into_its_directory() {
    let (f, store) = Fixture::with_local_storage("rollback-only");
    let (key, archive, bytes) = archive_through_a_pipe(&f, store.path());
    let to = tempfile::tempdir().unwrap();
    std::fs::write(to.path().join("mine.txt"), "kept").unwrap();
    let dir = to.path().to_string_lossy();
    let mut cmd = f.cmd(&[
        "restore",
        "--site",
        "blog",
        "--archive",
        &key,
        "--only",
        "wp-content",
        "--to",
        &dir,
    ]);
    let (status, text) = signalled_mid_read(&f, &mut cmd, &archive, &bytes, libc::SIGTERM);
    assert_eq!(status.code(), Some(143), "{text}");
    assert!(text.contains("nothing was written to"), "{text}");
    let left: Vec<String> = std::fs::read_dir(to.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["mine.txt"], "no staging directory, nothing restored");
    // The same restore, not interrupted, brings the folder back.
    std::fs::remove_file(&archive).unwrap();
    std::fs::write(&archive, &bytes).unwrap();
    let out = f.run(&[
        "restore",
        "--site",
        "blog",
        "--only",
        "wp-content",
        "--to",
        &dir,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(to.path().join("wp-content").is_dir());
}

#[test]
fn a_verify_stopped_by_sigint_gives_no_verdict_and_leaves_nothing() {
    let (f, store) = Fixture::with_local_storage("rollback-verify");
    let (key, archive, bytes) = archive_through_a_pipe(&f, store.path());
    let tmp = run_tmp(&f);
    let mut cmd = f.cmd(&["verify", "--archive", &key]);
    cmd.env("TMPDIR", &tmp);
    let (status, text) = signalled_mid_read(&f, &mut cmd, &archive, &bytes, libc::SIGINT);
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("interrupted by SIGINT"), "{text}");
    // Stopped is not damaged: nothing says the archive failed.
    let rows = f.rows();
    assert!(
        !rows
            .iter()
            .any(|r| r.archive_key.as_deref() == Some(key.as_str()) && r.status == "ERROR"),
        "{rows:?}"
    );
    assert!(std::fs::read_dir(&tmp).unwrap().next().is_none());
    std::fs::remove_file(&archive).unwrap();
    std::fs::write(&archive, &bytes).unwrap();
    let out = f.run(&["verify", "--archive", &key]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// config.json with the site's credentials in it (the password inline: .env's quoting cannot
/// hold the fixture's), its server at `host`.
fn config_with_credentials(f: &Fixture, host: &str) -> serde_json::Value {
    let mut config = f.default_config();
    config["sites"][0]["database"] = json!({
        "name": f.site.db_name, "user": f.site.db_user,
        "password": f.site.db_password, "host": host,
    });
    config
}

/// Run `wpbackup args --yes` with `tmp`; assert it fails, saying `said` and that nothing was
/// changed, and that nothing was: the site's files, its database, nothing left anywhere.
fn refused(f: &Fixture, args: &[&str], tmp: &Path, said: &str) {
    let tree = fixture::tree(&f.site.path, &|_| false);
    let before = snapshot(f);
    let out = f
        .cmd(args)
        .arg("--yes")
        .env("TMPDIR", tmp)
        .output()
        .unwrap();
    let err = stderr(&out);
    eprintln!("{args:?}: {err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(said) && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(fixture::tree(&f.site.path, &|_| false), tree);
    assert_eq!(snapshot(f), before);
    let beside = restore_leftovers(&f.site.path);
    assert!(beside.is_empty(), "{beside:?}");
    assert!(std::fs::read_dir(tmp).unwrap().next().is_none());
    assert_no_saved_copy(f);
}

#[test]
fn what_can_be_checked_beforehand_stops_a_restore_with_nothing_changed() {
    let f = Fixture::new("rollback-pre");
    let (db, user) = (f.site.db_name.clone(), f.site.db_user.clone());
    // The credentials come from config.json: the site's wp-config.php computes DB_NAME.
    let server = format!("127.0.0.1:{}", f.db.port);
    f.write_config(config_with_credentials(&f, &server));
    let wp = f.site.path.join("wp-config.php");
    let text = std::fs::read_to_string(&wp).unwrap();
    let plain = format!("define( 'DB_NAME', '{db}' );");
    assert!(text.contains(&plain), "{text}");
    let computed = format!("define( 'DB_NAME', getenv('WPB_DB_NAME') ?: '{db}' );");
    std::fs::write(&wp, text.replace(&plain, &computed)).unwrap();
    backup(&f);
    let tmp = run_tmp(&f);

    // A clone over an existing staging database, whose wp-config.php cannot be pointed at it:
    // found out before the staging database is replaced.
    let stg = format!("{db}_stg");
    f.db.sql(&format!(
        "CREATE DATABASE `{stg}`; CREATE TABLE `{stg}`.notes (id INT); INSERT INTO `{stg}`.notes VALUES (42);
         GRANT ALL ON `{stg}`.* TO '{user}'@'%'; GRANT ALL ON `{stg}`.* TO '{user}'@'localhost';"
    ));
    let clones = tempfile::Builder::new()
        .prefix("wpb-clone")
        .tempdir()
        .unwrap();
    let clone = clones.path().join("staging");
    let to = clone.to_string_lossy().into_owned();
    let args = ["restore", "--site", "blog", "--to", &to, "--db-name", &stg];
    let said = format!("cannot point the restored wp-config.php at database {stg}");
    refused(&f, &args, &tmp, &said);
    assert_eq!(
        f.db.sql(&format!("SELECT id FROM `{stg}`.notes")).trim(),
        "42"
    );
    assert!(std::fs::read_dir(clones.path()).unwrap().next().is_none());

    // The database server does not answer where config.json says it is.
    let port = crate::util::free_port();
    f.write_config(config_with_credentials(&f, &format!("127.0.0.1:{port}")));
    let said = format!("cannot reach database {db} as user {user} on 127.0.0.1:{port}");
    refused(&f, &["restore", "--site", "blog"], &tmp, &said);

    // A restore killed outright left its plan in the home.
    f.write_config(config_with_credentials(&f, &server));
    let plan = f.home().join("rollback").join("blog.json");
    std::fs::create_dir_all(plan.parent().unwrap()).unwrap();
    std::fs::write(&plan, "{}").unwrap();
    let said = "a restore of this site was killed before it could finish";
    refused(&f, &["restore", "--site", "blog"], &tmp, said);
    std::fs::remove_file(&plan).unwrap();
}

/// The README's block that puts back what a killed restore moved aside, for site `blog` whose
/// database is `db`, as a script run as root: `wpbackup` is the fixture's, `mariadb` root's
/// through the server's socket (`less` left out).
fn readme_put_back(f: &Fixture, db: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
    let readme = readme.unwrap();
    let block = readme
        .split("<!-- put-back: tests/rollback.rs runs this block -->")
        .nth(1)
        .and_then(|after| after.split("```sh\n").nth(1))
        .and_then(|code| code.split("```").next())
        .expect("README's put-back block");
    let lines: Vec<&str> = block.lines().filter(|l| !l.starts_with("less ")).collect();
    format!(
        "set -e\nmariadb() {{ command mariadb --no-defaults --socket='{}' -uroot \"$@\"; }}\n\
         wpbackup() {{ '{}' --home '{}' \"$@\"; }}\n{}\n",
        f.db.socket.display(),
        crate::util::bin().display(),
        f.home().display(),
        lines
            .join("\n")
            .replace("wp_example", db)
            .replace("example.com", "blog")
            .replace("/opt/wordpress-backup", &f.home().to_string_lossy())
    )
}

/// Run README's put-back block (see [`readme_put_back`]) in `work`.
fn run_readme_put_back(f: &Fixture, db: &str, work: &Path) -> Output {
    let out = Command::new("bash")
        .arg("-c")
        .arg(readme_put_back(f, db))
        .current_dir(work)
        .env_remove("WPBACKUP_HOME")
        .output()
        .unwrap();
    eprintln!(
        "README's put-back -> {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    out
}

#[test]
fn a_restore_killed_outright_is_put_back_by_put_back_as_the_readme_says() {
    let f = Fixture::new("rollback-kill");
    add_a_view_and_a_trigger(&f);
    backup(&f);
    change_after_backup(&f);
    let before = snapshot(&f);
    let tmp = run_tmp(&f);
    let Paused {
        mut child,
        log: _,
        ctl,
        fake,
    } = restore_paused_mid_import(&f, &tmp, "kill.log");
    child.kill().unwrap();
    child.wait().unwrap();
    // The import's client, on its own now, ends with its input.
    drop(ctl);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !processes_mentioning(&[fake.path()]).is_empty() {
        assert!(Instant::now() < deadline, "the import's client never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    let db = f.site.db_name.clone();
    // The plan is root's, in the home; nothing of it is in the database.
    let plan = f.home().join("rollback").join("blog.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&plan).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600), "{}", plan.display());
    assert!(
        f.db.sql_db(&db, "SHOW TABLES LIKE 'wpbackup_rollback'")
            .is_empty()
    );
    let out = f
        .cmd(&["restore", "--site", "blog", "--yes"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("a restore of this site was killed before it could finish")
            && err.contains("wpbackup restore --put-back"),
        "{err}"
    );

    let work = tempfile::tempdir().unwrap();
    let out = run_readme_put_back(&f, &db, work.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("database {db} is as it was")) && said.contains("put back"),
        "{said}"
    );
    assert_eq!(snapshot(&f), before, "the database is not as it was");
    assert!(f.db.sql_db(&db, "SHOW TABLES LIKE 'wpbackup%'").is_empty());
    assert!(!plan.exists(), "the plan is removed once applied");
    assert!(
        front_page(&f).contains(AFTER),
        "the site shows its old posts"
    );

    // Nothing left to put back: said so, exit status 1.
    let out = f.run(&["restore", "--put-back", "--site", "blog"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no restore of site blog is waiting to be put back"));
}

/// What the site's database user plants to be run as root: a `wpbackup_rollback` table as a
/// release before 2026-12 wrote it, whose SQL holds client commands that touch files in
/// `marks`, tables named like a restore's, and a trigger whose body names a client command.
fn plant(f: &Fixture, marks: &Path) {
    let m = |n: &str| marks.join(n).display().to_string();
    let rows = [
        format!("\\! touch {}", m("shell")),
        format!("system touch {}", m("system")),
        format!("SELECT 1;\n\\! touch {}\n", m("newline")),
        format!("DROP TABLE IF EXISTS x; \\! touch {};", m("after")),
    ];
    let values: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, sql)| {
            format!(
                "({i}, 'table', 'wp_posts', 'wpbackup_old_wp_posts', X'{}', '20261201T000000Z')",
                hex::encode(sql)
            )
        })
        .collect();
    site_sql(
        f,
        &format!(
            "CREATE TABLE wpbackup_rollback (step INT NOT NULL PRIMARY KEY, kind VARCHAR(8) NOT NULL, name VARCHAR(64) NOT NULL, aside VARCHAR(64) NULL, put_back LONGTEXT NOT NULL, restore_started VARCHAR(20) NOT NULL);
             INSERT INTO wpbackup_rollback VALUES {};
             CREATE TABLE wpbackup_old_wp_posts (note VARCHAR(64)); INSERT INTO wpbackup_old_wp_posts VALUES ('planted');
             CREATE TABLE wpbdrill_blog_20261201t000000z_1 (id INT);
             CREATE TRIGGER wpb_planted BEFORE INSERT ON wpbackup_old_wp_posts FOR EACH ROW SET NEW.note = CONCAT(NEW.note, ' \\\\! touch {}');",
            values.join(", "),
            m("trigger")
        ),
    );
}

#[test]
fn tables_a_site_planted_never_run_as_root_nor_block_a_restore() {
    let f = Fixture::new("rollback-planted");
    backup(&f);
    change_after_backup(&f);
    let marks = tempfile::tempdir().unwrap();
    plant(&f, marks.path());
    let db = f.site.db_name.clone();
    let planted = |f: &Fixture| {
        ["wpbackup_rollback", "wpbackup_old_wp_posts"]
            .map(|t| f.db.sql_db(&db, &format!("CHECKSUM TABLE `{t}` EXTENDED")))
    };
    let was = planted(&f);
    let ran = |marks: &Path| {
        std::fs::read_dir(marks)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
    };

    // What README says to do after a killed restore: nothing of the rows runs, and it says
    // how to read them without running them.
    let work = tempfile::tempdir().unwrap();
    let out = run_readme_put_back(&f, &db, work.path());
    assert_eq!(ran(marks.path()), Vec::<String>::new(), "ran as root");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("no restore of site blog is waiting to be put back")
            && err.contains("--binary-mode"),
        "{err}"
    );

    // A restore goes ahead: the planted tables are the site's, kept as they were.
    let tmp = run_tmp(&f);
    let out = f
        .cmd(&["restore", "--site", "blog", "--yes"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let err = stderr(&out);
    eprintln!("{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("holds wpbackup_rollback, which no plan of wpbackup lists"),
        "{err}"
    );
    assert!(!f.site.post_titles(&f.db).iter().any(|t| t == AFTER));
    assert_eq!(planted(&f), was, "the planted tables changed");
    assert_eq!(ran(marks.path()), Vec::<String>::new(), "ran as root");
    let trigger = f.db.sql(&format!(
        "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{db}' AND TRIGGER_NAME = 'wpb_planted'"
    ));
    assert_eq!(trigger.trim(), "1", "the site's trigger is kept");
    let aside = f.db.sql_db(&db, "SHOW TABLES LIKE 'wpbackup_old2%'");
    assert!(aside.is_empty(), "{aside}");
    assert!(!f.home().join("rollback").join("blog.json").exists());
}
