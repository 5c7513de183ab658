//! A backup fixture: a real WordPress site on a throwaway MariaDB, two S3 servers (primary and
//! secondary, each with its own keys), a home directory with config.json and .env, and helpers
//! to run the real `wpbackup` binary and read what it recorded and stored.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::util::mariadb::MariaDb;
use crate::util::s3::S3Server;
use crate::util::wordpress::WordPress;

pub const BUCKET: &str = "wp-backups";
pub const PRIMARY_KEY: &str = "primary-access";
pub const PRIMARY_SECRET: &str = "primary-secret-Zq9";
pub const SECONDARY_KEY: &str = "secondary-access";
pub const SECONDARY_SECRET: &str = "secondary-secret-Xw4";

pub struct Fixture {
    pub db: MariaDb,
    pub site: WordPress,
    pub primary: S3Server,
    pub secondary: S3Server,
    pub home: TempDir,
}

/// One `backup_log` row.
#[derive(Debug, Clone)]
pub struct Row {
    pub status: String,
    pub details: String,
    pub site_name: String,
    pub server_id: String,
    pub storage_name: Option<String>,
    pub archive_key: Option<String>,
}

impl Fixture {
    /// Everything up, buckets created on both servers, config written with both storages.
    pub fn new(site_name: &str) -> Fixture {
        Fixture::on(MariaDb::start(), site_name)
    }

    /// [`Fixture::new`] on a server that writes a binary log (point-in-time recovery).
    pub fn with_binlog(site_name: &str) -> Fixture {
        Fixture::on(MariaDb::with_binlog(), site_name)
    }

    fn on(db: MariaDb, site_name: &str) -> Fixture {
        let site = WordPress::install(&db, site_name);
        let primary = S3Server::start(PRIMARY_KEY, PRIMARY_SECRET);
        let secondary = S3Server::start(SECONDARY_KEY, SECONDARY_SECRET);
        primary.create_bucket(BUCKET);
        secondary.create_bucket(BUCKET);
        let home = tempfile::Builder::new()
            .prefix("wpb-home")
            .tempdir()
            .expect("home tempdir");
        let f = Fixture {
            db,
            site,
            primary,
            secondary,
            home,
        };
        f.write_env(&[]);
        f.write_config(f.default_config());
        f
    }

    /// A fixture whose one storage is the local directory returned beside it (its archives
    /// are files, easy to doctor or to swap for FIFOs).
    pub fn with_local_storage(site_name: &str) -> (Fixture, TempDir) {
        let f = Fixture::new(site_name);
        let store = tempfile::tempdir().expect("store tempdir");
        let mut config = f.default_config();
        config["storage"] =
            json!([{ "name": "disk", "type": "local", "priority": 1, "path": store.path() }]);
        f.write_config(config);
        (f, store)
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The run lock of the home, held (as a running backup holds it) until dropped.
    pub fn hold_run_lock(&self) -> std::fs::File {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.home().join("wpbackup.lock"))
            .unwrap();
        lock.lock().unwrap();
        lock
    }

    pub fn storage_json(name: &str, priority: u32, server: &S3Server, prefix: &str) -> Value {
        json!({
            "name": name, "type": "s3", "priority": priority,
            "endpoint": server.endpoint, "region": "us-east-1", "bucket": BUCKET,
            "path_style": true,
            "access_key_env": format!("{}_ACCESS_KEY", prefix),
            "secret_key_env": format!("{}_SECRET_KEY", prefix),
        })
    }

    pub fn default_config(&self) -> Value {
        json!({
            "server_id": "test-server",
            "sites": [ { "name": "blog", "path": self.site.path, "exclude": ["wp-content/cache", "*.log"] } ],
            "storage": [
                Self::storage_json("primary", 1, &self.primary, "PRIMARY"),
                Self::storage_json("secondary", 2, &self.secondary, "SECONDARY"),
            ],
            "upload": { "part_size_mib": 5, "timeout_secs": 20, "connect_timeout_secs": 3, "max_attempts": 2 }
        })
    }

    pub fn write_config(&self, config: Value) {
        let text = serde_json::to_string_pretty(&config).expect("config json");
        std::fs::write(self.home().join("config.json"), text).expect("write config.json");
    }

    /// Write .env (0600) with both servers' keys; `overrides` replace or add variables.
    pub fn write_env(&self, overrides: &[(&str, &str)]) {
        let mut vars = vec![
            ("PRIMARY_ACCESS_KEY".to_string(), PRIMARY_KEY.to_string()),
            ("PRIMARY_SECRET_KEY".to_string(), PRIMARY_SECRET.to_string()),
            (
                "SECONDARY_ACCESS_KEY".to_string(),
                SECONDARY_KEY.to_string(),
            ),
            (
                "SECONDARY_SECRET_KEY".to_string(),
                SECONDARY_SECRET.to_string(),
            ),
        ];
        for (k, v) in overrides {
            vars.retain(|(name, _)| name != k);
            vars.push((k.to_string(), v.to_string()));
        }
        let text: String = vars.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
        let path = self.home().join(".env");
        std::fs::write(&path, text).expect("write .env");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod .env");
    }

