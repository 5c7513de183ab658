//! `.env` as people write it by hand (issue 16, item 1): an unambiguous value with a `"` inside
//! is accepted; an ambiguous line stops the run with exit 2, a message that names the file,
//! the line and the key but never a value from the file, and an ERROR row in backups.db.
//! No server is needed: everything happens before the first connection.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;

fn home_with(env_text: &str) -> tempfile::TempDir {
    let home = tempfile::Builder::new()
        .prefix("wpb-dotenv")
        .tempdir()
        .unwrap();
    let site = home.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    let config = json!({
        "server_id": "web-01",
        "sites": [ { "name": "blog", "path": site } ],
        "storage": [ { "name": "disk", "type": "local", "priority": 1,
                       "path": home.path().join("archives") } ]
    });
    std::fs::write(home.path().join("config.json"), config.to_string()).unwrap();
    let env = home.path().join(".env");
    std::fs::write(&env, env_text).unwrap();
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o600)).unwrap();
    home
}

fn wpbackup(home: &Path, args: &[&str]) -> Output {
    Command::new(crate::util::bin())
        .args(["--home", &home.to_string_lossy()])
        .args(args)
        .env_remove("WPBACKUP_HOME")
        .output()
        .unwrap()
}

#[test]
fn a_quote_inside_an_unquoted_value_is_read_as_written() {
    let home = home_with("A=p@ss\"w0rd\nS3_SECRET=topsecret\n");
    let out = wpbackup(home.path(), &["list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("topsecret") && !err.contains("w0rd"), "{err}");
}

#[test]
fn an_ambiguous_line_names_file_line_and_key_never_a_value_and_is_logged() {
    let home = home_with("# secrets\nA='p@ss\"w0rd\nS3_SECRET=topsecret\n");
    let out = wpbackup(home.path(), &["backup"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let env = home.path().join(".env");
    assert!(
        err.contains(&format!("{}: line 2 (A):", env.display())),
        "{err}"
    );
    assert!(err.contains("single quote"), "{err}");
    for secret in ["p@ss", "w0rd", "topsecret"] {
        assert!(!err.contains(secret), "a value reached stderr: {err}");
    }
    // The run is recorded, with the same message and no value either.
    let db = rusqlite::Connection::open(home.path().join("backups.db")).unwrap();
    let rows: Vec<(String, String, String)> = db
        .prepare("SELECT status, site_name, details FROM backup_log")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (status, site, details) = &rows[0];
    assert_eq!((status.as_str(), site.as_str()), ("ERROR", "*"));
    assert!(details.contains("line 2 (A)"), "{details}");
    assert!(
        !details.contains("topsecret") && !details.contains("w0rd"),
        "{details}"
    );
}
