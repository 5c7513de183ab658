//! A throwaway MariaDB server: its own data directory (copied from a template made once with
//! `mariadb-install-db`), its own socket and a free TCP port; root with an empty password.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use tempfile::TempDir;

use super::{Server, free_port, run_ok, wait_for};

pub struct MariaDb {
    pub port: u16,
    pub socket: PathBuf,
    /// The server's error log (where a crash leaves its stack trace).
    pub err_log: PathBuf,
    server: Server,
    restarts: u32,
    /// Started with a binary log (`--log-bin --binlog-format=ROW --server-id=1`).
    log_bin: bool,
    _dir: TempDir,
}

fn mariadbd() -> PathBuf {
    for p in [
        "/usr/sbin/mariadbd",
        "/usr/bin/mariadbd",
        "/usr/sbin/mysqld",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("mariadbd")
}

/// A freshly installed data directory, made once per test binary and copied per server.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let dir = base.join(format!("mariadb-template-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("template dir");
        run_ok(
            Command::new("mariadb-install-db")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", dir.display()))
                .args([
                    "--user=root",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ]),
        );
        dir
    })
}

/// mariadbd on the data directory in `dir`, once it answers a ping.
fn spawn(dir: &Path, port: u16, log: &str, log_bin: bool) -> Server {
    let socket = dir.join("sock");
    let mut cmd = Command::new(mariadbd());
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--port={port}"))
        .arg(format!("--tmpdir={}", dir.join("tmp").display()))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .arg("--user=root")
        .arg(format!("--log-error={}", dir.join("err.log").display()))
        .args(if log_bin {
            vec![
                format!(
                    "--log-bin={}",
                    dir.join("data").join("mariadb-bin").display()
                ),
                "--binlog-format=ROW".into(),
                "--server-id=1".into(),
            ]
        } else {
            vec!["--skip-log-bin".into()]
        })
        .args(["--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M"]);
    let server = Server::spawn(cmd, &dir.join(log));
    wait_for("mariadbd", Duration::from_secs(60), &server, || {
        Command::new("mariadb-admin")
            .arg("--no-defaults")
            .arg(format!("--socket={}", socket.display()))
            .args(["-uroot", "ping"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    server
}

impl MariaDb {
    pub fn start() -> MariaDb {
        MariaDb::start_with(false)
    }

    /// A server that writes a binary log in row format (point-in-time recovery's tests).
    #[allow(dead_code)]
    pub fn with_binlog() -> MariaDb {
        MariaDb::start_with(true)
    }

    fn start_with(log_bin: bool) -> MariaDb {
        let dir = tempfile::Builder::new()
            .prefix("wpb-db")
            .tempdir()
            .expect("tempdir");
        let data = dir.path().join("data");
        run_ok(Command::new("cp").arg("-a").arg(template()).arg(&data));
        // Its own directory for internal temporary tables (information_schema queries, DESCRIBE):
        // with the shared /tmp, servers started side by side by parallel tests crashed while
        // creating them (signal 11 in create_tmp_table_for_schema -> ha_maria::drop_table).
        std::fs::create_dir(dir.path().join("tmp")).expect("mariadb tmpdir");
        let port = free_port();
        let server = spawn(dir.path(), port, "stdout.log", log_bin);
        MariaDb {
            port,
            socket: dir.path().join("sock"),
            err_log: dir.path().join("err.log"),
            server,
            restarts: 0,
            log_bin,
            _dir: dir,
        }
    }

    /// Start the server again (after `kill` or a fault) on the same data, port and socket.
    pub fn restart(&mut self) {
        self.server.kill();
        self.restarts += 1;
        let log = format!("stdout-{}.log", self.restarts);
        self.server = spawn(self._dir.path(), self.port, &log, self.log_bin);
    }

    /// The server's process id (it leads its own process group): benches/soak.rs stalls it.
    #[allow(dead_code)]
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    fn client(&self) -> Command {
        let mut cmd = Command::new("mariadb");
        cmd.arg("--no-defaults")
            .arg(format!("--socket={}", self.socket.display()))
            .args(["-uroot", "--default-character-set=utf8mb4", "-N", "-B"]);
        cmd
    }

    /// Run SQL as root; stdout (tab-separated, no headers).
    pub fn sql(&self, sql: &str) -> String {
        run_ok(self.client().arg("-e").arg(sql))
    }

    /// Run SQL as root; Err(the client's message) instead of a panic.
    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        let out = self
            .client()
            .arg("-e")
            .arg(sql)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    pub fn sql_db(&self, db: &str, sql: &str) -> String {
        run_ok(self.client().arg("-e").arg(sql).arg(db))
    }

    /// A utf8mb4 database and a user with every privilege on it, from anywhere.
    pub fn create_db_user(&self, db: &str, user: &str, password: &str) {
        let pw = password.replace('\\', "\\\\").replace('\'', "\\'");
        self.sql(&format!(
            "CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
             CREATE USER '{user}'@'%' IDENTIFIED BY '{pw}';
             CREATE USER '{user}'@'localhost' IDENTIFIED BY '{pw}';
             GRANT ALL ON `{db}`.* TO '{user}'@'%';
             GRANT ALL ON `{db}`.* TO '{user}'@'localhost';"
        ));
    }

    /// The last lines of the server's error log, for panic messages.
    pub fn err_log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.err_log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Stop the server now (a crash, as far as clients can tell).
    pub fn kill(&mut self) {
        self.server.kill();
    }
}
