//! The fleet dashboard (dashboard/, a Cloudflare Worker) in miniflare, over a D1 database that
//! real `wpbackup backup` and `sync-d1` runs of two servers filled (a failed site, a stale
//! site, a failover to the secondary storage), looked at through its JSON API and in headless
//! Chromium as a person would: the sites needing attention on top and red, the failover
//! marked, the site page's strip and charts drawn, a wrong token refused. `report --html`'s
//! file is opened in the same browser and must show the same fleet.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::fixture::Fixture;
use crate::report::{add_old_success, config_with_sites};
use crate::util::browser::{Chromium, screenshot_dir};
use crate::util::d1::{self, D1Sim};
use crate::util::dashboard::{Answer, Dashboard, TOKEN};

/// Two servers whose runs are in D1.
struct Fleet {
    f: Fixture,
    web2: TempDir,
    sim: D1Sim,
}

fn run_in(home: &Path, args: &[&str]) -> Output {
    let out = Command::new(crate::util::bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("WPBACKUP_HOME")
        .env_remove("RUST_LOG")
        .env_remove("SERVER_ID")
        .output()
        .expect("run wpbackup");
    eprintln!(
        "[{}] {args:?} -> {:?}\n{}",
        home.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// web-02 backs up blog and has "shop", last stored three days ago (stale); web-01 backs up
/// blog and "broken" (its directory is gone: ERROR), then blog again with the primary S3
/// server down (stored on the secondary: failover). Every run reaches D1 through the
/// backups' own push and `sync-d1`.
fn fleet_in_d1() -> Fleet {
    let sim = D1Sim::start();
    let mut f = Fixture::new("dash");
    let env: Vec<(&str, String)> = sim.env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    f.write_env(&pairs);

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
    let out = run_in(web2.path(), &["backup", "--site", "blog"]);
    assert_eq!(out.status.code(), Some(0));
    add_old_success(web2.path(), "web-02", "shop");
    assert_eq!(run_in(web2.path(), &["sync-d1"]).status.code(), Some(0));

    f.write_config(config_with_sites(&f, "web-01", &["broken"]));
    assert_eq!(f.run(&["backup"]).status.code(), Some(1));
    f.primary.kill();
    assert_eq!(f.run(&["backup", "--site", "blog"]).status.code(), Some(0));
    assert_eq!(f.run(&["sync-d1"]).status.code(), Some(0));
    Fleet { f, web2, sim }
}

/// Each site's (server, site, label) in the order a fleet JSON or page lists them.
fn order(sites: &[Value], label: &str) -> Vec<(String, String, String)> {
    sites
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            (text("server_id"), text("site"), text(label))
        })
        .collect()
}

fn expected_order() -> Vec<(String, String, String)> {
    [
        ("web-01", "broken", "FAILED"),
        ("web-02", "shop", "STALE"),
        ("web-01", "blog", "WARNING"),
        ("web-02", "blog", "OK"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect()
}

/// The JSON API: refused without the right token; the fleet with attention first; one site's
/// runs and archives as backups.db recorded them.
fn assert_api(dash: &Dashboard, fleet: &Fleet) {
    for token in [None, Some("not-the-token")] {
        let a = dash.get("/api/fleet", token);
        assert_eq!(a.status, 401, "{token:?}: {}", a.body);
        assert!(!a.body.contains("web-01"), "{}", a.body);
    }
    let a = dash.get("/api/fleet", Some(TOKEN));
    assert_eq!(a.status, 200, "{}", a.body);
    let doc = a.json();
    let sites = doc["sites"].as_array().expect("sites");
    assert_eq!(order(sites, "label"), expected_order(), "{doc:#}");
    assert_eq!(doc["attention"], 2);
    let web1_blog = &sites[2];
    assert_eq!(web1_blog["failover"], true, "{web1_blog:#}");
    assert_eq!(web1_blog["last_archive"]["storage"], "secondary");
    assert!(
        sites[0]["last_run"]["details"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    let rows: i64 = a.header("x-d1-rows-read").unwrap().parse().unwrap();
    assert!(rows > 0, "D1 says how many rows it read");

    let a = dash.get("/api/site/web-01/blog", Some(TOKEN));
    assert_eq!(a.status, 200, "{}", a.body);
    let site = a.json();
    let statuses: Vec<&str> = site["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["WARNING", "SUCCESS"]);
    let recorded: Vec<(String, String)> = fleet
        .f
        .archive_rows()
        .into_iter()
        .rev()
        .map(|(key, storage, _, sha)| (key, format!("{storage} {sha}")))
        .collect();
    let shown: Vec<(String, String)> = site["archives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let key = a["key"].as_str().unwrap().to_string();
            (
                key,
                format!(
                    "{} {}",
                    a["storage"].as_str().unwrap(),
                    a["sha256"].as_str().unwrap()
                ),
            )
        })
        .collect();
    assert_eq!(shown, recorded);
    assert_eq!(dash.get("/api/site/web-01/nope", Some(TOKEN)).status, 404);
}

/// The fleet as a person sees it: rows in order, the two needing attention red, the failover
/// marked on web-01's blog only, no script.
fn assert_fleet_seen(seen: &Value) {
    let rows = seen["rows"].as_array().expect("rows");
    let shown: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (text("server"), text("site"), text("label"))
        })
        .collect();
    assert_eq!(shown, expected_order(), "{seen:#}");
    let red = "rgb(198, 40, 40)";
    assert_eq!(rows[0]["label_background"], red, "{seen:#}");
    for (i, row) in rows.iter().enumerate() {
        let pink = row["row_background"] == "rgb(253, 236, 234)";
        assert_eq!(
            pink,
            i < 2,
            "row {i} red exactly when it needs attention: {row:#}"
        );
        assert_eq!(
            row["failover"],
            i == 2,
            "failover marker on web-01's blog: {row:#}"
        );
    }
    assert!(
        rows[1]["text"].as_str().unwrap().contains("3 d"),
        "{seen:#}"
    );
    assert_eq!(seen["banner"], "2 of 4 sites need attention");
    assert_eq!(seen["banner_background"], red);
    assert_eq!(seen["scripts"], 0);
}

/// The dashboard in Chromium: a wrong token refused, the fleet, then web-01's blog.
fn assert_browser(chromium: &Chromium, dash: &Dashboard) {
    let shots = screenshot_dir("dashboard");
    let seen = chromium.look(&[
        ("BROWSE_MODE", "dashboard".into()),
        ("DASH_URL", dash.url.clone()),
        ("DASH_TOKEN", TOKEN.into()),
        ("SITE_PATH", "/site/web-01/blog".into()),
        ("SHOT_DIR", shots.display().to_string()),
    ]);
    assert_eq!(
        seen["locked"],
        json!({"status": 401, "form": true, "fleet_shown": false})
    );
    assert_eq!(seen["refused"]["status"], 401, "{seen:#}");
    assert_eq!(seen["refused"]["fleet_shown"], false);
    assert!(
        seen["refused"]["message"]
            .as_str()
            .unwrap()
            .contains("Token refused")
    );
    assert_eq!(seen["fleet"]["status"], 200, "{seen:#}");
    assert_fleet_seen(&seen["fleet"]);
    let site = &seen["site"];
    assert_eq!(site["heading"], "blog on web-01", "{site:#}");
    let strip = site["strip"].as_array().unwrap();
    assert_eq!(strip.len(), 30);
    assert_eq!(strip[29], "WARNING", "tonight's cell: the last run");
    for chart in site["charts"].as_array().unwrap() {
        assert_eq!(chart["points"], 2, "{chart:#}");
        assert!(chart["line"].as_bool().unwrap() && chart["width"].as_f64().unwrap() > 100.0);
    }
    let events = site["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{site:#}");
    assert!(
        events[0]
            .as_str()
            .unwrap()
            .contains("a storage failed first: primary")
    );
    assert_eq!(site["archives"].as_array().unwrap().len(), 2);
    // Log out: the session ends in this browser, the fleet asks for the token again.
    let base = dash.url.trim_end_matches('/');
    assert_eq!(
        seen["logout"],
        json!({"status": 401, "url": format!("{base}/"), "then": 401, "form": true}),
        "{seen:#}"
    );
    assert_eq!(seen["blocked"], json!([]));
    // The only errors the browser logged: the 401 answers to the token form.
    let errors = seen["console_errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .all(|e| e.as_str().unwrap().contains("status of 401")),
        "{errors:?}"
    );
    for shot in ["login-refused.png", "fleet.png", "site.png"] {
        assert!(
            shots.join(shot).metadata().unwrap().len() > 10_000,
            "{shot}"
        );
    }
}

/// `report --fleet --html FILE` in the same browser: the same fleet, in the same order.
fn assert_report_html(chromium: &Chromium, file: &Path) {
    let seen = chromium.look(&[
        ("BROWSE_MODE", "file".into()),
        ("FILE_PATH", file.display().to_string()),
        (
            "SHOT_DIR",
            screenshot_dir("report-html").display().to_string(),
        ),
    ]);
    assert_fleet_seen(&seen["fleet"]);
    assert_eq!(seen["blocked"], json!([]));
}

#[test]
fn dashboard_shows_two_servers_with_the_failed_site_first_and_red_in_chromium() {
    let mut fleet = fleet_in_d1();
    let html = fleet.web2.path().join("fleet.html");
    let out = run_in(
        fleet.web2.path(),
        &["report", "--fleet", "--html", &html.to_string_lossy()],
    );
    assert_eq!(out.status.code(), Some(0));
    // The simulator lets go of the database before the dashboard serves it.
    fleet.sim.kill();
    let dash = Dashboard::start(&fleet.sim.state_dir(), d1::DATABASE, Some(TOKEN));
    assert_api(&dash, &fleet);
    let chromium = Chromium::start();
    assert_browser(&chromium, &dash);
    assert_report_html(&chromium, &html);
}

/// A dashboard deployed without its secret lets nobody in, and says what to do; with it but
/// before any push it says to run sync-d1.
#[test]
fn dashboard_without_a_token_refuses_everyone_and_without_data_says_to_sync() {
    let state = tempfile::Builder::new().prefix("wpb-d1").tempdir().unwrap();
    let open = Dashboard::start(state.path(), d1::DATABASE, None);
    for token in [None, Some(""), Some("anything")] {
        let a = open.get("/api/fleet", token);
        assert_eq!(a.status, 401, "{}", a.body);
        assert!(a.body.contains("DASHBOARD_TOKEN is not set"), "{}", a.body);
        assert_eq!(open.get("/", token).status, 401);
    }
    drop(open);
    let dash = Dashboard::start(state.path(), d1::DATABASE, Some(TOKEN));
    let a = dash.get("/api/fleet", Some(TOKEN));
    assert_eq!(a.status, 503, "{}", a.body);
    assert!(a.body.contains("run wpbackup sync-d1"), "{}", a.body);
}

/// What a server on a wpbackup without `site_latest` pushed: the logs only. web-00's "legacy"
/// site stored its archive on the secondary an hour ago (a failover).
fn push_as_an_older_wpbackup(sim: &D1Sim) {
    sim.query(
        "INSERT INTO backup_log (timestamp, status, details, site_name, server_id, local_id,
           db_id, action, storage_name, archive_key, duration_secs)
         VALUES (datetime('now', '-1 hour'), 'WARNING',
           'stored web-00/legacy/legacy_1.tar.zst on secondary; a storage failed first: primary: connection refused',
           'legacy', 'web-00', 1, '', 'backup', 'secondary', 'web-00/legacy/legacy_1.tar.zst', 12.5)",
        json!([]),
    );
    sim.query(
        "INSERT INTO s3_archives (filename, storage_name, s3_endpoint, s3_bucket, file_size,
           server_id, local_id, db_id, site_name, created_at, sha256, duration_secs)
         VALUES ('web-00/legacy/legacy_1.tar.zst', 'secondary', 'local', '/srv/b', 4096,
           'web-00', 1, '', 'legacy', datetime('now', '-1 hour'), 'ab', 12.5)",
        json!([]),
    );
}

/// The fleet of web-01 (`sites` sites, all failing) and web-00 on an older wpbackup, served by
/// the dashboard: its /api/fleet answer, after checking that every site shows as it should.
fn fleet_with_a_server_not_upgraded(sites: usize, drop_summary: bool) -> (Answer, usize) {
    let mut sim = D1Sim::start();
    let home = crate::sync_d1::Home::new("web-01", sites, &sim.env());
    home.failing_run();
    home.failing_run();
    assert_eq!(home.sync(), (2 * sites as i64, 2 * sites as i64));
    push_as_an_older_wpbackup(&sim);
    if drop_summary {
        // As if every server were on an older wpbackup: no site_latest table at all.
        sim.query("DROP TABLE site_latest", json!([]));
    }
    sim.kill();
    let dash = Dashboard::start(&sim.state_dir(), d1::DATABASE, Some(TOKEN));
    let a = dash.get("/api/fleet", Some(TOKEN));
    assert_eq!(a.status, 200, "{}", a.body);
    let doc = a.json();
    let shown = doc["sites"].as_array().expect("sites");
    assert_eq!(shown.len(), sites + 1, "{doc:#}");
    let labels = order(shown, "label");
    assert!(
        labels[..sites]
            .iter()
            .all(|(server, _, label)| server == "web-01" && label == "FAILED"),
        "{labels:?}"
    );
    let legacy = &shown[sites];
    assert_eq!(legacy["site"], "legacy", "{legacy:#}");
    assert_eq!(legacy["label"], "WARNING");
    assert_eq!(legacy["failover"], true);
    assert_eq!(legacy["last_archive"]["storage"], "secondary");
    (a, sites + 1)
}

/// D1 bills rows read: the fleet page reads the summary `sync-d1` keeps, about one row per
/// site, not the logs (about 9 per site); a server not upgraded yet still shows, from its logs.
#[test]
fn fleet_page_reads_about_one_d1_row_per_site_and_shows_a_server_not_upgraded() {
    let (a, sites) = fleet_with_a_server_not_upgraded(50, false);
    let rows: usize = a.header("x-d1-rows-read").unwrap().parse().unwrap();
    eprintln!("fleet of {sites} sites: {rows} D1 rows read");
    assert!(rows <= 2 * sites, "{rows} rows read for {sites} sites");
}

/// A D1 that no upgraded server pushed to has no site_latest: the page reads the logs.
#[test]
fn fleet_page_without_the_summary_table_reads_the_logs() {
    fleet_with_a_server_not_upgraded(3, true);
}

/// The dashboard's durations (model.mjs's `humanDuration`, run by node) read as wpbackup's
/// (`output::human_duration`): `report --html` shows the dashboard's fleet page, and neither
/// may say `1 min 60 s` at a unit's boundary.
#[test]
fn dashboard_durations_read_as_wpbackups_at_every_boundary() {
    let values = [
        0.0, 0.25, 4.24, 4.26, 59.6, 59.94, 59.95, 59.96, 60.0, 60.4, 119.4, 119.5, 119.6, 185.4,
        3599.4, 3599.5, 3599.6, 3629.0, 3630.0, 3631.0, 7169.0, 7199.6, 7640.0, 90_000.0,
    ];
    let model = crate::util::dashboard::project_dir().join("src/model.mjs");
    let script = format!(
        "const {{ humanDuration }} = await import({model});\n\
         for (const v of {values}) console.log(humanDuration(v));",
        model = serde_json::to_string(&format!("file://{}", model.display())).unwrap(),
        values = serde_json::to_string(&values).unwrap(),
    );
    let out = Command::new("node")
        .args(["--input-type=module", "-e", &script])
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = String::from_utf8(out.stdout).unwrap();
    let expected: Vec<String> = values
        .iter()
        .map(|&v| wpbackup::output::human_duration(v))
        .collect();
    assert_eq!(seen.lines().collect::<Vec<_>>(), expected);
    assert!(expected.contains(&"2m 00s".to_string()), "{expected:?}");
}

/// HMAC-SHA256 of `message` under `key`, base64url (as dashboard/src/auth.mjs), by node.
fn node_hmac(key: &str, message: &str) -> String {
    let out = Command::new("node")
        .args([
            "-e",
            "process.stdout.write(require('crypto').createHmac('sha256', process.env.K).update(process.env.M).digest('base64url'))",
        ])
        .env("K", key)
        .env("M", message)
        .output()
        .expect("node");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// What the dashboard echoes from the request (a site, a server, a period) is escaped on its
/// message pages; a session cookie ends (12 hours, logout) and cannot be made from an old
/// one; the token form is rate limited.
#[test]
fn dashboard_escapes_what_it_echoes_and_sessions_end() {
    let mut sim = D1Sim::start();
    let home = crate::sync_d1::Home::new("web-01", 1, &sim.env());
    home.failing_run();
    home.sync();
    sim.kill();
    let dash = Dashboard::start(&sim.state_dir(), d1::DATABASE, Some(TOKEN));

    // A meta refresh to a phishing page, in every place a message page repeats.
    let evil = "%3Cmeta%20http-equiv%3D%22refresh%22%20content%3D%220%3Burl%3Dhttp%3A%2F%2F127.0.0.1%3A9%2Fphish%22%3E";
    for (path, status) in [
        (format!("/site/web-01/{evil}"), 404),
        (format!("/site/{evil}/blog"), 404),
        (format!("/?since={evil}"), 400),
    ] {
        let a = dash.get(&path, Some(TOKEN));
        assert_eq!(a.status, status, "{path}: {}", a.body);
        assert!(
            !a.body.to_ascii_lowercase().contains("<meta http-equiv"),
            "{path}: {}",
            a.body
        );
        assert!(
            a.body.contains("&lt;meta http-equiv="),
            "{path}: {}",
            a.body
        );
    }

    // The token form gives a session that ends in 12 hours.
    let a = dash.request("POST", "/login", "", &format!("token={TOKEN}"));
    assert_eq!(a.status, 303, "{}", a.body);
    let set = a.header("set-cookie").expect("a session cookie");
    assert!(
        set.contains("Max-Age=43200") && set.contains("HttpOnly"),
        "{set}"
    );
    let value = set
        .strip_prefix("wpb_session=")
        .and_then(|v| v.split(';').next())
        .expect("wpb_session=VALUE")
        .to_string();
    let parts: Vec<&str> = value.split('.').collect();
    assert_eq!(parts.len(), 3, "{value}");
    let expires: i64 = parts[1].parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!((expires - now - 43200).abs() < 300, "{expires} vs {now}");
    let with = |cookie: &str| {
        dash.request(
            "GET",
            "/api/fleet",
            &format!("Cookie: wpb_session={cookie}\r\n"),
            "",
        )
    };
    assert_eq!(with(&value).status, 200);

    // Cookies that must not open it: the old release's (a fixed HMAC of the token, valid
    // forever), one that ended, one whose end was moved.
    let v1 = node_hmac(TOKEN, "wpbackup-dashboard-session-v1");
    let ended = now - 10;
    let ended = format!(
        "v2.{ended}.{}",
        node_hmac(TOKEN, &format!("wpbackup-dashboard-session-v2|{ended}"))
    );
    let moved = format!("v2.{}.{}", expires + 86400, parts[2]);
    for cookie in [v1.as_str(), ended.as_str(), moved.as_str()] {
        assert_eq!(with(cookie).status, 401, "{cookie}");
    }

    // Logout clears the cookie in the browser.
    let a = dash.request(
        "POST",
        "/logout",
        &format!("Cookie: wpb_session={value}\r\n"),
        "",
    );
    assert_eq!(a.status, 303);
    assert_eq!(a.header("location").as_deref(), Some("/login"));
    let set = a.header("set-cookie").expect("a cleared cookie");
    assert!(
        set.starts_with("wpb_session=;") && set.contains("Max-Age=0"),
        "{set}"
    );

    // Guessing the token: 5 tries a minute, then 429 (12 tries span at most two minutes'
    // windows, so at least two are refused whatever the clock).
    let refused: Vec<Answer> = (0..12)
        .map(|i| dash.request("POST", "/login", "", &format!("token=guess-{i}")))
        .filter(|a| a.status == 429)
        .collect();
    assert!(refused.len() >= 2, "{} tries refused", refused.len());
    assert_eq!(refused[0].header("retry-after").as_deref(), Some("60"));
    assert!(
        refused[0].body.contains("Too many token tries"),
        "{}",
        refused[0].body
    );
}
