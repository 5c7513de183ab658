//! The replay's guard: `mariadb-binlog`'s output passes through it on its way to the database
//! client, and every `BINLOG '...'` statement (row events, base64) is decoded and dropped
//! unless all its events are a format description, or table maps and row events of the one
//! database the replay restores.
//!
//! Why: MariaDB applies a `BINLOG` statement's row events without checking table privileges
//! (it needs `BINLOG REPLAY`, then writes wherever the table map points), so the throwaway
//! user's rights on the site's database alone would not keep another site's rows out, and
//! `--database=` is `mariadb-binlog`'s filter, not a boundary. Statements in plain SQL (DDL,
//! statement-format events) are checked by the server against the user's rights as usual.
//! A table id mapped to another database, or not mapped at all, makes its row events foreign
//! too; a `BINLOG @fragment` form (one event split over variables), which cannot be read
//! here, stops the replay.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};

/// Binary log event types (MariaDB's `log_event.h`).
const FORMAT_DESCRIPTION: u8 = 15;
const TABLE_MAP: u8 = 19;
/// WRITE/UPDATE/DELETE_ROWS v1 and v2, and MariaDB's compressed ones.
const ROWS: [u8; 12] = [23, 24, 25, 30, 31, 32, 166, 167, 168, 169, 170, 171];
/// The common event header: timestamp, type, server id, size, next position, flags.
const HEADER: usize = 19;

/// What the guard let through and held back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Guarded {
    /// `BINLOG` statements passed on.
    pub passed: u64,
    /// `BINLOG` statements dropped: events of another database (or of a table never mapped).
    pub dropped: u64,
    /// The other databases named by what was dropped.
    pub foreign: Vec<String>,
}

/// Copy `input` (mariadb-binlog's output) to `out`, dropping the `BINLOG` statements that hold
/// an event of any database but `database`.
pub fn filter(input: impl BufRead, mut out: impl Write, database: &str) -> io::Result<Guarded> {
    let mut guard = Guard {
        database: database.as_bytes().to_vec(),
        tables: HashMap::new(),
        seen: Guarded::default(),
    };
    let mut lines = input.split(b'\n');
    while let Some(line) = lines.next() {
        let line = line?;
        if line.starts_with(b"BINLOG @") {
            return Err(io::Error::other(
                "the binary log holds a row event in fragments (BINLOG @binlog_fragment), which the replay's guard cannot check: nothing more was replayed",
            ));
        }
        if !line.starts_with(b"BINLOG '") {
            out.write_all(&line)?;
            out.write_all(b"\n")?;
            continue;
        }
        // The statement's lines, to the one that closes its quote.
        let mut statement = vec![line];
        let mut closed = statement[0].len() > 8 && statement[0][8..].contains(&b'\'');
        while !closed {
            let Some(next) = lines.next() else { break };
            let next = next?;
            closed = next.contains(&b'\'');
            statement.push(next);
        }
        if guard.allows(&statement) {
            guard.seen.passed += 1;
            for l in &statement {
                out.write_all(l)?;
                out.write_all(b"\n")?;
            }
        } else {
            guard.seen.dropped += 1;
            out.write_all(b"-- wpbackup: a BINLOG statement of another database was dropped\n")?;
        }
    }
    out.flush()?;
    Ok(guard.seen)
}

struct Guard {
    database: Vec<u8>,
    /// Table id -> its database, from the table maps seen so far.
    tables: HashMap<u64, Vec<u8>>,
    seen: Guarded,
}

impl Guard {
    /// Whether every event of the statement (its lines) may be applied.
    fn allows(&mut self, statement: &[Vec<u8>]) -> bool {
        let text: Vec<u8> = statement.concat();
        let Some(start) = text.iter().position(|b| *b == b'\'') else {
            return false;
        };
        let Some(len) = text[start + 1..].iter().position(|b| *b == b'\'') else {
            return false;
        };
        let Some(bytes) = decode(&text[start + 1..start + 1 + len]) else {
            return false;
        };
        let mut ok = true;
        let mut at = 0;
        while at < bytes.len() {
            let Some(event) = bytes.get(at..at + HEADER) else {
                return false;
            };
            let size = u32::from_le_bytes([event[9], event[10], event[11], event[12]]) as usize;
            let Some(body) = bytes.get(at + HEADER..at + size.max(HEADER)) else {
                return false;
            };
            if size < HEADER {
                return false;
            }
            match event[4] {
                FORMAT_DESCRIPTION => {}
                TABLE_MAP => match table_map(body) {
                    Some((id, db)) => {
                        if db != self.database {
                            self.foreign(&db);
                            ok = false;
                        }
                        self.tables.insert(id, db);
                    }
                    None => return false,
                },
                t if ROWS.contains(&t) => {
                    let Some(id) = table_id(body) else {
                        return false;
                    };
                    match self.tables.get(&id) {
                        Some(db) if *db == self.database => {}
                        _ => ok = false,
                    }
                }
                _ => return false,
            }
            at += size;
        }
        ok
    }

