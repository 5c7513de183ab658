//! A real server, booted: this machine's own Debian under `systemd-nspawn` with systemd as PID 1
//! (scripts/setup.sh installs `systemd-container`), on an overlay of `/` whose upper layer is a
//! tmpfs, so nothing of the machine changes, with only a loopback network. In it:
//! MariaDB as the system service, a WordPress site owned by `www-data` (its wp-config.php 0600),
//! s3s-fs and aiosmtpd as transient units, and the binary under test, installed the way
//! README's "Setting up a server" says: deploy.sh, `wpbackup configure`, deploy.sh again.
//!
//! What it checks, on facts the container leaves in its bound `/srv/out`: the timers are
//! enabled (the report's only once SMTP is configured) and their next elapse is the time
//! deploy.sh was given; `systemctl start wpbackup.service` stores the archive on S3 (the
//! object file in s3s-fs's directory, with the size backups.db recorded) with a SUCCESS row;
//! MariaDB writes a binary log, so configure's answers turn point-in-time recovery on and
//! deploy.sh's second run enables `wpbackup-binlog.timer` (active, a next elapse), and
//! `systemctl start wpbackup-binlog.service` stores a binary log file and its signature in
//! s3s-fs; with the S3 unit stopped the next run is a WARNING stored on the local storage;
//! `wpbackup-drill.service` passes, its php confined (a fresh uid, no network);
//! `systemctl --failed` is empty without SMTP and again
//! after SMTP is configured and `wpbackup-report.service` has mailed the report. Then, in the
//! same container booted without systemd, deploy.sh writes the cron file by itself, and every
//! command in it runs as cron runs it (`/bin/sh -c`, cron's PATH) and succeeds.
//!
//! Skipped, saying so loudly on stderr (`SKIPPED: ...`), where it cannot run: not root, no
//! `systemd-nspawn`, an overlay or tmpfs mount refused, a container that does not boot. With
//! `WPBACKUP_REAL_SERVER=required` a skip is a failure instead (for a machine where it must run).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

/// The start of both scripts: strict mode, where the inputs and results are, and the
/// helpers `fail` (an error for the test to report), `fact NAME CMD...` (CMD's output in NAME,
/// its exit status in NAME.rc) and `wait_port PORT`.
macro_rules! script_prelude {
    () => {
        r##"#!/bin/bash
set -uo pipefail
IN=/srv/in
OUT=/srv/out
fail() { echo "FAILED: $*" >> "$OUT/errors"; }
fact() { local n="$1"; shift; "$@" >"$OUT/$n" 2>&1; echo $? >"$OUT/$n.rc"; }
wait_port() {
  for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  fail "nothing listens on port $1"; return 1
}
"##
    };
}

