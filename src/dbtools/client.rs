//! The MariaDB/MySQL client (`mariadb`, or `mysql`) as a way to run SQL, with the dump's
//! secret handling: the password only in a sealed `0600` defaults file in memory, a child environment with
//! nothing of ours in it, and SQL fed on stdin, never on a command line. Also the quoting of
//! SQL string literals and identifiers, and the root account reached through the local socket.
//! A script ([`source_stream`]) runs in a process group of its own, stopped when the run is
//! interrupted.

use std::ffi::OsString;
use std::io::{Read as _, Write};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use anyhow::{Context as _, bail};

use crate::config::{DatabaseConfig, DbHost, Timeouts};
use crate::dbtools;
use crate::secret::Secret;

/// A SQL string literal.
pub fn sql_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A quoted identifier.
pub fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// Arguments of the client (no secret among them). SQL comes on stdin; a `script` (a dump) is
/// read in binary mode, which runs none of the client's own commands.
pub fn client_args(defaults: &Path, database: Option<&str>, script: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        // The defaults file must come first; it is the only option file read.
        dbtools::defaults_arg(defaults),
        "--default-character-set=utf8mb4".into(),
        "--batch".into(),
        "--skip-column-names".into(),
        "--max-allowed-packet=1G".into(),
    ];
    if script {
        args.push("--binary-mode".into());
    }
    if let Some(db) = database {
        args.push("--".into());
        args.push(db.into());
    }
    args
}

/// The last bytes of a child's stderr, as one line.
fn tail(buf: &[u8]) -> String {
    let start = buf.len().saturating_sub(600);
    let s = String::from_utf8_lossy(&buf[start..])
        .trim()
        .replace('\n', " | ");
    if s.is_empty() { "no message".into() } else { s }
}

