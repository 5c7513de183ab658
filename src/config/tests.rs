//! Unit tests of config.json loading: the example parses, errors name their JSON path,
//! defaults and secrets resolve.

use std::collections::HashMap;

use super::*;

fn env() -> Env {
    Env::from_map(HashMap::from([
        ("K".to_string(), "key".to_string()),
        ("S".to_string(), "secret".to_string()),
        ("PW".to_string(), "pw".to_string()),
        ("SERVER_ID".to_string(), "test-host".to_string()),
    ]))
}

fn err(text: &str) -> String {
    Config::parse(text, "config.json", &env())
        .unwrap_err()
        .to_string()
}

#[test]
fn example_config_parses() {
    let mut map = HashMap::new();
    for var in [
        "EXAMPLE_DB_PASSWORD",
        "IDRIVE_ACCESS_KEY_ID",
        "IDRIVE_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        map.insert(var.to_string(), "x".to_string());
    }
    let text = include_str!("../../config.example.json");
    let c = Config::parse(text, "config.example.json", &Env::from_map(map)).unwrap();
    assert_eq!(c.sites.len(), 1);
    assert_eq!(c.storage.len(), 3);
    assert_eq!(c.storage[0].name, "idrive");
    let r = c.retention.expect("the example sets a retention policy");
    assert!(r.keep_daily > 0 && r.keep_monthly > 0, "{r:?}");
    assert!(c.report.on_failure);
    assert_eq!(c.restore.keep_copies_days, 7);
    assert!(c.dashboard_url.is_some_and(|u| u.starts_with("https://")));
    assert_eq!(c.drill.max_age_days, 8);
}

/// Every case's error names its JSON path and the file.
fn assert_errors(cases: &[(&str, &str)]) {
    for (text, want) in cases {
        let got = err(text);
        assert!(
            got.contains(want),
            "config {text}\n  got:  {got}\n  want: {want}"
        );
        assert!(got.starts_with("config.json: "), "{got}");
    }
}

