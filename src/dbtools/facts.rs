//! What a dump holds, read from the dump's own bytes as they are written: the rows of each
//! table, and for each WordPress install in the database (a `{prefix}options` and
//! `{prefix}posts` pair) its `home` option and its count of published posts. These are the
//! facts `drill` later proves a restore reproduces, so they must describe exactly the dump that
//! was archived: counting them from the stream (instead of asking the server in a second
//! session, which would see a later state than the dump's snapshot) makes them true by
//! construction.
//!
//! The dump is read as `mariadb-dump`/`mysqldump` write it: tables created by `CREATE TABLE
//! \`name\` (` with one column per line, rows in `INSERT INTO \`name\` [(\`col\`,...)] VALUES
//! (...),(...);` statements (MariaDB 10.11 puts each row on a line of its own, older tools
//! the whole statement on one), strings single-quoted with backslash escapes. Views (`/*!50001 ...`) are not tables and are not counted. The reader is a state
//! machine fed any slicing of the bytes ([`FactsReader::feed`]); it keeps at most one short line
//! and the few values it needs in memory.

use std::collections::BTreeMap;

/// One WordPress install's facts, as the dump holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WpFacts {
    /// The `home` option (`None`: no such row).
    pub home: Option<String>,
    /// Rows of `{prefix}posts` with `post_type = 'post'` and `post_status = 'publish'`
    /// (what WordPress's `wp_count_posts('post')->publish` counts).
    pub published_posts: u64,
}

/// What a dump holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpFacts {
    /// Rows per table (every table the dump creates, 0 when it has no row).
    pub rows: BTreeMap<String, u64>,
    /// Per table prefix (`wp_`), the install whose `{prefix}options` and `{prefix}posts` the
    /// dump holds.
    pub wordpress: BTreeMap<String, WpFacts>,
    /// The binary log file and position the dump's snapshot is at (`--master-data=2`'s
    /// `-- CHANGE MASTER TO MASTER_LOG_FILE='f', MASTER_LOG_POS=n;` comment, before the first
    /// table); `None` without it.
    pub binlog: Option<(String, u64)>,
}

impl DumpFacts {
    /// The install with this table prefix, when the dump holds its options table.
    pub fn wordpress(&self, prefix: &str) -> Option<&WpFacts> {
        self.wordpress.get(prefix)
    }
}

/// A line is only kept up to this many bytes while it is being recognised (statements that
/// matter here start within it; longer lines are skipped to their end).
const MAX_HEAD: usize = 64 * 1024;
/// A value kept for the facts (an option name, `home`, a post type) is cut at this length.
const MAX_VALUE: usize = 4096;

/// `MASTER_LOG_FILE='mariadb-bin.000003', MASTER_LOG_POS=1234;` -> its file and position.
fn change_master(text: &str) -> Option<(String, u64)> {
    let file = text.split("MASTER_LOG_FILE='").nth(1)?.split('\'').next()?;
    let pos = text.split("MASTER_LOG_POS=").nth(1)?;
    let pos: String = pos.chars().take_while(char::is_ascii_digit).collect();
    let ok = !file.is_empty()
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    ok.then(|| Some((file.to_string(), pos.parse().ok()?)))?
}

/// What a table of interest is, and where its columns are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `{prefix}options`: (option_name, option_value).
    Options { name: usize, value: usize },
    /// `{prefix}posts`: (post_type, post_status).
    Posts { kind: usize, status: usize },
}

/// Where the reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line, or in a line being recognised (kept in `head`).
    Line,
    /// In a line that does not matter: until its end.
    Skip,
    /// After `VALUES`: between rows, until the statement's `;`.
    Between,
    /// In a row, outside a string; `depth` counts parentheses.
    Row { depth: u32 },
    /// In a string of a row; `escaped` after a backslash.
    Str { escaped: bool },
    /// Just after a string's closing quote (`''` reopens it).
    AfterStr,
}

/// Reads a dump as it passes and sums up its [`DumpFacts`].
#[derive(Debug)]
pub struct FactsReader {
    facts: DumpFacts,
    state: State,
    head: Vec<u8>,
    /// The table whose `CREATE TABLE` is being read, and its columns so far.
    creating: Option<(String, Vec<String>)>,
    /// Columns of every table created so far whose name ends in `options` or `posts`.
    columns: BTreeMap<String, Vec<String>>,
    /// The table the current `INSERT` fills.
    table: String,
    kind: Option<Kind>,
    /// The current row's field index and the kept values of its fields of interest.
    field: usize,
    value: Vec<u8>,
    kept: [Option<Vec<u8>>; 2],
}