/// What the client reads on stdin.
enum Input<'a> {
    Sql(&'a [u8]),
    /// SQL that holds text read from a database (a trigger's body): run in binary mode.
    Script(&'a [u8]),
    /// A script read from this as the client takes it (a dump rewritten on its way).
    Stream(Box<dyn std::io::Read + Send>),
}

/// Run the client as `creds` (in `database` when given) with `input` on stdin; its stdout.
fn run(creds: &DatabaseConfig, database: Option<&str>, input: Input) -> anyhow::Result<String> {
    let tool = dbtools::find_tool(&["mariadb", "mysql"])?;
    let defaults = dbtools::defaults_file(&tool, creds)?;
    let mut cmd = dbtools::command(&tool);
    // A script from an archive or a database: no client command in it is run (`\!`,
    // `system`...).
    let script = matches!(input, Input::Script(_) | Input::Stream(_));
    defaults
        .pass_to(&mut cmd)
        .args(client_args(&defaults.path(), database, script))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = match input {
        Input::Stream(mut from) => {
            // A group of its own: a SIGINT from the terminal reaches us, not the client (we
            // stop it, and whatever a wrapper script around it started, ourselves).
            let mut child = cmd
                .stdin(Stdio::piped())
                .process_group(0)
                .spawn()
                .with_context(|| format!("cannot run {}", tool.display()))?;
            let mut stdin = child.stdin.take().context("no stdin pipe")?;
            // A client that stops reading (an error, or killed on a signal) ends the copy.
            let writer = std::thread::spawn(move || std::io::copy(&mut from, &mut stdin));
            let out = wait_or_stop(child);
            let copied = writer.join();
            let out = out?;
            if out.status.success() {
                match copied {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => bail!("cannot read the script: {e}"),
                    Err(_) => bail!("the script's reader panicked"),
                }
            }
            out
        }
        Input::Sql(sql) | Input::Script(sql) => {
            let child = cmd
                .stdin(Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot run {}", tool.display()))?;
            feed(child, sql)?
        }
    };
    drop(defaults);
    if !out.status.success() {
        bail!("{}", tail(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Wait for `child` (the leader of its own process group), its output collected, unless a
/// SIGTERM or SIGINT comes first: the whole group is then killed and the error is
/// [`Interrupted`](crate::interrupt::Interrupted).
fn wait_or_stop(mut child: std::process::Child) -> anyhow::Result<Output> {
    let collect = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = collect(child.stdout.take().map(|r| Box::new(r) as _));
    let stderr = collect(child.stderr.take().map(|r| Box::new(r) as _));
    let status = loop {
        if let Some(status) = child.try_wait().context("cannot wait for the client")? {
            break status;
        }
        if let Err(stop) = crate::interrupt::check() {
            // Not reaped yet, so the group is still the child's and no one else's.
            unsafe {
                libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
            }
            let _ = child.wait();
            return Err(stop.into());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Write `sql` to the child's stdin and collect its output.
fn feed(mut child: std::process::Child, sql: &[u8]) -> anyhow::Result<Output> {
    let mut stdin = child.stdin.take().context("no stdin pipe")?;
    let sql = sql.to_vec();
    // Written from a thread: a large script must not deadlock against a full stdout.
    let writer = std::thread::spawn(move || stdin.write_all(&sql));
    let out = child
        .wait_with_output()
        .context("cannot wait for the client")?;
    let _ = writer.join();
    Ok(out)
}

/// Run SQL as `creds`; stdout as tab-separated rows.
pub fn sql(creds: &DatabaseConfig, database: Option<&str>, sql: &str) -> anyhow::Result<String> {
    run(creds, database, Input::Sql(sql.as_bytes()))
}

/// Run SQL that holds text read from a database as `creds`, in binary mode: the client runs
/// none of its own commands (`\!`, `system`, `source`...) whatever that text holds; only
/// `DELIMITER` still works.
pub fn script(creds: &DatabaseConfig, database: &str, sql: &str) -> anyhow::Result<String> {
    run(creds, Some(database), Input::Script(sql.as_bytes()))
}

/// A client kept open as `creds` in `database` and fed SQL piece by piece, so that one
/// transaction can span many statements without holding them all in memory. Dropped without
/// [`Session::finish`], the client is killed and what it did uncommitted is rolled back.
pub struct Session {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    tool: PathBuf,
    _defaults: dbtools::Defaults,
}

impl Session {
    pub fn open(creds: &DatabaseConfig, database: &str) -> anyhow::Result<Session> {
        let tool = dbtools::find_tool(&["mariadb", "mysql"])?;
        let defaults = dbtools::defaults_file(&tool, creds)?;
        let mut cmd = dbtools::command(&tool);
        let mut child = defaults
            .pass_to(&mut cmd)
            .args(client_args(&defaults.path(), Some(database), false))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", tool.display()))?;
        let stdin = child.stdin.take();
        let stderr = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = std::io::Read::read_to_end(&mut e, &mut buf);
                buf
            })
        });
        Ok(Session {
            child,
            stdin,
            stderr,
            tool,
            _defaults: defaults,
        })
    }

    /// Send `sql` to the client; when it has stopped (an error in what it was sent), its
    /// message.
    pub fn write(&mut self, sql: &str) -> anyhow::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .context("the client's stdin is closed")?;
        if stdin.write_all(sql.as_bytes()).is_err() {
            return self
                .wait()
                .and_then(|()| bail!("the client stopped reading"));
        }
        Ok(())
    }

    /// Close the client's input and wait for it: `Ok` when it ran everything it was sent.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.wait()
    }

    fn wait(&mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        let status = self
            .child
            .wait()
            .with_context(|| format!("cannot wait for {}", self.tool.display()))?;
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if !status.success() {
            bail!("{}", tail(&stderr));
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            // Unfinished: end the connection without COMMIT.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Run the SQL script `script` reads (a whole dump, rewritten on its way: see
/// `restore::definer`) as `creds` in `database`. A SIGTERM or SIGINT stops the client (and
/// its process group) and is the error.
pub fn source_stream(
    creds: &DatabaseConfig,
    database: &str,
    script: impl std::io::Read + Send + 'static,
) -> anyhow::Result<()> {
    run(creds, Some(database), Input::Stream(Box::new(script))).map(|_| ())
}

/// Root through the local socket: `socket` (from `MYSQL_UNIX_PORT`, or the site's own socket),
/// else the client's default socket. Works where root authenticates by socket (Debian's
/// default, when wpbackup runs as root) or has no password.
pub fn admin(socket: Option<PathBuf>, timeouts: Timeouts) -> DatabaseConfig {
    DatabaseConfig {
        name: String::new(),
        user: "root".into(),
        password: Secret::new(""),
        host: DbHost::Socket(socket),
        table_prefix: None,
        timeouts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sql_str(r"a'b\c"), r"'a\'b\\c'");
        assert_eq!(ident("wp`x"), "`wp``x`");
    }

    #[test]
    fn client_arguments_hold_no_secret() {
        let args: Vec<String> = client_args(Path::new("/tmp/x.cnf"), Some("wp"), true)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args[0], "--defaults-file=/tmp/x.cnf");
        assert_eq!(&args[args.len() - 2..], ["--", "wp"]);
        assert!(!args.iter().any(|a| a.contains("password") || a == "-e"));
        assert!(args.iter().any(|a| a == "--binary-mode"), "{args:?}");
        let args = client_args(Path::new("/tmp/x.cnf"), None, false);
        assert!(!args.iter().any(|a| a == "--" || a == "--binary-mode"));
    }
}
