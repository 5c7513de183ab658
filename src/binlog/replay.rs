//! The replay: a restored point's database brought forward to a time by the site's events
//! from the binary log, `mariadb-binlog --database=DB --start-position=P --stop-datetime=T
//! files... | guard | mariadb`, the client logged in as a throwaway user. The drill replays
//! into its scratch database instead (`--rewrite-db=DB->SCRATCH`, which renames the database
//! in the row events' table maps too), to the end of the files.
//!
//! That user (`wpbreplay_<random>`, a random password that only a 0600 in-memory defaults
//! file holds) has every right on the site's database and `BINLOG REPLAY`, which applying row
//! events needs, and nothing else; it is dropped when the replay ends, whatever happened.
//! `BINLOG REPLAY` lets row events write anywhere, so [`super::guard`] drops every event of
//! another database before the client sees it.

use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};

use super::guard::{self, Guarded};
use crate::config::DatabaseConfig;
use crate::dbtools::{self, client, throwaway};

/// What to replay.
pub struct Replay<'a> {
    /// Who creates and drops the throwaway user (root through the socket, say).
    pub admin: &'a DatabaseConfig,
    /// The site's database: the only one whose events are read.
    pub database: &'a str,
    /// The database they are applied to, when not `database` (the drill's scratch one): the
    /// only one the throwaway user may write, and the guard lets through.
    pub rewrite_to: Option<&'a str>,
    /// The binary log files, in order, decompressed.
    pub files: &'a [PathBuf],
    /// Where in the first file the restore point's snapshot is.
    pub start_position: u64,
    /// Events from this second on are not applied; `None`: to the end of the files.
    pub stop: Option<DateTime<Utc>>,
}

impl Replay<'_> {
    /// The database the events are applied to.
    pub fn target(&self) -> &str {
        self.rewrite_to.unwrap_or(self.database)
    }
}

/// Make the throwaway user: every right on `database`, `BINLOG REPLAY`, nothing else.
fn make_user(admin: &DatabaseConfig, database: &str) -> anyhow::Result<throwaway::User> {
    throwaway::User::make(
        admin,
        "wpbreplay_",
        database,
        &["BINLOG REPLAY"],
        "the replay's throwaway user",
        "it needs CREATE USER and GRANT OPTION (root through the local socket has them; MYSQL_UNIX_PORT in .env names the socket); MariaDB 10.5.2 or later (BINLOG REPLAY)",
    )
}

/// Replay `r`: what the guard let through and dropped.
pub fn run(r: &Replay) -> anyhow::Result<Guarded> {
    if r.files.is_empty() {
        return Ok(Guarded::default());
    }
    let user = make_user(r.admin, r.target())?;
    let login = user.login(r.target(), None);
    let result = pipe(r, &login);
    drop(user);
    result
}

/// `mariadb-binlog ... | guard | mariadb` as `login`.
fn pipe(r: &Replay, login: &DatabaseConfig) -> anyhow::Result<Guarded> {
    let binlog_tool = dbtools::find_tool(&["mariadb-binlog", "mysqlbinlog"])?;
    let client_tool = dbtools::find_tool(&["mariadb", "mysql"])?;
    let mut reader = dbtools::command(&binlog_tool);
    // --stop-datetime is read in the local time zone: UTC, as TIME is.
    reader
        .env("TZ", "UTC")
        .arg("--no-defaults")
        .arg(format!("--database={}", r.database))
        .arg(format!("--start-position={}", r.start_position));
    if let Some(to) = r.rewrite_to {
        reader.arg(format!("--rewrite-db={}->{to}", r.database));
    }
    if let Some(stop) = r.stop {
        reader.arg(format!(
            "--stop-datetime={}",
            stop.format("%Y-%m-%d %H:%M:%S")
        ));
    }
    reader
        .arg("--")
        .args(r.files)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut reader = reader
        .spawn()
        .with_context(|| format!("cannot run {}", binlog_tool.display()))?;
    let defaults = dbtools::defaults_file(&client_tool, login)?;
    let mut cmd = dbtools::command(&client_tool);
    defaults.pass_to(&mut cmd);
    cmd.args(client::client_args(
        &defaults.path(),
        Some(r.target()),
        true,
    ))
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut writer = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = reader.kill();
            let _ = reader.wait();
            return Err(e).with_context(|| format!("cannot run {}", client_tool.display()));
        }
    };
    let (Some(out), Some(into)) = (reader.stdout.take(), writer.stdin.take()) else {
        let _ = (reader.kill(), writer.kill());
        let _ = (reader.wait(), writer.wait());
        bail!("no pipe between the binary log reader and the database client");
    };
    let database = r.target().to_string();
    let guarded = std::thread::spawn(move || {
        guard::filter(BufReader::with_capacity(256 * 1024, out), into, &database)
    });
    let stderr_of = |c: &mut std::process::Child| {
        let e = c.stderr.take();
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut e) = e {
                let _ = e.read_to_string(&mut s);
            }
            s
        })
    };
    let (reader_err, writer_err) = (stderr_of(&mut reader), stderr_of(&mut writer));
    let guarded = guarded
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the replay's guard panicked")));
    if guarded.is_err() {
        // Nothing reads its output any more.
        let _ = reader.kill();
    }
    let reader_status = reader.wait().context("cannot wait for mariadb-binlog")?;
    let writer_status = writer
        .wait()
        .context("cannot wait for the database client")?;
    drop(defaults);
    let reader_err = reader_err.join().unwrap_or_default();
    let writer_err = writer_err.join().unwrap_or_default();
    if !writer_status.success() {
        let said = writer_err
            .rfind("ERROR ")
            .map_or(writer_err.trim(), |i| writer_err[i..].trim());
        bail!(
            "the replay of the binary log into {} failed: {said}",
            r.target()
        );
    }
    if !reader_status.success() {
        bail!(
            "{} could not read the binary log ({reader_status}): {}",
            binlog_tool.display(),
            reader_err.trim()
        );
    }
    let guarded = guarded.context("the replay's guard stopped")?;
    if guarded.dropped > 0 {
        tracing::warn!(
            "the replay dropped {} binary log statements of other databases ({}) that mariadb-binlog's --database let through",
            guarded.dropped,
            guarded.foreign.join(", ")
        );
    }
    Ok(guarded)
}
