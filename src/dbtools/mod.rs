//! Database dumps (and small queries) through the MariaDB/MySQL client tools.
//!
//! `mariadb-dump` (or `mysqldump`, whichever is installed) runs with a consistent snapshot and
//! streams its output into a zstd-compressed temporary file, hashed on the way; the dump is then
//! complete only if the tool exited 0 **and** its output ends with the tool's completion line
//! (`-- Dump completed on ...`). The password is never on a command line or in the child's
//! environment: it goes into a `0600` defaults file (`--defaults-extra-file`) that is removed as
//! soon as the tool has run. The command lines are built by pure functions, tested below.

pub mod client;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::config::{DatabaseConfig, DbHost, Timeouts};

/// The line every complete dump ends with.
pub const COMPLETION_MARKER: &[u8] = b"-- Dump completed";

static TIMEOUTS: std::sync::OnceLock<Timeouts> = std::sync::OnceLock::new();

/// Set the process's limits once, from config.json (before any dump or query).
pub fn set_timeouts(t: Timeouts) {
    let _ = TIMEOUTS.set(t);
}

fn timeouts() -> Timeouts {
    TIMEOUTS.get().copied().unwrap_or_default()
}

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

/// The `[client]` section holding the connection settings and the password.
pub fn defaults_text(db: &DatabaseConfig) -> String {
    let mut s = String::from("[client]\n");
    s.push_str(&format!("user={}\n", option_value(&db.user)));
    s.push_str(&format!(
        "password={}\n",
        option_value(db.password.expose())
    ));
    match &db.host {
        DbHost::Socket(None) => s.push_str("host=localhost\n"),
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

/// Write the defaults file: created `0600` by tempfile, removed when dropped.
pub fn defaults_file(db: &DatabaseConfig) -> anyhow::Result<NamedTempFile> {
    let mut f = tempfile::Builder::new()
        .prefix("wpbackup-my-")
        .suffix(".cnf")
        .tempfile()
        .context("cannot create a temporary MySQL defaults file")?;
    f.write_all(defaults_text(db).as_bytes())
        .and_then(|_| f.flush())
        .context("cannot write the temporary MySQL defaults file")?;
    Ok(f)
}

/// Arguments of the dump tool (no secret among them).
pub fn dump_args(defaults: &Path, db_name: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> =
        vec![format!("--defaults-extra-file={}", defaults.display()).into()];
    for a in [
        "--single-transaction",
        "--quick",
        "--routines",
        "--triggers",
        "--default-character-set=utf8mb4",
        "--hex-blob",
        "--no-tablespaces",
        "--add-drop-table",
        "--comments",
        "--",
    ] {
        args.push(a.into());
    }
    args.push(db_name.into());
    args
}

/// Arguments of the client to run one query and print bare tab-separated rows.
pub fn query_args(defaults: &Path, db_name: &str, sql: &str) -> Vec<OsString> {
    vec![
        format!("--defaults-extra-file={}", defaults.display()).into(),
        "--default-character-set=utf8mb4".into(),
        "--batch".into(),
        "--skip-column-names".into(),
        format!("--connect-timeout={}", timeouts().connect_secs).into(),
        "-e".into(),
        sql.into(),
        "--".into(),
        db_name.into(),
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
fn tail_text(buf: &[u8], max: usize) -> String {
    let start = buf.len().saturating_sub(max);
    String::from_utf8_lossy(&buf[start..])
        .trim()
        .replace('\n', " | ")
}

/// Run one query against the site's database and return its output.
pub fn query(db: &DatabaseConfig, sql: &str) -> anyhow::Result<String> {
    let tool = find_tool(&["mariadb", "mysql"])?;
    let defaults = defaults_file(db)?;
    let out = command(&tool)
        .args(query_args(defaults.path(), &db.name, sql))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    drop(defaults);
    if !out.status.success() {
        bail!("{}", tail_text(&out.stderr, 600));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A finished, complete dump: zstd-compressed in a private temporary file.
#[derive(Debug)]
pub struct Dump {
    file: NamedTempFile,
    /// Size of `database.sql` (uncompressed).
    pub size: u64,
    /// sha256 of `database.sql` (uncompressed).
    pub sha256: String,
}

impl Dump {
    /// The temporary file as it is: one zstd stream whose content is `database.sql`.
    pub fn compressed(&self) -> anyhow::Result<File> {
        File::open(self.file.path()).context("cannot reopen the temporary dump")
    }

    /// `database.sql`, decompressed as it is read.
    pub fn reader(&self) -> anyhow::Result<impl Read + use<>> {
        let f = File::open(self.file.path()).context("cannot reopen the temporary dump")?;
        zstd::stream::read::Decoder::new(f).context("cannot read the temporary dump")
    }
}

/// A writer that hashes and counts what passes and keeps the last bytes.
struct Tap<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
    tail: Vec<u8>,
}

impl<W: Write> Write for Tap<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        self.tail.extend_from_slice(&buf[..n]);
        if self.tail.len() > 4096 {
            self.tail.drain(..self.tail.len() - 256);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Dump the site's database into a compressed temporary file in `tmp_dir`.
/// Blocking: run it on a thread of its own, beside the file walk.
pub fn run_dump(db: &DatabaseConfig, tmp_dir: &Path) -> anyhow::Result<Dump> {
    let tool = find_tool(&["mariadb-dump", "mysqldump"])?;
    let tool_name = tool
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let defaults = defaults_file(db)?;
    let out = tempfile::Builder::new()
        .prefix("wpbackup-dump-")
        .suffix(".sql.zst")
        .tempfile_in(tmp_dir)
        .with_context(|| format!("cannot create a temporary file in {}", tmp_dir.display()))?;
    let mut child = command(&tool)
        .args(dump_args(defaults.path(), &db.name))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    let mut stderr = child.stderr.take().context("no stderr pipe")?;
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let watchdog = Watchdog::start(child.id(), timeouts().stall_secs);
    let stdout = watchdog.count(stdout);
    let encoder = zstd::stream::write::Encoder::new(
        out.reopen().context("cannot reopen the temporary dump")?,
        3,
    )
    .context("cannot start zstd")?;
    let mut tap = Tap {
        inner: encoder,
        hasher: Sha256::new(),
        size: 0,
        tail: Vec::new(),
    };
    let copied = io::copy(&mut BufReader::with_capacity(256 * 1024, stdout), &mut tap);
    if copied.is_err() {
        // We stopped reading: the tool would block on a full pipe.
        let _ = child.kill();
    }
    // Stopped before the child is reaped, so it can never signal a reused pid.
    let stopped = watchdog.stop();
    let status = child.wait().context("cannot wait for the dump tool")?;
    drop(defaults);
    let stderr_buf = err_thread.join().unwrap_or_default();
    if let Some(why) = stopped {
        bail!("{tool_name} {why}; nothing was stored");
    }
    let written = copied.and_then(|_| tap.inner.finish()?.sync_all());
    if let Err(e) = written {
        let full = matches!(
            e.raw_os_error(),
            Some(libc::ENOSPC | libc::EFBIG | libc::EDQUOT)
        );
        bail!(
            "cannot write the dump to {}: {e}{}",
            tmp_dir.display(),
            if full {
                ": the temporary directory is out of space (free some, or set TMPDIR to a larger one)"
            } else {
                ""
            }
        );
    }
    if !status.success() {
        bail!(
            "{tool_name} failed ({status}): {}",
            if stderr_buf.is_empty() {
                "no message".into()
            } else {
                tail_text(&stderr_buf, 600)
            }
        );
    }
    let tail = &tap.tail[tap.tail.len().saturating_sub(256)..];
    if !tail
        .windows(COMPLETION_MARKER.len())
        .any(|w| w == COMPLETION_MARKER)
    {
        bail!(
            "{tool_name} ended without its completion line after {} bytes: the dump is incomplete{}",
            tap.size,
            if stderr_buf.is_empty() {
                String::new()
            } else {
                format!(" ({})", tail_text(&stderr_buf, 400))
            }
        );
    }
    Ok(Dump {
        file: out,
        size: tap.size,
        sha256: hex::encode(tap.hasher.finalize()),
    })
}

/// Stops the dump tool when it has written nothing for `stall_secs` (a database server that
/// stopped answering), or when the run is interrupted (SIGTERM, SIGINT).
struct Watchdog {
    progress: std::sync::Arc<std::sync::atomic::AtomicU64>,
    state: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(pid: u32, stall_secs: u64) -> Watchdog {
        use std::sync::atomic::Ordering;
        let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let state = std::sync::Arc::new(std::sync::Mutex::new(None));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let (progress, state, done) = (progress.clone(), state.clone(), done.clone());
            std::thread::spawn(move || {
                let step = std::time::Duration::from_millis(100);
                let (mut last, mut since) = (0u64, std::time::Instant::now());
                while !done.load(Ordering::SeqCst) {
                    std::thread::sleep(step);
                    let now = progress.load(Ordering::Relaxed);
                    if now != last {
                        (last, since) = (now, std::time::Instant::now());
                    }
                    let why = if let Some(sig) = crate::interrupt::received() {
                        Some(format!(
                            "was stopped: the run was interrupted by {}",
                            crate::interrupt::name(sig)
                        ))
                    } else if since.elapsed().as_secs() >= stall_secs {
                        Some(format!(
                            "wrote nothing for {stall_secs}s after {last} bytes (the database server stopped answering?) and was stopped; the limit is database.stall_timeout_secs in config.json"
                        ))
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        if let Ok(mut s) = state.lock() {
                            *s = Some(why);
                        }
                        // The child is ours and not yet reaped (we are its only waiter).
                        unsafe {
                            libc::kill(pid as libc::pid_t, libc::SIGKILL);
                        }
                        break;
                    }
                }
            })
        };
        Watchdog {
            progress,
            state,
            done,
            thread: Some(thread),
        }
    }

    fn count<R: Read>(&self, inner: R) -> Counted<R> {
        Counted {
            inner,
            progress: self.progress.clone(),
        }
    }

    /// End the watch; the reason the tool was stopped, if it was.
    fn stop(mut self) -> Option<String> {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.state.lock().ok().and_then(|s| s.clone())
    }
}

struct Counted<R> {
    inner: R,
    progress: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
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
        }
    }

    #[test]
    fn secrets_stay_out_of_arguments() {
        let args = dump_args(Path::new("/tmp/x.cnf"), "wp");
        let joined: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(joined[0], "--defaults-extra-file=/tmp/x.cnf");
        assert!(joined.contains(&"--single-transaction".to_string()));
        assert!(joined.contains(&"--hex-blob".to_string()));
        assert_eq!(joined.last().map(String::as_str), Some("wp"));
        assert!(!joined.iter().any(|a| a.contains("pass")));
    }

    #[test]
    fn defaults_file_text() {
        let t = defaults_text(&db(DbHost::Tcp {
            host: "::1".into(),
            port: Some(3307),
        }));
        assert_eq!(
            t,
            "[client]\nuser=\"u\\\"x\"\npassword=\"p\\\"a\\\\ss#1\"\nhost=\"::1\"\nprotocol=TCP\nport=3307\n"
        );
        let t = defaults_text(&db(DbHost::Socket(Some("/run/my.sock".into()))));
        assert!(t.contains("host=localhost\nsocket=\"/run/my.sock\"\n"));
        let t = defaults_text(&db(DbHost::Socket(None)));
        assert!(t.ends_with("host=localhost\n"));
    }

    #[test]
    fn defaults_file_is_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let f = defaults_file(&db(DbHost::Socket(None))).unwrap();
        let path = f.path().to_path_buf();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        drop(f);
        assert!(!path.exists());
    }
}