/// The script the container's test unit runs once it has booted. Every fact goes to /srv/out:
/// `fact NAME CMD...` keeps CMD's output in NAME and its exit status in NAME.rc.
const BOOT_SCRIPT: &str = concat!(
    script_prelude!(),
    r##"exec >"$OUT/boot.log" 2>&1
set -x
start_s3() {
  systemd-run --unit=wpb-s3 --property=Type=exec "$IN/s3s-fs" --host 127.0.0.1 --port 9000 \
    --access-key s3-access --secret-key s3-secret-Zq9 "$OUT/s3" && wait_port 9000
}
# run LABEL UNIT: systemctl start UNIT (it waits for a oneshot to end), then its result and journal.
run() {
  fact "start-$1" systemctl start "$2"
  systemctl show "$2" -p Result -p ExecMainStatus > "$OUT/show-$1"
  journalctl -u "$2" --no-pager -o cat > "$OUT/journal-$1" 2>&1
}

# MariaDB as the system service, on a fresh data directory (the copied one is the machine's),
# writing a binary log as README's "Point-in-time recovery" says (in the data directory: the
# one README names may not exist in this copy; my.cnf itself, which may include no directory).
printf '\n[mysqld]\nlog_bin = /var/lib/mysql/mariadb-bin\nbinlog_format = ROW\nserver_id = 1\n' \
  >> /etc/mysql/my.cnf || fail "the binary log settings"
grep -q '^log_bin' /etc/mysql/my.cnf || fail "my.cnf has no log_bin"
rm -rf /var/lib/mysql/*
mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null || fail mariadb-install-db
mkdir -p /etc/systemd/system/mariadb.service.d
printf '[Service]\nExecStartPost=\n' > /etc/systemd/system/mariadb.service.d/no-debian-start.conf
systemctl daemon-reload
systemctl enable --now mariadb || fail "mariadb.service did not start"
mariadb -e "CREATE DATABASE wp_example CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
  CREATE USER 'wp_example'@'localhost' IDENTIFIED BY 'wp-pass-Kd8';
  GRANT ALL ON wp_example.* TO 'wp_example'@'localhost';" || fail "the site's database and user"

# WordPress at /var/www/example.com, owned by www-data, installed by php-cli as www-data.
SITE=/var/www/example.com
mkdir -p /var/www
cp -rL /usr/share/wordpress "$SITE"
rm -f "$SITE/wp-config.php" "$SITE/.htaccess"
cp "$IN/wp-config.php" "$SITE/wp-config.php"
chown -R www-data:www-data "$SITE"
chmod 0600 "$SITE/wp-config.php"
fact wp-install runuser -u www-data -- php "$IN/install.php"

# s3s-fs as a transient unit, its objects under /srv/out/s3 for the test to look at.
mkdir -p "$OUT/s3/wp-backups"
start_s3 || fail "s3s-fs did not start"

# README, "Setting up a server": deploy.sh, wpbackup configure, deploy.sh again.
fact deploy-1 "$IN/src/deploy.sh" --binary "$IN/wpbackup" --time 02:15
fact configure-1 wpbackup configure --non-interactive --answers "$IN/answers.json"
fact deploy-2 "$IN/src/deploy.sh" --binary "$IN/wpbackup" --time 02:15
cp /etc/systemd/system/wpbackup.service "$OUT/wpbackup.service.installed"
for t in wpbackup.timer wpbackup-drill.timer wpbackup-report.timer; do
  fact "enabled-$t" systemctl is-enabled "$t"
  fact "next-$t" systemctl show "$t" -p NextElapseUSecRealtime --value
done
fact enabled-binlog systemctl is-enabled wpbackup-binlog.timer
fact active-binlog systemctl is-active wpbackup-binlog.timer
fact next-binlog systemctl show wpbackup-binlog.timer -p NextElapseUSecMonotonic --value
cp /etc/systemd/system/wpbackup-binlog.timer "$OUT/wpbackup-binlog.timer.installed"

# A backup to S3; the S3 unit stopped: the failover to the local storage; then the drill.
run backup wpbackup.service
# The binary log shipped by its unit: a post written after the backup, then a run.
mariadb wp_example -e "UPDATE wp_posts SET post_title = 'Shipped by a timer' WHERE ID = 1" || fail "the update"
run binlog wpbackup-binlog.service
find "$OUT/s3/wp-backups/binlog" -type f > "$OUT/binlog-objects"
systemctl stop wpb-s3
run failover wpbackup.service
find /var/backups/wpbackup -type f > "$OUT/local-files"
start_s3 || fail "s3s-fs did not start again"
run drill wpbackup-drill.service
fact failed-without-smtp systemctl --failed --no-legend --plain --no-pager

# SMTP: aiosmtpd as a transient unit; configure adds it; deploy.sh enables the report timer.
mkdir -p "$OUT/mail"
systemd-run --unit=wpb-smtp --property=Type=exec -E PYTHONPATH="$IN/pylib" -E PYTHONDONTWRITEBYTECODE=1 \
  -E SMTPSIM_PORT=2525 -E SMTPSIM_DIR="$OUT/mail" -E SMTPSIM_USER=reports@example.com \
  -E SMTPSIM_PASSWORD=smtp-pass-Qx3 python3 "$IN/smtp_server.py" && wait_port 2525 || fail "aiosmtpd did not start"
fact configure-2 wpbackup configure --non-interactive --answers "$IN/answers-smtp.json"
fact deploy-3 "$IN/src/deploy.sh" --binary "$IN/wpbackup" --time 02:15
fact enabled-report-with-smtp systemctl is-enabled wpbackup-report.timer
fact next-report-with-smtp systemctl show wpbackup-report.timer -p NextElapseUSecRealtime --value
fact list-timers systemctl list-timers --all --no-pager
run backup-smtp wpbackup.service
run report wpbackup-report.service
fact failed-with-smtp systemctl --failed --no-legend --plain --no-pager
touch "$OUT/boot.done"
"##
);

/// The script the same container runs afterwards, booted without systemd (the command is the
/// container's PID 1): the servers started by hand, deploy.sh left to find out there is no
/// systemd, then each command of the cron file run as cron runs it.
const CRON_SCRIPT: &str = concat!(
    script_prelude!(),
    r##"exec >"$OUT/cron-run.log" 2>&1
set -x
[ -d /run/systemd/system ] && fail "systemd runs in the container meant to have none"
install -d -o mysql -g mysql /run/mysqld
mariadbd --user=mysql --datadir=/var/lib/mysql --socket=/run/mysqld/mysqld.sock > "$OUT/cron-mariadb.log" 2>&1 &
"$IN/s3s-fs" --host 127.0.0.1 --port 9000 --access-key s3-access --secret-key s3-secret-Zq9 "$OUT/s3" \
  > "$OUT/cron-s3s-fs.log" 2>&1 &
mkdir -p "$OUT/mail-cron"
PYTHONPATH="$IN/pylib" PYTHONDONTWRITEBYTECODE=1 SMTPSIM_PORT=2525 SMTPSIM_DIR="$OUT/mail-cron" \
  SMTPSIM_USER=reports@example.com SMTPSIM_PASSWORD=smtp-pass-Qx3 python3 "$IN/smtp_server.py" \
  > "$OUT/cron-smtp.log" 2>&1 &
for _ in $(seq 600); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.1; done
mariadb-admin ping >/dev/null 2>&1 || fail "mariadbd did not start"
wait_port 9000
wait_port 2525

fact cron-deploy "$IN/src/deploy.sh" --binary "$IN/wpbackup" --time 02:15
cp /etc/cron.d/wpbackup "$OUT/cron-file"
# Each entry: minute hour day month weekday user command; the command as cron runs it.
i=0
grep -Ev '^[[:space:]]*(#|$|[A-Z_]+=)' /etc/cron.d/wpbackup > "$OUT/cron-entries"
while read -r _ _ _ _ _ user cmd; do
  i=$((i + 1))
  printf '%s\n' "$user" > "$OUT/cron-user-$i"
  printf '%s\n' "$cmd" > "$OUT/cron-cmd-$i"
  env -i SHELL=/bin/sh PATH=/usr/bin:/bin HOME=/root LOGNAME=root /bin/sh -c "$cmd" < /dev/null
  echo $? > "$OUT/cron-cmd-$i.rc"
done < "$OUT/cron-entries"
cp /opt/wordpress-backup/cron.log "$OUT/cron.log"
mariadb-admin shutdown
mkdir -p "$OUT/db"
cp -a /opt/wordpress-backup/backups.db* "$OUT/db/"
touch "$OUT/cron.done"
"##
);

/// The container's test unit: runs the boot script, then powers the container off whatever
/// became of it.
const TEST_UNIT: &str = "[Unit]
Description=wpbackup's real-server test (tests/real_server.rs)
After=basic.target

[Service]
Type=oneshot
ExecStart=/srv/in/boot.sh
ExecStopPost=/bin/systemctl --no-block poweroff
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
";

const WP_CONFIG: &str = "<?php
define( 'DB_NAME', 'wp_example' );
define( 'DB_USER', 'wp_example' );
define( 'DB_PASSWORD', 'wp-pass-Kd8' );
define( 'DB_HOST', 'localhost' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
define( 'AUTH_KEY', 'real-server-auth-key' );
define( 'SECURE_AUTH_KEY', 'real-server-secure-auth-key' );
define( 'LOGGED_IN_KEY', 'real-server-logged-in-key' );
define( 'NONCE_KEY', 'real-server-nonce-key' );
$table_prefix = 'wp_';
define( 'WP_DEBUG', false );
if ( ! defined( 'ABSPATH' ) ) {
\tdefine( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
";

const INSTALL_PHP: &str = "<?php
define('WP_INSTALLING', true);
function wp_new_blog_notification() {}
$_SERVER['HTTP_HOST'] = 'example.com';
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
require_once '/var/www/example.com/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
$r = wp_install('Example', 'admin', 'admin@example.com', true, '', 'admin-pass-Wq2');
if (is_wp_error($r)) { fwrite(STDERR, $r->get_error_message()); exit(1); }
update_option('siteurl', 'https://example.com');
update_option('home', 'https://example.com');
wp_insert_post(array('post_title' => 'Hello from a real server', 'post_content' => 'Backed up by a timer.', 'post_status' => 'publish'));
echo \"installed\\n\";
";

const ANSWERS: &str = r#"{ "server_id": "web-01",
  "sites": [{"path": "/var/www/example.com", "name": "example.com"}],
  "storage": [{"name": "s3", "preset": "s3", "endpoint": "http://127.0.0.1:9000",
               "region": "us-east-1", "bucket": "wp-backups", "path_style": true,
               "access_key": "s3-access", "secret_key": "s3-secret-Zq9"},
              {"name": "disk", "preset": "local", "path": "/var/backups/wpbackup"}],
  "storage_order": ["s3", "disk"],
  "binlog": {} }
"#;

const ANSWERS_SMTP: &str = r#"{ "smtp": {"host": "127.0.0.1", "port": 2525, "tls": "none",
           "username": "reports@example.com", "password": "smtp-pass-Qx3",
           "from": "wpbackup@example.com", "to": ["ops@example.com"]} }
"#;

/// Set to `required` where the test must run (CI): a skip is then a failure.
const REQUIRED_VAR: &str = "WPBACKUP_REAL_SERVER";

/// Say loudly that the test did not run (or fail, where it must run).
fn skip(why: &str) {
    if std::env::var(REQUIRED_VAR).is_ok_and(|v| v == "required") {
        panic!("tests/real_server.rs cannot run, and {REQUIRED_VAR}=required: {why}");
    }
    eprintln!(
        "\nSKIPPED: tests/real_server.rs (a booted systemd container) did not run: {why}\n\
         (set {REQUIRED_VAR}=required to make this a failure)\n"
    );
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `name` on PATH, as an absolute path.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The overlay root the container boots from, and the container while it runs: unmounted,
/// killed and cleaned up when dropped, also when the test fails.
struct Machine {
    name: String,
    state: PathBuf,
    root: PathBuf,
    tmpfs: bool,
    overlay: bool,
    running: Option<Child>,
    dir: Option<TempDir>,
}

impl Machine {
    /// A tmpfs in a temporary directory and an overlay of `/` on it (Err: why not).
    fn mount() -> Result<Machine, String> {
        let dir = tempfile::Builder::new()
            .prefix("wpb-nspawn")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let state = dir.path().join("state");
        std::fs::create_dir(&state).map_err(|e| format!("{}: {e}", state.display()))?;
        let mut m = Machine {
            name: format!("wpb-real-{}", std::process::id()),
            root: state.join("root"),
            state,
            tmpfs: false,
            overlay: false,
            running: None,
            dir: Some(dir),
        };
        let tmpfs = Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs"])
            .arg(&m.state)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !tmpfs.status.success() {
            return Err(format!(
                "cannot mount a tmpfs: {}",
                String::from_utf8_lossy(&tmpfs.stderr).trim()
            ));
        }
        m.tmpfs = true;
        for d in ["up", "work", "root"] {
            std::fs::create_dir(m.state.join(d)).map_err(|e| format!("{d}: {e}"))?;
        }
        let options = format!(
            "lowerdir=/,upperdir={},workdir={}",
            m.state.join("up").display(),
            m.state.join("work").display()
        );
        let overlay = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(&m.root)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !overlay.status.success() {
            return Err(format!(
                "cannot mount an overlay of /: {}",
                String::from_utf8_lossy(&overlay.stderr).trim()
            ));
        }
        m.overlay = true;
        Ok(m)
    }

    /// A path inside the container's root.
    fn at(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// Mask the machine's own services (the container runs only what the test needs), keep
    /// mariadb.service for the boot script to enable, and enable the test unit.
    fn prepare(&self) {
        let etc = self.at("/etc/systemd/system");
        for wants in ["multi-user", "timers", "sockets"] {
            let dir = etc.join(format!("{wants}.target.wants"));
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name == "mariadb.service" {
                    std::fs::remove_file(e.path()).expect("disable mariadb.service");
                } else if !name.ends_with(".target") {
                    let mask = etc.join(&name);
                    let _ = std::fs::remove_file(&mask);
                    std::os::unix::fs::symlink("/dev/null", &mask).expect("mask a unit");
                }
            }
        }
        std::fs::write(etc.join("wpb-real-server.service"), TEST_UNIT).expect("test unit");
        let wants = etc.join("multi-user.target.wants");
        std::fs::create_dir_all(&wants).expect("multi-user.target.wants");
        std::os::unix::fs::symlink(
            "/etc/systemd/system/wpb-real-server.service",
            wants.join("wpb-real-server.service"),
        )
        .expect("enable the test unit");
    }

    /// Run `systemd-nspawn` with these arguments before the container's command line, bounded
    /// by `timeout`; its console goes to `console`. The exit status (-1: killed by a signal).
    fn nspawn(&mut self, binds: &[String], tail: &[&str], console: &Path) -> i32 {
        let log = std::fs::File::create(console).expect("console log");
        let err = log.try_clone().expect("console log");
        let mut cmd = Command::new("timeout");
        cmd.args(["--kill-after=20", "600", "systemd-nspawn"])
            .args(["--register=no", "--keep-unit", "-q", "--private-network"])
            .arg("-D")
            .arg(&self.root)
            .args(["-M", &self.name])
            .args(binds)
            .args(tail)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0);
        let child = cmd.spawn().expect("run systemd-nspawn under timeout");
        let child = self.running.insert(child);
        let status = child.wait().expect("wait for systemd-nspawn");
        self.running = None;
        status.code().unwrap_or(-1)
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if let Some(mut child) = self.running.take() {
            // The whole group: timeout, systemd-nspawn and what it started.
            // SAFETY: kill(2) with a negative pid signals that process group, nothing else.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            let _ = child.wait();
        }
        let mut unmounted = true;
        for (mounted, path) in [(self.overlay, &self.root), (self.tmpfs, &self.state)] {
            if mounted {
                let ok = Command::new("umount").arg(path).status();
                if !ok.is_ok_and(|s| s.success()) {
                    let lazy = Command::new("umount").arg("-l").arg(path).status();
                    unmounted &= lazy.is_ok_and(|s| s.success());
                }
            }
        }
        // systemd-nspawn's propagation directory for the machine, left on the host's /run.
        let _ = std::fs::remove_dir(Path::new("/run/systemd/nspawn/propagate").join(&self.name));
        if !unmounted {
            // Never remove files through a mount that is still there: leave the directory.
            if let Some(dir) = self.dir.take() {
                eprintln!("real_server: could not unmount {}", dir.keep().display());
            }
        }
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What the container wrote into /srv/out.
struct Facts {
    dir: PathBuf,
}

impl Facts {
    fn text(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_else(|_| format!("<no {name}>"))
    }

    /// The exit status a `fact` recorded.
    fn rc(&self, name: &str) -> i32 {
        self.text(&format!("{name}.rc"))
            .trim()
            .parse()
            .unwrap_or(-1)
    }

    /// The last lines of a log, for a failure message.
    fn tail(&self, name: &str) -> String {
        last_lines(&self.text(name), 40)
    }

    /// What the scripts said failed, and the end of their logs.
    fn context(&self) -> String {
        format!(
            "\n--- errors\n{}\n--- boot.log (end)\n{}\n--- cron-run.log (end)\n{}",
            self.text("errors"),
            self.tail("boot.log"),
            self.tail("cron-run.log")
        )
    }

    /// `fact NAME` exited 0.
    fn ok(&self, name: &str) -> String {
        let said = self.text(name);
        assert_eq!(self.rc(name), 0, "{name} failed:\n{said}{}", self.context());
        said
    }

    /// `systemctl start` of a unit succeeded and systemd recorded it as a success.
    fn unit_succeeded(&self, label: &str) {
        let start = format!("start-{label}");
        assert_eq!(
            self.rc(&start),
            0,
            "{start} failed:\n{}\n--- its journal\n{}{}",
            self.text(&start),
            self.text(&format!("journal-{label}")),
            self.context()
        );
        let show = self.text(&format!("show-{label}"));
        assert!(
            show.lines().any(|l| l == "Result=success") && show.contains("ExecMainStatus=0\n"),
            "{label}: {show}\n--- its journal\n{}{}",
            self.text(&format!("journal-{label}")),
            self.context()
        );
    }
}

/// The day and time of a `NextElapseUSecRealtime` ("Sun 2026-12-06 05:23:50 UTC"), as
/// (weekday, seconds after midnight).
fn elapse(shown: &str) -> (String, u32) {
    let f: Vec<&str> = shown.split_whitespace().collect();
    assert!(f.len() >= 3, "not a next elapse: {shown:?}");
    let hms: Vec<u32> = f[2]
        .split(':')
        .map(|n| n.parse().expect("a time"))
        .collect();
    (f[0].to_string(), hms[0] * 3600 + hms[1] * 60 + hms[2])
}

/// A timer's next elapse is on `day` (any when None), between `from` and `from + spread`.
fn assert_next(shown: &str, day: Option<&str>, from: (u32, u32), spread_min: u32) {
    let (weekday, secs) = elapse(shown.trim());
    if let Some(day) = day {
        assert_eq!(weekday, day, "next elapse {shown:?}");
    }
    let start = from.0 * 3600 + from.1 * 60;
    assert!(
        (start..=start + spread_min * 60).contains(&secs),
        "next elapse {shown:?} is not within {spread_min} minutes after {:02}:{:02}",
        from.0,
        from.1
    );
}

/// Rows of backups.db: (status, storage, archive key, details).
type LogRow = (String, Option<String>, Option<String>, String);

fn backup_rows(db: &rusqlite::Connection) -> Vec<LogRow> {
    let mut stmt = db
        .prepare("SELECT status, storage_name, archive_key, details FROM backup_log ORDER BY id")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// The report mails in `dir` (not configure's test mail): (subject, envelope).
fn report_mails(dir: &Path) -> Vec<(String, String)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    names.sort();
    names
        .iter()
        .map(|p| {
            let parsed = crate::util::smtp::parse(&std::fs::read(p).expect("read mail"));
            let envelope = std::fs::read_to_string(p.with_extension("json")).unwrap_or_default();
            (parsed.subject, envelope)
        })
        // configure's test mail is "[wpbackup] web-01: test mail"; a report's says "1 OK".
        .filter(|(subject, _)| {
            subject.starts_with("[wpbackup] web-01: ") && !subject.ends_with("test mail")
        })
        .collect()
}

/// Write `text` to `dir/name` with `mode`.
fn put(dir: &Path, name: &str, text: &str, mode: u32) {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write an input file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn a_booted_server_backs_up_by_its_timers_units_fails_over_drills_and_falls_back_to_cron() {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("not root (systemd-nspawn and the overlay mount need root)");
    }
    let Some(nspawn) = on_path("systemd-nspawn") else {
        return skip("systemd-nspawn is not installed (apt: systemd-container; scripts/setup.sh)");
    };
    let s3s_fs = crate::util::s3::s3s_fs();
    let s3s_fs = if s3s_fs.is_absolute() {
        s3s_fs
    } else {
        on_path("s3s-fs").expect("s3s-fs is installed by scripts/setup.sh")
    };
    let pylib = repo().join("tests/smtp/.pylib");
    assert!(
        pylib.join("aiosmtpd").is_dir(),
        "aiosmtpd is not installed: run scripts/setup.sh"
    );
    eprintln!(
        "real_server: booting this machine's system with {}",
        nspawn.display()
    );

    // What the container reads (/srv/in, read-only) and writes (/srv/out).
    let input = tempfile::Builder::new()
        .prefix("wpb-real-in")
        .tempdir()
        .expect("tempdir");
    let output = tempfile::Builder::new()
        .prefix("wpb-real-out")
        .tempdir()
        .expect("tempdir");
    let (i, o) = (input.path(), output.path());
    put(i, "boot.sh", BOOT_SCRIPT, 0o755);
    put(i, "cron.sh", CRON_SCRIPT, 0o755);
    put(i, "wp-config.php", WP_CONFIG, 0o644);
    put(i, "install.php", INSTALL_PHP, 0o644);
    put(i, "answers.json", ANSWERS, 0o600);
    put(i, "answers-smtp.json", ANSWERS_SMTP, 0o600);
    std::fs::copy(
        repo().join("tests/smtp/smtp_server.py"),
        i.join("smtp_server.py"),
    )
    .expect("copy smtp_server.py");
    // deploy.sh and systemd/ as a checkout has them (no .env beside them).
    std::fs::create_dir_all(i.join("src/systemd")).expect("src dir");
    std::fs::copy(repo().join("deploy.sh"), i.join("src/deploy.sh")).expect("copy deploy.sh");
    for e in std::fs::read_dir(repo().join("systemd")).expect("systemd/") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), i.join("src/systemd").join(e.file_name())).expect("copy a unit");
    }
    // Mount points for the read-only binds inside /srv/in.
    std::fs::create_dir(i.join("pylib")).expect("mount point");
    put(i, "wpbackup", "", 0o755);
    put(i, "s3s-fs", "", 0o755);
    let binds = vec![
        format!("--bind={}:/srv/out", o.display()),
        format!("--bind-ro={}:/srv/in", i.display()),
        format!(
            "--bind-ro={}:/srv/in/wpbackup",
            crate::util::bin().display()
        ),
        format!("--bind-ro={}:/srv/in/s3s-fs", s3s_fs.display()),
        format!("--bind-ro={}:/srv/in/pylib", pylib.display()),
    ];

    let mut machine = match Machine::mount() {
        Ok(m) => m,
        Err(why) => return skip(&why),
    };
    machine.prepare();
    let facts = Facts {
        dir: o.to_path_buf(),
    };

    // Boot: systemd as PID 1 runs the test unit, which powers the container off.
    let console = i.join("boot-console.log");
    let rc = machine.nspawn(&binds, &["-b", "--", "systemd.firstboot=off"], &console);
    let said = last_lines(&std::fs::read_to_string(&console).unwrap_or_default(), 30);
    if !o.join("boot.log").exists() {
        return skip(&format!(
            "the container did not boot (systemd-nspawn exit status {rc}):\n{said}"
        ));
    }
    assert!(
        o.join("boot.done").exists(),
        "the boot script did not finish (systemd-nspawn exit status {rc}){}\n--- console (end)\n{said}",
        facts.context()
    );

    // The same container without systemd: its command is PID 1.
    let console = i.join("cron-console.log");
    let rc = machine.nspawn(&binds, &["/srv/in/cron.sh"], &console);
    let said = last_lines(&std::fs::read_to_string(&console).unwrap_or_default(), 30);
    assert!(
        o.join("cron.done").exists(),
        "the cron script did not finish (systemd-nspawn exit status {rc}){}\n--- console (end)\n{said}",
        facts.context()
    );
    drop(machine);

    check(&facts);
}

/// Everything the two runs left in /srv/out, checked.
fn check(facts: &Facts) {
    assert_eq!(facts.text("errors"), "<no errors>", "{}", facts.context());
    assert!(facts.ok("wp-install").contains("installed"));

    // deploy.sh before configure: binary, home, units; the report timer waits for SMTP.
    let d1 = facts.ok("deploy-1");
    for line in [
        "installed: /usr/local/bin/wpbackup",
        "created: /opt/wordpress-backup (0700)",
        "note: no /opt/wordpress-backup/config.json yet",
        "enabled and started: wpbackup.timer",
        "enabled and started: wpbackup-drill.timer",
        "not enabled: wpbackup-report.timer: no SMTP_HOST",
    ] {
        assert!(d1.contains(line), "deploy.sh said:\n{d1}\n(no {line:?})");
    }
    assert!(
        !d1.contains("wpbackup-binlog"),
        "no binlog before configure:\n{d1}"
    );
    facts.ok("configure-1");
    // Again after configure: the local storage is writable by the backup unit.
    let d2 = facts.ok("deploy-2");
    assert!(
        d2.contains("installed: /etc/systemd/system/wpbackup.service"),
        "{d2}"
    );
    // configure checked the server's binary log and wrote `binlog`; deploy.sh then installed
    // the shipping's timer, active, its next run a monotonic time away.
    assert!(
        facts
            .ok("configure-1")
            .contains("✓ binlog: the server writes a binary log in ROW format"),
        "{}",
        facts.text("configure-1")
    );
    assert!(
        d2.contains("enabled and started: wpbackup-binlog.timer"),
        "{d2}"
    );
    assert_eq!(facts.ok("enabled-binlog").trim(), "enabled");
    assert_eq!(facts.ok("active-binlog").trim(), "active");
    let next = facts.ok("next-binlog");
    assert!(
        !next.trim().is_empty() && next.trim() != "infinity" && next.trim() != "0",
        "wpbackup-binlog.timer has no next elapse: {next:?}"
    );
    assert!(
        facts
            .text("wpbackup-binlog.timer.installed")
            .lines()
            .any(|l| l == "OnUnitActiveSec=5min")
    );
    let unit = facts.text("wpbackup.service.installed");
    assert!(
        unit.lines()
            .any(|l| l == "ReadWritePaths=-\"/var/backups/wpbackup\""),
        "{unit}"
    );

    // The timers: enabled, next elapse at the time deploy.sh was given (plus the random delay).
    assert_eq!(facts.ok("enabled-wpbackup.timer").trim(), "enabled");
    assert_eq!(facts.ok("enabled-wpbackup-drill.timer").trim(), "enabled");
    assert_eq!(
        facts.text("enabled-wpbackup-report.timer").trim(),
        "disabled"
    );
    assert_next(&facts.ok("next-wpbackup.timer"), None, (2, 15), 30);
    assert_next(
        &facts.ok("next-wpbackup-drill.timer"),
        Some("Sun"),
        (5, 0),
        60,
    );
    assert_eq!(facts.ok("enabled-report-with-smtp").trim(), "enabled");
    assert_next(&facts.ok("next-report-with-smtp"), Some("Mon"), (7, 0), 15);
    let timers = facts.ok("list-timers");
    for t in [
        "wpbackup.timer",
        "wpbackup-drill.timer",
        "wpbackup-report.timer",
    ] {
        assert!(timers.contains(t), "list-timers:\n{timers}");
    }

    // The units' runs, and what they left.
    for label in [
        "backup",
        "binlog",
        "failover",
        "drill",
        "backup-smtp",
        "report",
    ] {
        facts.unit_succeeded(label);
    }
    // The shipping unit stored a binary log file (and its signature) in s3s-fs.
    let objects = facts.text("binlog-objects");
    assert!(
        objects.lines().any(
            |l| l.starts_with("/srv/out/s3/wp-backups/binlog/web-01/mariadb-bin.")
                && l.ends_with(".zst")
        ),
        "no binary log file in the bucket:\n{objects}\n--- journal\n{}",
        facts.text("journal-binlog")
    );
    assert!(
        objects.lines().any(|l| l.ends_with(".zst.minisig")),
        "{objects}"
    );
    let db = rusqlite::Connection::open(facts.dir.join("db/backups.db")).expect("backups.db");
    let rows = backup_rows(&db);
    let summary = format!("{rows:#?}");
    assert_eq!(rows.len(), 4, "backup_log: {summary}");
    let statuses: Vec<(&str, Option<&str>)> = rows
        .iter()
        .map(|r| (r.0.as_str(), r.1.as_deref()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("SUCCESS", Some("s3")),
            ("WARNING", Some("disk")),
            ("SUCCESS", Some("s3")),
            ("SUCCESS", Some("s3")),
        ],
        "backup_log: {summary}"
    );
    // The first run's archive is an object file of s3s-fs, of the size backups.db recorded.
    let key = rows[0].2.clone().expect("an archive key");
    let object = facts.dir.join("s3/wp-backups").join(&key);
    let size: i64 = db
        .query_row(
            "SELECT file_size FROM s3_archives WHERE filename = ?1 AND storage_name = 's3'",
            [&key],
            |r| r.get(0),
        )
        .expect("s3_archives row of the first archive");
    let on_s3 = std::fs::metadata(&object)
        .unwrap_or_else(|e| panic!("{}: {e}", object.display()))
        .len();
    assert_eq!(on_s3 as i64, size, "{key}");
    // The failover: S3 down, stored on the local storage, a WARNING that says why.
    let warning = &rows[1];
    assert!(
        warning.3.contains("a storage failed first: s3 skipped"),
        "{}",
        warning.3
    );
    let local = facts.text("local-files");
    let failover_key = warning.2.clone().expect("the failover's key");
    assert!(
        local
            .lines()
            .any(|l| l == format!("/var/backups/wpbackup/{failover_key}")),
        "{failover_key} not in the local storage:\n{local}"
    );
    // The drill passed on that archive; the cron's drill passed too.
    let drills: Vec<(String, String, String)> = db
        .prepare("SELECT result, archive_key, details FROM drill_log ORDER BY id")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("drill rows");
    assert_eq!(drills.len(), 2, "{drills:#?}");
    assert!(
        drills.iter().all(|d| d.0 == "SUCCESS"),
        "{drills:#?}\n--- drill journal\n{}",
        facts.text("journal-drill")
    );
    assert_eq!(drills[0].1, failover_key, "{drills:#?}");
    // Both drills (the hardened unit's, without CAP_SYS_ADMIN; cron's, as plain root) ran
    // WordPress's php as a fresh uid of systemd's dynamic range, with no network but the
    // scratch database, as its throwaway user.
    for d in &drills {
        let uid: u32 =
            d.2.split("php ran as uid ")
                .nth(1)
                .and_then(|r| r.split(',').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no php uid in the drill's details: {}", d.2));
        assert!((61184..=65519).contains(&uid), "{}", d.2);
        assert!(
            d.2.contains("a fresh one, without the network but the scratch database"),
            "{}",
            d.2
        );
    }

    // Nothing failed, without SMTP and with it.
    assert_eq!(
        facts.ok("failed-without-smtp").trim(),
        "",
        "systemctl --failed without SMTP"
    );
    assert_eq!(
        facts.ok("failed-with-smtp").trim(),
        "",
        "systemctl --failed with SMTP"
    );
    assert!(
        facts
            .ok("deploy-3")
            .contains("enabled and started: wpbackup-report.timer")
    );
    assert!(
        facts
            .ok("configure-2")
            .contains("smtp: a test mail went to ops@example.com")
    );
    let mails = report_mails(&facts.dir.join("mail"));
    assert_eq!(mails.len(), 1, "report mails: {mails:?}");
    assert!(mails[0].1.contains("ops@example.com"), "{mails:?}");

    // Without systemd: deploy.sh wrote the cron file by itself, and every entry ran.
    let cd = facts.ok("cron-deploy");
    assert!(cd.contains("installed: /etc/cron.d/wpbackup"), "{cd}");
    assert!(!cd.contains("/etc/systemd/system"), "{cd}");
    let entries = facts.text("cron-entries");
    let commands: Vec<String> = (1..=entries.lines().count())
        .map(|n| {
            assert_eq!(facts.text(&format!("cron-user-{n}")).trim(), "root");
            let cmd = facts.text(&format!("cron-cmd-{n}"));
            assert_eq!(
                facts.rc(&format!("cron-cmd-{n}")),
                0,
                "{cmd}\n--- cron.log\n{}",
                facts.text("cron.log")
            );
            cmd
        })
        .collect();
    for what in [
        "wpbackup backup",
        "wpbackup report",
        "wpbackup drill",
        "wpbackup --quiet binlog",
    ] {
        assert!(
            commands.iter().any(|c| c.contains(what)),
            "no {what} in the cron file:\n{}",
            facts.text("cron-file")
        );
    }
    let cron_log = facts.text("cron.log");
    assert!(cron_log.contains("SUCCESS"), "{cron_log}");
    assert!(cron_log.contains("PASSED"), "{cron_log}");
    assert_eq!(
        report_mails(&facts.dir.join("mail-cron")).len(),
        1,
        "{cron_log}"
    );
}
