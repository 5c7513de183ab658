//! What an archive's `database.sql` may hold before it is imported.
//!
//! A signed archive is trusted to come from a server of the fleet, not to be harmless: a site's
//! own database can hold anything its owner (or an intruder in WordPress) wrote. The import
//! runs the client with `--binary-mode` (client commands such as `\!` and `system` are not run)
//! and as a user with rights on one database where it can (the drill); before anything changes
//! this check reads the dump statement by statement, split as the `mariadb` client splits it
//! ([`lexer`]: quotes, comments, `/*! */` version comments whose body runs, `DELIMITER`), and
//! allows only what a `mariadb-dump` of one database writes: session `SET`s, `DROP`/`CREATE` of
//! tables, views, triggers and routines, `ALTER TABLE`, `LOCK`/`UNLOCK TABLES`, `INSERT`,
//! `START TRANSACTION`/`COMMIT`/`SAVEPOINT`. Anything touching users or grants, another database
//! (`USE`, a name qualified by a database where a table goes, `mysql.`...), the client, files or
//! the server (`LOAD DATA`, `INTO OUTFILE`, `SONAME`, `FLUSH`, `KILL`, `PREPARE`...) is refused,
//! naming the statement, its line and its start. Memory is bounded: the first tokens of each
//! statement are kept, its values are only looked at.

mod lexer;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::io::Read;

use lexer::{Lexer, Sink, Stop, Token};

/// A statement that has no place in a dump of one database.
#[derive(Debug, thiserror::Error)]
#[error(
    "database.sql statement {statement} (line {line}): {what} ({excerpt:?}): a dump made by wpbackup never holds this, so the archive may have been tampered with; refusing to import it"
)]
pub struct Refused {
    /// The statement's number, counting from 1 (`DELIMITER` lines are not statements).
    pub statement: u64,
    pub line: u64,
    pub what: String,
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

/// Whether `err` is a refusal of an archive: its dump refused here or its signature refused
/// (`sign::Refused`); the commands exit 2 for it, as for bad input.
pub fn is_refusal(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<crate::sign::Refused>().is_some()
            || e.downcast_ref::<Refused>().is_some()
            || matches!(e.downcast_ref::<CheckError>(), Some(CheckError::Refused(_)))
    })
}

/// Read the whole dump; the first statement that may not be imported is an error.
pub fn check(dump: impl Read) -> Result<(), CheckError> {
    let mut lexer = Lexer::default();
    let mut checker = Checker::default();
    match lexer.run(dump, &mut checker) {
        Ok(()) => Ok(()),
        Err(Stop::Read(e)) => Err(e.into()),
        Err(Stop::Refused { what, line }) => {
            let text = String::from_utf8_lossy(&lexer.excerpt);
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            Err(Refused {
                statement: lexer.statements + 1,
                line,
                what,
                excerpt: text.chars().take(60).collect(),
            }
            .into())
        }
    }
}

/// The tokens of a statement that are kept (a `SET` of a dump has about 10).
const KEPT: usize = 64;

/// A kept token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(Vec<u8>, bool),
    Quoted(u8, Vec<u8>, bool),
    UserVar(Vec<u8>),
    SysVar(Vec<u8>),
    Punct(u8),
}

impl Tok {
    fn of(t: &Token<'_>) -> Tok {
        match *t {
            Token::Word { lower, digits } => Tok::Word(lower.to_vec(), digits),
            Token::Quoted { quote, text, cut } => Tok::Quoted(quote, text.to_vec(), cut),
            Token::UserVar(v) => Tok::UserVar(v.to_vec()),
            Token::SysVar(v) => Tok::SysVar(v.to_vec()),
            Token::Punct(p) => Tok::Punct(p),
        }
    }
    fn word(&self) -> Option<&[u8]> {
        match self {
            Tok::Word(w, false) => Some(w),
            _ => None,
        }
    }
    fn is(&self, w: &str) -> bool {
        self.word() == Some(w.as_bytes())
    }
}

/// Where a name stands: where a table's name goes, just after one, after its alias, or
/// elsewhere. A `,` after a table or its alias is followed by another table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Place {
    #[default]
    Other,
    Table,
    AfterTable,
    AfterAlias,
}

/// A dotted name being read (`a`, `a.b`, `a.b.c`).
#[derive(Debug, Default)]
struct Chain {
    len: u8,
    first: Vec<u8>,
    table: bool,
    dot: bool,
}

