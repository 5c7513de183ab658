//! What a clone's rewrite would change, counted in the archive's `database.sql` without a
//! database (`restore --dry-run`): the dump is read line by line as `mariadb-dump` writes it
//! (a `CREATE TABLE` names each table's columns in order, an extended `INSERT INTO ...
//! VALUES (...),(...);` holds its rows, on one line or, since MariaDB 10.11, a row a line), each string value unescaped, and each value of a
//! text column (`char`, `varchar`, the `text` types) of a table with the site's prefix, posts'
//! `guid` left out, given to the same [`crate::serialized::replace`] the clone runs: the
//! values it would change, per table, and those it would leave unchanged (keys that would
//! collide, nesting too deep). The site's `home` and `siteurl` are read from the same dump
//! ([`site_urls`]).
//!
//! A dump written otherwise (`--complete-insert`, one row per statement) is read too; a line the reader does not understand is skipped, so the
//! counts are what the dump shows, not a promise.

use std::collections::BTreeMap;
use std::io::BufRead;

use anyhow::Context as _;
use serde::Serialize;

/// Values a rewrite would change and leave unchanged.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Counted {
    /// Values changed, per table.
    pub per_table: BTreeMap<String, u64>,
    /// Values holding an old address that would be left unchanged, per table.
    pub left_unchanged: BTreeMap<String, u64>,
}

/// A table's columns: name, and whether the rewrite reads it (a text column).
type Columns = Vec<(String, bool)>;

/// Count what `pairs` would change in the dump read from `dump` (see the module's
/// documentation), in the tables whose names start with `prefix`.
pub fn count(
    dump: impl BufRead,
    prefix: &str,
    pairs: &[(String, String)],
) -> anyhow::Result<Counted> {
    let byte_pairs: Vec<(&[u8], &[u8])> = pairs
        .iter()
        .map(|(f, t)| (f.as_bytes(), t.as_bytes()))
        .collect();
    let posts = format!("{prefix}posts");
    let mut counted = Counted::default();
    scan(dump, prefix, |table, columns, row| {
        for ((name, text), value) in columns.iter().zip(row) {
            let Some(v) = value.as_deref().filter(|_| *text) else {
                continue;
            };
            if table == posts && name == "guid" {
                continue;
            }
            match crate::serialized::replace(v, &byte_pairs) {
                Ok(Some(_)) => *counted.per_table.entry(table.to_string()).or_default() += 1,
                Ok(None) => {}
                Err(_) => *counted.left_unchanged.entry(table.to_string()).or_default() += 1,
            }
        }
    })?;
    Ok(counted)
}

/// The site's `home` and `siteurl` options in the dump (`{prefix}options`).
pub fn site_urls(dump: impl BufRead, prefix: &str) -> anyhow::Result<Vec<String>> {
    let options = format!("{prefix}options");
    let mut urls = Vec::new();
    scan(dump, prefix, |table, columns, row| {
        if table != options {
            return;
        }
        let at = |col: &str| columns.iter().position(|(n, _)| n == col);
        let (Some(n), Some(v)) = (at("option_name"), at("option_value")) else {
            return;
        };
        let cell = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        if matches!(cell(n).as_slice(), b"home" | b"siteurl") {
            let url = String::from_utf8_lossy(&cell(v))
                .trim()
                .trim_end_matches('/')
                .to_string();
            if !url.is_empty() {
                urls.push(url);
            }
        }
    })?;
    Ok(urls)
}

/// A row as (column, value) pairs.
pub type Row = Vec<(String, Option<Vec<u8>>)>;

/// The rows of table `table` in the dump, each as (column, value) (a string unescaped, an
/// integer as its digits; `None` for `NULL` and what is neither).
pub fn rows(dump: impl BufRead, table: &str) -> anyhow::Result<Vec<Row>> {
    let mut out = Vec::new();
    scan(dump, table, |t, columns, row| {
        if t == table {
            out.push(
                columns
                    .iter()
                    .map(|(n, _)| n.clone())
                    .zip(row.iter().cloned())
                    .collect(),
            );
        }
    })?;
    Ok(out)
}