#[test]
fn errors_name_the_json_path_of_sites_and_storage() {
    assert_errors(&[
        (
            r#"{"sites":[{"name":"a","path":"/x","exlude":[]}]}"#,
            "sites[0].exlude: unknown key `exlude`, expected one of",
        ),
        (
            r#"{"storage":[{"name":"a","type":"local","priority":1,"path":"/b"},{"name":"b","type":"s3","priority":2,"access_key_env":"K","secret_key_env":"S"}]}"#,
            "storage[1].bucket: missing",
        ),
        (
            r#"{"storage":[{"name":"a","type":"ftp","priority":1}]}"#,
            "storage[0].type: \"ftp\" is not a storage type",
        ),
        (
            r#"{"storage":[{"name":"a","type":"s3","priority":1,"bucket":"b","access_key_env":"NOPE","secret_key_env":"S"}]}"#,
            "storage[0].access_key_env: NOPE is not set",
        ),
        (
            r#"{"sites":[{"name":"a","path":"/x","database":{"name":"d","user":"u"}}]}"#,
            "sites[0].database.password_env: missing",
        ),
        (
            r#"{"sites":[{"name":"a","path":"/x","enabled":"yes"}]}"#,
            "sites[0].enabled: invalid type",
        ),
        (
            r#"{"sites":[{"name":"a/b","path":"/x"}]}"#,
            "sites[0].name: \"a/b\" is not a valid name",
        ),
        (
            r#"{"compression":{"level":40}}"#,
            "compression.level: must be between 1 and 19",
        ),
        (
            r#"{"sites":[{"name":"a","path":"/x","exclude":["a[" ]}]}"#,
            "sites[0].exclude[0]: not a valid glob",
        ),
        (
            r#"{"storage":[{"name":"a","type":"local","priority":1,"path":"/b","bucket":"x"}]}"#,
            "storage[0].bucket: not allowed for a local storage",
        ),
        (r#"{"sites": 3}"#, "sites: invalid type"),
        (
            r#"{"storage":[{"name":"a","type":"local","priority":1,"path":"/srv/b\n/etc"}]}"#,
            "storage[0].path: holds a control character (a line break?)",
        ),
        (
            r#"{"storage":[{"name":"a","type":"local","priority":1,"path":"/srv/\"b"}]}"#,
            "storage[0].path: holds a control character (a line break?), a quote",
        ),
        (
            r#"{"storage":[{"name":"a","type":"local","priority":1,"path":"/"}]}"#,
            "storage[0].path: is the root directory",
        ),
        (
            r#"{"storage":[{"name":"a","type":"local","priority":1,"path":"/etc/wpb/"}]}"#,
            "storage[0].path: is inside /etc, a system directory",
        ),
        (
            r#"{"storage":[{"name":"a","type":"local","priority":1,"path":"/srv/../etc"}]}"#,
            "storage[0].path: holds `..`",
        ),
    ]);
}

#[test]
fn errors_name_the_json_path_of_retention_report_and_names() {
    assert_errors(&[
        (
            r#"{"retention":{"keep_daily":7,"keep_hourly":24}}"#,
            "retention.keep_hourly: unknown key `keep_hourly`",
        ),
        (
            r#"{"retention":{"keep_daily":-1}}"#,
            "retention.keep_daily: invalid value",
        ),
        (
            r#"{"retention":{"keep_last":0}}"#,
            "retention: keeps nothing",
        ),
        (
            r#"{"report":{"on_failure":true,"on_sucess":true}}"#,
            "report.on_sucess: unknown key `on_sucess`",
        ),
        (
            r#"{"report":{"on_failure":"yes"}}"#,
            "report.on_failure: invalid type",
        ),
        (
            r#"{"sites":[{"name":"a","path":"/x"},{"name":"a","path":"/y"}]}"#,
            "sites[1].name: \"a\" is used twice",
        ),
    ]);
}

#[test]
fn errors_name_the_json_path_of_encryption_healthchecks_database() {
    assert_errors(&[
        (
            r#"{"encryption":{"recipients":["age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq","age1bad"]}}"#,
            "encryption.recipients[1]: \"age1bad\" is not an age public key",
        ),
        (
            r#"{"encryption":{"recipients":[]}}"#,
            "encryption.recipients: no recipient",
        ),
        (r#"{"encryption":{}}"#, "encryption.recipients: missing"),
        (
            r#"{"encryption":{"recipients":["x"],"passphrase":"p"}}"#,
            "encryption.passphrase: unknown key",
        ),
        (
            r#"{"healthchecks":{"url":"ftp://x"}}"#,
            "healthchecks.url: must start with https://",
        ),
        (
            r#"{"healthchecks":{"start":"https://x/s","succes":"https://x"}}"#,
            "healthchecks.succes: unknown key",
        ),
        (r#"{"healthchecks":{}}"#, "healthchecks: no ping URL"),
        (
            r#"{"database":{"stall_timeout_secs":0}}"#,
            "database: timeouts must be at least 1 second",
        ),
        (
            r#"{"database":{"timeout":3}}"#,
            "database.timeout: unknown key",
        ),
    ]);
}

#[test]
fn storage_sorted_and_secrets_resolved() {
    let c = Config::parse(
        r#"{"server_id":"web-01","storage":[
            {"name":"b","type":"local","priority":2,"path":"/b"},
            {"name":"a","type":"s3","priority":1,"bucket":"bk","endpoint":"http://127.0.0.1:9000/","access_key_env":"K","secret_key_env":"S"}]}"#,
        "c",
        &env(),
    )
    .unwrap();
    assert_eq!(c.server_id, "web-01");
    assert_eq!(c.storage[0].name, "a");
    let StorageKind::S3(s3) = &c.storage[0].kind else {
        panic!()
    };
    assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert!(s3.path_style);
    assert_eq!(s3.secret_key.expose(), "secret");
    assert!(!format!("{c:?}").contains("secret\""));
}

#[test]
fn server_id_defaults_to_env() {
    let c = Config::parse("{}", "c", &env()).unwrap();
    assert_eq!(c.server_id, "test-host");
    assert!(c.retention.is_none());
    assert!(!c.report.on_failure);
    let c = Config::parse(r#"{"report":{"on_failure":true}}"#, "c", &env()).unwrap();
    assert!(c.report.on_failure);
}

#[test]
fn broken_json_is_named_by_line_and_column_and_priorities_are_unique() {
    assert_errors(&[
        (
            "{\"storage\": [\n  {\"name\": \"a\",, \"type\": \"local\"}\n]}",
            "config.json: line 2, column 16: key must be a string",
        ),
        (
            "{\"storage\": [\n  {\"name\": \"a\", \"type\": \"local\", \"path\": \"/a\"},\n]}",
            "config.json: line 2, column 47: trailing comma",
        ),
        (
            "{\"server_id\": \"x\",\n\n  }",
            "config.json: line 1, column 18: trailing comma",
        ),
        (
            "{\"server_id\": \"x\"",
            "config.json: line 1, column 17: EOF while parsing an object",
        ),
        (
            r#"{"storage":[{"name":"a","type":"local","priority":1,"path":"/a"},
                           {"name":"b","type":"local","priority":1,"path":"/b"}]}"#,
            "storage[1].priority: 1 is also the priority of \"a\"",
        ),
    ]);
}

