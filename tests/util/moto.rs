//! moto's S3 server (tests/moto/moto_server.py): a second S3 implementation, independent of
//! s3s-fs, that lists unfinished multipart uploads and enforces S3's 5 MiB minimum part size.
//! It keeps everything in memory and accepts any key (docs/storage.md says why the suite does
//! not turn its authentication on). Needs moto in tests/moto/.pylib (scripts/test.sh
//! installs it).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::{Server, free_port, wait_for};

/// Any key works on moto; these are what the tests send.
pub const ACCESS_KEY: &str = "moto-access";
pub const SECRET_KEY: &str = "moto-secret";

pub struct MotoServer {
    pub endpoint: String,
    server: Server,
    _dir: TempDir,
}

impl MotoServer {
    /// Start moto on a free loopback port with `buckets` created.
    pub fn start(buckets: &[&str]) -> MotoServer {
        let project = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/moto");
        let pylib = project.join(".pylib");
        assert!(
            pylib.join("moto").is_dir(),
            "moto is not installed: run scripts/test.sh (pip install --target tests/moto/.pylib \"moto[server]\")"
        );
        let dir = tempfile::Builder::new()
            .prefix("wpb-moto")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let mut cmd = Command::new("python3");
        cmd.arg(project.join("moto_server.py"))
            .env("PYTHONPATH", &pylib)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("MOTO_PORT", port.to_string())
            .env("MOTO_BUCKETS", buckets.join(","));
        let log = dir.path().join("moto.log");
        let server = Server::spawn(cmd, &log);
        wait_for("moto", Duration::from_secs(60), &server, || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.lines().any(|l| l == "ready"))
        });
        MotoServer {
            endpoint: format!("http://127.0.0.1:{port}"),
            server,
            _dir: dir,
        }
    }

    /// The server's process id (it leads its own process group).
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }
}
