//! The database dump: `mariadb-dump` (or `mysqldump`, whichever is installed) runs with a
//! consistent snapshot and streams its output into a zstd-compressed temporary file, hashed on
//! the way; the dump is then complete only if the tool exited 0 **and** its output ends with
//! the tool's completion line (`-- Dump completed on ...`). A watchdog stops a tool that has
//! written nothing for `database.stall_timeout_secs`, or when the run is interrupted. The
//! rows of each table and WordPress's own facts are counted from the same bytes
//! ([`super::facts`]), so they describe exactly the dump that is archived.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use super::facts::{DumpFacts, FactsReader};
use super::{command, defaults_file, find_tool, tail_text};
use crate::config::DatabaseConfig;

/// The line every complete dump ends with.
pub const COMPLETION_MARKER: &[u8] = b"-- Dump completed";

/// Arguments of the dump tool (no secret among them); the tables of `no_rows` are dumped
/// without their rows (`--ignore-table-data`: their structure stays). With `coordinates`
/// (config.json's `binlog` is set), `--master-data=2`: the dump's binary log file and position
/// as a comment near its top (`-- CHANGE MASTER TO MASTER_LOG_FILE='...', MASTER_LOG_POS=N;`),
/// which [`super::facts`] reads into the manifest's `binlog`.
pub fn dump_args(
    defaults: &Path,
    db_name: &str,
    no_rows: &[String],
    coordinates: bool,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![super::defaults_arg(defaults)];
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
    ] {
        args.push(a.into());
    }
    if coordinates {
        args.push("--master-data=2".into());
    }
    for table in no_rows {
        args.push(format!("--ignore-table-data={db_name}.{table}").into());
    }
    args.push("--".into());
    args.push(db_name.into());
    args
}

/// A finished, complete dump: zstd-compressed in a private temporary file.
#[derive(Debug)]
pub struct Dump {
    file: NamedTempFile,
    /// Size of `database.sql` (uncompressed).
    pub size: u64,
    /// sha256 of `database.sql` (uncompressed).
    pub sha256: String,
    /// The rows of each table, and WordPress's `home` and published posts, in this dump.
    pub facts: DumpFacts,
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

/// A writer that hashes and counts what passes, keeps the last bytes and reads the facts.
struct Tap<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
    tail: Vec<u8>,
    facts: FactsReader,
}

impl<W: Write> Write for Tap<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.facts.feed(&buf[..n]);
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

/// Dump the site's database into a compressed temporary file in `tmp_dir`, the tables of
/// `no_rows` without their rows; with `coordinates`, the binary log position too (a dump that
/// then has none fails: point-in-time recovery was asked for). Blocking: run it on a thread of
/// its own, beside the file walk.
pub fn run_dump(
    db: &DatabaseConfig,
    tmp_dir: &Path,
    no_rows: &[String],
    coordinates: bool,
) -> anyhow::Result<Dump> {
    let tool = find_tool(&["mariadb-dump", "mysqldump"])?;
    let tool_name = tool
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let defaults = defaults_file(&tool, db)?;
    let out = tempfile::Builder::new()
        .prefix("wpbackup-dump-")
        .suffix(".sql.zst")
        .tempfile_in(tmp_dir)
        .with_context(|| format!("cannot create a temporary file in {}", tmp_dir.display()))?;
    let mut cmd = command(&tool);
    let mut child = defaults
        .pass_to(&mut cmd)
        .args(dump_args(&defaults.path(), &db.name, no_rows, coordinates))
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
    let watchdog = Watchdog::start(child.id(), db.timeouts.stall_secs);
    let (copied, tap) = copy_out(watchdog.count(stdout), &out)?;
    if copied.is_err() {
        // We stopped reading: the tool would block on a full pipe.
        let _ = child.kill();
    }
    // Stopped before the child is reaped, so it can never signal a reused pid.
    let stopped = watchdog.stop();
    let status = child.wait().context("cannot wait for the dump tool")?;
    drop(defaults);
    let ended = Ended {
        tool_name,
        stopped,
        status,
        stderr: err_thread.join().unwrap_or_default(),
    };
    let (size, sha256, facts) = ended.verdict(copied, tap, tmp_dir).map_err(|e| {
        if coordinates {
            anyhow::anyhow!(
                "{e:#}; config.json's `binlog` has the dump record its binary log position (--master-data=2): the server must write a binary log (log_bin, binlog_format=ROW, server_id in its config) and the site's database user may need RELOAD and BINLOG MONITOR; or remove `binlog` from config.json"
            )
        } else {
            e
        }
    })?;
    if coordinates && facts.binlog.is_none() {
        bail!(
            "config.json's `binlog` is set but the dump of {} holds no binary log position: enable the server's binary log (log_bin, binlog_format=ROW, server_id in its config) or remove `binlog` from config.json",
            db.name
        );
    }
    Ok(Dump {
        file: out,
        size,
        sha256,
        facts,
    })
}

type Encoder = zstd::stream::write::Encoder<'static, File>;

/// Copy the tool's output into the compressed temporary file; the copy's own result is
/// returned beside the tap, to be judged once the tool has ended.
fn copy_out(
    stdout: impl Read,
    out: &NamedTempFile,
) -> anyhow::Result<(io::Result<u64>, Tap<Encoder>)> {
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
        facts: FactsReader::default(),
    };
    let copied = io::copy(&mut BufReader::with_capacity(256 * 1024, stdout), &mut tap);
    Ok((copied, tap))
}

/// How the dump tool ended.
struct Ended {
    tool_name: String,
    /// Why the watchdog stopped it, if it did.
    stopped: Option<String>,
    status: std::process::ExitStatus,
    stderr: Vec<u8>,
}

impl Ended {
    /// Size, sha256 and facts of the complete dump, or why it is not complete.
    fn verdict(
        self,
        copied: io::Result<u64>,
        tap: Tap<Encoder>,
        tmp_dir: &Path,
    ) -> anyhow::Result<(u64, String, DumpFacts)> {
        let tool_name = &self.tool_name;
        if let Some(why) = &self.stopped {
            bail!("{tool_name} {why}; nothing was stored");
        }
        // Not fsynced: the file is read back from the page cache within the run and deleted
        // at its end (a full disk shows at the write; the archive's reader checks the dump
        // against the manifest's `database_sha256`). It cost the dump's thread one sync.
        let written = copied.and_then(|_| tap.inner.finish().map(drop));
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
        if !self.status.success() {
            bail!(
                "{tool_name} failed ({}): {}",
                self.status,
                if self.stderr.is_empty() {
                    "no message".into()
                } else {
                    tail_text(&self.stderr, 600)
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
                if self.stderr.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", tail_text(&self.stderr, 400))
                }
            );
        }
        Ok((
            tap.size,
            hex::encode(tap.hasher.finalize()),
            tap.facts.finish(),
        ))
    }
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

    #[test]
    fn secrets_stay_out_of_arguments() {
        let args = dump_args(
            Path::new("/tmp/x.cnf"),
            "wp",
            &["wp_logs".to_string()],
            false,
        );
        let joined: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(joined[0], "--defaults-file=/tmp/x.cnf");
        assert!(joined.contains(&"--single-transaction".to_string()));
        assert!(joined.contains(&"--hex-blob".to_string()));
        assert_eq!(joined.last().map(String::as_str), Some("wp"));
        assert!(!joined.iter().any(|a| a.contains("pass")));
        let ignored = joined
            .iter()
            .position(|a| a == "--ignore-table-data=wp.wp_logs");
        let end = joined.iter().position(|a| a == "--");
        assert!(ignored.is_some() && ignored < end, "{joined:?}");
    }
}
