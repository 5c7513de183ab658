//! Failover against two real S3 servers (s3s-fs): whatever stops the primary (down, bucket
//! gone), the archive lands whole on the secondary and the result names the primary and why;
//! with every storage down the result gives each one's reason and nothing is stored.

use sha2::{Digest, Sha256};

use crate::fixture::{self, BUCKET, Fixture};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one archive on the secondary is the one recorded, byte for byte, and opens with tar.
fn assert_intact_on_secondary(f: &Fixture) {
    assert!(fixture::stored(&f.primary).is_empty());
    let stored = fixture::stored(&f.secondary);
    assert_eq!(stored.len(), 1, "{stored:?}");
    let (key, path) = &stored[0];
    let bytes = std::fs::read(path).unwrap();
    let records = f.archive_rows();
    assert_eq!(records.len(), 1);
    let (filename, storage, size, sha256) = &records[0];
    assert!(key.ends_with(filename.as_str()), "{key} vs {filename}");
    assert_eq!(storage, "secondary");
    assert_eq!(*size as usize, bytes.len());
    assert_eq!(*sha256, hex::encode(Sha256::digest(&bytes)));
    let dir = fixture::extract(path);
    assert!(dir.path().join("database.sql").is_file());
    assert!(dir.path().join("files/wp-config.php").is_file());
}

#[test]
fn primary_down_lands_whole_on_the_secondary() {
    let mut f = Fixture::new("fo-down");
    f.primary.kill();
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = f.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "WARNING");
    assert_eq!(rows[0].storage_name.as_deref(), Some("secondary"));
    assert!(
        rows[0]
            .details
            .contains("a storage failed first: primary skipped: "),
        "{}",
        rows[0].details
    );
    assert_intact_on_secondary(&f);

    // Once the primary is back, the next run goes to it again.
    f.primary.restart();
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = f.rows();
    assert_eq!(rows[1].status, "SUCCESS", "{:?}", rows[1]);
    assert_eq!(rows[1].storage_name.as_deref(), Some("primary"));
}

#[test]
fn primary_bucket_missing_lands_whole_on_the_secondary() {
    let f = Fixture::new("fo-nobucket");
    std::fs::remove_dir_all(f.primary.root.join(BUCKET)).unwrap();
    // A dry run says what the real run will say (issue 16, item 4): a warning, the secondary,
    // and why the primary was passed over; it stores and records nothing.
    let out = f.run(&["--json", "backup", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let site = &doc["sites"][0];
    assert_eq!(site["status"], "WARNING", "{site}");
    assert_eq!(site["storage"], "secondary", "{site}");
    let d = site["details"].as_str().unwrap_or_default();
    assert!(d.contains("primary skipped") && d.contains("bucket"), "{d}");
    assert!(fixture::stored(&f.secondary).is_empty());
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = f.rows();
    let d = &rows[0].details;
    assert!(
        d.contains("failed first: primary") && d.contains("bucket"),
        "{d}"
    );
    assert_intact_on_secondary(&f);
}

#[test]
fn all_down_gives_the_reason_of_each() {
    let mut f = Fixture::new("fo-alldown");
    f.primary.kill();
    f.secondary.kill();
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = f.rows();
    assert_eq!(rows[0].status, "ERROR");
    let d = &rows[0].details;
    assert!(
        d.starts_with("not stored: no storage available (primary skipped: ")
            && d.contains("; secondary skipped: "),
        "{d}"
    );
    assert!(f.archive_rows().is_empty());
}
