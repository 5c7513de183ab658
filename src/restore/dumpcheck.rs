//! What an archive's `database.sql` may hold before it is imported.
//!
//! On a new server the sha256 a restore checks comes from the object's metadata, which anyone
//! with write access to the bucket can set along with a doctored archive. The import therefore
//! trusts the dump's *form*, not its source: it runs the client with `--binary-mode` (client
//! commands such as `\!` and `system` are not run), and before anything live changes this check
//! refuses a dump with a line that a `mariadb-dump` of one database never writes: a client
//! command, or a statement that reaches another database (`USE`, `CREATE DATABASE`,
//! `ALTER DATABASE`, `DROP DATABASE`). The refusal names the line.
//!
//! `mariadb-dump` writes one statement per line (extended INSERTs included, with newlines in
//! values escaped), so a line-by-line look at each statement's start sees every statement.

use std::io::{BufRead, BufReader, Read};

/// A line that has no place in a dump of one database.
#[derive(Debug, thiserror::Error)]
#[error(
    "database.sql line {line}: {what} ({excerpt:?}): a dump made by wpbackup never holds this, so the archive may have been tampered with; refusing to import it"
)]
pub struct Refused {
    pub line: u64,
    pub what: &'static str,
    pub excerpt: String,
}

/// Why a dump could not be checked (or was refused).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("cannot read database.sql: {0}")]
    Read(#[from] std::io::Error),
}

/// The first line of dumps by MariaDB 10.11.8 and later; a client command that only turns the
/// client's sandbox mode on (no system commands from then on), so it is allowed.
const SANDBOX: &[u8] = b"/*M!999999\\- enable the sandbox mode */";

/// Read the whole dump; the first line that may not be imported is an error.
pub fn check(dump: impl Read) -> Result<(), CheckError> {
    let mut reader = BufReader::with_capacity(1 << 20, dump);
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        line += 1;
        if let Some(what) = forbidden(&buf) {
            let text = String::from_utf8_lossy(&buf);
            let excerpt: String = text.trim().chars().take(60).collect();
            return Err(Refused {
                line,
                what,
                excerpt,
            }
            .into());
        }
    }
}

/// What is wrong with one line, if anything.
fn forbidden(line: &[u8]) -> Option<&'static str> {
    let t = line.trim_ascii();
    if t.starts_with(SANDBOX) {
        return None;
    }
    if t.starts_with(b"\\") {
        return Some("a client command");
    }
    let lower = t.to_ascii_lowercase();
    // The client's named commands, as the first word of a line.
    const CLIENT: &[&[u8]] = &[
        b"system",
        b"source",
        b"connect",
        b"pager",
        b"tee",
        b"nopager",
        b"notee",
        b"charset",
        b"rehash",
        b"prompt",
        b"warnings",
        b"nowarning",
    ];
    let first: &[u8] = lower
        .split(|b| b.is_ascii_whitespace() || *b == b';')
        .next()
        .unwrap_or_default();
    if CLIENT.contains(&first) {
        return Some("a client command");
    }
    let statement = strip_versioned_comment(&lower);
    let words: Vec<&[u8]> = statement
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .take(2)
        .collect();
    match words.as_slice() {
        [w, ..] if w.starts_with(b"use") && (w.len() == 3 || w[3] == b';') => {
            Some("a switch to another database")
        }
        [verb, what, ..]
            if matches!(*verb, b"create" | b"alter" | b"drop")
                && (what.starts_with(b"database") || what.starts_with(b"schema")) =>
        {
            Some("a statement on a whole database")
        }
        _ => None,
    }
}

/// `/*!40101 SET ... */` -> `SET ... */`: versioned comments run on the server.
fn strip_versioned_comment(t: &[u8]) -> &[u8] {
    let Some(rest) = t.strip_prefix(b"/*!").or_else(|| t.strip_prefix(b"/*m!")) else {
        return t;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    rest[digits..].trim_ascii_start()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(dump: &str) -> Option<(u64, &'static str)> {
        match check(dump.as_bytes()) {
            Ok(()) => None,
            Err(CheckError::Refused(r)) => Some((r.line, r.what)),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_real_dump_passes() {
        let dump = "/*M!999999\\- enable the sandbox mode */ \n\
            -- MariaDB dump 10.19\n\
            /*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n\
            DROP TABLE IF EXISTS `wp_options`;\n\
            CREATE TABLE `wp_options` (\n  `option_id` bigint(20) unsigned NOT NULL\n);\n\
            INSERT INTO `wp_options` VALUES (1,'siteurl','http://x\\nsystem ls','yes');\n\
            DELIMITER ;;\n\
            /*!50003 CREATE*/ /*!50003 TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a = 1 */;;\n\
            DELIMITER ;\n\
            -- Dump completed on 2026-11-26\n";
        assert_eq!(refused(dump), None);
    }

    #[test]
    fn client_commands_and_other_databases_are_refused_by_line() {
        let head = "-- MariaDB dump\nCREATE TABLE t (id int);\n";
        for (bad, what) in [
            ("\\! touch /tmp/pwned", "a client command"),
            ("system touch /tmp/pwned", "a client command"),
            ("  SOURCE /etc/passwd;", "a client command"),
            ("\\. /tmp/x.sql", "a client command"),
            ("USE `wp_other`;", "a switch to another database"),
            ("use other", "a switch to another database"),
            ("CREATE DATABASE evil;", "a statement on a whole database"),
            (
                "/*!40000 ALTER DATABASE `x` CHARACTER SET latin1 */;",
                "a statement on a whole database",
            ),
            ("drop schema wp_other;", "a statement on a whole database"),
        ] {
            assert_eq!(refused(&format!("{head}{bad}\n")), Some((3, what)), "{bad}");
        }
        // Words that only start the same way are fine.
        for ok in [
            "CREATE TABLE `users` (id int);",
            "INSERT INTO `user_meta` VALUES (1);",
        ] {
            assert_eq!(refused(&format!("{head}{ok}\n")), None, "{ok}");
        }
    }
}