/// The statement-level rules, fed by the lexer.
#[derive(Debug, Default)]
struct Checker {
    tokens: Vec<Tok>,
    count: usize,
    first_line: u64,
    line: u64,
    prev_word: Vec<u8>,
    chain: Chain,
    place: Place,
    use_pending: bool,
    /// After `ENGINE` (and `=`): the next word is a storage engine.
    engine_pending: bool,
    /// User variables that hold a server variable's value (`SET @OLD_SQL_MODE=@@SQL_MODE`):
    /// the only variables `sql_mode` and the character sets may be set back from.
    safe_vars: HashSet<Vec<u8>>,
}

/// Databases no dump of a site names.
const SYSTEM_DBS: &[&[u8]] = &[
    b"mysql",
    b"information_schema",
    b"performance_schema",
    b"sys",
];
/// Words after which a table's name goes.
const TABLE_WORDS: &[&[u8]] = &[
    b"from",
    b"join",
    b"straight_join",
    b"into",
    b"update",
    b"table",
    b"tables",
    b"references",
    b"like",
    b"to",
    b"view",
    b"trigger",
    b"procedure",
    b"function",
    b"event",
    b"call",
    b"truncate",
    b"insert",
    b"replace",
    b"delete",
    b"exists",
    b"ignore",
    b"low_priority",
    b"delayed",
    b"high_priority",
    b"quick",
];
/// What a dump may create and drop.
const OBJECTS: &[&[u8]] = &[
    b"table",
    b"view",
    b"trigger",
    b"procedure",
    b"function",
    b"event",
];
/// The client's named commands.
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
    b"exit",
    b"quit",
    b"go",
    b"ego",
    b"edit",
    b"print",
    b"status",
    b"clear",
    b"help",
    b"resetconnection",
    b"sandbox",
];
/// Storage engines a table of a dump may use (not FEDERATED, CONNECT, SPIDER, MERGE: tables
/// that reach other servers, files or databases).
const ENGINES: &[&[u8]] = &[
    b"innodb",
    b"myisam",
    b"aria",
    b"memory",
    b"heap",
    b"csv",
    b"archive",
    b"blackhole",
];
/// Session variables a dump sets.
const SESSION_VARS: &[&[u8]] = &[
    b"character_set_client",
    b"character_set_results",
    b"character_set_connection",
    b"collation_connection",
    b"time_zone",
    b"sql_mode",
    b"unique_checks",
    b"foreign_key_checks",
    b"sql_notes",
    b"note_verbosity",
    b"autocommit",
    b"sql_quote_show_create",
    b"check_constraint_checks",
];
/// Variables that change how the client and the server read the rest of the dump.
const LEXICAL_VARS: &[&[u8]] = &[
    b"sql_mode",
    b"character_set_client",
    b"character_set_connection",
    b"collation_connection",
    b"character_set_results",
];
/// `sql_mode` flags that leave quotes and backslashes read as this check reads them.
const SAFE_MODES: &[&str] = &[
    "STRICT_TRANS_TABLES",
    "STRICT_ALL_TABLES",
    "NO_ZERO_IN_DATE",
    "NO_ZERO_DATE",
    "ERROR_FOR_DIVISION_BY_ZERO",
    "NO_AUTO_CREATE_USER",
    "NO_ENGINE_SUBSTITUTION",
    "NO_AUTO_VALUE_ON_ZERO",
    "ONLY_FULL_GROUP_BY",
    "TRADITIONAL",
    "IGNORE_SPACE",
    "PIPES_AS_CONCAT",
    "REAL_AS_FLOAT",
    "HIGH_NOT_PRECEDENCE",
    "NO_DIR_IN_CREATE",
    "NO_UNSIGNED_SUBTRACTION",
    "PAD_CHAR_TO_FULL_LENGTH",
    "SIMULTANEOUS_ASSIGNMENT",
    "TIME_ROUND_FRACTIONAL",
    "EMPTY_STRING_IS_NULL",
    "NO_FIELD_OPTIONS",
    "NO_KEY_OPTIONS",
    "NO_TABLE_OPTIONS",
    "ALLOW_INVALID_DATES",
];

fn refuse<T>(what: impl Into<String>, line: u64) -> Result<T, Stop> {
    Err(Stop::Refused {
        what: what.into(),
        line,
    })
}

fn show(w: &[u8]) -> String {
    String::from_utf8_lossy(w).into_owned()
}

/// A character set or collation that keeps a backslash a backslash (no multi-byte character
/// ends in 0x5c).
fn safe_charset(v: &[u8]) -> bool {
    let v = v.to_ascii_lowercase();
    matches!(
        v.as_slice(),
        b"utf8" | b"utf8mb3" | b"utf8mb4" | b"latin1" | b"ascii" | b"binary" | b"default"
    ) || [
        &b"utf8_"[..],
        b"utf8mb3_",
        b"utf8mb4_",
        b"latin1_",
        b"ascii_",
    ]
    .iter()
    .any(|p| v.starts_with(p))
}

