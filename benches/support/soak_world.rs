//! The soak's world (issue 15 item 3): the harness's servers, three WordPress sites, the
//! home with config.json and .env that every run of the soak uses.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::json;
use tempfile::TempDir;

use crate::checks::Places;
use crate::util::d1::D1Sim;
use crate::util::mariadb::MariaDb;
use crate::util::s3::S3Server;
use crate::util::wordpress::WordPress;

pub const BUCKET: &str = "wp-backups";
pub const KEYS: [(&str, &str); 2] = [
    ("primary-access", "primary-secret-Zq9"),
    ("secondary-access", "secondary-secret-Xw4"),
];
pub const SITES: [&str; 3] = ["alpha", "beta", "gamma"];
pub struct World {
    pub db: MariaDb,
    pub sites: Vec<WordPress>,
    pub primary: S3Server,
    pub secondary: S3Server,
    pub d1: D1Sim,
    pub home: TempDir,
    pub store: TempDir,
    pub logs: TempDir,
    /// config.json turns differential archives on (`--differential`).
    pub differential: bool,
}

pub fn build_world(differential: bool) -> World {
    let db = MariaDb::start();
    let sites: Vec<WordPress> = SITES.iter().map(|n| WordPress::install(&db, n)).collect();
    // One site big enough for a multipart upload (parts of 5 MiB).
    sites[0].grow(12 * 1024 * 1024);
    let primary = S3Server::start(KEYS[0].0, KEYS[0].1);
    let secondary = S3Server::start(KEYS[1].0, KEYS[1].1);
    primary.create_bucket(BUCKET);
    secondary.create_bucket(BUCKET);
    let d1 = D1Sim::start();
    let tmp = |prefix: &str| {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("tempdir")
    };
    let world = World {
        db,
        sites,
        primary,
        secondary,
        d1,
        home: tmp("wpb-soak-home"),
        store: tmp("wpb-soak-store"),
        logs: tmp("wpb-soak-logs"),
        differential,
    };
    std::fs::create_dir(world.tmp()).expect("TMPDIR of the runs");
    write_env(&world);
    write_config(&world, false);
    world
}

/// With differentials on, what changes in a site between runs: a new upload in the second
/// site, and the one of three runs before deleted.
pub fn churn(w: &World, run: usize) {
    let dir = w.sites[1].path.join("wp-content/uploads");
    std::fs::create_dir_all(&dir).expect("uploads");
    std::fs::write(dir.join(format!("soak-{run}.txt")), format!("run {run}\n")).expect("upload");
    let _ = std::fs::remove_file(dir.join(format!("soak-{}.txt", run.saturating_sub(3))));
}

impl World {
    pub fn tmp(&self) -> PathBuf {
        self.home.path().join("tmp")
    }

    pub fn places(&self) -> Places {
        let bucket = |s: &S3Server| s.root.join(BUCKET);
        Places {
            home: self.home.path().to_path_buf(),
            tmp: self.tmp(),
            bucket_roots: vec![
                ("primary".into(), bucket(&self.primary)),
                ("secondary".into(), bucket(&self.secondary)),
                ("disk".into(), self.store.path().to_path_buf()),
            ],
            s3_roots: vec![
                ("primary".into(), self.primary.root.clone()),
                ("secondary".into(), self.secondary.root.clone()),
            ],
            site_parents: self
                .sites
                .iter()
                .filter_map(|s| s.path.parent().map(Path::to_path_buf))
                .collect(),
            sites: SITES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

pub fn write_env(w: &World) {
    let mut text = String::new();
    for (prefix, (key, secret)) in ["PRIMARY", "SECONDARY"].iter().zip(KEYS) {
        text.push_str(&format!(
            "{prefix}_ACCESS_KEY='{key}'\n{prefix}_SECRET_KEY='{secret}'\n"
        ));
    }
    for (k, v) in w.d1.env() {
        text.push_str(&format!("{k}='{v}'\n"));
    }
    let path = w.home.path().join(".env");
    std::fs::write(&path, text).expect("write .env");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod .env");
}

/// config.json: the three sites, primary and secondary S3; with `disk_first`, a local storage
/// before them (the disk-full fault).
pub fn write_config(w: &World, disk_first: bool) {
    let s3 = |name: &str, priority: u32, server: &S3Server, prefix: &str| {
        json!({
            "name": name, "type": "s3", "priority": priority,
            "endpoint": server.endpoint, "region": "us-east-1", "bucket": BUCKET,
            "path_style": true,
            "access_key_env": format!("{prefix}_ACCESS_KEY"),
            "secret_key_env": format!("{prefix}_SECRET_KEY"),
        })
    };
    let mut storage = vec![
        s3("primary", 2, &w.primary, "PRIMARY"),
        s3("secondary", 3, &w.secondary, "SECONDARY"),
    ];
    if disk_first {
        storage.insert(
            0,
            json!({ "name": "disk", "type": "local", "priority": 1, "path": w.store.path() }),
        );
    }
    let sites: Vec<_> = w
        .sites
        .iter()
        .zip(SITES)
        .map(|(s, name)| json!({ "name": name, "path": s.path }))
        .collect();
    let mut config = json!({
        "server_id": "soak",
        "sites": sites,
        "storage": storage,
        "upload": { "part_size_mib": 5, "timeout_secs": 3, "connect_timeout_secs": 2, "max_attempts": 2 },
        "database": { "connect_timeout_secs": 2, "stall_timeout_secs": 3 },
    });
    if w.differential {
        config["differential"] = json!({});
    }
    let text = serde_json::to_string_pretty(&config).expect("config json");
    std::fs::write(w.home.path().join("config.json"), text).expect("write config.json");
}