    /// The `wpbackup` command with this fixture's home and a clean environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(crate::util::bin());
        cmd.args(["--home", &self.home().to_string_lossy()])
            .args(args);
        cmd.env_remove("WPBACKUP_HOME")
            .env_remove("RUST_LOG")
            .env_remove("SERVER_ID");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().expect("run wpbackup");
        eprintln!(
            "wpbackup {args:?} -> {:?}\n--- stdout\n{}--- stderr\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `backup_log` rows, oldest first.
    pub fn rows(&self) -> Vec<Row> {
        let conn =
            rusqlite::Connection::open(self.home().join("backups.db")).expect("open backups.db");
        let mut stmt = conn
            .prepare(
                "SELECT status, details, site_name, server_id, storage_name, archive_key FROM backup_log ORDER BY id",
            )
            .expect("prepare");
        stmt.query_map([], |r| {
            Ok(Row {
                status: r.get(0)?,
                details: r.get(1)?,
                site_name: r.get(2)?,
                server_id: r.get(3)?,
                storage_name: r.get(4)?,
                archive_key: r.get(5)?,
            })
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    /// `s3_archives` rows: (filename, storage_name, file_size, sha256).
    pub fn archive_rows(&self) -> Vec<(String, String, i64, String)> {
        let conn =
            rusqlite::Connection::open(self.home().join("backups.db")).expect("open backups.db");
        let mut stmt = conn
            .prepare(
                "SELECT filename, storage_name, file_size, sha256 FROM s3_archives ORDER BY id",
            )
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }
}

/// Extract an archive with the system's plain `tar --zstd`, as a person would on the worst day.
pub fn extract(archive: &Path) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("wpb-extract")
        .tempdir()
        .expect("tempdir");
    let out = Command::new("tar")
        .arg("--zstd")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(dir.path())
        .output()
        .expect("run tar");
    assert!(
        out.status.success(),
        "tar --zstd -xf failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Run `cmd` to its end: (exit code, peak RSS in bytes (the child's own VmHWM), wall seconds).
pub fn run_measured(mut cmd: Command) -> (i32, u64, f64) {
    let started = std::time::Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The child's own high-water mark (VmHWM, per address space), read until it exits. Not
    // wait4's ru_maxrss: a child spawned with vfork (posix_spawn) inherits the test process's
    // high-water mark at exec, and parallel tests push that to hundreds of MiB.
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let code = loop {
        if let Some(hwm) = std::fs::read_to_string(&status).ok().and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        }) {
            peak = peak.max(hwm * 1024);
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s.code().unwrap_or(-1);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(peak > 0, "no VmHWM read for the child");
    (code, peak, started.elapsed().as_secs_f64())
}

/// Block until process `pid` catches `signal` (its handler is installed: bit `signal - 1` of
/// SigCgt in /proc/PID/status), so that a test's signal is handled rather than killing the
/// process before it could be; false if it exited first.
pub fn wait_until_catching(pid: u32, signal: i32) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            return false;
        };
        if text
            .lines()
            .any(|l| l.starts_with("State:") && l.contains("zombie"))
        {
            return false;
        }
        let caught = text
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0);
        if caught & (1 << (signal - 1)) != 0 {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    false
}

/// Entries under `dir`, recursively (0 when it does not exist).
pub fn walk_count(dir: &Path) -> usize {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            n += 1;
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                n += walk_count(&e.path());
            }
        }
    }
    n
}

/// A directory holding an executable `name` running `script`, and a PATH that finds it before
/// the real tool (a dump tool that hangs, stops early, ...). Keep the directory alive.
pub fn fake_tool(name: &str, script: &str) -> (TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let tool = dir.path().join(name);
    std::fs::write(&tool, script).expect("write the fake tool");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (dir, path)
}

/// Every entry under `root` (relative path -> what it is), skipping paths that match `skip`.
pub fn tree(root: &Path, skip: &dyn Fn(&str) -> bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk(root, root, skip, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, skip: &dyn Fn(&str) -> bool, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .expect("prefix")
            .to_string_lossy()
            .into_owned();
        if skip(&rel) {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        if meta.file_type().is_symlink() {
            out.push((
                rel,
                format!(
                    "symlink -> {}",
                    std::fs::read_link(&path).expect("readlink").display()
                ),
            ));
        } else if meta.is_dir() {
            out.push((
                rel.clone(),
                format!("dir {:o}", meta.permissions().mode() & 0o777),
            ));
            walk(root, &path, skip, out);
        } else if meta.is_file() {
            let data = std::fs::read(&path).expect("read");
            out.push((
                rel,
                format!(
                    "file {:o} {} {:x}",
                    meta.permissions().mode() & 0o777,
                    data.len(),
                    fnv(&data)
                ),
            ));
        }
    }
}

fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The archives stored in `server`'s bucket: (key, path on disk); their signatures
/// (`KEY.minisig`) are not listed (see [`crate::util::minisign`]).
pub fn stored(server: &S3Server) -> Vec<(String, PathBuf)> {
    server
        .objects(BUCKET)
        .into_iter()
        .filter(|(key, _)| !key.ends_with(".minisig"))
        .map(|(key, _)| {
            let p = server.object_path(BUCKET, &key);
            (key, p)
        })
        .collect()
}
