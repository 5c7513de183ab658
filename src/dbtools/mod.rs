//! The MariaDB/MySQL client tools: finding them, the connection's defaults file, the child's
//! command, and small queries; the dump itself is in [`dump`].
//!
//! The password is never on a command line, in the child's environment or on disk: it goes
//! into a sealed `0600` defaults file in memory ([`Defaults`], a memfd the child alone
//! inherits), gone as soon as the tool has run. It is passed as
//! `--defaults-file` ([`defaults_arg`]), so it is the **only** option file the tool reads:
//! the `[client]`, `[mysqldump]` and `[mysql]` groups of `/etc/mysql/...` or `~/.my.cnf` could
//! otherwise turn the dump into a partial one (`no-data`, `ignore-table`) that still ends with
//! its completion line, or change what a query prints. What a connection needs is written in
//! the file from the site's settings (user, password, host, socket or port).
//! The command lines are built by pure functions, tested below. Time limits come with each
//! [`DatabaseConfig`] (its `timeouts`), never from a process-wide setting.

pub mod client;
pub mod dump;
pub mod facts;
pub mod throwaway;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::config::{DatabaseConfig, DbHost};
pub use dump::{COMPLETION_MARKER, Dump, run_dump};

/// Find the first of `names` on PATH.
pub fn find_tool(names: &[&str]) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for name in names {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "none of {} is installed: install the MariaDB or MySQL client (Debian: apt install mariadb-client)",
        names.join(", ")
    )
}

/// Quote a value for a MySQL option file (`"..."` with `\\`, `\"`, `\n` escaped).
fn option_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `[client]` section holding the connection settings and the password. `socket` is the
/// one a plain `localhost` (no socket of its own) uses, when the system names one.
pub fn defaults_text(db: &DatabaseConfig, socket: Option<&Path>) -> String {
    let mut s = String::from("[client]\n");
    s.push_str(&format!("user={}\n", option_value(&db.user)));
    s.push_str(&format!(
        "password={}\n",
        option_value(db.password.expose())
    ));
    match &db.host {
        DbHost::Socket(None) => {
            s.push_str("host=localhost\n");
            if let Some(p) = socket {
                s.push_str(&format!("socket={}\n", option_value(&p.to_string_lossy())));
            }
        }
        DbHost::Socket(Some(p)) => {
            s.push_str("host=localhost\n");
            s.push_str(&format!("socket={}\n", option_value(&p.to_string_lossy())));
        }
        DbHost::Tcp { host, port } => {
            s.push_str(&format!("host={}\nprotocol=TCP\n", option_value(host)));
            if let Some(port) = port {
                s.push_str(&format!("port={port}\n"));
            }
        }
    }
    s
}

/// The socket the system's option files name for `tool` (`socket=` under `[client]`, say):
/// the one setting of theirs a plain `localhost` still follows, as it did when those files
/// were read (the distribution's socket may not be the one the tool was built with).
fn configured_socket(tool: &Path) -> Option<PathBuf> {
    let out = command(tool)
        .arg("--print-defaults")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.strip_prefix("--socket="))
        .next_back()
        .map(PathBuf::from)
}

/// The defaults file holding the connection's password: a sealed, `0600` memory file
/// (`memfd_create`), never on disk, so nothing is left behind when wpbackup is killed outright
/// (a file in `$TMPDIR` was, outside systemd). A child reads it as `/dev/fd/N` ([`Self::path`])
/// once [`Self::pass_to`] let it inherit the descriptor; no other child does.
pub struct Defaults {
    fd: std::os::fd::OwnedFd,
}

impl Defaults {
    /// The path the child opens: its own copy of the descriptor, `/dev/fd/N`.
    pub fn path(&self) -> PathBuf {
        use std::os::fd::AsRawFd as _;
        PathBuf::from(format!("/dev/fd/{}", self.fd.as_raw_fd()))
    }

    /// Let `cmd`'s child, and only it, inherit the descriptor (close-on-exec is cleared in the
    /// child after the fork; the parent's copy keeps it, so no other child gets it).
    pub fn pass_to<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        use std::os::fd::AsRawFd as _;
        use std::os::unix::process::CommandExt as _;
        let raw = self.fd.as_raw_fd();
        // SAFETY: between fork and exec only `fcntl`, which is async-signal-safe, runs; `raw`
        // stays open in the parent until the child has been spawned (`self` is borrowed).
        unsafe {
            cmd.pre_exec(move || {
                let fd = std::os::fd::BorrowedFd::borrow_raw(raw);
                rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
                Ok(())
            })
        }
    }
}

/// The defaults file for `tool` ([`Defaults`]), closed (and gone) when dropped.
pub fn defaults_file(tool: &Path, db: &DatabaseConfig) -> anyhow::Result<Defaults> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let socket = match db.host {
        DbHost::Socket(None) => configured_socket(tool),
        _ => None,
    };
    let fd = rustix::fs::memfd_create(
        "wpbackup-my.cnf",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .context("cannot create the MySQL defaults file in memory (memfd_create)")?;
    // MariaDB ignores a world-writable option file; a memfd starts as 0777.
    rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(0o600))
        .context("cannot make the MySQL defaults file private")?;
    let mut file = std::fs::File::from(fd);
    file.write_all(defaults_text(db, socket.as_deref()).as_bytes())
        .context("cannot write the MySQL defaults file")?;
    let fd = std::os::fd::OwnedFd::from(file);
    rustix::fs::fcntl_add_seals(
        &fd,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )
    .context("cannot seal the MySQL defaults file")?;
    Ok(Defaults { fd })
}