fn safe_sql_mode(text: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    text.split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .all(|m| SAFE_MODES.iter().any(|s| s.eq_ignore_ascii_case(m)))
}

impl Sink for Checker {
    fn token(&mut self, token: Token<'_>, line: u64) -> Result<(), Stop> {
        if self.count == 0 {
            self.first_line = line;
        }
        self.line = line;
        if self.tokens.len() < KEPT {
            self.tokens.push(Tok::of(&token));
        }
        self.count += 1;
        self.anywhere(&token)?;
        self.names(&token)
    }

    fn end(&mut self) -> Result<(), Stop> {
        let line = self.first_line;
        self.finish_chain(None)?;
        if self.use_pending {
            return refuse("a switch to another database (USE)", self.line);
        }
        let r = self.statement(line);
        self.tokens.clear();
        self.count = 0;
        self.prev_word.clear();
        self.place = Place::Other;
        self.engine_pending = false;
        r
    }
}

impl Checker {
    fn lead(&self) -> Option<&[u8]> {
        self.tokens.first().and_then(Tok::word)
    }

    /// Rules for a token wherever it stands, routine and trigger bodies included.
    fn anywhere(&mut self, token: &Token<'_>) -> Result<(), Stop> {
        let line = self.line;
        let in_set = self.lead() == Some(b"set");
        let word = match token {
            Token::Word {
                lower,
                digits: false,
            } => Some(*lower),
            Token::SysVar(v) => {
                if v.starts_with(b"global.") {
                    return refuse("a global server variable", line);
                }
                if !in_set {
                    return refuse("a server variable outside a SET statement", line);
                }
                None
            }
            Token::Punct(b';') if self.lead() != Some(b"create") => {
                return refuse(
                    "two statements where the client sees one (a `;` under another DELIMITER)",
                    line,
                );
            }
            _ => None,
        };
        let prev = std::mem::take(&mut self.prev_word);
        let Some(w) = word else {
            if self.use_pending {
                return refuse("a switch to another database (USE)", line);
            }
            if !matches!(token, Token::Punct(b'=')) {
                self.engine_pending = false;
            }
            return Ok(());
        };
        if std::mem::take(&mut self.engine_pending) && !ENGINES.contains(&w) {
            return refuse(
                format!(
                    "a storage engine a dump of tables does not use ({})",
                    show(w)
                ),
                line,
            );
        }
        if std::mem::take(&mut self.use_pending)
            && !matches!(w, b"index" | b"key" | b"indexes" | b"keys")
        {
            return refuse("a switch to another database (USE)", line);
        }
        let what = match w {
            b"grant" | b"revoke" => Some("a grant"),
            b"outfile" | b"dumpfile" | b"load_file" => Some("a server file read or written"),
            b"soname" | b"install" | b"uninstall" => Some("a server plugin or library"),
            b"prepare" | b"execute" | b"deallocate" => Some("a prepared (dynamic) statement"),
            b"shutdown" | b"kill" | b"flush" | b"binlog" => Some("a command to the server"),
            b"delimiter" => Some("DELIMITER that the client would not read as its command"),
            b"connection" | b"directory" => {
                Some("a table kept elsewhere (CONNECTION=, DATA or INDEX DIRECTORY)")
            }
            b"engine" => {
                self.engine_pending = true;
                None
            }
            b"use" => {
                self.use_pending = true;
                None
            }
            _ => None,
        };
        if let Some(what) = what {
            return refuse(what, line);
        }
        let what = match (prev.as_slice(), w) {
            (b"create" | b"drop" | b"alter" | b"rename", b"user" | b"role") => {
                Some("a user or role")
            }
            (b"create" | b"drop" | b"alter", b"database" | b"schema") => {
                Some("a statement on a whole database")
            }
            (b"create" | b"drop" | b"alter", b"server") => Some("a server definition"),
            (b"load", b"data" | b"xml" | b"index") => Some("a load from a file"),
            (b"change", b"master" | b"replication") => Some("a replication command"),
            (b"set", b"password") => Some("a password change"),
            (b"set", b"global" | b"persist" | b"persist_only") => Some("a global server variable"),
            (b"set", b"role" | b"default") => Some("a role"),
            (b"set", b"statement") => Some("SET STATEMENT (it runs another statement)"),
            (b"set", b"names" | b"character" | b"session" | b"local") if !in_set => {
                Some("a change of how the dump is read outside a SET statement")
            }
            _ => None,
        };
        if let Some(what) = what {
            return refuse(what, line);
        }
        if !in_set && LEXICAL_VARS.contains(&w) {
            return refuse(
                "a change of how the dump is read (sql_mode, character set) outside a SET statement",
                line,
            );
        }
        self.prev_word = w.to_vec();
        Ok(())
    }

