//! The D1 simulator: Cloudflare's miniflare (workerd with a real D1 binding over SQLite) running
//! tests/d1/worker.mjs, which serves D1's REST `/query` route with a token check and D1's
//! envelope. Started by tests/d1/simulator.mjs in its own process group, so that dropping the
//! guard kills workerd too. Needs `npm ci` in tests/d1 (scripts/test.sh does it).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use super::{Server, free_port, wait_for};

pub const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
pub const DATABASE: &str = "6f1b5c2e-d1d1-4e4e-9a9a-00000000d1d1";
pub const TOKEN: &str = "d1-test-token-Vb7q";

pub struct D1Sim {
    pub port: u16,
    /// The value for `D1_API_BASE`.
    pub api_base: String,
    server: Server,
    _dir: TempDir,
}

fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/d1")
}

impl D1Sim {
    pub fn start() -> D1Sim {
        let d1 = project_dir();
        assert!(
            d1.join("node_modules/miniflare").is_dir(),
            "miniflare is not installed: run `npm ci --prefix tests/d1` (scripts/test.sh does it)"
        );
        let dir = tempfile::Builder::new()
            .prefix("wpb-d1")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let mut cmd = Command::new("node");
        cmd.arg(d1.join("simulator.mjs"))
            .current_dir(&d1)
            .env("D1SIM_PORT", port.to_string())
            .env("D1SIM_DIR", dir.path().join("state"))
            .env("D1SIM_TOKEN", TOKEN)
            .env("D1SIM_ACCOUNT", ACCOUNT)
            .env("D1SIM_DATABASE", DATABASE)
            // miniflare keeps a cache directory in the temp dir: this one, removed with it.
            .env("TMPDIR", dir.path());
        let log = dir.path().join("miniflare.log");
        let server = Server::spawn(cmd, &log);
        wait_for("miniflare", Duration::from_secs(60), &server, || {
            std::fs::read_to_string(&log)
                .map(|t| t.contains("ready http"))
                .unwrap_or(false)
        });
        D1Sim {
            port,
            api_base: format!("http://127.0.0.1:{port}/client/v4"),
            server,
            _dir: dir,
        }
    }

    /// The `.env` lines that point wpbackup at this simulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CF_ACCOUNT_ID", ACCOUNT.to_string()),
            ("CF_API_TOKEN", TOKEN.to_string()),
            ("D1_DATABASE_ID", DATABASE.to_string()),
            ("D1_API_BASE", self.api_base.clone()),
        ]
    }

    /// Run one statement through the REST API (with the right token); its rows.
    pub fn query(&self, sql: &str, params: Value) -> Vec<Value> {
        let (status, body) = self.post(
            &format!("/client/v4/accounts/{ACCOUNT}/d1/database/{DATABASE}/query"),
            &json!({ "sql": sql, "params": params }),
            Some(TOKEN),
        );
        assert_eq!(status, 200, "D1 query {sql}: {body}");
        assert_eq!(body["success"], true, "{body}");
        body["result"][0]["results"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// One number from a `SELECT COUNT(*) AS n ...`.
    pub fn count(&self, sql: &str, params: Value) -> i64 {
        self.query(sql, params)[0]["n"].as_i64().expect("n")
    }

    /// Whether a table exists in D1.
    pub fn has_table(&self, name: &str) -> bool {
        self.count(
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?1",
            json!([name]),
        ) == 1
    }

    /// Set the worker's faults (see worker.mjs): `{"fail_after": N}`, `{"mode": "429"}`...
    pub fn faults(&self, faults: Value) {
        let (status, body) = self.post("/__sim/faults", &faults, None);
        assert_eq!(status, 200, "{body}");
    }

    /// Requests that reached the /query route so far.
    pub fn requests(&self) -> i64 {
        let (_, body) = self.post("/__sim/stats", &json!({}), None);
        body["requests"].as_i64().expect("requests")
    }

    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Where miniflare keeps the D1 database (kept until the simulator is dropped): the
    /// dashboard's tests serve it after the simulator was killed.
    pub fn state_dir(&self) -> PathBuf {
        self._dir.path().join("state")
    }

    fn post(&self, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
        let host = format!("127.0.0.1:{}", self.port);
        let mut s = std::net::TcpStream::connect(&host).expect("connect to miniflare");
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let body = body.to_string();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(request.as_bytes()).expect("send");
        // Read until the body is complete (Content-Length or the last chunk): workerd keeps
        // the connection open for a while even after `Connection: close`.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
                let body = &buf[split + 4..];
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                let done = match length {
                    Some(n) => body.len() >= n,
                    None => body.ends_with(b"0\r\n\r\n"),
                };
                if done {
                    break;
                }
            }
            let n = s.read(&mut chunk).expect("read");
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("http header end");
        let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut payload = buf[split + 4..].to_vec();
        if head.contains("transfer-encoding: chunked") {
            payload = dechunk(&payload);
        }
        let value = serde_json::from_slice(&payload).unwrap_or_else(|_| {
            panic!(
                "not JSON from miniflare: {}",
                String::from_utf8_lossy(&payload)
            )
        });
        (status, value)
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}