/// The tool's first argument (it must come first): our defaults file, and no other.
pub fn defaults_arg(defaults: &Path) -> OsString {
    let mut arg = OsString::from("--defaults-file=");
    arg.push(defaults);
    arg
}

/// Arguments of the client to run one query and print bare tab-separated rows.
pub fn query_args(defaults: &Path, db: &DatabaseConfig, sql: &str) -> Vec<OsString> {
    vec![
        defaults_arg(defaults),
        "--default-character-set=utf8mb4".into(),
        "--batch".into(),
        "--skip-column-names".into(),
        format!("--connect-timeout={}", db.timeouts.connect_secs).into(),
        "-e".into(),
        sql.into(),
        "--".into(),
        db.name.as_str().into(),
    ]
}

/// A child command with a minimal environment: nothing of ours (no secret) is inherited.
pub fn command(tool: &Path) -> Command {
    let mut cmd = Command::new(tool);
    cmd.env_clear();
    cmd.env(
        "PATH",
        std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
    );
    cmd.env("LC_ALL", "C");
    cmd
}

/// The last `max` bytes of a child's stderr, as one line for an error message.
pub(crate) fn tail_text(buf: &[u8], max: usize) -> String {
    let start = buf.len().saturating_sub(max);
    String::from_utf8_lossy(&buf[start..])
        .trim()
        .replace('\n', " | ")
}

/// Run one query against the site's database and return its output.
pub fn query(db: &DatabaseConfig, sql: &str) -> anyhow::Result<String> {
    let tool = find_tool(&["mariadb", "mysql"])?;
    let defaults = defaults_file(&tool, db)?;
    let mut cmd = command(&tool);
    let out = defaults
        .pass_to(&mut cmd)
        .args(query_args(&defaults.path(), db, sql))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    drop(defaults);
    if !out.status.success() {
        bail!("{}", tail_text(&out.stderr, 600));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn db(host: DbHost) -> DatabaseConfig {
        DatabaseConfig {
            name: "wp".into(),
            user: "u\"x".into(),
            password: Secret::new(r#"p"a\ss#1"#),
            host,
            table_prefix: None,
            timeouts: Default::default(),
        }
    }

    #[test]
    fn defaults_file_text() {
        let t = defaults_text(
            &db(DbHost::Tcp {
                host: "::1".into(),
                port: Some(3307),
            }),
            Some(Path::new("/not/for/tcp.sock")),
        );
        assert_eq!(
            t,
            "[client]\nuser=\"u\\\"x\"\npassword=\"p\\\"a\\\\ss#1\"\nhost=\"::1\"\nprotocol=TCP\nport=3307\n"
        );
        let own = db(DbHost::Socket(Some("/run/my.sock".into())));
        let t = defaults_text(&own, Some(Path::new("/etc.sock")));
        assert!(t.ends_with("host=localhost\nsocket=\"/run/my.sock\"\n"));
        let t = defaults_text(&db(DbHost::Socket(None)), None);
        assert!(t.ends_with("host=localhost\n"));
        let t = defaults_text(&db(DbHost::Socket(None)), Some(Path::new("/etc.sock")));
        assert!(t.ends_with("host=localhost\nsocket=\"/etc.sock\"\n"));
    }

    #[test]
    fn the_socket_the_system_names_is_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("mariadb");
        std::fs::write(
            &tool,
            "#!/bin/sh\n[ \"$1\" = --print-defaults ] || exit 1\necho \"$0 would have been started with the following arguments:\"\necho '--socket=/a.sock --no-data --socket=/var/lib/mysql/mysql.sock '\n",
        )
        .unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            configured_socket(&tool),
            Some(PathBuf::from("/var/lib/mysql/mysql.sock"))
        );
        assert_eq!(configured_socket(&dir.path().join("missing")), None);
    }

    #[test]
    fn the_defaults_file_is_private_sealed_and_reaches_only_the_child_it_is_passed_to() {
        use std::os::unix::fs::PermissionsExt;
        let d = db(DbHost::Socket(None));
        let f = defaults_file(Path::new("/nonexistent"), &d).unwrap();
        let path = f.path();
        assert!(path.starts_with("/dev/fd"), "{path:?}: not in memory");
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let writer = std::fs::OpenOptions::new().append(true).open(&path);
        assert!(
            writer
                .and_then(|mut w| w.write_all(b"password=other\n"))
                .is_err(),
            "not sealed"
        );
        let cat = |pass: bool| {
            let mut cmd = Command::new("cat");
            cmd.arg(&path).stderr(Stdio::null());
            if pass {
                f.pass_to(&mut cmd);
            }
            cmd.output().unwrap()
        };
        let passed = cat(true);
        assert!(passed.status.success());
        assert_eq!(
            String::from_utf8_lossy(&passed.stdout),
            defaults_text(&d, None)
        );
        assert!(
            !cat(false).status.success(),
            "a child it was not passed to read it"
        );
    }
}