/// Call `row` with each row of each table whose name starts with `prefix`: the table, its
/// columns, and the row's values (a string unescaped, an unsigned integer as its digits,
/// `None` for `NULL`, hex and the rest).
fn scan(
    mut dump: impl BufRead,
    prefix: &str,
    mut row: impl FnMut(&str, &Columns, &[Option<Vec<u8>>]),
) -> anyhow::Result<()> {
    let mut tables: BTreeMap<String, Columns> = BTreeMap::new();
    let mut creating: Option<(String, Columns)> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        if dump
            .read_until(b'\n', &mut line)
            .context("cannot read database.sql")?
            == 0
        {
            break;
        }
        if let Some((_, columns)) = &mut creating {
            if let Some(col) = column(&line) {
                columns.push(col);
                continue;
            }
            if line.starts_with(b")") {
                let (name, columns) = creating.take().unwrap_or_default();
                tables.insert(name, columns);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix(b"CREATE TABLE ") {
            if let Some((name, _)) = quoted_name(rest) {
                creating = Some((name, Vec::new()));
            }
            continue;
        }
        if !line.starts_with(b"INSERT INTO ") {
            continue;
        }
        // MariaDB 10.11's dump puts each row on a line of its own: the statement goes on to
        // the line that ends in `;` (a value's own line breaks are written `\n`).
        while !line.trim_ascii_end().ends_with(b";") {
            if dump
                .read_until(b'\n', &mut line)
                .context("cannot read database.sql")?
                == 0
            {
                break;
            }
        }
        let rest = &line[b"INSERT INTO ".len()..];
        let Some((table, rest)) = quoted_name(rest) else {
            continue;
        };
        if !table.starts_with(prefix) {
            continue;
        }
        let Some(columns) = tables.get(&table) else {
            continue;
        };
        let (columns, rest) = match named_columns(rest, columns) {
            Some(found) => found,
            None => continue,
        };
        let Some(values) = rest.trim_ascii_start().strip_prefix(b"VALUES") else {
            continue;
        };
        for_each_row(values, |cells| row(&table, &columns, cells));
    }
    Ok(())
}

/// An identifier in backquotes at the start of `s` (after spaces), and what follows it.
fn quoted_name(s: &[u8]) -> Option<(String, &[u8])> {
    let s = s.trim_ascii_start().strip_prefix(b"`")?;
    let mut name = Vec::new();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'`' if s.get(i + 1) == Some(&b'`') => {
                name.push(b'`');
                i += 2;
            }
            b'`' => return Some((String::from_utf8_lossy(&name).into_owned(), &s[i + 1..])),
            b => {
                name.push(b);
                i += 1;
            }
        }
    }
    None
}

/// A column line of a `CREATE TABLE` (`` `name` type ...``): its name, and whether its type is
/// one the rewrite reads.
fn column(line: &[u8]) -> Option<(String, bool)> {
    if !line.starts_with(b"  `") {
        return None;
    }
    let (name, rest) = quoted_name(line)?;
    let ty: String = rest
        .trim_ascii_start()
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .map(|b| b.to_ascii_lowercase() as char)
        .collect();
    let text = matches!(
        ty.as_str(),
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext"
    ) && !rest
        .to_ascii_lowercase()
        .windows(b"character set binary".len())
        .any(|w| w == b"character set binary");
    Some((name, text))
}

/// The columns an INSERT names (`INSERT INTO t (a, b) VALUES`), else the table's own; and the
/// rest of the line.
fn named_columns<'a>(rest: &'a [u8], table: &Columns) -> Option<(Columns, &'a [u8])> {
    let t = rest.trim_ascii_start();
    let Some(mut list) = t.strip_prefix(b"(") else {
        return Some((table.clone(), rest));
    };
    let mut named = Vec::new();
    loop {
        let (name, after) = quoted_name(list)?;
        let text = table
            .iter()
            .find(|(n, _)| *n == name)
            .is_some_and(|(_, t)| *t);
        named.push((name, text));
        let after = after.trim_ascii_start();
        match after.first() {
            Some(b',') => list = &after[1..],
            Some(b')') => return Some((named, &after[1..])),
            _ => return None,
        }
    }
}

