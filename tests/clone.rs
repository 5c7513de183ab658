//! A clone's own database user and `restore --dry-run` (issue 24 items 3 and 4), with real
//! servers: the clone's wp-config.php names a user of its own (never production's password),
//! which reaches the clone's database and no other, and php serves the clone through it, also
//! when config.json's `database.user` is not the one wp-config.php names; with no connection
//! that may create a user the clone is refused before anything changes, and an existing user
//! named with `--db-user` (its password in .env) is used instead; `--dry-run` says what a
//! restore or a clone would do (archive, files, database, user, address pairs and values per
//! table, the same count the clone then makes) and changes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::fixture::{self, Fixture};
use crate::restore::{backup, restore_leftovers};
use crate::util::wordpress::{http_get, serve_dir};

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Where a clone goes: a fresh directory, its database name and address.
struct Target {
    _dir: tempfile::TempDir,
    path: PathBuf,
    db: String,
    port: u16,
    url: String,
}

fn target(f: &Fixture, suffix: &str) -> Target {
    let dir = tempfile::Builder::new()
        .prefix("wpb-clone")
        .tempdir()
        .unwrap();
    let port = crate::util::free_port();
    Target {
        path: dir.path().join("staging"),
        _dir: dir,
        db: format!("{}_{suffix}", f.site.db_name),
        port,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// `restore --to --db-name --url` to `t` (plus `extra`), root reachable through the test
/// server's socket unless `socket` says otherwise.
fn clone(f: &Fixture, t: &Target, socket: &Path, extra: &[&str]) -> Output {
    let out = f
        .cmd(&["restore", "--site", "blog", "--to"])
        .arg(&t.path)
        .args(["--db-name", &t.db, "--url", &t.url])
        .args(extra)
        .env("MYSQL_UNIX_PORT", socket)
        .output()
        .unwrap();
    eprintln!("restore -> {:?}\n{}", out.status, said(&out));
    out
}

/// The value of `define( 'NAME', '...' )` in the clone's wp-config.php.
fn defined(wp_config: &str, name: &str) -> String {
    let at = wp_config
        .find(&format!("'{name}'"))
        .unwrap_or_else(|| panic!("{name} in {wp_config}"));
    let rest = &wp_config[at + name.len() + 2..];
    let start = rest.find('\'').unwrap() + 1;
    let end = start + rest[start..].find('\'').unwrap();
    rest[start..end].to_string()
}

/// Run SQL as `user` with `password` over TCP (the password in the client's environment, not
/// on its command line); Err(the client's message) when refused.
fn sql_as(f: &Fixture, user: &str, password: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("mariadb")
        .arg("--no-defaults")
        .args(["-h", "127.0.0.1", "-P", &f.db.port.to_string(), "-u", user])
        .args(["-N", "-B", "-e", sql])
        .env("MYSQL_PWD", password)
        .output()
        .unwrap();
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// php serves the clone at its address, through the user its wp-config.php names.
fn assert_clone_serves(t: &Target) {
    let _php = serve_dir(&t.path, t.port);
    let (status, body) = http_get(&format!("{}/", t.url));
    let html = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("First post about backups"), "{html}");
}

/// The clone's wp-config.php names a user of its own with a new password, which reaches the
/// clone's database and nothing else; production's password is nowhere in the clone; php
/// serves the clone; the summary names the user, never its password.
fn assert_own_user(f: &Fixture, t: &Target, out: &Output) -> (String, String) {
    let wp_config = std::fs::read_to_string(t.path.join("wp-config.php")).unwrap();
    let (user, password) = (
        defined(&wp_config, "DB_USER"),
        defined(&wp_config, "DB_PASSWORD"),
    );
    assert_eq!(defined(&wp_config, "DB_NAME"), t.db);
    assert_ne!(user, f.site.db_user, "{wp_config}");
    assert!(password.len() >= 32, "a random password: {password:?}");
    assert!(
        !wp_config.contains(&f.site.db_password),
        "production's password is in the clone's wp-config.php:\n{wp_config}"
    );
    let said = said(out);
    assert!(
        said.contains(&format!("connects as database user {user}")),
        "{said}"
    );
    assert!(
        !said.contains(&password),
        "the password was printed: {said}"
    );
    for row in f.rows() {
        assert!(!row.details.contains(&password), "{row:?}");
    }

    let posts = format!("SELECT COUNT(*) FROM `{}`.wp_posts", t.db);
    assert!(sql_as(f, &user, &password, &posts).unwrap().trim() != "0");
    let seen = sql_as(f, &user, &password, "SHOW DATABASES").unwrap();
    let mut seen: Vec<&str> = seen.lines().collect();
    seen.sort();
    assert_eq!(seen, ["information_schema", t.db.as_str()]);
    let other = format!("SELECT COUNT(*) FROM `{}`.wp_options", f.site.db_name);
    let refused = sql_as(f, &user, &password, &other).unwrap_err();
    assert!(refused.contains("denied"), "{refused}");
    let grants = f.db.sql(&format!(
        "SELECT COUNT(*) FROM mysql.db WHERE User = '{user}' AND Db <> '{}'",
        t.db
    ));
    assert_eq!(grants.trim(), "0", "granted on another database");
    let global = f.db.sql(&format!(
        "SELECT COUNT(*) FROM mysql.user WHERE User = '{user}' AND (Select_priv = 'Y' OR Create_user_priv = 'Y')"
    ));
    assert_eq!(global.trim(), "0", "global privileges");
    assert_clone_serves(t);
    (user, password)
}

#[test]
fn a_clone_connects_as_its_own_user_granted_only_its_database() {
    let f = Fixture::new("clone-user");
    backup(&f);
    let t = target(&f, "stg");
    let out = clone(&f, &t, &f.db.socket, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let (user, _) = assert_own_user(&f, &t, &out);
    // Named after the database, at the hosts the site's user has.
    assert_eq!(user, t.db);
    let hosts = f.db.sql(&format!(
        "SELECT Host FROM mysql.user WHERE User = '{user}' ORDER BY Host"
    ));
    let site_hosts = f.db.sql(&format!(
        "SELECT Host FROM mysql.user WHERE User = '{}' ORDER BY Host",
        f.site.db_user
    ));
    assert_eq!(hosts, site_hosts);

    // A second clone whose database name is a user already: another name.
    let t2 = target(&f, "stg_2");
    f.db.sql(&format!("CREATE USER '{}'@'localhost'", t2.db));
    let out = clone(&f, &t2, &f.db.socket, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let (user2, _) = assert_own_user(&f, &t2, &out);
    assert_eq!(user2, format!("{}_2", t2.db));
}

#[test]
fn a_clone_works_when_config_json_names_another_database_user() {
    let f = Fixture::new("clone-ops");
    // config.json's user is not the one wp-config.php names (the case).
    f.db.sql(&format!(
        "CREATE USER 'ops'@'%' IDENTIFIED BY 'ops-pw-7'; CREATE USER 'ops'@'localhost' IDENTIFIED BY 'ops-pw-7';
         GRANT ALL ON `{db}`.* TO 'ops'@'%'; GRANT ALL ON `{db}`.* TO 'ops'@'localhost';",
        db = f.site.db_name
    ));
    let mut config = f.default_config();
    config["sites"][0]["database"] = json!({
        "name": f.site.db_name, "user": "ops", "password_env": "OPS_DB_PASSWORD",
        "host": format!("127.0.0.1:{}", f.db.port),
    });
    f.write_config(config);
    f.write_env(&[("OPS_DB_PASSWORD", "ops-pw-7")]);
    backup(&f);
    let t = target(&f, "ops");
    let out = clone(&f, &t, &f.db.socket, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let (user, _) = assert_own_user(&f, &t, &out);
    assert_ne!(user, "ops");
    let wp_config = std::fs::read_to_string(t.path.join("wp-config.php")).unwrap();
    assert!(!wp_config.contains("ops-pw-7"), "{wp_config}");
}

#[test]
fn without_a_connection_that_may_create_users_an_existing_user_is_named() {
    let f = Fixture::new("clone-nouser");
    backup(&f);
    let t = target(&f, "stg");
    // Root is nowhere to be reached; the site's user may not create users.
    let nowhere = f.home().join("no-such.sock");
    let users =
        f.db.sql("SELECT User, Host FROM mysql.user ORDER BY User, Host");
    let out = clone(&f, &t, &nowhere, &[]);
    assert_ne!(out.status.code(), Some(0), "{}", said(&out));
    let err = said(&out);
    assert!(
        err.contains("--db-user")
            && err.contains("WPBACKUP_CLONE_DB_PASSWORD")
            && err.contains("nothing was changed"),
        "{err}"
    );
    assert!(!t.path.exists());
    assert!(restore_leftovers(&t.path).is_empty());
    let dbs = f.db.sql(&format!("SHOW DATABASES LIKE '{}'", t.db));
    assert!(dbs.trim().is_empty(), "{dbs}");
    assert_eq!(
        f.db.sql("SELECT User, Host FROM mysql.user ORDER BY User, Host"),
        users
    );

    // A user made beforehand, on a database made beforehand, its password in .env.
    f.db.sql(&format!(
        "CREATE DATABASE `{db}`; CREATE USER 'stg'@'%' IDENTIFIED BY 'stg-pw-3';
         GRANT ALL ON `{db}`.* TO 'stg'@'%';
         GRANT ALL ON `{db}`.* TO '{site}'@'%'; GRANT ALL ON `{db}`.* TO '{site}'@'localhost';",
        db = t.db,
        site = f.site.db_user
    ));
    // Its password is never taken from the command line.
    let out = clone(&f, &t, &nowhere, &["--db-user", "stg"]);
    assert_ne!(out.status.code(), Some(0), "{}", said(&out));
    assert!(
        said(&out).contains("WPBACKUP_CLONE_DB_PASSWORD"),
        "{}",
        said(&out)
    );
    f.write_env(&[("WPBACKUP_CLONE_DB_PASSWORD", "stg-pw-3")]);
    let out = clone(&f, &t, &nowhere, &["--db-user", "stg"]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let wp_config = std::fs::read_to_string(t.path.join("wp-config.php")).unwrap();
    assert_eq!(defined(&wp_config, "DB_USER"), "stg");
    assert_eq!(defined(&wp_config, "DB_PASSWORD"), "stg-pw-3");
    assert!(!wp_config.contains(&f.site.db_password), "{wp_config}");
    assert!(!said(&out).contains("stg-pw-3"), "{}", said(&out));
    assert_clone_serves(&t);
}

/// Everything a restore could change: the site's files and what is beside it, the target's
/// parent, every database's tables (checksums), the server's users and grants, the home
/// (backups.db's rows among it).
fn state(f: &Fixture, t: &Target) -> Vec<String> {
    let mut out = vec![
        format!("{:?}", fixture::tree(&f.site.path, &|_| false)),
        format!("{:?}", restore_leftovers(&f.site.path)),
        format!("{:?}", fixture::tree(t.path.parent().unwrap(), &|_| false)),
        f.db.sql("SHOW DATABASES"),
        f.db.sql("SELECT User, Host FROM mysql.user ORDER BY User, Host"),
        f.db.sql("SELECT User, Host, Db FROM mysql.db ORDER BY User, Host, Db"),
        format!("{:?}", f.rows()),
        format!(
            "{:?}",
            fixture::tree(f.home(), &|rel| rel.starts_with("backups.db"))
        ),
    ];
    for table in f.db.sql_db(&f.site.db_name, "SHOW TABLES").lines() {
        out.push(f.db.sql_db(
            &f.site.db_name,
            &format!("CHECKSUM TABLE `{table}` EXTENDED"),
        ));
    }
    out
}

#[test]
fn dry_run_changes_nothing_and_says_what_a_restore_or_clone_would_do() {
    let f = Fixture::new("clone-dry");
    let key = backup(&f);
    let t = target(&f, "dry");
    let before = state(&f, &t);

    let out = clone(&f, &t, &f.db.socket, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for want in [
        "nothing was changed".to_string(),
        key.clone(),
        format!("to {}", t.path.display()),
        format!("create database {} ", t.db),
        format!("create database user {} at ", t.db),
        format!("granted all privileges on database {} only", t.db),
        format!("{} -> {}", f.site.url, t.url),
        format!("//{} -> //", f.site.url.trim_start_matches("http://")),
        "wp_options ".to_string(),
        "wp_posts ".to_string(),
        "counted in the archive's database.sql".to_string(),
    ] {
        assert!(text.contains(&want), "{want:?} not in:\n{text}");
    }
    assert_eq!(state(&f, &t), before, "a dry run changed something");

    // In place: the site's directory moved aside and its database replaced.
    let out = f.run(&["restore", "--site", "blog", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains(&format!("replace database {} (", f.site.db_name))
            && text.contains("moved aside")
            && !text.contains("create database user"),
        "{text}"
    );
    assert_eq!(state(&f, &t), before, "a dry run changed something");

    // --json: the plan as data; its count is the one the clone then makes.
    let mut cmd = f.cmd(&["--json", "restore", "--site", "blog", "--to"]);
    cmd.arg(&t.path)
        .args(["--db-name", &t.db, "--url", &t.url, "--dry-run"])
        .env("MYSQL_UNIX_PORT", &f.db.socket);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["key"], key.as_str());
    assert_eq!(plan["database"]["action"], "created");
    assert_eq!(plan["users_created"][0]["name"], t.db.as_str());
    assert!(plan["files"]["count"].as_u64().unwrap() > 100, "{plan}");
    assert!(
        plan["rewrite"]["pairs"].as_array().unwrap().len() >= 9,
        "{plan}"
    );
    let per_table = plan["rewrite"]["values_per_table"].as_object().unwrap();
    assert!(per_table["wp_options"].as_u64().unwrap() >= 2, "{plan}");
    let counted: u64 = per_table.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(state(&f, &t), before, "a dry run changed something");

    let out = clone(&f, &t, &f.db.socket, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let made = said(&out);
    assert!(
        made.contains(&format!("({counted} values rewritten")),
        "the dry run counted {counted}: {made}"
    );
}

/// Issue 23 item 3: a clone's own user is made before the import and imports the archive's
/// SQL (the server's log says who sent the dump's rows), so the trigger and the view the site
/// got from root are the clone user's in the clone, and run as it.
#[test]
fn a_clones_own_user_imports_it_and_defines_its_triggers_and_views() {
    let f = Fixture::new("clone-definer");
    crate::restore::add_root_defined_objects(&f);
    backup(&f);
    let t = target(&f, "def");
    let (out, importers) = crate::restore::importers_of(&f, || clone(&f, &t, &f.db.socket, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let (user, password) = assert_own_user(&f, &t, &out);
    assert!(!importers.is_empty());
    for who in &importers {
        assert!(who.starts_with(&format!("{user}[")), "imported by {who}");
    }
    let (trigger, view) = crate::restore::definers(&f, &t.db);
    assert!(trigger.starts_with(&format!("{user}@")), "{trigger}");
    assert!(view.starts_with(&format!("{user}@")), "{view}");
    let marked = crate::restore::sql_as(
        &f,
        &user,
        &password,
        &format!(
            "INSERT INTO `{db}`.wp_postmeta (post_id, meta_key, meta_value) VALUES (1, 'wpb_probe', 'x');
             SELECT meta_value FROM `{db}`.wp_postmeta WHERE meta_key = 'wpb_probe';",
            db = t.db
        ),
    );
    assert!(
        marked.starts_with(&format!("x seen by {user}@")),
        "{marked}"
    );
}
