//! s3s-fs, a real S3-compatible server that checks SigV4 signatures, storing each object as a
//! plain file `ROOT/bucket/key` (and its metadata in hidden `ROOT/.bucket-*.json` files).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::{Server, free_port, port_open, wait_for};

pub struct S3Server {
    pub port: u16,
    pub endpoint: String,
    pub root: PathBuf,
    server: Server,
    keys: (String, String),
    restarts: u32,
    _dir: TempDir,
}

pub fn s3s_fs() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
        });
    let candidate = cargo_home.join("bin/s3s-fs");
    if candidate.exists() {
        candidate
    } else {
        PathBuf::from("s3s-fs")
    }
}

/// s3s-fs serving `root` on `port`, once it accepts connections.
fn spawn(
    root: &std::path::Path,
    log: &std::path::Path,
    port: u16,
    keys: &(String, String),
) -> Server {
    let mut cmd = Command::new(s3s_fs());
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", &keys.0, "--secret-key", &keys.1])
        .arg(root);
    let server = Server::spawn(cmd, log);
    wait_for("s3s-fs", Duration::from_secs(20), &server, || {
        port_open(port)
    });
    server
}

impl S3Server {
    pub fn start(access_key: &str, secret_key: &str) -> S3Server {
        let dir = tempfile::Builder::new()
            .prefix("wpb-s3")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join("data");
        std::fs::create_dir(&root).expect("s3 root");
        let port = free_port();
        let keys = (access_key.to_string(), secret_key.to_string());
        let server = spawn(&root, &dir.path().join("s3s-fs.log"), port, &keys);
        S3Server {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            root,
            server,
            keys,
            restarts: 0,
            _dir: dir,
        }
    }

    /// Start the server again (after `kill` or a fault) on the same port and data.
    pub fn restart(&mut self) {
        self.server.kill();
        self.restarts += 1;
        let log = self
            ._dir
            .path()
            .join(format!("s3s-fs-{}.log", self.restarts));
        self.server = spawn(&self.root, &log, self.port, &self.keys);
    }

    pub fn create_bucket(&self, name: &str) {
        std::fs::create_dir_all(self.root.join(name)).expect("create bucket");
    }

    /// Objects in `bucket`: (key, size), sorted.
    pub fn objects(&self, bucket: &str) -> Vec<(String, u64)> {
        let base = self.root.join(bucket);
        let mut out = Vec::new();
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let Ok(meta) = std::fs::symlink_metadata(&p) else {
                    continue;
                };
                if meta.is_dir() {
                    stack.push(p);
                } else if meta.is_file() {
                    let key = p
                        .strip_prefix(&base)
                        .expect("prefix")
                        .to_string_lossy()
                        .into_owned();
                    out.push((key, meta.len()));
                }
            }
        }
        out.sort();
        out
    }

    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    /// The server's process id (it leads its own process group).
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    /// Pull the plug: the server is gone (connections refused from now on).
    pub fn kill(&mut self) {
        self.server.kill();
    }
}
