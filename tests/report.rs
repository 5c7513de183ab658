//! `wpbackup report` against a real SMTP server (aiosmtpd, AUTH required) and real backups:
//! the message arrives authenticated with a plain-text and an HTML part, failed and stale sites
//! are flagged, `--only-failures` stays quiet when all is well, `backup` sends it itself on a
//! failure, a wrong password is a clear error, and the fleet report built from D1 (miniflare)
//! shows two servers' backups side by side.
//!
//! A stale site is one whose last successful backup is older than the period: the tests cannot
//! wait days, so they add that old row to backups.db themselves (a run three days ago).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;

use crate::fixture::Fixture;
use crate::util::d1::D1Sim;
use crate::util::smtp::{self, PASSWORD, SmtpServer, USER};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `.env` for the fixture with extra variables.
fn env_with(f: &Fixture, extra: &[Vec<(&'static str, String)>]) {
    let all: Vec<(&str, String)> = extra.iter().flatten().cloned().collect();
    let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
    f.write_env(&pairs);
}

/// A successful backup of `site` three days ago, as the binary would have recorded it.
pub fn add_old_success(home: &Path, server_id: &str, site: &str) {
    let conn = rusqlite::Connection::open(home.join("backups.db")).unwrap();
    let when = (chrono::Utc::now() - chrono::Duration::days(3))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    conn.execute(
        "INSERT INTO backup_log (timestamp, status, details, site_name, server_id, action,
             storage_name, archive_key, duration_secs)
         VALUES (?1, 'SUCCESS', 'stored', ?2, ?3, 'backup', 'primary', ?4, 1.0)",
        rusqlite::params![
            when,
            site,
            server_id,
            format!("{server_id}/{site}/{site}_old.tar.zst")
        ],
    )
    .unwrap();
}

pub fn config_with_sites(f: &Fixture, server_id: &str, extra_sites: &[&str]) -> serde_json::Value {
    let mut config = f.default_config();
    config["server_id"] = json!(server_id);
    for name in extra_sites {
        config["sites"].as_array_mut().unwrap().push(json!({
            "name": name,
            "path": f.home().join(format!("missing/{name}")),
        }));
    }
    config
}

#[test]
fn report_arrives_authenticated_with_both_parts_and_flags_failed_and_stale_sites() {
    let f = Fixture::new("report");
    let mail = SmtpServer::start();
    env_with(&f, &[mail.env(PASSWORD)]);
    f.write_config(config_with_sites(&f, "test-server", &["broken", "shop"]));
    let out = f.run(&["backup", "--site", "blog", "--site", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    add_old_success(f.home(), "test-server", "shop");

    // --dry-run prints and sends nothing.
    let out = f.run(&["report", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.starts_with("Subject: [wpbackup] test-server: 2 FAILED, 1 NOT DRILLED\n"),
        "{printed}"
    );
    assert!(mail.messages().is_empty());

    let out = f.run(&["report"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let msgs = mail.messages();
    assert_eq!(msgs.len(), 1);
    let env = &msgs[0].envelope;
    assert_eq!(env["auth_user"], USER, "the client must log in: {env}");
    assert_eq!(
        env["rcpt_tos"],
        json!(["ops@example.com", "boss@example.com"])
    );
    assert_eq!(env["mail_from"], "wpbackup@web-01.example.com");
    let m = smtp::parse(&msgs[0].raw);
    assert_eq!(m.subject, "[wpbackup] test-server: 2 FAILED, 1 NOT DRILLED");
    assert_eq!(m.content_type, "multipart/alternative");
    let key = f.rows()[0].archive_key.clone().unwrap();
    for (part, body) in [("text", &m.text), ("html", &m.html)] {
        assert!(
            body.contains("FAILED") && body.contains("broken"),
            "{part}: {body}"
        );
        assert!(
            body.contains("does not exist or is not a directory"),
            "{part}: {body}"
        );
        assert!(
            body.contains("STALE") && body.contains("shop"),
            "{part}: {body}"
        );
        assert!(
            body.contains(&key),
            "{part}: the last archive of blog: {body}"
        );
        assert!(body.contains("on primary, "), "{part}: {body}");
    }
    assert!(m.text.contains("[STALE] shop"), "{}", m.text);
    assert!(m.text.contains("[FAILED] broken"), "{}", m.text);
    assert!(m.text.contains("[NOT DRILLED] blog"), "{}", m.text);
    assert!(
        m.html.contains("<meta name=\"viewport\""),
        "phone-readable HTML"
    );
    // Sites needing attention come first.
    assert!(m.text.find("broken").unwrap() < m.text.find("[NOT DRILLED] blog").unwrap());

    // A wrong password: a clear error, nothing sent, no secret shown.
    env_with(&f, &[mail.env("wrong-pass-Zz9")]);
    let out = f.run(&["report"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("refused the login"), "{err}");
    assert!(
        err.contains("check SMTP_USERNAME and SMTP_PASSWORD"),
        "{err}"
    );
    assert!(!err.contains("wrong-pass-Zz9"), "{err}");
    assert_eq!(mail.messages().len(), 1);
}

/// A server without SMTP settings (issue 26): `report` prints the report and succeeds, saying
/// on stderr that no mail was sent and why, so the weekly report unit does not fail. `--to`
/// asks for mail, which then needs SMTP_HOST.
#[test]
fn report_without_smtp_prints_the_report_and_succeeds() {
    let f = Fixture::new("nosmtp");
    f.write_env(&[]);
    f.write_config(config_with_sites(&f, "test-server", &[]));
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = f.run(&["report"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.starts_with("Subject: [wpbackup] test-server: "),
        "{printed}"
    );
    // Backed up, never drilled: NOT DRILLED (issue 26), not FAILED.
    assert!(printed.contains("[NOT DRILLED] blog"), "{printed}");
    assert!(!printed.contains("FAILED"), "{printed}");
    let err = stderr(&out);
    assert!(err.contains("no mail sent: SMTP_HOST is not set"), "{err}");

    let out = f.run(&["report", "--to", "me@example.com"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("SMTP_HOST"), "{}", stderr(&out));
}

#[test]
fn only_failures_is_quiet_when_all_is_well_and_backup_reports_its_own_failure() {
    let f = Fixture::new("onfail");
    let mail = SmtpServer::start();
    env_with(&f, &[mail.env(PASSWORD)]);
    let mut config = config_with_sites(&f, "test-server", &[]);
    config["report"] = json!({ "on_failure": true });
    f.write_config(config.clone());
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(mail.messages().is_empty(), "no failure, no report");

    let out = f.run(&["report", "--only-failures"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("all well, nothing sent"),
        "{}",
        stderr(&out)
    );
    assert!(mail.messages().is_empty());

    // Without --only-failures the same state is reported, as all OK.
    let out = f.run(&["report", "--to", "me@example.com"]);
    assert_eq!(out.status.code(), Some(0));
    let msgs = mail.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        smtp::parse(&msgs[0].raw).subject,
        "[wpbackup] test-server: 1 NOT DRILLED"
    );
    assert_eq!(msgs[0].envelope["rcpt_tos"], json!(["me@example.com"]));

    // A failing site: backup sends the report itself, and its result stays a failure.
    let mut config = config_with_sites(&f, "test-server", &["broken"]);
    config["report"] = json!({ "on_failure": true });
    f.write_config(config);
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(1));
    let msgs = mail.messages();
    assert_eq!(msgs.len(), 2);
    let m = smtp::parse(&msgs[1].raw);
    assert_eq!(m.subject, "[wpbackup] test-server: 1 FAILED, 1 NOT DRILLED");
    assert!(m.text.contains("[FAILED] broken"), "{}", m.text);
    assert!(!m.text.contains("Dashboard"), "no dashboard_url, no link");

    // --only-failures now sends.
    let out = f.run(&["report", "--only-failures"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(mail.messages().len(), 3);
}

/// With `dashboard_url` set, the report links to the dashboard and to the page of each site
/// needing attention, in both parts, whether `backup` sends it on a failure or `report` does.
#[test]
fn report_links_to_the_dashboard_and_to_each_site_needing_attention() {
    let f = Fixture::new("dashlinks");
    let mail = SmtpServer::start();
    env_with(&f, &[mail.env(PASSWORD)]);
    let mut config = config_with_sites(&f, "web-01", &["broken"]);
    config["report"] = json!({ "on_failure": true });
    config["dashboard_url"] = json!("https://dash.example.workers.dev/");
    f.write_config(config);
    assert_eq!(f.run(&["backup"]).status.code(), Some(1));
    let out = f.run(&["report"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let msgs = mail.messages();
    assert_eq!(msgs.len(), 2, "backup's own report, then report's");
    let fleet = "https://dash.example.workers.dev/";
    let broken = "https://dash.example.workers.dev/site/web-01/broken";
    for msg in &msgs {
        let m = smtp::parse(&msg.raw);
        assert_eq!(m.subject, "[wpbackup] web-01: 1 FAILED, 1 NOT DRILLED");
        let lines: Vec<&str> = m.text.lines().map(str::trim_end).collect();
        assert!(
            lines.contains(&format!("Dashboard: {fleet}").as_str()),
            "{}",
            m.text
        );
        // The link is the failed site's own: in its block, which ends at a blank line.
        let card: Vec<&&str> = (lines.iter())
            .skip_while(|l| **l != "[FAILED] broken")
            .take_while(|l| !l.is_empty())
            .collect();
        let link = format!("  Dashboard: {broken}");
        assert!(card.contains(&&link.as_str()), "{}", m.text);
        assert!(
            m.html.contains(&format!("<a href=\"{fleet}\"")),
            "{}",
            m.html
        );
        assert!(
            m.html.contains(&format!("<a href=\"{broken}\"")),
            "{}",
            m.html
        );
        for body in [&m.text, &m.html] {
            assert!(!body.contains("/site/web-01/blog"), "an OK site: {body}");
        }
    }
}

/// The "done when": two servers back up, both logs sit in D1 exactly once each, and
/// the fleet report that arrives shows both, with the failure and the stale site flagged.
#[test]
fn fleet_report_from_d1_shows_both_servers_with_failure_and_stale_site() {
    let sim = D1Sim::start();
    let mail = SmtpServer::start();
    let f = Fixture::new("fleet");
    env_with(&f, &[sim.env(), mail.env(PASSWORD)]);

    // web-02: its own home, same site and storages; "shop" last backed up three days ago.
    let web2 = tempfile::Builder::new()
        .prefix("wpb-web02")
        .tempdir()
        .unwrap();
    std::fs::copy(f.home().join(".env"), web2.path().join(".env")).unwrap();
    let mut config2 = config_with_sites(&f, "web-02", &[]);
    config2["sites"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "shop", "path": web2.path().join("shop") }));
    std::fs::write(web2.path().join("config.json"), config2.to_string()).unwrap();
    let run2 = |args: &[&str]| -> Output {
        let out = Command::new(crate::util::bin())
            .arg("--home")
            .arg(web2.path())
            .args(args)
            .env_remove("WPBACKUP_HOME")
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        eprintln!(
            "[web-02] {args:?} -> {:?}\n{}",
            out.status.code(),
            stderr(&out)
        );
        out
    };
    assert_eq!(run2(&["backup", "--site", "blog"]).status.code(), Some(0));
    add_old_success(web2.path(), "web-02", "shop");
    assert_eq!(run2(&["sync-d1"]).status.code(), Some(0));

    // web-01: the fixture's home, with a site that fails; backup pushes to D1 at its end.
    f.write_config(config_with_sites(&f, "web-01", &["broken"]));
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stderr(&out).contains("D1 sync failed"), "{}", stderr(&out));

    for (server, rows, archives) in [("web-01", 2, 1), ("web-02", 2, 1)] {
        let n = |sql: &str| sim.count(sql, json!([server]));
        assert_eq!(
            n("SELECT COUNT(*) AS n FROM backup_log WHERE server_id = ?1"),
            rows
        );
        assert_eq!(
            n("SELECT COUNT(DISTINCT local_id) AS n FROM backup_log WHERE server_id = ?1"),
            rows
        );
        assert_eq!(
            n("SELECT COUNT(*) AS n FROM s3_archives WHERE server_id = ?1"),
            archives
        );
    }

    let out = f.run(&["report", "--fleet"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let msgs = mail.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].envelope["auth_user"], USER);
    let m = smtp::parse(&msgs[0].raw);
    assert_eq!(
        m.subject,
        "[wpbackup] fleet of 2 servers: 2 FAILED, 2 NOT DRILLED"
    );
    let web1_at = m.text.find("== web-01").expect("web-01 section");
    let web2_at = m.text.find("== web-02").expect("web-02 section");
    let broken_at = m.text.find("[FAILED] broken").expect("failed site");
    let shop_at = m.text.find("[STALE] shop").expect("stale site");
    assert!(web1_at < broken_at && broken_at < web2_at, "{}", m.text);
    assert!(web2_at < shop_at, "{}", m.text);
    assert_eq!(
        m.text.matches("[NOT DRILLED] blog").count(),
        2,
        "{}",
        m.text
    );
    for server in ["web-01", "web-02"] {
        assert!(m.html.contains(server), "{}", m.html);
    }
}

/// The UTC date `back` days ago: `2026-11-25` and `20261125`.
fn utc_day(back: i64) -> (String, String) {
    let t = chrono::Utc::now() - chrono::Duration::days(back);
    (
        t.format("%Y-%m-%d").to_string(),
        t.format("%Y%m%d").to_string(),
    )
}

/// Three stored archives in `home`'s backups.db, each with its run, as a backup records them:
/// site-00 full yesterday (3 MiB) and differential today (2 KiB), site-01 full today (1 MiB).
/// Returns the keys of the two stored today.
fn add_full_and_differential_runs(home: &crate::sync_d1::Home) -> (String, String) {
    let full = format!("web-01/site-00/site-00_{}T000000Z.tar.zst", utc_day(1).1);
    let diff = format!(
        "web-01/site-00/site-00_{}T000000Z.diff-{}T000000Z.tar.zst",
        utc_day(0).1,
        utc_day(1).1
    );
    let other = format!("web-01/site-01/site-01_{}T000000Z.tar.zst", utc_day(0).1);
    let conn = rusqlite::Connection::open(home.dir.path().join("backups.db")).unwrap();
    for (key, site, back, size, kind, base) in [
        (&full, "site-00", 1, 3 << 20, "full", None),
        (&diff, "site-00", 0, 2048, "differential", Some(&full)),
        (&other, "site-01", 0, 1 << 20, "full", None),
    ] {
        let at = format!("{} 00:00:00", utc_day(back).0);
        conn.execute(
            "INSERT INTO s3_archives (filename, storage_name, s3_endpoint, s3_bucket, file_size,
                 server_id, site_name, created_at, sha256, duration_secs, kind, base_key)
             VALUES (?1, 'local', 'local', '/b', ?2, 'web-01', ?3, ?4, 'ab', 1.0, ?5, ?6)",
            rusqlite::params![key, size, site, at, kind, base],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO backup_log (timestamp, status, details, site_name, server_id, action,
                 storage_name, archive_key, duration_secs)
             VALUES (?1, 'SUCCESS', 'stored', ?2, 'web-01', 'backup', 'local', ?3, 1.0)",
            rusqlite::params![at, site, key],
        )
        .unwrap();
    }
    (diff, other)
}

/// Differential archives (issue 13): `report --json` gives each site's last archive's kind
/// and per UTC night the bytes uploaded and the full and differential archives, from
/// backups.db's rows of both kinds (no server needed: `--dry-run` prints it).
#[test]
fn report_json_counts_uploads_per_night_full_and_differential() {
    let home = crate::sync_d1::Home::new("web-01", 2, &[]);
    home.failing_run();
    add_full_and_differential_runs(&home);
    let out = home.run(&["--json", "report", "--dry-run", "--since", "7d"]);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let server = &doc["report"]["servers"][0];
    let nights = server["nights"].as_array().unwrap();
    assert_eq!(nights.len(), 7);
    assert_eq!(
        nights[0],
        json!({ "date": utc_day(0).0, "bytes": (1 << 20) + 2048, "full": 1, "differential": 1 })
    );
    assert_eq!(
        nights[1],
        json!({ "date": utc_day(1).0, "bytes": 3 << 20, "full": 1, "differential": 0 })
    );
    for (back, n) in nights.iter().enumerate().skip(2) {
        assert_eq!(
            n,
            &json!({ "date": utc_day(back as i64).0, "bytes": 0, "full": 0, "differential": 0 })
        );
    }
    let kinds: Vec<(&str, &str)> = server["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["site"].as_str().unwrap(),
                s["last_archive_kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds, [("site-00", "differential"), ("site-01", "full")]);
}

/// The text a person reads: the last archive's size and kind, and the nights table.
#[test]
fn report_text_shows_last_upload_kind_and_nights_table() {
    let home = crate::sync_d1::Home::new("web-01", 2, &[]);
    home.failing_run();
    let (diff, other) = add_full_and_differential_runs(&home);
    let out = home.run(&["report", "--dry-run", "--since", "7d"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "Last archive: {diff} on local, 2.0 KiB uploaded, differential"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Last archive: {other} on local, 1.0 MiB uploaded, full"
        )),
        "{text}"
    );
    let row = |cells: &[&str]| {
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == cells)
    };
    assert!(
        row(&["NIGHT", "(UTC)", "UPLOADED", "FULL", "DIFFERENTIAL"]),
        "{text}"
    );
    assert!(row(&[&utc_day(0).0, "1.0", "MiB", "1", "1"]), "{text}");
    assert!(row(&[&utc_day(1).0, "3.0", "MiB", "1", "0"]), "{text}");
    assert!(row(&[&utc_day(6).0, "0", "B", "0", "0"]), "{text}");
}