#[test]
fn a_server_id_from_the_environment_is_checked_like_a_name() {
    let mut vars = HashMap::from([("SERVER_ID".to_string(), "a/b".to_string())]);
    let e = Config::parse("{}", "c", &Env::from_map(vars.clone())).unwrap_err();
    assert_eq!(e.path, "server_id");
    assert!(e.message.contains("SERVER_ID"), "{e}");
    vars.insert("SERVER_ID".into(), "web-01".into());
    let c = Config::parse("{}", "c", &Env::from_map(vars)).unwrap();
    assert_eq!(c.server_id, "web-01");
}

#[test]
fn generic_host_names_are_recognised() {
    for id in [
        "ubuntu",
        "Debian",
        "localhost",
        "ip-10-0-1-23",
        "raspberrypi",
    ] {
        assert!(super::is_generic_server_id(id), "{id}");
    }
    for id in ["web-01", "shop-eu-2", "ip-address-book"] {
        assert!(!super::is_generic_server_id(id), "{id}");
    }
}

#[test]
fn retention_rules_default_to_zero() {
    let c = Config::parse(r#"{"retention":{"keep_weekly":4}}"#, "c", &env()).unwrap();
    assert_eq!(
        c.retention,
        Some(Policy {
            keep_weekly: 4,
            ..Policy::default()
        })
    );
}

/// `"retention": {}` is the documented default policy, not a refusal; explicit zeros still are
/// refused, and a block with some rules keeps its meaning (the absent rules are 0).
#[test]
fn an_empty_retention_block_takes_the_defaults() {
    let c = Config::parse(r#"{"retention":{}}"#, "c", &env()).unwrap();
    let p = c.retention.expect("an empty block is a policy");
    assert_eq!(p, super::validate::DEFAULT_RETENTION);
    assert_eq!(
        (
            p.keep_last,
            p.keep_daily,
            p.keep_weekly,
            p.keep_monthly,
            p.keep_yearly
        ),
        (0, 7, 4, 12, 0),
        "the defaults docs/formats.md and README state"
    );
    let doc = "`{}` takes the defaults: keep_daily 7, keep_weekly 4, keep_monthly 12";
    assert!(
        include_str!("../../docs/formats.md").contains(doc),
        "docs/formats.md must state the defaults: {doc}"
    );
    let c = Config::parse(r#"{"retention":{"keep_last":2}}"#, "c", &env()).unwrap();
    assert_eq!(
        c.retention,
        Some(Policy {
            keep_last: 2,
            ..Policy::default()
        })
    );
    let e = err(r#"{"retention":{"keep_daily":0,"keep_weekly":0}}"#);
    assert!(e.contains("retention: keeps nothing"), "{e}");
}

#[test]
fn restore_copies_are_kept_a_week_unless_said() {
    let c = Config::parse("{}", "c", &env()).unwrap();
    assert_eq!(c.restore.keep_copies_days, 7);
    let c = Config::parse(r#"{"restore":{"keep_copies_days":30}}"#, "c", &env()).unwrap();
    assert_eq!(c.restore.keep_copies_days, 30);
    assert_errors(&[
        (
            r#"{"restore":{"keep_copies_days":0}}"#,
            "restore.keep_copies_days: must be at least 1",
        ),
        (
            r#"{"restore":{"keep_days":3}}"#,
            "restore.keep_days: unknown key `keep_days`",
        ),
    ]);
}

#[test]
fn the_dashboard_url_is_https_or_local_and_holds_no_secret() {
    let url = |u: &str| {
        Config::parse(
            &format!(r#"{{"dashboard_url": "{u}"}}"#),
            "config.json",
            &env(),
        )
        .map(|c| c.dashboard_url)
    };
    let ok = url("https://dash.example.workers.dev/").unwrap();
    assert_eq!(ok.as_deref(), Some("https://dash.example.workers.dev"));
    assert_eq!(
        url("http://127.0.0.1:8787").unwrap().as_deref(),
        Some("http://127.0.0.1:8787")
    );
    let absent = Config::parse("{}", "config.json", &env()).unwrap();
    assert_eq!(absent.dashboard_url, None, "absent: no links");
    assert_errors(&[
        (
            r#"{"dashboard_url": "dash.example.com"}"#,
            "config.json: dashboard_url: \"dash.example.com\" is not a URL",
        ),
        (
            r#"{"dashboard_url": "http://dash.example.com"}"#,
            "dashboard_url: \"http://dash.example.com\" must start with https://",
        ),
        (
            r#"{"dashboard_url": "https://me:pw@dash.example.com"}"#,
            "dashboard_url: must not hold a user or password",
        ),
        (
            r#"{"dashboard_url": "https://dash.example.com/?token=x"}"#,
            "dashboard_url: \"https://dash.example.com/?token=x\": remove the part from '?'",
        ),
        (r#"{"dashboard_url": 3}"#, "dashboard_url: invalid type"),
    ]);
}

#[test]
fn drill_settings_default_and_are_checked() {
    let c = Config::parse("{}", "c", &env()).unwrap();
    assert_eq!(c.drill, DrillSettings::default());
    assert_eq!(c.drill.max_age_days, 8);
    let c = Config::parse(
        r#"{"drill":{"max_age_days":15,"database":{"host":"db.internal:3307","user":"drill","password_env":"PW"}}}"#,
        "c",
        &env(),
    )
    .unwrap();
    assert_eq!(c.drill.max_age_days, 15);
    let db = c.drill.database.expect("drill.database");
    assert_eq!((db.user.as_str(), db.password.expose()), ("drill", "pw"));
    assert_eq!(
        db.host,
        DbHost::Tcp {
            host: "db.internal".into(),
            port: Some(3307)
        }
    );
    assert_errors(&[
        (
            r#"{"drill":{"max_age_days":0}}"#,
            "drill.max_age_days: must be at least 1",
        ),
        (
            r#"{"drill":{"database":{"password_env":"PW"}}}"#,
            "drill.database.user: missing",
        ),
        (
            r#"{"drill":{"database":{"user":"u","password_env":"NOPE"}}}"#,
            "drill.database.password_env: NOPE is not set",
        ),
        (r#"{"drill":{"max_age":3}}"#, "drill.max_age: unknown key"),
    ]);
}

#[test]
fn binlog_settings_default_and_are_checked() {
    assert_eq!(Config::parse("{}", "c", &env()).unwrap().binlog, None);
    let c = Config::parse(r#"{"binlog":{}}"#, "c", &env()).unwrap();
    let b = c.binlog.expect("binlog");
    assert_eq!((b.every_minutes, b.database), (5, None));
    let c = Config::parse(
        r#"{"binlog":{"every_minutes":2,"database":{"user":"shipper","password_env":"PW"}}}"#,
        "c",
        &env(),
    )
    .unwrap();
    let b = c.binlog.expect("binlog");
    assert_eq!(b.every_minutes, 2);
    let db = b.database.expect("binlog.database");
    assert_eq!((db.user.as_str(), db.password.expose()), ("shipper", "pw"));
    assert_errors(&[
        (
            r#"{"binlog":{"every_minutes":0}}"#,
            "binlog.every_minutes: must be 1 to 1440",
        ),
        (
            r#"{"binlog":{"database":{"password_env":"PW"}}}"#,
            "binlog.database.user: missing",
        ),
        (r#"{"binlog":{"every":3}}"#, "binlog.every: unknown key"),
    ]);
}

#[test]
fn a_site_is_found_by_name_or_the_error_lists_the_known_ones() {
    let c = Config::parse(
        r#"{"sites":[{"name":"blog","path":"/srv/blog"},{"name":"shop","path":"/srv/shop","enabled":false}],
            "storage":[{"name":"disk","type":"local","priority":1,"path":"/b"}]}"#,
        "c",
        &env(),
    )
    .unwrap();
    assert_eq!(c.site("shop").unwrap().path, Path::new("/srv/shop"));
    assert_eq!(
        c.site("Blog").unwrap_err().to_string(),
        "--site Blog: no such site in config.json (known: blog, shop)"
    );
    let none = Config::parse("{}", "c", &env()).unwrap();
    assert_eq!(
        none.site("blog").unwrap_err().to_string(),
        "--site blog: no such site in config.json (known: )"
    );
}

#[test]
fn errors_name_the_json_path_of_hooks_excluded_tables_and_the_upload_limit() {
    assert_errors(&[
        (
            r#"{"sites":[{"name":"a","path":"/x","exclude_tables":["wp_logs","wp.posts"]}]}"#,
            "sites[0].exclude_tables[1]: \"wp.posts\" is not a table name",
        ),
        (
            r#"{"sites":[{"name":"a","path":"/x","exclude_tables":["wp_logs","wp_logs"]}]}"#,
            "sites[0].exclude_tables[1]: \"wp_logs\" is listed twice",
        ),
        (
            r#"{"sites":[{"name":"a","path":"/x","exclude_tables":[""]}]}"#,
            "sites[0].exclude_tables[0]: \"\" is not a table name",
        ),
        (
            r#"{"sites":[{"name":"a","path":"/x"},{"name":"b","path":"/y","hooks":{"before_backup":[["true"],[]]}}]}"#,
            "sites[1].hooks.before_backup[1]: an empty command",
        ),
        (
            r#"{"sites":[{"name":"a","path":"/x","hooks":{"after_restore":[["", "x"]]}}]}"#,
            "sites[0].hooks.after_restore[0][0]: the program is empty",
        ),
        (
            r#"{"sites":[{"name":"a","path":"/x","hooks":{"after_backup":"wp cache flush"}}]}"#,
            "sites[0].hooks.after_backup: invalid type: string",
        ),
        (
            r#"{"sites":[{"name":"a","path":"/x","hooks":{"before_backup":[["a"]],"timeout_secs":0}}]}"#,
            "sites[0].hooks.timeout_secs: must be between 1 and 86400",
        ),
        (
            r#"{"sites":[{"name":"a","path":"/x","hooks":{"befor_backup":[]}}]}"#,
            "sites[0].hooks.befor_backup: unknown key",
        ),
        (
            r#"{"upload":{"max_mib_per_sec":0}}"#,
            "upload.max_mib_per_sec: must be a number above 0",
        ),
        (
            r#"{"upload":{"max_mib_per_sec":-2.5}}"#,
            "upload.max_mib_per_sec: must be a number above 0",
        ),
        (
            r#"{"upload":{"max_mib_per_sec":"fast"}}"#,
            "upload.max_mib_per_sec: invalid type: string",
        ),
    ]);
}

#[test]
fn hooks_excluded_tables_and_the_upload_limit_are_read() {
    let text = r#"{"sites":[{"name":"a","path":"/x","exclude_tables":["wp_logs","wp_$x-1"],
        "hooks":{"before_backup":[["wp","maintenance-mode","activate"]],"after_backup":[["sh","-c","echo done"]],"timeout_secs":60}}],
        "upload":{"max_mib_per_sec":0.5}}"#;
    let c = Config::parse(text, "config.json", &env()).unwrap();
    let site = &c.sites[0];
    assert_eq!(site.exclude_tables, ["wp_logs", "wp_$x-1"]);
    assert_eq!(
        site.hooks.before_backup,
        [["wp", "maintenance-mode", "activate"]]
    );
    assert_eq!(site.hooks.after_backup, [["sh", "-c", "echo done"]]);
    assert!(site.hooks.before_restore.is_empty() && site.hooks.after_restore.is_empty());
    assert_eq!(site.hooks.timeout_secs, 60);
    assert_eq!(c.upload.max_bytes_per_sec, Some(512 * 1024));
    let plain = Config::parse(r#"{"sites":[{"name":"a","path":"/x"}]}"#, "c", &env()).unwrap();
    assert_eq!(plain.sites[0].hooks, Hooks::default());
    assert_eq!(plain.sites[0].hooks.timeout_secs, 300);
    assert_eq!(plain.upload.max_bytes_per_sec, None);
}
