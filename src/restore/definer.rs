//! The `DEFINER=` clauses of a dump, taken out of the stream the client reads, so that every
//! trigger, view, routine and event the import makes is defined by the user who imports it.
//!
//! `mariadb-dump` writes who defined each object: `CREATE DEFINER=`u`@`h` FUNCTION ...`,
//! `/*!50003 CREATE*/ /*!50017 DEFINER=`u`@`h`*/ /*!50003 TRIGGER ...`, `/*!50013
//! DEFINER=`u`@`h` SQL SECURITY DEFINER */` before a view, `/*!50117 DEFINER=...*/` before an
//! event. Imported as written, a trigger a site's database got from `root` (a plugin installed
//! by an administrator, or a forged dump) would run as root on the site's tables; imported by
//! a user limited to one database, it cannot be created at all (that needs `SET USER` or
//! `SUPER`). [`Strip`] reads the dump as the client splits it (quotes with their escapes, `--`
//! and `#` line comments, `/* */` comments, `/*! */` version comments whose body is code) and
//! removes `DEFINER = user`, `DEFINER = user@host` and `DEFINER = CURRENT_USER[()]` where they
//! stand in the head of a `CREATE` (the few words before the object's kind), nowhere else: a
//! value or a trigger's body that holds the same text is not touched. `SQL SECURITY DEFINER`
//! stays (a view still runs with its definer's rights: the importing user's). A clause this
//! does not recognise (a comment inside it, say) is left as it was, and the limited user's
//! import of it fails; the user is the guarantee, this only lets genuine dumps through.
//!
//! The transformation is deterministic: the restore checks the stripped stream
//! ([`super::dumpcheck`]) and then imports the stripped stream of the same file.

use std::io::Read;

/// The bytes of lookahead a byte may need (`/*M!` and a version's digits).
const LOOK: usize = 16;
/// The longest `DEFINER` clause held back (a longer one is left as it was).
const CLAUSE_MAX: usize = 4096;
/// How many tokens after `CREATE` a `DEFINER` may stand (`OR REPLACE ALGORITHM = UNDEFINED`).
const HEAD: u8 = 8;
/// Input read at a time.
const CHUNK: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Code,
    Word,
    Quoted(u8),
    LineComment,
    BlockComment,
}

/// Where a `DEFINER` clause being read stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clause {
    None,
    /// `DEFINER` read: `=` next.
    Eq,
    /// `=` read: the user next.
    User,
    /// `CURRENT_USER` read: `()` may follow.
    CurrentUser,
    CurrentUserParen,
    /// The user read: `@host` may follow.
    AfterUser,
    Host,
}

/// A token of code, as the clause sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Word(&'a [u8]),
    Quoted,
    Punct(u8),
    /// The start or end of a version comment.
    Boundary,
    /// A comment's start.
    Comment,
}

/// A dump read with its `DEFINER` clauses taken out (see the module's documentation).
pub struct Strip<R> {
    inner: R,
    input: Vec<u8>,
    eof: bool,
    out: Vec<u8>,
    /// Bytes of `out` already given to the reader.
    sent: usize,
    mode: Mode,
    in_version: bool,
    word: Vec<u8>,
    word_start: usize,
    quote_start: usize,
    /// Tokens left in the head of a `CREATE` (0: not in one).
    head: u8,
    clause: Clause,
    /// Where in `out` the clause being read begins.
    mark: Option<usize>,
}

impl<R: Read> Strip<R> {
    pub fn new(inner: R) -> Strip<R> {
        Strip {
            inner,
            input: Vec::with_capacity(CHUNK + LOOK),
            eof: false,
            out: Vec::with_capacity(CHUNK + LOOK),
            sent: 0,
            mode: Mode::Code,
            in_version: false,
            word: Vec::with_capacity(16),
            word_start: 0,
            quote_start: 0,
            head: 0,
            clause: Clause::None,
            mark: None,
        }
    }