    /// Dotted names: none reaches another database.
    fn names(&mut self, token: &Token<'_>) -> Result<(), Stop> {
        let name: Option<Vec<u8>> = match token {
            Token::Word {
                lower,
                digits: false,
            } if !TABLE_WORDS.contains(lower) => Some(lower.to_vec()),
            Token::Quoted {
                quote: b'`' | b'"',
                text,
                ..
            } => Some(text.to_ascii_lowercase()),
            _ => None,
        };
        if self.chain.len > 0 && self.chain.dot && (name.is_some() || *token == Token::Punct(b'*'))
        {
            self.chain.len = self.chain.len.saturating_add(1);
            self.chain.dot = false;
            return Ok(());
        }
        if self.chain.len > 0 && !self.chain.dot && *token == Token::Punct(b'.') {
            self.chain.dot = true;
            return Ok(());
        }
        self.finish_chain(Some(token))?;
        match token {
            Token::Word { lower, .. } if TABLE_WORDS.contains(lower) => self.place = Place::Table,
            _ if name.is_some() && self.place == Place::AfterTable => {
                if name.as_deref() != Some(b"as") {
                    self.place = Place::AfterAlias;
                }
            }
            _ if name.is_some() => {
                if self.place == Place::AfterAlias {
                    self.place = Place::Other;
                }
                self.chain = Chain {
                    len: 1,
                    first: name.unwrap_or_default(),
                    table: self.place == Place::Table,
                    dot: false,
                };
            }
            Token::Punct(b',') if matches!(self.place, Place::AfterTable | Place::AfterAlias) => {
                self.place = Place::Table
            }
            Token::Punct(b'(') if self.place == Place::Table => {}
            _ => self.place = Place::Other,
        }
        Ok(())
    }

    fn finish_chain(&mut self, next: Option<&Token<'_>>) -> Result<(), Stop> {
        let chain = std::mem::take(&mut self.chain);
        if chain.len == 0 {
            return Ok(());
        }
        let line = self.line;
        let first = show(&chain.first);
        if chain.len >= 3 {
            return refuse(
                format!("a name qualified by a database (`{first}`.…)"),
                line,
            );
        }
        if chain.len == 2 {
            if chain.table {
                return refuse(format!("a table of another database (`{first}`.…)"), line);
            }
            if next == Some(&Token::Punct(b'(')) {
                return refuse(format!("a routine of another database (`{first}`.…)"), line);
            }
            if SYSTEM_DBS.contains(&chain.first.as_slice()) {
                return refuse(format!("a system database (`{first}`.…)"), line);
            }
        }
        if chain.table {
            self.place = Place::AfterTable;
        }
        Ok(())
    }

    /// The allow-list, by the statement's first words.
    fn statement(&mut self, line: u64) -> Result<(), Stop> {
        let t = &self.tokens;
        let word = |i: usize| t.get(i).and_then(Tok::word).unwrap_or_default();
        let Some(lead) = self.lead() else {
            return refuse("a statement a dump of one database never holds", line);
        };
        let ok = match lead {
            b"set" => return self.set(line),
            b"insert" | b"replace" | b"commit" | b"savepoint" => true,
            b"lock" | b"unlock" => matches!(word(1), b"tables" | b"table"),
            b"start" => word(1) == b"transaction",
            b"alter" => {
                let i = if matches!(word(1), b"online" | b"ignore") {
                    2
                } else {
                    1
                };
                word(i) == b"table"
            }
            b"drop" => {
                let i = if word(1) == b"temporary" { 2 } else { 1 };
                OBJECTS.contains(&word(i))
            }
            b"create" => return self.create(line),
            b"use" => return refuse("a switch to another database (USE)", line),
            b"select" => return refuse("a SELECT (a dump of tables never selects)", line),
            b"call" => return refuse("a CALL of a routine", line),
            w if CLIENT.contains(&w) => return refuse("a client command", line),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            refuse("a statement a dump of one database never holds", line)
        }
    }