impl Default for FactsReader {
    fn default() -> Self {
        FactsReader {
            facts: DumpFacts::default(),
            state: State::Line,
            head: Vec::new(),
            creating: None,
            columns: BTreeMap::new(),
            table: String::new(),
            kind: None,
            field: 0,
            value: Vec::new(),
            kept: [None, None],
        }
    }
}

impl FactsReader {
    /// Read the next bytes of the dump.
    pub fn feed(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            let used = match self.state {
                State::Line => self.line(buf),
                State::Skip => match buf.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        self.state = State::Line;
                        i + 1
                    }
                    None => buf.len(),
                },
                State::Str { .. } => self.string(buf),
                State::Row { .. } => self.unquoted(buf),
                _ => {
                    self.row_byte(buf[0]);
                    1
                }
            };
            buf = &buf[used..];
        }
    }

    /// The facts of everything fed.
    pub fn finish(self) -> DumpFacts {
        self.facts
    }

    /// Bytes of a line being recognised, up to its end or until it is known.
    fn line(&mut self, buf: &[u8]) -> usize {
        let (take, ended) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i, true),
            None => (buf.len(), false),
        };
        for (i, b) in buf[..take].iter().enumerate() {
            self.head.push(*b);
            if *b == b' '
                && self.head.ends_with(b" VALUES ")
                && self.head.starts_with(b"INSERT INTO ")
            {
                self.start_insert();
                return i + 1;
            }
            if self.head.len() > MAX_HEAD {
                self.head.clear();
                self.state = State::Skip;
                return i + 1;
            }
        }
        if ended {
            if self.head.ends_with(b" VALUES") && self.head.starts_with(b"INSERT INTO ") {
                self.start_insert();
                return take + 1;
            }
            let line = std::mem::take(&mut self.head);
            self.whole_line(&line);
            return take + 1;
        }
        take
    }

    /// A complete short line: the start, columns and end of a `CREATE TABLE`.
    fn whole_line(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        if let Some((table, columns)) = &mut self.creating {
            if let Some(rest) = text.strip_prefix("  `") {
                if let Some((name, _)) = quoted(rest) {
                    columns.push(name);
                }
                return;
            }
            if text.starts_with(')') {
                let (table, columns) = (table.clone(), std::mem::take(columns));
                self.creating = None;
                if table.ends_with("options") || table.ends_with("posts") {
                    self.columns.insert(table, columns);
                }
            }
            return;
        }
        if self.facts.rows.is_empty()
            && self.facts.binlog.is_none()
            && let Some(c) = text.strip_prefix("-- CHANGE MASTER TO ")
        {
            self.facts.binlog = change_master(c);
            return;
        }
        let rest = text
            .strip_prefix("CREATE TABLE IF NOT EXISTS `")
            .or_else(|| text.strip_prefix("CREATE TABLE `"));
        if let Some((table, _)) = rest.and_then(quoted) {
            self.facts.rows.entry(table.clone()).or_insert(0);
            self.creating = Some((table, Vec::new()));
        }
    }

    /// `INSERT INTO \`t\` [(\`a\`,...)] VALUES ` was read: rows follow.
    fn start_insert(&mut self) {
        let line = std::mem::take(&mut self.head);
        let text = String::from_utf8_lossy(&line);
        let rest = text.strip_prefix("INSERT INTO `").unwrap_or_default();
        let Some((table, after)) = quoted(rest) else {
            self.state = State::Skip;
            return;
        };
        // An explicit column list (generated or invisible columns) wins over CREATE's.
        let listed: Option<Vec<String>> = after.trim_start().strip_prefix('(').map(|l| {
            let mut cols = Vec::new();
            let mut l = l.trim_start();
            while let Some((c, r)) = l.strip_prefix('`').and_then(quoted) {
                cols.push(c);
                l = r.trim_start_matches([',', ' ']);
            }
            cols
        });
        let columns = listed.as_ref().or_else(|| self.columns.get(&table));
        self.kind = columns.and_then(|c| kind(&table, c));
        self.facts.rows.entry(table.clone()).or_insert(0);
        self.table = table;
        self.state = State::Between;
    }

    /// One byte of the VALUES part outside strings.
    fn row_byte(&mut self, b: u8) {
        match (self.state, b) {
            (State::AfterStr, b'\'') => {
                // `''` inside a string: a quote, and the string goes on.
                self.keep(b'\'');
                self.state = State::Str { escaped: false };
            }
            (State::AfterStr, _) => {
                self.state = State::Row { depth: 1 };
                self.row_byte(b);
            }
            (State::Between, b'(') => {
                self.field = 0;
                self.value.clear();
                self.kept = [None, None];
                self.state = State::Row { depth: 1 };
            }
            (State::Between, b';') => self.state = State::Skip,
            (State::Between, _) => {}
            (State::Row { .. }, b'\'') => self.state = State::Str { escaped: false },
            (State::Row { depth }, b'(') => self.state = State::Row { depth: depth + 1 },
            (State::Row { depth: 1 }, b')') => {
                self.end_field();
                self.end_row();
                self.state = State::Between;
            }
            (State::Row { depth }, b')') => self.state = State::Row { depth: depth - 1 },
            (State::Row { depth: 1 }, b',') => {
                self.end_field();
                self.field += 1;
            }
            (State::Row { .. }, _) => self.keep(b),
            _ => {}
        }
    }

    /// Bytes of a row outside strings: numbers, `NULL`, `0x...` skipped (or kept) in bulk up
    /// to the next byte that matters.
    fn unquoted(&mut self, buf: &[u8]) -> usize {
        let end = buf
            .iter()
            .position(|b| matches!(b, b'\'' | b'(' | b')' | b','))
            .unwrap_or(buf.len());
        if end == 0 {
            self.row_byte(buf[0]);
            return 1;
        }
        if self.keeping() {
            for b in &buf[..end] {
                self.keep(*b);
            }
        }
        end
    }

    /// Bytes inside a string: skipped in bulk unless the value is kept.
    fn string(&mut self, buf: &[u8]) -> usize {
        let State::Str { escaped } = self.state else {
            return 0;
        };
        if escaped {
            self.keep(match buf[0] {
                b'0' => 0,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'b' => 8,
                b'Z' => 26,
                other => other,
            });
            self.state = State::Str { escaped: false };
            return 1;
        }
        let end = buf
            .iter()
            .position(|b| *b == b'\'' || *b == b'\\')
            .unwrap_or(buf.len());
        if self.keeping() {
            for b in &buf[..end] {
                self.keep(*b);
            }
        }
        match buf.get(end) {
            Some(b'\\') => self.state = State::Str { escaped: true },
            Some(_) => self.state = State::AfterStr,
            None => {}
        }
        (end + 1).min(buf.len())
    }

    /// The index in `kept` of the current field, when it is one of interest.
    fn slot(&self) -> Option<usize> {
        match self.kind? {
            Kind::Options { name, value }
            | Kind::Posts {
                kind: name,
                status: value,
            } => {
                if self.field == name {
                    Some(0)
                } else if self.field == value {
                    Some(1)
                } else {
                    None
                }
            }
        }
    }

    fn keeping(&self) -> bool {
        self.slot().is_some()
    }

    fn keep(&mut self, b: u8) {
        if self.keeping() && self.value.len() < MAX_VALUE {
            self.value.push(b);
        }
    }

    fn end_field(&mut self) {
        if let Some(i) = self.slot() {
            self.kept[i] = Some(std::mem::take(&mut self.value));
        }
        self.value.clear();
    }

    fn end_row(&mut self) {
        *self.facts.rows.entry(self.table.clone()).or_insert(0) += 1;
        let [first, second] = std::mem::take(&mut self.kept)
            .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()));
        match self.kind {
            Some(Kind::Options { .. }) if first.as_deref() == Some("home") => {
                let prefix = self.table.trim_end_matches("options").to_string();
                self.facts.wordpress.entry(prefix).or_default().home = second;
            }
            Some(Kind::Posts { .. })
                if first.as_deref() == Some("post") && second.as_deref() == Some("publish") =>
            {
                let prefix = self.table.trim_end_matches("posts").to_string();
                self.facts
                    .wordpress
                    .entry(prefix)
                    .or_default()
                    .published_posts += 1;
            }
            _ => {}
        }
    }
}

