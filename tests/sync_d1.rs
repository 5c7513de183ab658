//! `wpbackup sync-d1` against Cloudflare's own D1 simulator (miniflare, real D1 binding over
//! SQLite) behind a Worker that speaks D1's REST protocol: every local row reaches D1 exactly
//! once (two pushes, a push cut off mid-batch, two processes at once), servers sit side by side,
//! a wrong token is a clear error, and a backup never fails because D1 does.
//!
//! Rows come from the binary's normal runs: a config whose sites' directories do not exist makes
//! `backup` record one ERROR row per site in a fraction of a second, with no database needed.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::fixture::Fixture;
use crate::util::d1::{self, D1Sim};

/// A home directory for a server whose sites all fail fast.
pub struct Home {
    pub dir: TempDir,
    pub server_id: String,
}

impl Home {
    pub fn new(server_id: &str, sites: usize, env: &[(&str, String)]) -> Home {
        let dir = tempfile::Builder::new()
            .prefix("wpb-d1home")
            .tempdir()
            .expect("tempdir");
        let sites: Vec<Value> = (0..sites)
            .map(|i| {
                json!({ "name": format!("site-{i:02}"),
                        "path": dir.path().join(format!("missing/site-{i:02}")) })
            })
            .collect();
        let config = json!({
            "server_id": server_id,
            "sites": sites,
            "storage": [{ "name": "local", "type": "local", "priority": 1,
                          "path": dir.path().join("archives") }],
        });
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_string_pretty(&config).unwrap(),
        )
        .unwrap();
        let home = Home {
            dir,
            server_id: server_id.to_string(),
        };
        home.write_env(env);
        home
    }

    pub fn write_env(&self, env: &[(&str, String)]) {
        let text: String = env.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
        let path = self.dir.path().join(".env");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(crate::util::bin());
        cmd.arg("--home").arg(self.dir.path()).args(args);
        for var in [
            "WPBACKUP_HOME",
            "RUST_LOG",
            "SERVER_ID",
            "CF_ACCOUNT_ID",
            "CF_API_TOKEN",
            "D1_DATABASE_ID",
            "D1_API_BASE",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().expect("run wpbackup");
        eprintln!(
            "[{}] wpbackup {args:?} -> {:?}\n--- stdout\n{}--- stderr\n{}",
            self.server_id,
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// One failing backup run of every site, without pushing.
    pub fn failing_run(&self) {
        let out = self.run(&["backup", "--no-sync"]);
        assert_eq!(out.status.code(), Some(1), "every site should fail");
    }

    /// `sync-d1 --json`: sent and new rows of backup_log.
    pub fn sync(&self) -> (i64, i64) {
        let out = self.run(&["--json", "sync-d1"]);
        assert_eq!(out.status.code(), Some(0), "sync-d1 failed");
        let doc: Value = serde_json::from_slice(&out.stdout).expect("sync-d1 --json");
        let t = &doc["tables"][0];
        assert_eq!(t["table"], "backup_log");
        (t["sent"].as_i64().unwrap(), t["inserted"].as_i64().unwrap())
    }

    /// Local backup_log rows: (id, timestamp, status, details, site_name).
    pub fn local_rows(&self) -> Vec<(i64, String, String, String, String)> {
        let conn = rusqlite::Connection::open(self.dir.path().join("backups.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT id, timestamp, status, details, site_name FROM backup_log ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }
}

/// D1's backup_log rows of one server: (local_id, timestamp, status, details, site_name).
fn d1_rows(sim: &D1Sim, server: &str) -> Vec<(i64, String, String, String, String)> {
    sim.query(
        "SELECT local_id, timestamp, status, details, site_name FROM backup_log
         WHERE server_id = ?1 ORDER BY local_id",
        json!([server]),
    )
    .iter()
    .map(|r| {
        (
            r["local_id"].as_i64().unwrap(),
            r["timestamp"].as_str().unwrap().to_string(),
            r["status"].as_str().unwrap().to_string(),
            r["details"].as_str().unwrap().to_string(),
            r["site_name"].as_str().unwrap().to_string(),
        )
    })
    .collect()
}

/// D1 holds exactly the local rows: none missing, none twice, same values.
fn assert_exactly_once(sim: &D1Sim, home: &Home) {
    let local = home.local_rows();
    let remote = d1_rows(sim, &home.server_id);
    assert_eq!(
        remote.len(),
        local.len(),
        "{}: D1 has {} rows, backups.db {}",
        home.server_id,
        remote.len(),
        local.len()
    );
    assert_eq!(
        remote, local,
        "{}: D1 differs from backups.db",
        home.server_id
    );
}

/// D1's `site_latest` (what the dashboard's fleet page reads) shows each site of `home` with
/// its newest local run: (site, time, status, details).
fn assert_site_latest(sim: &D1Sim, home: &Home) {
    let mut newest = std::collections::BTreeMap::new();
    for (_, time, status, details, site) in home.local_rows() {
        newest.insert(site.clone(), (site, time, status, details));
    }
    let newest: Vec<_> = newest.into_values().collect();
    let shown: Vec<(String, String, String, String)> = sim
        .query(
            "SELECT site_name, last_run_at, last_status, last_details FROM site_latest
             WHERE server_id = ?1 ORDER BY site_name",
            json!([home.server_id]),
        )
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (
                text("site_name"),
                text("last_run_at"),
                text("last_status"),
                text("last_details"),
            )
        })
        .collect();
    assert_eq!(shown, newest, "{}: site_latest", home.server_id);
}

#[test]
fn rows_arrive_exactly_once_after_repeated_and_concurrent_pushes() {
    let sim = D1Sim::start();
    let home = Home::new("web-01", 30, &sim.env());
    for _ in 0..4 {
        home.failing_run();
    }
    assert_eq!(home.local_rows().len(), 120);
    assert!(!sim.has_table("backup_log"), "nothing pushed yet");

    // First push: every row, in batches (120 rows of backup_log need 2 requests, not 120).
    let before = sim.requests();
    assert_eq!(home.sync(), (120, 120));
    assert_exactly_once(&sim, &home);
    let requests = sim.requests() - before;
    assert!(
        requests < 10,
        "{requests} requests for 120 rows: rows must travel in batches"
    );
    // The original columns and wpbackup's, in D1.
    let cols: Vec<String> = sim
        .query("PRAGMA table_info(s3_archives)", json!([]))
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    for c in [
        "id",
        "filename",
        "storage_name",
        "s3_endpoint",
        "s3_bucket",
        "file_size",
        "server_id",
        "local_id",
    ] {
        assert!(
            cols.iter().any(|x| x == c),
            "s3_archives.{c} missing: {cols:?}"
        );
    }

    // Second push with nothing new sends nothing; a new run's rows go once.
    assert_eq!(home.sync(), (0, 0));
    home.failing_run();
    assert_eq!(home.sync(), (30, 30));
    assert_exactly_once(&sim, &home);

    // Two processes pushing the same new rows at once: still once each.
    home.failing_run();
    home.failing_run();
    let a = home.cmd(&["sync-d1"]).spawn().unwrap();
    let b = home.cmd(&["sync-d1"]).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{a:?} {b:?}");
    assert_eq!(home.local_rows().len(), 210);
    assert_exactly_once(&sim, &home);
    assert_site_latest(&sim, &home);
}

#[test]
fn a_push_cut_off_mid_batch_then_repeated_leaves_no_duplicate_and_no_gap() {
    let sim = D1Sim::start();
    let home = Home::new("web-01", 25, &sim.env());
    for _ in 0..5 {
        home.failing_run();
    }
    assert_eq!(home.local_rows().len(), 125);
    // The schema takes 28 statements (four tables, each created, probed and given its unique
    // key; site_latest, the dashboard's indexes and the window's, and site_latest probed);
    // the first request of rows 13 (100 rows, 9 per statement, then the refresh of
    // site_latest). The second request (25 rows, 3 statements and the refresh) is cut after its
    // first statement: 9 of its rows are in D1, but wpbackup never hears so.
    sim.faults(json!({ "fail_after": 28 + 13 + 1 }));
    let out = home.run(&["sync-d1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("backup_log: push of rows 101..=125 failed"),
        "{err}"
    );
    assert!(err.contains("100 rows confirmed"), "{err}");
    sim.faults(json!({}));
    assert_eq!(d1_rows(&sim, "web-01").len(), 109, "the cut left 109 rows");

    // Repeated: the unconfirmed 25 are sent again, the 9 already there are skipped.
    assert_eq!(home.sync(), (25, 16));
    assert_exactly_once(&sim, &home);

    // A lost answer within a push (the statements ran, the reply never came): the retry
    // resends the whole request and D1 skips what it has.
    home.failing_run();
    home.failing_run();
    sim.faults(json!({ "fail_after": 28 + 2, "once": true }));
    assert_eq!(home.sync(), (50, 32));
    assert_exactly_once(&sim, &home);
    assert_site_latest(&sim, &home);
}

#[test]
fn a_wrong_token_is_a_clear_error() {
    let sim = D1Sim::start();
    let mut env = sim.env();
    env.retain(|(k, _)| *k != "CF_API_TOKEN");
    env.push(("CF_API_TOKEN", "not-the-token-Kk2".into()));
    let home = Home::new("web-01", 2, &env);
    home.failing_run();
    let out = home.run(&["sync-d1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("D1 refused the API token (HTTP 403"), "{err}");
    assert!(err.contains("check CF_API_TOKEN"), "{err}");
    assert!(
        !err.contains("not-the-token-Kk2"),
        "the token leaked: {err}"
    );
    assert!(!sim.has_table("backup_log"), "nothing may be written");

    // D1 not configured at all: usage error naming the variables.
    home.write_env(&[]);
    let out = home.run(&["sync-d1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("CF_ACCOUNT_ID, CF_API_TOKEN and D1_DATABASE_ID")
    );
}

#[test]
fn two_servers_rows_sit_side_by_side() {
    let sim = D1Sim::start();
    let web1 = Home::new("web-01", 3, &sim.env());
    let web2 = Home::new("web-02", 4, &sim.env());
    web1.failing_run();
    web2.failing_run();
    web2.failing_run();
    assert_eq!(web1.sync(), (3, 3));
    assert_eq!(web2.sync(), (8, 8));
    // Their local ids overlap (both start at 1); the rows do not collide.
    assert_exactly_once(&sim, &web1);
    assert_exactly_once(&sim, &web2);
    assert_eq!(
        sim.count("SELECT COUNT(*) AS n FROM backup_log", json!([])),
        11
    );
    // A push from one server does not touch the other's rows.
    web1.failing_run();
    assert_eq!(web1.sync(), (3, 3));
    assert_exactly_once(&sim, &web1);
    assert_exactly_once(&sim, &web2);
    assert_site_latest(&sim, &web1);
    assert_site_latest(&sim, &web2);
}

/// Write `env` (the D1 variables) as the fixture's .env.
fn write_d1_env(f: &Fixture, env: &[(&str, String)]) {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    f.write_env(&pairs);
}

/// The backup succeeded and warned that the D1 sync failed: the WARN line, which never shows
/// the token.
fn d1_warning(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "the backup itself must succeed");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let line = err
        .lines()
        .find(|l| l.contains("WARN") && l.contains("D1 sync failed"))
        .unwrap_or_else(|| panic!("no D1 WARNING in: {err}"))
        .to_string();
    assert!(!line.contains(d1::TOKEN), "{line}");
    line
}

/// Rate limited, garbage, hanging: each backup succeeds and its warning says which.
fn assert_backup_warns_when_d1_misbehaves(f: &Fixture, sim: &D1Sim, env: &[(&str, String)]) {
    sim.faults(json!({ "mode": "429" }));
    let line = d1_warning(&f.run(&["backup"]));
    assert!(
        line.contains("rate limit") && line.contains("retry after 300 s"),
        "{line}"
    );

    sim.faults(json!({ "mode": "garbage" }));
    let line = d1_warning(&f.run(&["backup"]));
    assert!(line.contains("not its JSON envelope"), "{line}");

    // Slow: no answer within D1_TIMEOUT_SECS; the backup goes on after its bounded wait.
    sim.faults(json!({ "mode": "hang" }));
    let mut slow_env = env.to_vec();
    slow_env.push(("D1_TIMEOUT_SECS", "1".into()));
    write_d1_env(f, &slow_env);
    let line = d1_warning(&f.run(&["backup"]));
    assert!(line.contains("did not answer within 1s"), "{line}");
    write_d1_env(f, env);
}

/// Down: nothing listens on its port any more; the backup succeeds and says so.
fn assert_backup_warns_when_d1_is_down(
    f: &Fixture,
    sim: &mut D1Sim,
    mut env: Vec<(&'static str, String)>,
) {
    let port = sim.port;
    sim.kill();
    env.retain(|(k, _)| *k != "D1_API_BASE");
    env.push(("D1_API_BASE", format!("http://127.0.0.1:{port}/client/v4")));
    write_d1_env(f, &env);
    let line = d1_warning(&f.run(&["backup"]));
    assert!(line.contains("cannot reach D1"), "{line}");
}

/// D1 back: the next backup's push takes the earlier rows along, each once; a `--no-sync`
/// backup pushes nothing.
fn assert_next_push_catches_up(f: &Fixture) {
    let sim = D1Sim::start();
    write_d1_env(f, &sim.env());
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("D1 sync failed"));
    assert_eq!(
        sim.count(
            "SELECT COUNT(DISTINCT local_id) AS n FROM backup_log WHERE server_id = 'test-server'",
            json!([])
        ),
        5
    );
    assert_eq!(
        sim.count("SELECT COUNT(*) AS n FROM backup_log", json!([])),
        5
    );
    assert_eq!(
        sim.count(
            "SELECT COUNT(*) AS n FROM s3_archives WHERE file_size > 0",
            json!([])
        ),
        5
    );
    f.run(&["backup", "--no-sync"]);
    assert_eq!(
        sim.count("SELECT COUNT(*) AS n FROM backup_log", json!([])),
        5
    );
}

#[test]
fn backup_succeeds_when_d1_is_rate_limited_answers_garbage_hangs_or_is_down() {
    let mut sim = D1Sim::start();
    let f = Fixture::new("d1down");
    let env: Vec<(&str, String)> = sim.env();
    write_d1_env(&f, &env);

    assert_backup_warns_when_d1_misbehaves(&f, &sim, &env);
    assert_backup_warns_when_d1_is_down(&f, &mut sim, env);
    let rows = f.rows();
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter()
            .all(|r| r.status == "SUCCESS" || r.status == "WARNING"),
        "{rows:?}"
    );
    assert_next_push_catches_up(&f);
}

#[test]
fn an_original_d1_table_gains_the_new_columns_and_keeps_its_rows() {
    let sim = D1Sim::start();
    // The original tool's D1 table, with one of its rows.
    sim.query(
        "CREATE TABLE backup_log (id INTEGER PRIMARY KEY AUTOINCREMENT,
             timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, status TEXT, details TEXT,
             site_name TEXT, server_id TEXT)",
        json!([]),
    );
    sim.query(
        "INSERT INTO backup_log (status, details, site_name, server_id)
         VALUES ('SUCCESS', 'from the original', 'old-site', 'web-00')",
        json!([]),
    );
    // And its s3_archives, from before differential archives (issue 13): no kind, no base_key.
    sim.query(
        "CREATE TABLE s3_archives (id INTEGER PRIMARY KEY AUTOINCREMENT, filename TEXT,
             storage_name TEXT, s3_endpoint TEXT, s3_bucket TEXT, file_size INTEGER,
             server_id TEXT)",
        json!([]),
    );
    sim.query(
        "INSERT INTO s3_archives (filename, storage_name, file_size, server_id)
         VALUES ('web-00/old-site/old-site_20261101T030000Z.tar.zst', 'idrive', 9, 'web-00')",
        json!([]),
    );
    let home = Home::new("web-01", 3, &sim.env());
    home.failing_run();
    add_full_and_differential(&home);
    assert_eq!(home.sync(), (3, 3));
    assert_eq!(home.sync(), (0, 0));
    assert_exactly_once(&sim, &home);
    let old = sim.query(
        "SELECT details, local_id FROM backup_log WHERE site_name = 'old-site'",
        json!([]),
    );
    assert_eq!(
        old,
        vec![json!({ "details": "from the original", "local_id": null })]
    );
    // Each archive once, with its kind and base; the original row stays (NULL kind: full).
    let archives = sim.query(
        "SELECT server_id, local_id, filename, kind, base_key FROM s3_archives ORDER BY id",
        json!([]),
    );
    assert_eq!(
        archives,
        vec![
            json!({ "server_id": "web-00", "local_id": null, "kind": null, "base_key": null,
                    "filename": "web-00/old-site/old-site_20261101T030000Z.tar.zst" }),
            json!({ "server_id": "web-01", "local_id": 1, "kind": "full", "base_key": null,
                    "filename": FULL_KEY }),
            json!({ "server_id": "web-01", "local_id": 2, "kind": "differential",
                    "base_key": FULL_KEY, "filename": DIFF_KEY }),
        ]
    );
}

const FULL_KEY: &str = "web-01/site-00/site-00_20261124T030000Z.tar.zst";
const DIFF_KEY: &str = "web-01/site-00/site-00_20261125T030000Z.diff-20261124T030000Z.tar.zst";

/// Two stored archives of site-00 in `home`'s backups.db, as a backup records them: a full one
/// and a differential one on top of it.
fn add_full_and_differential(home: &Home) {
    let conn = rusqlite::Connection::open(home.dir.path().join("backups.db")).unwrap();
    for (key, at, kind, base) in [
        (FULL_KEY, "2026-11-24 03:00:00", "full", None),
        (
            DIFF_KEY,
            "2026-11-25 03:00:00",
            "differential",
            Some(FULL_KEY),
        ),
    ] {
        conn.execute(
            "INSERT INTO s3_archives (filename, storage_name, s3_endpoint, s3_bucket, file_size,
                 server_id, site_name, created_at, sha256, duration_secs, kind, base_key)
             VALUES (?1, 'local', 'local', '/b', 100, 'web-01', 'site-00', ?2, 'ab', 1.0, ?3, ?4)",
            rusqlite::params![key, at, kind, base],
        )
        .unwrap();
    }
}

/// D1's backup_log rows of one server, per backups.db identity: (db_id, local_id, details).
fn d1_rows_by_db(sim: &D1Sim, server: &str) -> Vec<(String, i64, String)> {
    sim.query(
        "SELECT db_id, local_id, details FROM backup_log WHERE server_id = ?1
         ORDER BY db_id, local_id",
        json!([server]),
    )
    .iter()
    .map(|r| {
        (
            r["db_id"].as_str().unwrap_or("NULL").to_string(),
            r["local_id"].as_i64().unwrap(),
            r["details"].as_str().unwrap().to_string(),
        )
    })
    .collect()
}

#[test]
fn a_recreated_backups_db_pushes_its_rows_though_its_ids_start_again() {
    let sim = D1Sim::start();
    let home = Home::new("web-01", 3, &sim.env());
    home.failing_run();
    assert_eq!(home.sync(), (3, 3));

    // backups.db deleted (lost, or moved away by hand): the next run starts at id 1 again.
    for f in ["backups.db", "backups.db-wal", "backups.db-shm"] {
        let _ = std::fs::remove_file(home.dir.path().join(f));
    }
    home.failing_run();
    home.failing_run();
    let ids: Vec<i64> = home.local_rows().iter().map(|r| r.0).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);

    // Every new row reaches D1 (they used to be dropped as "already there"), the old file's
    // rows stay, and a second push adds nothing.
    assert_eq!(home.sync(), (6, 6));
    assert_eq!(home.sync(), (0, 0));
    let rows = d1_rows_by_db(&sim, "web-01");
    assert_eq!(rows.len(), 9, "{rows:#?}");
    let dbs: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(dbs.len(), 2, "two files, two identities: {rows:#?}");
    let new_db = rows.iter().find(|r| r.1 == 6).unwrap().0.clone();
    let new: Vec<(i64, String)> = rows
        .iter()
        .filter(|r| r.0 == new_db)
        .map(|r| (r.1, r.2.clone()))
        .collect();
    let local: Vec<(i64, String)> = home.local_rows().into_iter().map(|r| (r.0, r.3)).collect();
    assert_eq!(new, local, "D1 differs from the new backups.db");
}

/// Turn `home`'s backups.db and D1 back into what a wpbackup without identities left: no
/// `meta` table, no mark (the last push's answer was lost), D1 rows without `db_id` under the
/// old unique key on `(server_id, local_id)`.
fn as_before_identities(sim: &D1Sim, home: &Home) {
    let conn = rusqlite::Connection::open(home.dir.path().join("backups.db")).unwrap();
    conn.execute_batch("DROP TABLE meta; DELETE FROM d1_sync;")
        .unwrap();
    for t in ["backup_log", "s3_archives"] {
        sim.query(&format!("DROP INDEX {t}_server_db_local"), json!([]));
        sim.query(&format!("UPDATE {t} SET db_id = NULL"), json!([]));
        sim.query(
            &format!("CREATE UNIQUE INDEX {t}_server_local ON {t} (server_id, local_id)"),
            json!([]),
        );
    }
}

#[test]
fn rows_pushed_before_identities_are_not_pushed_twice() {
    let sim = D1Sim::start();
    let home = Home::new("web-01", 3, &sim.env());
    home.failing_run();
    assert_eq!(home.sync(), (3, 3));
    as_before_identities(&sim, &home);

    // Upgraded: the old rows are sent again (no mark) and skipped; the new ones arrive once.
    home.failing_run();
    assert_eq!(home.sync(), (6, 3));
    assert_eq!(home.sync(), (0, 0));
    let rows = d1_rows_by_db(&sim, "web-01");
    let legacy: Vec<i64> = rows
        .iter()
        .filter(|r| r.0.is_empty())
        .map(|r| r.1)
        .collect();
    assert_eq!(legacy, [1, 2, 3], "{rows:#?}");
    assert_eq!(rows.len(), 6, "{rows:#?}");
    assert_exactly_once(&sim, &home);
}

/// The point-in-time window reaches D1 (issue 27 item 3): `binlog_files` rows pushed exactly
/// once, and each site's `pitr_from` (its oldest archive with a binary log position that
/// `prune` did not delete) and `pitr_to` (the server's newest shipped second) in `site_latest`,
/// also in a D1 whose `site_latest` was made before those columns.
#[test]
fn the_point_in_time_window_reaches_d1() {
    let sim = D1Sim::start();
    // A site_latest as wpbackup made it before the window.
    sim.query(
        "CREATE TABLE site_latest (server_id TEXT NOT NULL, site_name TEXT NOT NULL,
         last_run_id INTEGER, last_run_at DATETIME, last_status TEXT, last_details TEXT,
         last_storage TEXT, last_archive_key TEXT, last_duration_secs REAL,
         last_success_at DATETIME, archive_key TEXT, archive_storage TEXT, archive_size INTEGER,
         archive_at DATETIME, refreshed_at DATETIME, PRIMARY KEY (server_id, site_name))",
        json!([]),
    );
    let home = Home::new("web-01", 2, &sim.env());
    home.failing_run();
    let db = rusqlite::Connection::open(home.dir.path().join("backups.db")).unwrap();
    let old = "web-01/site-00/site-00_20261130T030000Z.tar.zst";
    let kept = "web-01/site-00/site-00_20261201T030000Z.tar.zst";
    db.execute_batch(&format!(
        "INSERT INTO s3_archives (filename, storage_name, server_id, site_name, created_at, sha256, kind, binlog_file, binlog_position)
         VALUES ('{old}', 'local', 'web-01', 'site-00', '2026-11-30 03:00:00', 'ab', 'full', 'mariadb-bin.000001', 4),
                ('{kept}', 'local', 'web-01', 'site-00', '2026-12-01 03:00:00', 'ab', 'full', 'mariadb-bin.000002', 4);
         INSERT INTO backup_log (timestamp, status, details, site_name, server_id, action, storage_name, archive_key)
         VALUES ('2026-12-02 03:00:00', 'SUCCESS', 'deleted', 'site-00', 'web-01', 'prune', 'local', '{old}');
         INSERT INTO binlog_files (server_id, file, first_event, object_key, storage_name, size_bytes, sha256, last_event)
         VALUES ('web-01', 'mariadb-bin.000001', '2026-11-30 02:00:00', 'binlog/web-01/mariadb-bin.000001_20261130T020000Z.zst', 'local', 10, 'ab', '2026-12-01 00:00:00'),
                ('web-01', 'mariadb-bin.000002', '2026-12-01 00:00:00', 'binlog/web-01/mariadb-bin.000002_20261201T000000Z.zst', 'local', 10, 'ab', '2026-12-05 11:55:00'),
                ('web-01', 'mariadb-bin.000003', '2026-12-05 11:55:00', 'binlog/web-01/mariadb-bin.000003_20261205T115500Z.zst', 'local', 10, 'ab', '2026-12-05 12:00:00');"
    ))
    .unwrap();
    drop(db);
    let out = home.run(&["--json", "sync-d1"]);
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("sync-d1 --json");
    let binlog = doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "binlog_files")
        .expect("binlog_files pushed");
    assert_eq!(
        (binlog["sent"].as_i64(), binlog["inserted"].as_i64()),
        (Some(3), Some(3))
    );
    let files: Vec<String> = sim
        .query(
            "SELECT file FROM binlog_files WHERE server_id = 'web-01' ORDER BY local_id",
            json!([]),
        )
        .iter()
        .map(|r| r["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        files,
        [
            "mariadb-bin.000001",
            "mariadb-bin.000002",
            "mariadb-bin.000003"
        ]
    );
    let window = |site: &str| {
        let rows = sim.query(
            "SELECT pitr_from, pitr_to FROM site_latest WHERE server_id = 'web-01' AND site_name = ?1",
            json!([site]),
        );
        let text = |k: &str| rows[0][k].as_str().map(str::to_string);
        (text("pitr_from"), text("pitr_to"))
    };
    // The archive of 11-30 was pruned: the window starts at the kept one.
    assert_eq!(
        window("site-00"),
        (
            Some("2026-12-01 03:00:00".to_string()),
            Some("2026-12-05 12:00:00".to_string())
        )
    );
    // No archive with a position: no start, the server's end.
    assert_eq!(
        window("site-01"),
        (None, Some("2026-12-05 12:00:00".to_string()))
    );
    // A second push sends nothing again.
    let out = home.run(&["--json", "sync-d1"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("sync-d1 --json");
    assert!(
        doc["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["sent"] == 0),
        "{doc}"
    );
}