/// Call `row` with each `(...)` tuple of the values in `s`, its strings unescaped as the
/// client would read them; stops at what it does not understand.
fn for_each_row(s: &[u8], mut row: impl FnMut(&[Option<Vec<u8>>])) {
    let mut i = 0;
    let mut cells: Vec<Option<Vec<u8>>> = Vec::new();
    let skip_spaces = |i: &mut usize| {
        while s.get(*i).is_some_and(|b| b.is_ascii_whitespace()) {
            *i += 1;
        }
    };
    loop {
        skip_spaces(&mut i);
        if s.get(i) != Some(&b'(') {
            return;
        }
        i += 1;
        cells.clear();
        loop {
            skip_spaces(&mut i);
            match s.get(i) {
                Some(b'\'') => {
                    let (value, end) = match string(s, i + 1) {
                        Some(found) => found,
                        None => return,
                    };
                    cells.push(Some(value));
                    i = end;
                }
                Some(_) => {
                    let from = i;
                    while s.get(i).is_some_and(|b| *b != b',' && *b != b')') {
                        i += 1;
                    }
                    // A number as it is written; NULL (and anything else) as none.
                    let bare = s[from..i].trim_ascii();
                    let number = !bare.is_empty() && bare.iter().all(u8::is_ascii_digit);
                    cells.push(number.then(|| bare.to_vec()));
                }
                None => return,
            }
            skip_spaces(&mut i);
            match s.get(i) {
                Some(b',') => i += 1,
                Some(b')') => {
                    i += 1;
                    break;
                }
                _ => return,
            }
        }
        row(&cells);
        skip_spaces(&mut i);
        match s.get(i) {
            Some(b',') => i += 1,
            _ => return,
        }
    }
}

/// The string literal whose text starts at `start` (after its opening quote), unescaped, and
/// where it ends (after its closing quote).
fn string(s: &[u8], start: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut i = start;
    loop {
        match *s.get(i)? {
            b'\\' => {
                let c = *s.get(i + 1)?;
                out.push(match c {
                    b'0' => 0,
                    b'b' => 8,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'Z' => 26,
                    other => other,
                });
                i += 2;
            }
            b'\'' if s.get(i + 1) == Some(&b'\'') => {
                out.push(b'\'');
                i += 2;
            }
            b'\'' => return Some((out, i + 1)),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = r#"-- MariaDB dump
DROP TABLE IF EXISTS `wp_options`;
CREATE TABLE `wp_options` (
  `option_id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  `option_name` varchar(191) NOT NULL DEFAULT '',
  `option_value` longtext NOT NULL,
  `autoload` varchar(20) NOT NULL DEFAULT 'yes',
  PRIMARY KEY (`option_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO `wp_options` VALUES (1,'siteurl','http://old.example/','yes'),(2,'home','http://old.example','yes'),(3,'x','a:1:{s:3:\"url\";s:22:\"http://old.example/a/b\";}','no'),(4,'y','it\'s http://old.example.com.evil\\n','no');
CREATE TABLE `wp_posts` (
  `ID` bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  `post_content` longtext NOT NULL,
  `guid` varchar(255) NOT NULL DEFAULT '',
  `blob` longblob,
  PRIMARY KEY (`ID`)
) ENGINE=InnoDB;
INSERT INTO `wp_posts` VALUES
(1,'see http:\\/\\/old.example\\/p and //old.example/q','http://old.example/?p=1',0x687474703a2f2f6f6c642e6578616d706c65),
(2,NULL,'',NULL);
INSERT INTO `other_posts` VALUES (1,'http://old.example','http://old.example',NULL);
"#;

    #[test]
    fn counts_the_values_a_clone_would_change() {
        let urls = site_urls(DUMP.as_bytes(), "wp_").unwrap();
        assert_eq!(urls, ["http://old.example", "http://old.example"]);
        let pairs = crate::clone::url_pairs(&urls, "https://new.example");
        let counted = count(DUMP.as_bytes(), "wp_", &pairs).unwrap();
        // siteurl, home, the serialized value; the lookalike host is not one; post_content
        // once (the guid and the hex column are not read); another prefix is not the site's.
        assert_eq!(
            counted.per_table,
            BTreeMap::from([("wp_options".into(), 3), ("wp_posts".into(), 1)])
        );
        assert!(counted.left_unchanged.is_empty());
    }

    #[test]
    fn strings_are_unescaped_as_the_client_reads_them() {
        let mut rows = Vec::new();
        for_each_row(br"(1,'a\'b\\c\nd','it''s',NULL),(2,'x',0x41)", |r| {
            rows.push(r.to_vec())
        });
        assert_eq!(
            rows,
            vec![
                vec![
                    Some(b"1".to_vec()),
                    Some(b"a'b\\c\nd".to_vec()),
                    Some(b"it's".to_vec()),
                    None
                ],
                // An integer as its digits (a network's ids), hex as none.
                vec![Some(b"2".to_vec()), Some(b"x".to_vec()), None],
            ]
        );
        assert_eq!(
            column(b"  `guid` varchar(255) NOT NULL"),
            Some(("guid".into(), true))
        );
        assert_eq!(column(b"  `b` longblob"), Some(("b".into(), false)));
        assert_eq!(column(b"  PRIMARY KEY (`ID`)"), None);
    }
}