/// The identifier at the start of `s` (after an opening backtick), with doubled backticks
/// undone, and the rest after its closing backtick.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut name = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '`' {
            if chars.peek().is_some_and(|(_, n)| *n == '`') {
                chars.next();
                name.push('`');
            } else {
                return Some((name, &s[i + 1..]));
            }
        } else {
            name.push(c);
        }
    }
    None
}

/// What `table` is to WordPress, from its columns.
fn kind(table: &str, columns: &[String]) -> Option<Kind> {
    let at = |name: &str| columns.iter().position(|c| c == name);
    if table.ends_with("options") {
        Some(Kind::Options {
            name: at("option_name")?,
            value: at("option_value")?,
        })
    } else if table.ends_with("posts") {
        Some(Kind::Posts {
            kind: at("post_type")?,
            status: at("post_status")?,
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "-- MariaDB dump 10.19
--
-- CHANGE MASTER TO MASTER_LOG_FILE='mariadb-bin.000007', MASTER_LOG_POS=345;
--
-- Table structure for table `wp_options`
--

DROP TABLE IF EXISTS `wp_options`;
CREATE TABLE `wp_options` (
  `option_id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  `option_name` varchar(191) NOT NULL DEFAULT '',
  `option_value` longtext NOT NULL,
  `autoload` varchar(20) NOT NULL DEFAULT 'yes',
  PRIMARY KEY (`option_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
LOCK TABLES `wp_options` WRITE;
INSERT INTO `wp_options` VALUES (1,'siteurl','http://a.example','yes'),(2,'home','http://a.example/it\\'s (here), ok','yes'),(3,'x','a''b),(\\\\','no');
INSERT INTO `wp_options` VALUES
(4,'blogname','Grüße','yes');
UNLOCK TABLES;
CREATE TABLE `wp_posts` (
  `ID` bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  `post_content` longtext NOT NULL,
  `post_status` varchar(20) NOT NULL DEFAULT 'publish',
  `post_type` varchar(20) NOT NULL DEFAULT 'post',
  PRIMARY KEY (`ID`)
) ENGINE=InnoDB;
INSERT INTO `wp_posts` VALUES
(1,'a\\nb','publish','post'),
(2,'','draft','post'),
(3,'','publish','page'),
(4,0x27,'publish','post');
CREATE TABLE `empty``one` (
  `a` int(11) DEFAULT NULL
) ENGINE=InnoDB;
/*!50001 CREATE TABLE `a_view` (
  `a` tinyint NOT NULL
) ENGINE=MyISAM */;
INSERT INTO `gen` (`id`, `option_name`) VALUES (1,'home');
-- Dump completed on 2026-11-25 12:00:00
";

    fn expected() -> DumpFacts {
        let mut rows = BTreeMap::new();
        rows.insert("wp_options".to_string(), 4);
        rows.insert("wp_posts".to_string(), 4);
        rows.insert("empty`one".to_string(), 0);
        rows.insert("gen".to_string(), 1);
        let mut wordpress = BTreeMap::new();
        wordpress.insert(
            "wp_".to_string(),
            WpFacts {
                home: Some("http://a.example/it's (here), ok".into()),
                published_posts: 2,
            },
        );
        DumpFacts {
            rows,
            wordpress,
            binlog: Some(("mariadb-bin.000007".into(), 345)),
        }
    }

    #[test]
    fn rows_home_and_posts_are_read_from_the_dump() {
        let mut r = FactsReader::default();
        r.feed(DUMP.as_bytes());
        assert_eq!(r.finish(), expected());
    }

    #[test]
    fn any_slicing_of_the_bytes_gives_the_same_facts() {
        for size in [1, 2, 3, 7, 64] {
            let mut r = FactsReader::default();
            for chunk in DUMP.as_bytes().chunks(size) {
                r.feed(chunk);
            }
            assert_eq!(r.finish(), expected(), "chunks of {size}");
        }
    }

    #[test]
    fn a_cut_dump_counts_only_what_it_holds() {
        let cut = &DUMP[..DUMP.find("(2,'','draft'").unwrap()];
        let mut r = FactsReader::default();
        r.feed(cut.as_bytes());
        let f = r.finish();
        assert_eq!(f.rows.get("wp_posts"), Some(&1));
        assert_eq!(f.wordpress("wp_").map(|w| w.published_posts), Some(1));
        assert_eq!(f.wordpress("other_"), None);
    }
}
