//! What a replay would apply last: the newest event of the site's database before a time, read
//! from the event headers `mariadb-binlog` prints (`#YYMMDD HH:MM:SS server id ...`, in UTC)
//! for the same `--database`, `--start-position` and `--stop-datetime` as the replay. For
//! `restore --dry-run --at`: its time, and which table and what kind of change (a row
//! inserted, updated or deleted, or a statement).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;

use crate::dbtools;

/// The newest event of the database before the time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastEvent {
    /// When the server wrote it (UTC, to the second).
    pub time: String,
    /// `insert`, `update`, `delete` (rows) or `statement`.
    pub kind: String,
    /// The table whose rows changed; for a statement, its first words.
    pub what: String,
}

/// The last event of `database` in `files` from `start_position` to before `stop`.
pub fn last_before(
    database: &str,
    files: &[PathBuf],
    start_position: u64,
    stop: DateTime<Utc>,
) -> anyhow::Result<Option<LastEvent>> {
    if files.is_empty() {
        return Ok(None);
    }
    let tool = dbtools::find_tool(&["mariadb-binlog", "mysqlbinlog"])?;
    let mut cmd = dbtools::command(&tool);
    cmd.env("TZ", "UTC")
        .arg("--no-defaults")
        .arg(format!("--database={database}"))
        .arg(format!("--start-position={start_position}"))
        .arg(format!(
            "--stop-datetime={}",
            stop.format("%Y-%m-%d %H:%M:%S")
        ))
        .arg("--")
        .args(files)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run {}", tool.display()))?;
    let err = child.stderr.take();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = err {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s
    });
    let out = child.stdout.take().context("no pipe from mariadb-binlog")?;
    let last = scan(BufReader::new(out), database);
    let status = child.wait().context("cannot wait for mariadb-binlog")?;
    let said = err.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "{} could not read the binary log ({status}): {}",
            tool.display(),
            said.trim()
        );
    }
    last.context("cannot read mariadb-binlog's output")
}

/// The last event of `database` in mariadb-binlog's output.
fn scan(input: impl BufRead, database: &str) -> std::io::Result<Option<LastEvent>> {
    let quoted = format!("`{database}`.");
    let mut tables: HashMap<String, String> = HashMap::new();
    let mut last = None;
    // A query event whose statement follows on the next lines.
    let mut query: Option<String> = None;
    for line in input.split(b'\n') {
        let line = String::from_utf8_lossy(&line?).into_owned();
        if let Some((time, event)) = header(&line) {
            query = None;
            if let Some(rest) = event.strip_prefix("Table_map: ") {
                // `db`.`table` mapped to number N
                if let Some((name, id)) = rest.rsplit_once(" mapped to number ") {
                    tables.insert(id.trim().to_string(), name.to_string());
                }
            } else if let Some((kind, rest)) = event.split_once(": table id ") {
                let kind = match kind {
                    k if k.starts_with("Write_rows") => "insert",
                    k if k.starts_with("Update_rows") => "update",
                    k if k.starts_with("Delete_rows") => "delete",
                    _ => continue,
                };
                let id = rest.split_whitespace().next().unwrap_or("");
                if let Some(name) = tables.get(id)
                    && let Some(table) = name.strip_prefix(&quoted)
                {
                    last = Some(LastEvent {
                        time: time.clone(),
                        kind: kind.into(),
                        what: table.trim_matches('`').to_string(),
                    });
                }
            } else if event.starts_with("Query") {
                query = Some(time);
            }
            continue;
        }
        if line.starts_with('#') || line.starts_with("/*") || line.starts_with("SET ") {
            continue;
        }
        if let Some(time) = &query {
            let statement = line.trim().trim_end_matches("/*!*/;").trim();
            let upper = statement.to_ascii_uppercase();
            if statement.is_empty()
                || upper.starts_with("USE ")
                || ["BEGIN", "COMMIT", "ROLLBACK", "START TRANSACTION"].contains(&upper.as_str())
            {
                continue;
            }
            last = Some(LastEvent {
                time: time.clone(),
                kind: "statement".into(),
                what: statement.chars().take(60).collect(),
            });
            query = None;
        }
    }
    Ok(last)
}

/// `#261206  0:02:58 server id 1  end_log_pos 1875 CRC32 0x...\tTable_map: ...`: the time
/// (UTC, as `YYYY-MM-DD HH:MM:SS UTC`) and the event's own text after the tab.
fn header(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?;
    if !rest.starts_with(|c: char| c.is_ascii_digit()) || !rest.contains(" server id ") {
        return None;
    }
    let mut words = rest.split_whitespace();
    let (date, time) = (words.next()?, words.next()?);
    let when = NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%y%m%d %H:%M:%S").ok()?;
    let when = Utc.from_utc_datetime(&when);
    let event = rest.split_once('\t').map_or("", |(_, e)| e).trim();
    Some((
        when.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        event.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_row_event_of_the_database_with_its_table_and_kind() {
        let out = "\
# at 1721
#261206  0:02:58 server id 1  end_log_pos 1875 CRC32 0xeb0c0d30 \tTable_map: `shop`.`wp_posts` mapped to number 18
#261206  0:02:58 server id 1  end_log_pos 1922 CRC32 0xb56060eb \tWrite_rows: table id 18 flags: STMT_END_F
BINLOG '
MqYUaxMBAAAANgAAAFMHAAAAABIAAAAAAAEAB3NjcmF0Y2gABXBvc3RzAAIDDwIUAAIwDQzr
'/*!*/;
#261206 10:12:07 server id 1  end_log_pos 1953 CRC32 0xe67e9b58 \tXid = 17
#261206 10:12:09 server id 1  end_log_pos 2310 CRC32 0x34238402 \tTable_map: `shop`.`wp_postmeta` mapped to number 19
#261206 10:12:09 server id 1  end_log_pos 2358 CRC32 0xe20dfe19 \tUpdate_rows: table id 19 flags: STMT_END_F
#261206 10:12:10 server id 1  end_log_pos 2410 CRC32 0x34238402 \tTable_map: `other`.`t` mapped to number 20
#261206 10:12:10 server id 1  end_log_pos 2458 CRC32 0xe20dfe19 \tDelete_rows: table id 20 flags: STMT_END_F
#261206 10:12:11 server id 1  end_log_pos 2500 CRC32 0x2e0d4329 \tXid = 19
";
        let last = scan(out.as_bytes(), "shop").unwrap().unwrap();
        assert_eq!(
            last,
            LastEvent {
                time: "2026-12-06 10:12:09 UTC".into(),
                kind: "update".into(),
                what: "wp_postmeta".into(),
            }
        );
        let ddl = "\
#261206 11:00:00 server id 1  end_log_pos 2600 CRC32 0x1 \tQuery\tthread_id=5\texec_time=0\terror_code=0
use `shop`/*!*/;
SET TIMESTAMP=1796551200/*!*/;
ALTER TABLE wp_posts ADD COLUMN x INT
/*!*/;
";
        let last = scan(format!("{out}{ddl}").as_bytes(), "shop")
            .unwrap()
            .unwrap();
        assert_eq!(last.kind, "statement");
        assert_eq!(last.what, "ALTER TABLE wp_posts ADD COLUMN x INT");
        assert_eq!(last.time, "2026-12-06 11:00:00 UTC");
        assert_eq!(scan(out.as_bytes(), "nothing").unwrap(), None);
    }
}