    /// `CREATE [OR REPLACE] [ALGORITHM=..] [DEFINER=..] [SQL SECURITY ..] TABLE|VIEW|...`.
    fn create(&self, line: u64) -> Result<(), Stop> {
        let t = &self.tokens;
        let mut i = 1;
        while let Some(tok) = t.get(i) {
            let Some(w) = tok.word() else { break };
            match w {
                b"or" | b"replace" | b"temporary" | b"aggregate" => i += 1,
                b"algorithm" => i += 3,
                b"sql" => i += 3,
                b"definer" => {
                    i += 3; // DEFINER = user
                    match t.get(i) {
                        Some(Tok::UserVar(_)) => i += 1,
                        Some(Tok::Punct(b'@')) => i += 2,
                        Some(Tok::Punct(b'(')) => i += 2, // CURRENT_USER()
                        _ => {}
                    }
                }
                w if OBJECTS.contains(&w) => return Ok(()),
                _ => break,
            }
        }
        refuse("a CREATE of something a dump of tables never makes", line)
    }

    /// `SET` of session and user variables, as a dump writes them.
    fn set(&mut self, line: u64) -> Result<(), Stop> {
        if self.count > KEPT {
            return refuse("a SET longer than a dump writes", line);
        }
        let t = std::mem::take(&mut self.tokens);
        let r = self.set_tokens(&t, line);
        self.tokens = t;
        r
    }

    fn set_tokens(&mut self, t: &[Tok], line: u64) -> Result<(), Stop> {
        let bad = |what: &str| refuse(format!("a SET a dump does not write ({what})"), line);
        let mut i = 1;
        if t.get(1).is_some_and(|w| w.is("names")) {
            let charset_ok = |tok: Option<&Tok>| match tok {
                Some(Tok::Word(w, false)) | Some(Tok::Quoted(b'\'' | b'"', w, false)) => {
                    safe_charset(w)
                }
                _ => false,
            };
            if !charset_ok(t.get(2)) {
                return bad("a character set that reads backslashes differently");
            }
            return match t.len() {
                3 => Ok(()),
                5 if t[3].is("collate") && charset_ok(t.get(4)) => Ok(()),
                _ => bad("SET NAMES with more"),
            };
        }
        loop {
            if t.get(i).is_some_and(|w| w.is("session") || w.is("local")) {
                i += 1;
            }
            let target = t.get(i);
            i += 1;
            if t.get(i) == Some(&Tok::Punct(b':')) {
                i += 1;
            }
            if t.get(i) != Some(&Tok::Punct(b'=')) {
                return bad("not an assignment");
            }
            i += 1;
            if t.get(i) == Some(&Tok::Punct(b'-')) {
                i += 1;
            }
            let value = t.get(i);
            i += 1;
            let value = match value {
                Some(v @ (Tok::Word(..) | Tok::Quoted(..) | Tok::UserVar(_) | Tok::SysVar(_))) => v,
                _ => return bad("a value that is not a literal or a variable"),
            };
            match target {
                Some(Tok::UserVar(name)) => {
                    if matches!(value, Tok::SysVar(_)) {
                        if self.safe_vars.len() < 10_000 {
                            self.safe_vars.insert(name.clone());
                        }
                    } else {
                        self.safe_vars.remove(name);
                    }
                }
                Some(Tok::SysVar(name)) | Some(Tok::Word(name, false)) => {
                    let name = name
                        .strip_prefix(b"session.")
                        .or_else(|| name.strip_prefix(b"local."))
                        .unwrap_or(name);
                    if !SESSION_VARS.contains(&name) {
                        return bad(&format!("the server variable {}", show(name)));
                    }
                    let safe_var = |v: &Tok| match v {
                        Tok::UserVar(u) => self.safe_vars.contains(u),
                        Tok::Word(w, false) => w == b"default",
                        _ => false,
                    };
                    if name == b"sql_mode" {
                        let ok = match value {
                            Tok::Quoted(b'\'' | b'"', text, false) => safe_sql_mode(text),
                            v => safe_var(v),
                        };
                        if !ok {
                            return bad("an sql_mode that reads quotes or backslashes differently");
                        }
                    } else if LEXICAL_VARS.contains(&name) {
                        let ok = match value {
                            Tok::Quoted(b'\'' | b'"', text, false) => safe_charset(text),
                            Tok::Word(w, false) => safe_charset(w),
                            v => safe_var(v),
                        };
                        if !ok {
                            return bad("a character set that reads backslashes differently");
                        }
                    }
                }
                _ => return bad("not a variable"),
            }
            match t.get(i) {
                None => return Ok(()),
                Some(Tok::Punct(b',')) => i += 1,
                Some(_) => return bad("an expression"),
            }
        }
    }
}
