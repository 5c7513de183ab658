//! The dead man's switch against a real HTTP server started by the test (it records every
//! request it gets): a good run pings start then success, a failing run pings fail with the
//! error text (and no secret), and a monitor that is down or never answers changes nothing
//! about the backup but a warning.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::fixture::{self, Fixture};

/// One request the monitor got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub body: String,
}

/// A minimal HTTP/1.1 server on a free port that answers 200 to everything and records it.
pub struct Monitor {
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Monitor {
    pub fn start() -> Monitor {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(Vec::new()));
        let record = hits.clone();
        // The thread ends with the test process; it holds nothing else.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                record.lock().unwrap().push(Hit {
                    method,
                    path,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK",
                );
            }
        });
        Monitor { url, hits }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn pings_start_and_success_then_fail_with_the_error_text() {
    let f = Fixture::new("hc");
    let monitor = Monitor::start();
    let mut config = f.default_config();
    config["healthchecks"] = json!({ "url": format!("{}/ping/abc-123", monitor.url) });
    f.write_config(config.clone());

    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let hits = monitor.hits();
    let paths: Vec<&str> = hits.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(paths, ["/ping/abc-123/start", "/ping/abc-123"], "{hits:?}");
    assert!(hits.iter().all(|h| h.method == "POST"));
    assert!(hits[1].body.contains("SUCCESS blog"), "{:?}", hits[1]);
    // Ping URLs hold tokens: they are not logged.
    assert!(!stderr(&out).contains("abc-123"), "{}", stderr(&out));

    // A failing run: the fail ping carries the error, never the password.
    config["sites"][0]["database"] = json!({
        "name": f.site.db_name, "user": f.site.db_user, "password_env": "BLOG_DB_PASSWORD",
        "host": format!("127.0.0.1:{}", f.db.port)
    });
    f.write_config(config);
    f.write_env(&[("BLOG_DB_PASSWORD", "wrong-pw-Qx7")]);
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(1));
    let hits = monitor.hits();
    assert_eq!(hits.len(), 4, "{hits:?}");
    assert_eq!(hits[2].path, "/ping/abc-123/start");
    assert_eq!(hits[3].path, "/ping/abc-123/fail");
    assert!(hits[3].body.contains("ERROR blog"), "{:?}", hits[3]);
    assert!(hits[3].body.contains("Access denied"), "{:?}", hits[3]);
    assert!(!hits[3].body.contains("wrong-pw-Qx7"));
}

#[test]
fn a_monitor_that_is_down_or_silent_is_only_a_warning() {
    let f = Fixture::new("hc-down");
    // Nothing listens on this port: connection refused.
    let closed = crate::util::free_port();
    // This one accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    for (n, checks) in [
        json!({ "url": format!("http://127.0.0.1:{closed}/x") }),
        json!({ "start": format!("{silent_url}/s"), "success": format!("{silent_url}/ok"), "timeout_secs": 1 }),
    ]
    .into_iter()
    .enumerate()
    {
        // Archive keys are made to the second: keep the two runs' keys apart.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let mut config = f.default_config();
        config["healthchecks"] = checks;
        f.write_config(config);
        let out = f.run(&["backup"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let rows = f.rows();
        assert_eq!(rows.len(), n + 1);
        assert_eq!(rows[n].status, "SUCCESS", "{:?}", rows[n]);
        let err = stderr(&out);
        assert!(
            err.contains("WARN") && err.contains("healthchecks") && err.contains("not affected"),
            "{err}"
        );
    }
    assert_eq!(fixture::stored(&f.primary).len(), 2);
    drop(silent);
}
