//! `wpbackup binlog`'s run: the server's binary log rotated (`FLUSH BINARY LOGS`), and every
//! closed file not yet shipped read from the server (`mariadb-binlog --read-from-remote-server
//! --raw`, so it works wherever the client reaches the server), compressed (zstd), encrypted
//! when `encryption` is set, stored through the storages' failover in priority order as an
//! archive is, its sha256 recorded and its signature (`.minisig`, minisign's format, by the
//! server's key) stored beside it; then recorded in backups.db's `binlog_files`.
//!
//! The newest file, the one the server writes to, is never shipped: the next run's rotation
//! closes it.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail};
use chrono::{DateTime, TimeZone, Utc};

use crate::config::DatabaseConfig;
use crate::crypt::Encryption;
use crate::dbtools::{self, client};
use crate::logdb::{BinlogEntry, LogDb};
use crate::sign::{self, Comment, Prehasher, SecretKey};
use crate::storage::failover::{self, AttemptError, Target};
use crate::storage::{Body, BodyWriter, PutOutcome, Storage};

/// What a run needs.
pub struct Run<'a> {
    pub rt: &'a tokio::runtime::Runtime,
    pub targets: &'a [Target],
    pub server_id: &'a str,
    /// The user that reads the binary log (`binlog.database`, else root by socket).
    pub db: &'a DatabaseConfig,
    pub encryption: Option<Encryption>,
    pub signer: &'a SecretKey,
    pub logdb: &'a LogDb,
    /// Where the raw files are read to, one at a time.
    pub tmp_dir: &'a Path,
}

/// One file shipped.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShippedFile {
    pub file: String,
    pub key: String,
    pub storage: String,
    pub bytes: u64,
    pub first_event: String,
}

/// What a run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Outcome {
    pub shipped: Vec<ShippedFile>,
    /// Closed files shipped by an earlier run.
    pub already: usize,
    /// The file the server writes to now (shipped by a later run).
    pub current: Option<String>,
}

/// Rotate the binary log and ship every closed file not shipped yet.
pub fn ship(run: &Run) -> anyhow::Result<Outcome> {
    let who = &run.db.user;
    client::sql(run.db, None, "FLUSH BINARY LOGS").map_err(|e| {
        anyhow::anyhow!(
            "cannot rotate the binary log (FLUSH BINARY LOGS) as {who}: {}; the server must write one (log_bin, binlog_format=ROW, server_id in its config) and the user needs RELOAD (or BINLOG ADMIN) and REPLICATION SLAVE: see README's \"Point-in-time recovery\"",
            server_said(&e)
        )
    })?;
    let listed = client::sql(run.db, None, "SHOW BINARY LOGS").map_err(|e| {
        anyhow::anyhow!(
            "cannot list the binary log files (SHOW BINARY LOGS) as {who}: {}; grant it BINLOG MONITOR (REPLICATION CLIENT)",
            server_said(&e)
        )
    })?;
    let mut files: Vec<String> = listed
        .lines()
        .filter_map(|l| l.split('\t').next())
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    let mut outcome = Outcome {
        current: files.pop(),
        ..Outcome::default()
    };
    let done = run.logdb.binlog_shipped(run.server_id)?;
    for file in files {
        if done.contains(&file) {
            outcome.already += 1;
            continue;
        }
        crate::interrupt::check()?;
        outcome.shipped.push(ship_file(run, &file)?);
    }
    Ok(outcome)
}

/// The server's own error line in the client's error.
fn server_said(e: &anyhow::Error) -> String {
    let said = format!("{e:#}");
    match said.rfind("ERROR ") {
        Some(i) => said[i..].trim().to_string(),
        None => said,
    }
}

