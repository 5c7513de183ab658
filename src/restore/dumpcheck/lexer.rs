//! The dump split into statements and tokens the way the `mariadb` client splits it: quotes
//! (`'...'`, `"..."`, `` `...` ``, backslash escapes and doubled quotes), line comments (`-- `,
//! `#`), `/* */` comments skipped, `/*!NNNNN ... */` and `/*M!NNNNNN ... */` version comments
//! whose body is read as statement text, `DELIMITER` lines and the current delimiter. It reads
//! through a fixed buffer: a statement's values are looked at once and never kept.

use std::io::Read;

/// The longest word or variable name kept; longer ones are not keywords.
pub const WORD_MAX: usize = 64;
/// The bytes of a quoted string or name kept (enough for a `SET sql_mode = '...'`).
pub const QUOTED_MAX: usize = 512;
/// The bytes of a statement's start kept for an excerpt.
const EXCERPT_MAX: usize = 96;
/// The lookahead the lexer may need past a byte (the sandbox comment is the longest).
const LOOKAHEAD: usize = 64;
const BUF: usize = 1 << 20;

/// The first line of dumps by MariaDB 10.11.8 and later: a client command that only turns the
/// client's sandbox mode on (no system commands from then on), so it is allowed.
pub const SANDBOX: &[u8] = b"/*M!999999\\- enable the sandbox mode */";