    /// Read more input and turn what can be into output.
    fn fill(&mut self) -> std::io::Result<()> {
        // What was given away goes (positions held in `out` move with it).
        let keep = self.mark.map_or(self.sent, |m| m.min(self.sent));
        let keep = match self.mode {
            Mode::Word if self.out.len() - self.word_start <= 16 => keep.min(self.word_start),
            _ => keep,
        };
        if keep > 0 {
            self.out.drain(..keep);
            self.sent -= keep;
            self.mark = self.mark.map(|m| m - keep);
            self.word_start = self.word_start.saturating_sub(keep);
            self.quote_start = self.quote_start.saturating_sub(keep);
        }
        if !self.eof {
            let start = self.input.len();
            self.input.resize(start + CHUNK, 0);
            let n = loop {
                match self.inner.read(&mut self.input[start..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.input.truncate(start);
                        return Err(e);
                    }
                }
            };
            self.input.truncate(start + n);
            self.eof = n == 0;
        }
        let mut i = 0;
        while i < self.input.len() && (self.eof || i + LOOK <= self.input.len()) {
            i += self.step(i);
        }
        self.input.drain(..i);
        if self.eof && self.input.is_empty() {
            self.end_of_input();
        }
        if let Some(m) = self.mark
            && self.out.len() - m > CLAUSE_MAX
        {
            self.abandon();
        }
        Ok(())
    }

    /// The byte of `input` at `i + k`, if any.
    fn at(&self, i: usize, k: usize) -> Option<u8> {
        self.input.get(i + k).copied()
    }

    /// Handle the byte at `i`: how many bytes were used.
    fn step(&mut self, i: usize) -> usize {
        let b = self.input[i];
        match self.mode {
            Mode::Word => {
                if is_word_byte(b) {
                    if self.word.len() < 16 {
                        self.word.push(b.to_ascii_lowercase());
                    }
                    self.out.push(b);
                    return 1;
                }
                self.mode = Mode::Code;
                let word = std::mem::take(&mut self.word);
                self.token(Tok::Word(&word), self.word_start, self.out.len());
                self.word = word;
                self.word.clear();
                0
            }
            Mode::Quoted(q) => {
                if b == b'\\' && q != b'`' {
                    let n = if self.at(i, 1).is_some() { 2 } else { 1 };
                    self.out.extend_from_slice(&self.input[i..i + n]);
                    return n;
                }
                if b == q {
                    if self.at(i, 1) == Some(q) {
                        self.out.extend_from_slice(&[q, q]);
                        return 2;
                    }
                    self.out.push(b);
                    self.mode = Mode::Code;
                    self.token(Tok::Quoted, self.quote_start, self.out.len());
                    return 1;
                }
                self.out.push(b);
                1
            }
            Mode::LineComment => {
                if b == b'\n' {
                    self.mode = Mode::Code;
                }
                self.out.push(b);
                1
            }
            Mode::BlockComment => {
                if b == b'*' && self.at(i, 1) == Some(b'/') {
                    self.out.extend_from_slice(b"*/");
                    self.mode = Mode::Code;
                    return 2;
                }
                self.out.push(b);
                1
            }
            Mode::Code => self.code(i, b),
        }
    }

    fn code(&mut self, i: usize, b: u8) -> usize {
        let here = self.out.len();
        match b {
            b'\'' | b'"' | b'`' => {
                self.mode = Mode::Quoted(b);
                self.quote_start = here;
                self.out.push(b);
                1
            }
            b'#' => self.comment(here, 1, i),
            b'-' if self.at(i, 1) == Some(b'-')
                && self.at(i, 2).is_none_or(|c| c <= b' ' || c == 0x7f) =>
            {
                self.comment(here, 2, i)
            }
            b'/' if self.at(i, 1) == Some(b'*') => {
                let bang = match (self.at(i, 2), self.at(i, 3)) {
                    (Some(b'!'), _) => Some(3),
                    (Some(b'M'), Some(b'!')) => Some(4),
                    _ => None,
                };
                let Some(mut n) = bang else {
                    self.token(Tok::Comment, here, here);
                    self.mode = Mode::BlockComment;
                    self.out.extend_from_slice(b"/*");
                    return 2;
                };
                self.token(Tok::Boundary, here, here);
                while n < LOOK - 1 && self.at(i, n).is_some_and(|c| c.is_ascii_digit()) {
                    n += 1;
                }
                self.in_version = true;
                self.out.extend_from_slice(&self.input[i..i + n]);
                n
            }
            b'*' if self.in_version && self.at(i, 1) == Some(b'/') => {
                self.token(Tok::Boundary, here, here);
                self.in_version = false;
                self.out.extend_from_slice(b"*/");
                2
            }
            b if is_word_byte(b) => {
                self.mode = Mode::Word;
                self.word_start = here;
                0
            }
            b if b.is_ascii_whitespace() => {
                self.out.push(b);
                1
            }
            b => {
                self.out.push(b);
                self.token(Tok::Punct(b), here, here + 1);
                1
            }
        }
    }

