//! Restores that would hurt what they do not own are refused before anything is read or
//! changed (issue 12, item 8): exit status 2 and a message that says what to give instead.
//! No server is needed: the refusal comes before the config is even loaded.

use std::process::Command;

fn restore(args: &[&str]) -> (Option<i32>, String) {
    let home = tempfile::Builder::new()
        .prefix("wpb-refuse")
        .tempdir()
        .unwrap();
    let out = Command::new(crate::util::bin())
        .args([
            "--home",
            &home.path().to_string_lossy(),
            "restore",
            "--site",
            "blog",
        ])
        .args(args)
        .env_remove("WPBACKUP_HOME")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_clone_with_a_new_address_needs_its_own_database() {
    let (code, err) = restore(&["--to", "/srv/stg", "--url", "https://stg.example.com"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--db-name") && err.contains("live site"),
        "{err}"
    );
    // With its own database it gets past the arguments: with no config.json, `--site blog
    // --to DIR` is the quick start's site (issue 26), which its empty storage does not hold.
    let (code, err) = restore(&[
        "--to",
        "/srv/stg",
        "--url",
        "https://stg.example.com",
        "--db-name",
        "wp_stg",
    ]);
    assert!(!err.contains("--db-name"), "{err}");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no archive of site blog"), "{err}");
}

#[test]
fn an_address_without_a_host_is_refused() {
    for url in [
        "http://",
        "https://",
        "https:///path",
        "example.com",
        "http:// x",
    ] {
        let (code, err) = restore(&["--url", url, "--yes"]);
        assert_eq!(code, Some(2), "{url}: {err}");
        assert!(err.contains("give the full address"), "{url}: {err}");
    }
}