    fn foreign(&mut self, db: &[u8]) {
        let name = String::from_utf8_lossy(db).into_owned();
        if !self.seen.foreign.contains(&name) {
            self.seen.foreign.push(name);
        }
    }
}

/// The 6-byte table id that starts a table map's or a row event's body.
fn table_id(body: &[u8]) -> Option<u64> {
    let b = body.get(..6)?;
    Some(u64::from_le_bytes([
        b[0], b[1], b[2], b[3], b[4], b[5], 0, 0,
    ]))
}

/// A table map's table id and database name.
fn table_map(body: &[u8]) -> Option<(u64, Vec<u8>)> {
    let id = table_id(body)?;
    let len = *body.get(8)? as usize;
    let db = body.get(9..9 + len)?.to_vec();
    Some((id, db))
}

/// Base64 as the server reads a `BINLOG` statement: whitespace ignored, several padded
/// chunks one after the other (one per event).
fn decode(text: &[u8]) -> Option<Vec<u8>> {
    let chars: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !chars.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(chars.len() / 4 * 3);
    for group in chars.chunks(4) {
        let pad = group.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for c in &group[..4 - pad] {
            n = (n << 6) | value(*c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    /// An event of `kind` with `body`, as the binary log holds it (no checksum).
    fn event(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut e = vec![0, 0, 0, 0, kind, 1, 0, 0, 0];
        e.extend_from_slice(&((HEADER + body.len()) as u32).to_le_bytes());
        e.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        e.extend_from_slice(body);
        e
    }

    fn table_map_event(id: u8, db: &str) -> Vec<u8> {
        let mut body = vec![id, 0, 0, 0, 0, 0, 1, 0, db.len() as u8];
        body.extend_from_slice(db.as_bytes());
        body.extend_from_slice(b"\0\x05posts\0\x01\x03\0");
        event(TABLE_MAP, &body)
    }

    fn rows_event(id: u8) -> Vec<u8> {
        event(30, &[id, 0, 0, 0, 0, 0, 1, 0, 2, 0, 1, 1, 0xfe, 7, 0, 0, 0])
    }

    /// How mariadb-binlog prints events: each base64-encoded on its own, 76 characters a line.
    fn statement(events: &[Vec<u8>]) -> String {
        let mut s = String::from("BINLOG '\n");
        for e in events {
            let b = base64::engine::general_purpose::STANDARD.encode(e);
            for chunk in b.as_bytes().chunks(76) {
                s.push_str(std::str::from_utf8(chunk).unwrap());
                s.push('\n');
            }
        }
        s.push_str("'/*!*/;\n");
        s
    }

    #[test]
    fn row_events_of_another_database_are_dropped() {
        let ours = statement(&[table_map_event(33, "shop"), rows_event(33)]);
        let theirs = statement(&[table_map_event(34, "other"), rows_event(34)]);
        // A row event whose table id was mapped to the other database earlier.
        let later = statement(&[rows_event(34)]);
        // A table map naming ours under an id, then a row event of an id never mapped.
        let unmapped = statement(&[table_map_event(35, "shop"), rows_event(99)]);
        let input = format!(
            "DELIMITER /*!*/;\nuse `shop`/*!*/;\n{ours}{theirs}{later}{unmapped}COMMIT/*!*/;\n"
        );
        let mut out = Vec::new();
        let seen = filter(input.as_bytes(), &mut out, "shop").unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(seen.passed, 1);
        assert_eq!(seen.dropped, 3);
        assert_eq!(seen.foreign, ["other"]);
        assert!(out.contains(&ours), "{out}");
        assert!(!out.contains(&theirs) && !out.contains(&later) && !out.contains(&unmapped));
        assert!(out.starts_with("DELIMITER /*!*/;\nuse `shop`/*!*/;\n"));
        assert!(out.ends_with("COMMIT/*!*/;\n"));
    }

    #[test]
    fn what_it_cannot_read_is_not_applied() {
        // Damaged base64, a cut event, an event type a BINLOG statement has no business with.
        for bad in [
            "BINLOG '\nAB$=\n'/*!*/;\n".to_string(),
            statement(&[table_map_event(33, "shop")[..20].to_vec()]),
            statement(&[event(2, b"DROP DATABASE other")]),
        ] {
            let mut out = Vec::new();
            let seen = filter(bad.as_bytes(), &mut out, "shop").unwrap();
            assert_eq!((seen.passed, seen.dropped), (0, 1), "{bad}");
        }
        let mut out = Vec::new();
        assert!(
            filter(
                &b"BINLOG @binlog_fragment_0, @binlog_fragment_1/*!*/;\n"[..],
                &mut out,
                "shop"
            )
            .is_err()
        );
    }
}
