//! `wpbackup status` and `report` are about the sites config.json backs up, and stop alarming
//! once the alarm is over (issue 16, item 3): a config error is shown only until a later run,
//! never as a failed site; a site removed from config.json after failing is not shown as
//! failing; a new backups.db (the worst day) does not turn the archives in the buckets into
//! "no backup at all": `status` finds them on the storage.

use std::process::Output;

use serde_json::json;

use crate::fixture::Fixture;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The first line of `report --dry-run`: `Subject: ...`.
fn report_subject(f: &Fixture) -> (String, String) {
    let out = f.run(&["report", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let subject = text.lines().next().unwrap_or_default().to_string();
    (subject, text)
}

#[test]
fn a_config_error_is_superseded_by_the_next_good_backup() {
    let f = Fixture::new("cfgerr");
    // The server is named by SERVER_ID in .env, so the config error's row is this server's.
    f.write_env(&[("SERVER_ID", "web-01")]);
    let mut config = f.default_config();
    config.as_object_mut().unwrap().remove("server_id");
    std::fs::write(f.home().join("config.json"), "{ \"sites\": [ }").unwrap();
    let out = f.run(&["backup", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    let rows = f.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].site_name.as_str(), rows[0].status.as_str()),
        ("*", "ERROR")
    );
    // While it is the newest thing recorded, status says the run failed, once.
    let out = f.run(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out).matches("config.json").count(), 1, "shown once");

    f.write_config(config);
    assert_eq!(f.run(&["backup"]).status.code(), Some(0));
    let out = f.run(&["status"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a later good backup supersedes it"
    );
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("blog") && l.contains("SUCCESS")),
        "{text}"
    );
    assert!(
        !text.contains("ERROR") && !text.contains("failed"),
        "{text}"
    );
    let (subject, text) = report_subject(&f);
    assert_eq!(
        subject, "Subject: [wpbackup] web-01: 1 NOT DRILLED",
        "{text}"
    );
    assert!(!text.contains("FAILED"), "{text}");
}

#[test]
fn a_site_removed_from_config_after_failing_is_not_shown_as_failing() {
    let f = Fixture::new("removed");
    let mut config = f.default_config();
    let good = config.clone();
    config["sites"].as_array_mut().unwrap().push(json!({
        "name": "oldshop", "path": f.home().join("missing/oldshop"),
    }));
    f.write_config(config);
    assert_eq!(f.run(&["backup"]).status.code(), Some(1));
    assert!(
        f.rows()
            .iter()
            .any(|r| r.site_name == "oldshop" && r.status == "ERROR")
    );

    f.write_config(good);
    let out = f.run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "oldshop is no longer backed up");
    let text = stdout(&out);
    assert!(!text.contains("ERROR"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("oldshop")), "{text}");
    assert!(
        text.contains("no longer enabled in config.json: oldshop"),
        "{text}"
    );
    let (subject, text) = report_subject(&f);
    assert_eq!(
        subject, "Subject: [wpbackup] test-server: 1 NOT DRILLED",
        "{text}"
    );
    assert!(!text.contains("[FAILED]"), "{text}");
    assert!(text.contains("(not counted): oldshop"), "{text}");
}

#[test]
fn a_new_backups_db_shows_the_archive_on_the_storage_not_a_failure() {
    let f = Fixture::new("newlog");
    assert_eq!(f.run(&["backup"]).status.code(), Some(0));
    let key = f.rows()[0].archive_key.clone().unwrap();
    for name in ["backups.db", "backups.db-wal", "backups.db-shm"] {
        let _ = std::fs::remove_file(f.home().join(name));
    }

    let out = f.run(&["status"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let blog = text
        .lines()
        .find(|l| l.starts_with("blog"))
        .unwrap_or_default();
    assert!(
        blog.contains("STORED") && blog.contains("primary"),
        "{text}"
    );
    assert!(text.contains("is new"), "{text}");
    let out = f.run(&["--json", "status"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["sites"][0]["archive_key"], json!(key), "{doc}");
    assert_eq!(doc["sites"][0]["source"], "storage", "{doc}");

    // The report says the log is new instead of flagging the site STALE.
    let (subject, text) = report_subject(&f);
    assert_eq!(
        subject, "Subject: [wpbackup] test-server: 1 NOT IN LOG",
        "{text}"
    );
    assert!(
        !text.contains("STALE") && text.contains("backups.db is new"),
        "{text}"
    );
    assert!(
        !f.home().join("backups.db").exists(),
        "reading makes no backups.db"
    );
}

/// `output::human_bytes`, as `status` prints a size.
fn human_bytes(n: i64) -> String {
    let (mut v, mut unit) = (n as f64, 0);
    let units = ["B", "KiB", "MiB", "GiB"];
    while v >= 1024.0 && unit < units.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{v:.1} {}", units[unit]),
    }
}

#[test]
fn status_shows_each_sites_last_duration_and_archive_size() {
    let f = Fixture::new("sizes");
    let mut config = f.default_config();
    config["sites"].as_array_mut().unwrap().push(json!({
        "name": "gone", "path": f.home().join("missing/gone"),
    }));
    f.write_config(config);
    assert_eq!(f.run(&["backup"]).status.code(), Some(1), "gone fails");
    let (_, _, size, _) = f.archive_rows()[0].clone();

    let out = f.run(&["status"]);
    let text = stdout(&out);
    let header = text.lines().next().unwrap_or_default();
    assert!(
        header.contains("DURATION") && header.contains("SIZE"),
        "{text}"
    );
    let line = |site: &str| {
        let l = text
            .lines()
            .find(|l| l.starts_with(site))
            .unwrap_or_default();
        l.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // SITE, STATUS, TIME, DURATION, SIZE, STORAGE, DETAILS
    let blog = line("blog");
    assert_eq!(blog[1], "SUCCESS", "{text}");
    assert!(blog[3].ends_with('s'), "a duration: {text}");
    assert_eq!(blog[4], human_bytes(size), "{text}");
    let gone = line("gone");
    assert_eq!(gone[1], "ERROR", "{text}");
    assert_eq!(gone[4], "-", "a failed backup stored nothing: {text}");

    let out = f.run(&["--json", "status"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sites = doc["sites"].as_array().unwrap();
    let blog = sites.iter().find(|s| s["site_name"] == "blog").unwrap();
    assert_eq!(blog["size"], json!(size), "{doc}");
    assert!(blog["duration_secs"].as_f64().unwrap_or(0.0) > 0.0, "{doc}");
    let gone = sites.iter().find(|s| s["site_name"] == "gone").unwrap();
    assert_eq!(gone["size"], json!(null), "{doc}");
}