/// Read `file` from the server, store it, record it.
fn ship_file(run: &Run, file: &str) -> anyhow::Result<ShippedFile> {
    if !file
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        bail!("the server names a binary log file {file:?}: not a plain file name, not shipped");
    }
    let dir = tempfile::Builder::new()
        .prefix("wpbackup-binlog-")
        .tempdir_in(run.tmp_dir)
        .with_context(|| {
            format!(
                "cannot make a temporary directory in {}",
                run.tmp_dir.display()
            )
        })?;
    let raw = fetch_raw(run.db, file, dir.path())?;
    let first_event = first_event(&raw)?;
    let last_event = super::rotated_at(&raw)?;
    let key = super::object_key(run.server_id, file, first_event, run.encryption.is_some());
    let stored = failover::store(run.targets, |st| attempt(run, st, &key, &raw))
        .map_err(|e| anyhow::anyhow!("binary log file {file}: {e}"))?;
    for why in &stored.failed_first {
        tracing::warn!("{file} stored on {} after: {why}", stored.storage);
    }
    let out = stored.value;
    run.logdb.record_binlog(&BinlogEntry {
        server_id: run.server_id.to_string(),
        file: file.to_string(),
        first_event,
        object_key: key.clone(),
        storage_name: stored.storage.clone(),
        size_bytes: out.size,
        sha256: out.sha256.clone(),
        last_event,
    })?;
    tracing::info!(storage = stored.storage, "shipped {file} as {key}");
    Ok(ShippedFile {
        file: file.to_string(),
        key,
        storage: stored.storage,
        bytes: out.size,
        first_event: first_event.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// `file` read from the server as it is (`--raw`) into `dir`.
fn fetch_raw(db: &DatabaseConfig, file: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    let tool = dbtools::find_tool(&["mariadb-binlog", "mysqlbinlog"])?;
    let defaults = dbtools::defaults_file(&tool, db)?;
    let mut cmd = dbtools::command(&tool);
    defaults.pass_to(&mut cmd);
    let out = cmd
        .arg(dbtools::defaults_arg(&defaults.path()))
        .arg("--read-from-remote-server")
        .arg("--raw")
        .arg(format!("--result-file={}/", dir.display()))
        .arg("--")
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    drop(defaults);
    if !out.status.success() {
        bail!(
            "cannot read binary log file {file} from the server as {} ({}): {}; the user needs REPLICATION SLAVE",
            db.user,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let path = dir.join(file);
    if !path.is_file() {
        bail!("{} wrote no {}", tool.display(), path.display());
    }
    Ok(path)
}

/// The time of a binary log file's first event (its format description): when it began.
fn first_event(path: &Path) -> anyhow::Result<DateTime<Utc>> {
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .with_context(|| format!("cannot read {}", path.display()))?;
    if &head[..4] != b"\xfebin" {
        bail!("{} is not a binary log file", path.display());
    }
    let secs = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    Utc.timestamp_opt(i64::from(secs), 0)
        .single()
        .with_context(|| format!("{}: no time in its first event", path.display()))
}

/// Store `raw` under `key` on `st`, then its signature.
fn attempt(run: &Run, st: &dyn Storage, key: &str, raw: &Path) -> Result<PutOutcome, AttemptError> {
    let (tx, body) = Body::channel(4);
    let producer = {
        let (raw, enc) = (raw.to_path_buf(), run.encryption.clone());
        let writer = BodyWriter::new(tx, 1024 * 1024);
        std::thread::spawn(move || produce(writer, &raw, enc))
    };
    let put = run.rt.block_on(st.put(key, body));
    let produced = producer
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the binary log compressor panicked")));
    let (out, prehash) = match (put, produced) {
        (Ok(out), Ok(prehash)) => (out, prehash),
        (Ok(_), Err(why)) => {
            let _ = run.rt.block_on(st.delete(key));
            return Err(AttemptError::Source(why));
        }
        (Err(e), Err(why)) if e.is_source() => return Err(AttemptError::Source(why)),
        (Err(e), _) => {
            tracing::warn!(
                storage = st.name(),
                "upload of {key} failed, trying the next storage: {e}"
            );
            return Err(AttemptError::Storage(e.into()));
        }
    };
    let comment = Comment {
        archive: key.to_string(),
        site: "*".into(),
        server: run.server_id.to_string(),
        sha256: out.sha256.clone(),
    };
    let text = run.signer.sign(&prehash, &comment.to_text());
    let sig_key = sign::signature_key(key);
    let (tx, body) = Body::channel(1);
    let stored = run.rt.block_on(async {
        let _ = tx.send(Ok(bytes::Bytes::from(text))).await;
        drop(tx);
        st.put(&sig_key, body).await
    });
    if let Err(e) = stored {
        let _ = run.rt.block_on(st.delete(key));
        tracing::warn!(
            storage = st.name(),
            "cannot store the signature {sig_key}, trying the next storage: {e}"
        );
        return Err(AttemptError::Storage(e.into()));
    }
    Ok(out)
}

/// `raw`, zstd-compressed (and encrypted), into the upload; the BLAKE2b-512 of what was stored.
fn produce(
    writer: BodyWriter,
    raw: &Path,
    encryption: Option<Encryption>,
) -> anyhow::Result<[u8; 64]> {
    let mut input =
        std::fs::File::open(raw).with_context(|| format!("cannot open {}", raw.display()))?;
    let (tap, prehasher) = Prehasher::start()
        .map_err(|e| anyhow::anyhow!("cannot start hashing the binary log file: {e}"))?;
    let writer = writer.with_tap(tap);
    let mut compress = |w: Box<dyn Write + '_>| -> io::Result<()> {
        let mut z = zstd::stream::write::Encoder::new(w, 3)?;
        io::copy(&mut input, &mut z)?;
        z.finish()?.flush()
    };
    let writer = match &encryption {
        None => {
            let mut w = writer;
            compress(Box::new(&mut w))?;
            w
        }
        Some(enc) => {
            let mut sealed = enc.encrypt(writer)?;
            compress(Box::new(&mut sealed))?;
            sealed.finish()?
        }
    };
    writer.finish()?;
    Ok(prehasher.finish()?)
}
