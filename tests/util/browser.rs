//! A real browser: Debian's headless Chromium, started here in its own process group (so the
//! guard kills it and its helpers, also when a test panics), driven by
//! dashboard/test/browser.mjs through puppeteer-core over the DevTools port on 127.0.0.1. The
//! script looks at pages as a person would, saves screenshots and prints what it saw as JSON;
//! the tests assert on that. Chromium resolves no host name but 127.0.0.1 and the script aborts
//! every request that is not for 127.0.0.1 (or the one file it opens).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use super::dashboard::project_dir;
use super::{Server, wait_for};

const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Chromium {
    /// The DevTools WebSocket URL puppeteer connects to.
    pub ws: String,
    server: Server,
    dir: TempDir,
}

/// Where a test's screenshots go: kept under target/ for a person to look at.
pub fn screenshot_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("screenshots")
        .join(test);
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

impl Chromium {
    pub fn start() -> Chromium {
        assert!(
            std::path::Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: install Debian's chromium (scripts/test.sh does it)"
        );
        let dir = tempfile::Builder::new()
            .prefix("wpb-chromium")
            .tempdir()
            .expect("tempdir");
        let profile = dir.path().join("profile");
        let mut cmd = Command::new(CHROMIUM);
        cmd.args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-domain-reliability",
            "--no-pings",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .env("HOME", dir.path())
        // Its singleton socket and other temporary files go in the guard's directory too.
        .env("TMPDIR", dir.path());
        let server = Server::spawn(cmd, &dir.path().join("chromium.log"));
        let port_file = profile.join("DevToolsActivePort");
        wait_for("chromium", Duration::from_secs(60), &server, || {
            std::fs::read_to_string(&port_file).is_ok_and(|t| t.lines().count() >= 2)
        });
        let text = std::fs::read_to_string(&port_file).expect("DevToolsActivePort");
        let mut lines = text.lines();
        let port = lines.next().unwrap_or_default().trim().to_string();
        let path = lines.next().unwrap_or_default().trim().to_string();
        Chromium {
            ws: format!("ws://127.0.0.1:{port}{path}"),
            server,
            dir,
        }
    }

    /// Run browser.mjs with `env` (BROWSE_MODE and its settings); what it saw, as JSON.
    pub fn look(&self, env: &[(&str, String)]) -> Value {
        let project = project_dir();
        let mut cmd = Command::new("node");
        cmd.arg(project.join("test/browser.mjs"))
            .current_dir(&project)
            .env("BROWSER_WS", &self.ws);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let log = self.dir.path().join("browser.log");
        let mut script = Server::spawn(cmd, &log);
        let status = script.wait();
        let out = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            status.success(),
            "browser.mjs failed ({status}):\n{out}\n--- chromium:\n{}",
            self.server.log_tail()
        );
        let seen = out
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("SEEN "))
            .unwrap_or_else(|| panic!("browser.mjs printed nothing it saw:\n{out}"));
        serde_json::from_str(seen).expect("browser.mjs's JSON")
    }
}