    /// A line comment of `n` bytes' opening at `i`.
    fn comment(&mut self, here: usize, n: usize, i: usize) -> usize {
        self.token(Tok::Comment, here, here);
        self.mode = Mode::LineComment;
        self.out.extend_from_slice(&self.input[i..i + n]);
        n
    }

    /// The input ended: a word or a clause in progress ends with it.
    fn end_of_input(&mut self) {
        if self.mode == Mode::Word {
            self.mode = Mode::Code;
            let word = std::mem::take(&mut self.word);
            self.token(Tok::Word(&word), self.word_start, self.out.len());
        }
        let end = self.out.len();
        self.token(Tok::Boundary, end, end);
        self.abandon();
    }

    /// A token from `start` to `end` of `out`, written already (a boundary or a comment is
    /// empty: its bytes are written after).
    fn token(&mut self, t: Tok, start: usize, end: usize) {
        let word = |w: &[u8]| matches!(t, Tok::Word(x) if x == w);
        match self.clause {
            Clause::None => {
                if word(b"create") {
                    self.head = HEAD;
                    return;
                }
                if self.head == 0 || matches!(t, Tok::Boundary | Tok::Comment) {
                    return;
                }
                self.head -= 1;
                match t {
                    Tok::Word(b"definer") => {
                        self.mark = Some(start);
                        self.clause = Clause::Eq;
                    }
                    Tok::Word(
                        b"table" | b"temporary" | b"trigger" | b"view" | b"procedure" | b"function"
                        | b"event" | b"database" | b"schema",
                    )
                    | Tok::Punct(b';') => self.head = 0,
                    _ => {}
                }
            }
            Clause::Eq => match t {
                Tok::Punct(b'=') => self.clause = Clause::User,
                _ => self.abandon(),
            },
            Clause::User => match t {
                Tok::Word(b"current_user") => self.clause = Clause::CurrentUser,
                Tok::Word(_) | Tok::Quoted => self.clause = Clause::AfterUser,
                _ => self.abandon(),
            },
            Clause::CurrentUser => match t {
                Tok::Punct(b'(') => self.clause = Clause::CurrentUserParen,
                Tok::Comment => self.abandon(),
                _ => self.cut(start, false, t),
            },
            Clause::CurrentUserParen => match t {
                Tok::Punct(b')') => self.cut(end, true, t),
                _ => self.abandon(),
            },
            Clause::AfterUser => match t {
                Tok::Punct(b'@') => self.clause = Clause::Host,
                Tok::Comment => self.abandon(),
                _ => self.cut(start, false, t),
            },
            Clause::Host => match t {
                Tok::Word(_) | Tok::Quoted => self.cut(end, true, t),
                _ => self.abandon(),
            },
        }
    }

    /// The clause ends at `at` of `out` (`through`: with the token `t`; else before it,
    /// and `t` is looked at again as the head's next token): its bytes become one space.
    fn cut(&mut self, at: usize, through: bool, t: Tok) {
        let Some(mark) = self.mark.take() else {
            return;
        };
        self.clause = Clause::None;
        self.out.splice(mark..at, [b' ']);
        if !through {
            // The token, moved back.
            let shift = at - mark - 1;
            let (s, e) = (at - shift, at - shift);
            self.token(t, s, e);
        }
    }

