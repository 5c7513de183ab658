//! The fleet dashboard (dashboard/src/worker.mjs) served by miniflare over a D1 state
//! directory that real `wpbackup sync-d1` runs filled through the D1 simulator (util/d1.rs).
//! Started by dashboard/test/serve.mjs in its own process group, so that dropping the guard
//! kills workerd too. Needs `npm ci` in dashboard/ (scripts/test.sh does it).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::{Server, free_port, wait_for};

/// The dashboard's token (the Worker secret DASHBOARD_TOKEN) in the tests.
pub const TOKEN: &str = "dash-test-token-K4p2";

pub struct Dashboard {
    pub port: u16,
    pub url: String,
    _server: Server,
    _dir: TempDir,
}

/// One HTTP answer.
pub struct Answer {
    pub status: u16,
    /// The header lines, as sent.
    pub head: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// A header's value (the name in any case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboard")
}

impl Dashboard {
    /// Serve the D1 database `database` kept in `d1_state` (no other process may have it
    /// open); `token`: the Worker's DASHBOARD_TOKEN, or none set.
    pub fn start(d1_state: &Path, database: &str, token: Option<&str>) -> Dashboard {
        let project = project_dir();
        assert!(
            project.join("node_modules/miniflare").is_dir(),
            "the dashboard's test tools are not installed: run `npm ci --prefix dashboard` (scripts/test.sh does it)"
        );
        let dir = tempfile::Builder::new()
            .prefix("wpb-dash")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let mut cmd = Command::new("node");
        cmd.arg(project.join("test/serve.mjs"))
            .current_dir(&project)
            .env("DASH_PORT", port.to_string())
            .env("DASH_D1_DIR", d1_state)
            .env("DASH_DATABASE", database)
            .env("DASH_TOKEN", token.unwrap_or(""))
            // miniflare keeps a cache directory in the temp dir: this one, removed with it.
            .env("TMPDIR", dir.path());
        let log = dir.path().join("miniflare.log");
        let server = Server::spawn(cmd, &log);
        wait_for("dashboard", Duration::from_secs(60), &server, || {
            std::fs::read_to_string(&log)
                .map(|t| t.contains("ready http"))
                .unwrap_or(false)
        });
        Dashboard {
            port,
            url: format!("http://127.0.0.1:{port}"),
            _server: server,
            _dir: dir,
        }
    }

    /// GET `path`, with `Authorization: Bearer {token}` when given.
    pub fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        self.request("GET", path, &auth, "")
    }

    /// `method path` with the extra header lines `headers` (each ending in CRLF) and a
    /// form-encoded `body` (when not empty).
    pub fn request(&self, method: &str, path: &str, headers: &str, body: &str) -> Answer {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let form = if body.is_empty() {
            String::new()
        } else {
            format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            )
        };
        // HTTP/1.0: the answer is not chunked and ends when the connection closes.
        let request = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n{headers}{form}\r\n{body}",
            self.port
        );
        s.write_all(request.as_bytes()).expect("send");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).expect("read the answer");
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").expect("http header end");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Answer {
            status,
            head: head.to_string(),
            body: body.to_string(),
        }
    }
}