/// One token of statement text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token<'a> {
    /// A bare word, lowercased (at most [`WORD_MAX`] bytes kept); `digits` if only digits.
    Word { lower: &'a [u8], digits: bool },
    /// `'...'` or `"..."` (`quote` says which) or `` `...` ``: its content as written, at most
    /// [`QUOTED_MAX`] bytes, `cut` if longer.
    Quoted {
        quote: u8,
        text: &'a [u8],
        cut: bool,
    },
    /// `@name`, lowercased, without the `@`.
    UserVar(&'a [u8]),
    /// `@@name` or `@@scope.name`, lowercased, without the `@@`.
    SysVar(&'a [u8]),
    /// Any other byte of statement text.
    Punct(u8),
}

/// What the lexer finds; the checker's side.
pub trait Sink {
    /// A token of the current statement, on `line`.
    fn token(&mut self, token: Token<'_>, line: u64) -> Result<(), Stop>;
    /// The current statement ended (its delimiter, or the end of the dump).
    fn end(&mut self) -> Result<(), Stop>;
}

/// Why the lexer stopped before the end.
#[derive(Debug)]
pub enum Stop {
    /// The text has no place in a dump: what, and the line.
    Refused {
        what: String,
        line: u64,
    },
    Read(std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Word,
    Quoted(u8),
    LineComment,
    BlockComment,
    /// A `DELIMITER` command's argument, to the end of the line.
    DelimiterArg,
}

/// The lexer; the statement being read is described by its fields.
pub struct Lexer {
    state: State,
    line: u64,
    /// Inside a `/*! ... */` body.
    in_version: bool,
    delimiter: Vec<u8>,
    /// The statement has begun (a token or a version comment opened).
    started: bool,
    /// Nothing but blanks since the line began (for `DELIMITER`).
    at_line_start: bool,
    /// The current word began a line of a statement not begun yet.
    word_at_line_start: bool,
    /// The statement's first token was seen.
    had_token: bool,
    word: Vec<u8>,
    word_len: usize,
    word_digits: bool,
    quoted: Vec<u8>,
    quoted_len: usize,
    /// `Some(1)` after `@`, `Some(2)` after `@@`: the word being read is a variable.
    var: Option<u8>,
    delimiter_arg: Vec<u8>,
    /// The statement's first bytes and the line it began on.
    pub excerpt: Vec<u8>,
    pub statement_line: u64,
    /// Statements ended so far.
    pub statements: u64,
    /// Where in the buffer the lexer is.
    at: usize,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer {
            state: State::Code,
            line: 1,
            in_version: false,
            delimiter: b";".to_vec(),
            started: false,
            at_line_start: true,
            word_at_line_start: false,
            had_token: false,
            word: Vec::with_capacity(WORD_MAX),
            word_len: 0,
            word_digits: true,
            quoted: Vec::with_capacity(QUOTED_MAX),
            quoted_len: 0,
            var: None,
            delimiter_arg: Vec::new(),
            excerpt: Vec::with_capacity(EXCERPT_MAX),
            statement_line: 1,
            statements: 0,
            at: 0,
        }
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Delimiters a dump may set (mysqldump writes `;;` for triggers and routines).
const DELIMITERS: &[&[u8]] = &[b";", b";;", b"//", b"$$"];

impl Lexer {
    /// Read `input` to its end, giving each token and statement end to `sink`.
    pub fn run(&mut self, mut input: impl Read, sink: &mut impl Sink) -> Result<(), Stop> {
        let mut buf = vec![0u8; BUF + LOOKAHEAD];
        let mut len = 0usize;
        let mut eof = false;
        loop {
            while !eof && len < buf.len() {
                match input.read(&mut buf[len..]) {
                    Ok(0) => eof = true,
                    Ok(n) => len += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Stop::Read(e)),
                }
            }
            let limit = if eof { len } else { len - LOOKAHEAD };
            let done = self.scan(&buf[..len], limit, sink)?;
            buf.copy_within(done..len, 0);
            len -= done;
            if eof && len == 0 {
                break;
            }
        }
        self.finish(sink)
    }

    fn refuse<T>(&self, what: &str) -> Result<T, Stop> {
        Err(Stop::Refused {
            what: what.to_string(),
            line: self.line,
        })
    }

    fn begin(&mut self) {
        if !self.started {
            self.started = true;
            self.statement_line = self.line;
            self.excerpt.clear();
        }
    }

    fn keep(&mut self, b: u8) {
        if self.started && self.excerpt.len() < EXCERPT_MAX {
            self.excerpt.push(b);
        }
    }

    fn emit(&mut self, sink: &mut impl Sink, token: Token<'_>) -> Result<(), Stop> {
        self.had_token = true;
        sink.token(token, self.line)
    }

    /// The word being read is complete.
    fn end_word(&mut self, sink: &mut impl Sink) -> Result<(), Stop> {
        self.state = State::Code;
        let var = self.var.take();
        let word = std::mem::take(&mut self.word);
        let first = !self.had_token;
        let r = match var {
            Some(1) => self.emit(sink, Token::UserVar(&word)),
            Some(_) => self.emit(sink, Token::SysVar(&word)),
            None if first && word == b"delimiter" => {
                if !self.word_at_line_start || self.in_version {
                    self.refuse("DELIMITER that the client would not read as its command")
                } else {
                    self.state = State::DelimiterArg;
                    self.delimiter_arg.clear();
                    Ok(())
                }
            }
            None => {
                let digits = self.word_digits && self.word_len <= WORD_MAX;
                let lower = if self.word_len > WORD_MAX {
                    &[][..]
                } else {
                    &word[..]
                };
                self.emit(sink, Token::Word { lower, digits })
            }
        };
        self.word = word;
        self.word.clear();
        self.word_len = 0;
        self.word_digits = true;
        r
    }

    /// The statement ended at its delimiter (or the dump's end).
    fn end_statement(&mut self, sink: &mut impl Sink) -> Result<(), Stop> {
        if self.in_version {
            return self.refuse("a statement that ends inside a /*! */ comment");
        }
        if self.had_token {
            sink.end()?;
            self.statements += 1;
        }
        self.started = false;
        self.had_token = false;
        self.excerpt.clear();
        Ok(())
    }

    fn finish(&mut self, sink: &mut impl Sink) -> Result<(), Stop> {
        match self.state {
            State::Word => self.end_word(sink)?,
            State::Quoted(_) => return self.refuse("a quote that is never closed"),
            State::BlockComment => return self.refuse("a comment that is never closed"),
            State::DelimiterArg => self.set_delimiter()?,
            State::Code | State::LineComment => {}
        }
        if self.in_version {
            return self.refuse("a /*! comment that is never closed");
        }
        self.end_statement(sink)
    }

    fn set_delimiter(&mut self) -> Result<(), Stop> {
        self.state = State::Code;
        let arg = std::mem::take(&mut self.delimiter_arg);
        let words: Vec<&[u8]> = arg
            .split(|b| is_blank(*b))
            .filter(|w| !w.is_empty())
            .collect();
        match words.as_slice() {
            [d] if DELIMITERS.contains(d) => {
                self.delimiter = d.to_vec();
                self.started = false;
                self.had_token = false;
                Ok(())
            }
            _ => self.refuse("a DELIMITER a dump does not set"),
        }
    }

    /// Read `buf[..limit]` (bytes past `limit` are lookahead only); returns how far it read.
    /// A refusal's excerpt goes on with the bytes after the refused token.
    fn scan(&mut self, buf: &[u8], limit: usize, sink: &mut impl Sink) -> Result<usize, Stop> {
        self.at = 0;
        let r = self.scan_from(buf, limit, sink);
        if r.is_err() {
            let more = EXCERPT_MAX.saturating_sub(self.excerpt.len());
            let from = self.at.min(buf.len());
            let to = (from + more).min(buf.len());
            let tail: Vec<u8> = buf[from..to]
                .iter()
                .take_while(|b| **b != b'\n')
                .copied()
                .collect();
            self.excerpt.extend_from_slice(&tail);
        }
        r
    }

    fn scan_from(&mut self, buf: &[u8], limit: usize, sink: &mut impl Sink) -> Result<usize, Stop> {
        let mut i = 0;
        while i < limit {
            self.at = i;
            let b = buf[i];
            match self.state {
                State::Quoted(q) => {
                    // The bulk of a dump: skip to the next byte that matters.
                    let mut j = i;
                    while j < limit {
                        let c = buf[j];
                        if c == q || c == b'\\' || c == b'\n' {
                            break;
                        }
                        j += 1;
                    }
                    self.quote_bytes(&buf[i..j]);
                    i = j;
                    if i >= limit {
                        break;
                    }
                    let c = buf[i];
                    if c == b'\n' {
                        self.line += 1;
                        self.quote_bytes(b"\n");
                        i += 1;
                    } else if c == b'\\' && q != b'`' {
                        let next = buf.get(i + 1).copied();
                        if next == Some(b'\n') {
                            self.line += 1;
                        }
                        self.quote_bytes(&buf[i..(i + 2).min(buf.len())]);
                        i += 2;
                    } else if c == b'\\' {
                        self.quote_bytes(b"\\");
                        i += 1;
                    } else if buf.get(i + 1) == Some(&q) {
                        self.quote_bytes(&buf[i..i + 2]);
                        i += 2;
                    } else {
                        self.state = State::Code;
                        let cut = self.quoted_len > QUOTED_MAX;
                        let text = std::mem::take(&mut self.quoted);
                        let r = self.emit(
                            sink,
                            Token::Quoted {
                                quote: q,
                                text: &text,
                                cut,
                            },
                        );
                        self.quoted = text;
                        self.quoted.clear();
                        r?;
                        i += 1;
                    }
                    continue;
                }
                State::LineComment => {
                    if b == b'\n' {
                        self.state = State::Code;
                        continue; // the newline is read as code
                    }
                    i += 1;
                    continue;
                }
                State::BlockComment => {
                    if b == b'\n' {
                        self.line += 1;
                    }
                    if b == b'*' && buf.get(i + 1) == Some(&b'/') {
                        self.state = State::Code;
                        i += 2;
                    } else {
                        i += 1;
                    }
                    continue;
                }
                State::DelimiterArg => {
                    if b == b'\n' {
                        self.set_delimiter()?;
                        continue;
                    }
                    if self.delimiter_arg.len() > 64 {
                        return self.refuse("a DELIMITER a dump does not set");
                    }
                    self.delimiter_arg.push(b);
                    i += 1;
                    continue;
                }
                State::Word => {
                    if is_word_byte(b) || (self.var.is_some() && b == b'.') {
                        if self.word_len < WORD_MAX {
                            self.word.push(b.to_ascii_lowercase());
                        }
                        self.word_len += 1;
                        self.word_digits &= b.is_ascii_digit();
                        self.keep(b);
                        i += 1;
                        continue;
                    }
                    self.end_word(sink)?;
                    continue; // this byte is read as code
                }
                State::Code => {}
            }
            // Code: between tokens.
            if b == b'\n' {
                self.line += 1;
                self.at_line_start = true;
                self.keep(b' ');
                i += 1;
                continue;
            }
            if is_blank(b) {
                self.keep(b' ');
                i += 1;
                continue;
            }
            let line_start = std::mem::replace(&mut self.at_line_start, false);
            let rest = &buf[i..];
            if rest.starts_with(&self.delimiter) {
                i += self.delimiter.len();
                self.end_statement(sink)?;
                continue;
            }
            if b == b'#'
                || (rest.starts_with(b"--")
                    && rest
                        .get(2)
                        .is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_control()))
            {
                self.state = State::LineComment;
                i += 1;
                continue;
            }
            if rest.starts_with(b"/*") {
                let version = if rest.starts_with(b"/*!") {
                    Some(3)
                } else if rest.starts_with(b"/*M!") || rest.starts_with(b"/*m!") {
                    Some(4)
                } else {
                    None
                };
                match version {
                    None => {
                        self.state = State::BlockComment;
                        i += 2;
                    }
                    Some(_) if !self.started && rest.starts_with(SANDBOX) => {
                        i += SANDBOX.len();
                    }
                    Some(_) if self.in_version => {
                        return self.refuse("a /*! comment inside another");
                    }
                    Some(n) => {
                        self.begin();
                        self.in_version = true;
                        let digits = rest[n..].iter().take_while(|c| c.is_ascii_digit()).count();
                        for &c in &rest[..n + digits] {
                            self.keep(c);
                        }
                        i += n + digits;
                    }
                }
                continue;
            }
            if self.in_version && rest.starts_with(b"*/") {
                self.in_version = false;
                self.keep(b'*');
                self.keep(b'/');
                i += 2;
                continue;
            }
            let fresh = !self.started;
            self.begin();
            self.keep(b);
            if b == b'\\' {
                return self.refuse("a client command");
            }
            if matches!(b, b'\'' | b'"' | b'`') {
                self.state = State::Quoted(b);
                self.quoted.clear();
                self.quoted_len = 0;
                i += 1;
                continue;
            }
            if b == b'@' {
                let (n, kind) = if buf.get(i + 1) == Some(&b'@') {
                    (2, 2)
                } else {
                    (1, 1)
                };
                if buf.get(i + n).copied().is_some_and(is_word_byte) {
                    self.keep(b'@');
                    self.var = Some(kind);
                    self.state = State::Word;
                    self.word_at_line_start = false;
                    i += n;
                    continue;
                }
            }
            if is_word_byte(b) {
                self.state = State::Word;
                self.word_at_line_start = line_start && fresh;
                self.word.clear();
                self.word.push(b.to_ascii_lowercase());
                self.word_len = 1;
                self.word_digits = b.is_ascii_digit();
                i += 1;
                continue;
            }
            self.emit(sink, Token::Punct(b))?;
            i += 1;
        }
        Ok(i.min(buf.len()))
    }

    fn quote_bytes(&mut self, bytes: &[u8]) {
        let room = (QUOTED_MAX + 1).saturating_sub(self.quoted.len());
        self.quoted
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.quoted_len = self.quoted_len.saturating_add(bytes.len());
        for &b in bytes
            .iter()
            .take(EXCERPT_MAX.saturating_sub(self.excerpt.len()))
        {
            self.keep(b);
        }
    }
}