    /// Not a clause this recognises: left as it was.
    fn abandon(&mut self) {
        self.clause = Clause::None;
        self.mark = None;
        self.head = 0;
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl<R: Read> Read for Strip<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let ready = match self.mark {
                Some(m) => m,
                // A short word may still turn out to be `DEFINER`.
                None if self.mode == Mode::Word && self.out.len() - self.word_start <= 16 => {
                    self.word_start
                }
                None => self.out.len(),
            };
            if ready > self.sent {
                let n = (ready - self.sent).min(buf.len());
                buf[..n].copy_from_slice(&self.out[self.sent..self.sent + n]);
                self.sent += n;
                return Ok(n);
            }
            if self.eof && self.input.is_empty() {
                return Ok(0);
            }
            self.fill()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(text: &str) -> String {
        let mut out = String::new();
        Strip::new(text.as_bytes())
            .read_to_string(&mut out)
            .unwrap();
        out
    }

    /// A reader that gives one byte at a time.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.is_empty()) {
                (Some((b, rest)), false) => {
                    buf[0] = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn a_dumps_definers_go_and_nothing_else_changes() {
        let dump = include_str!("dumpcheck/mariadb-dump.sql");
        let out = strip(dump);
        assert!(!out.contains("DEFINER=`root`"), "{out}");
        assert!(out.contains("/*!50003 CREATE*/ /*!50017  */ /*!50003 TRIGGER `wp_posts_count`"));
        assert!(out.contains("CREATE   FUNCTION `wp_title_of`"), "{out}");
        assert!(out.contains("/*!50013   SQL SECURITY DEFINER */"), "{out}");
        assert_eq!(
            out.matches("DEFINER").count(),
            dump.matches("SQL SECURITY DEFINER").count()
        );
        // Only the clauses went: the rest is byte for byte as it was.
        assert_eq!(out, dump.replace("DEFINER=`root`@`localhost`", " "));
        let mut slow = String::new();
        Strip::new(Trickle(dump.as_bytes()))
            .read_to_string(&mut slow)
            .unwrap();
        assert_eq!(slow, out);
        crate::restore::dumpcheck::check(out.as_bytes()).unwrap();
    }

    #[test]
    fn every_form_of_the_clause_goes() {
        for (sql, want) in [
            (
                "CREATE DEFINER = 'wp'@'%' TRIGGER t BEFORE INSERT ON p FOR EACH ROW SET @a = 1;",
                "CREATE   TRIGGER t BEFORE INSERT ON p FOR EACH ROW SET @a = 1;",
            ),
            (
                "create definer=root@localhost procedure p() begin end;",
                "create   procedure p() begin end;",
            ),
            (
                "CREATE OR REPLACE ALGORITHM=MERGE DEFINER=CURRENT_USER() SQL SECURITY INVOKER VIEW v AS SELECT 1;",
                "CREATE OR REPLACE ALGORITHM=MERGE   SQL SECURITY INVOKER VIEW v AS SELECT 1;",
            ),
            (
                "CREATE DEFINER=CURRENT_USER EVENT e ON SCHEDULE EVERY 1 DAY DO SET @a = 1;",
                "CREATE  EVENT e ON SCHEDULE EVERY 1 DAY DO SET @a = 1;",
            ),
            (
                "/*!50106 CREATE*/ /*!50117 DEFINER=`admin`*/ /*!50106 EVENT e ON SCHEDULE EVERY 1 DAY DO SET @a = 1 */;",
                "/*!50106 CREATE*/ /*!50117  */ /*!50106 EVENT e ON SCHEDULE EVERY 1 DAY DO SET @a = 1 */;",
            ),
            (
                "CREATE DEFINER=`a``b`@`h\\` VIEW v AS SELECT 1;",
                "CREATE   VIEW v AS SELECT 1;",
            ),
        ] {
            assert_eq!(strip(sql), want, "{sql}");
        }
    }

    #[test]
    fn text_that_only_looks_like_a_clause_stays() {
        for sql in [
            // Values, comments and bodies.
            "INSERT INTO wp_posts VALUES (1,'CREATE DEFINER=`root`@`localhost` TRIGGER');",
            "INSERT INTO wp_posts VALUES (1,'it''s \\' CREATE DEFINER=root@x VIEW');",
            "-- CREATE DEFINER=root@x VIEW\n/* CREATE DEFINER=root@x VIEW */ SELECT 1;",
            "CREATE TRIGGER t BEFORE UPDATE ON p FOR EACH ROW SET NEW.definer = 'root';",
            "CREATE TABLE t (definer VARCHAR(9), x INT);",
            // A clause it does not recognise is left for the server to refuse.
            "CREATE DEFINER/**/=root@x VIEW v AS SELECT 1;",
            "CREATE DEFINER=root@/**/x VIEW v AS SELECT 1;",
            "CREATE VIEW v AS SELECT 1 /*!50013 SQL SECURITY DEFINER */;",
        ] {
            assert_eq!(strip(sql), sql);
        }
    }
}
