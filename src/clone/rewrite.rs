//! A clone's database moved to its new address: the site's `home` and `siteurl`, and the
//! PHP-serialization-aware replace of [`crate::serialized`] in every text column of the
//! site's tables, row by row through the primary key, in one transaction.
//!
//! Values travel as hex (`HEX(CAST(col AS BINARY))` out, `CONVERT(X'..' USING charset)` in) so
//! that every byte round-trips in the column's own character set, whatever it holds.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};

use crate::config::DatabaseConfig;
use crate::dbtools::client::{Session, ident, sql, sql_str};

/// The site's `home` and `siteurl` options.
pub fn site_urls(creds: &DatabaseConfig, name: &str, prefix: &str) -> anyhow::Result<Vec<String>> {
    let out = sql(
        creds,
        Some(name),
        &format!(
            "SELECT option_value FROM {} WHERE option_name IN ('home', 'siteurl')",
            ident(&format!("{prefix}options"))
        ),
    )?;
    Ok(out
        .lines()
        .map(|l| l.trim().trim_end_matches('/').to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

/// A column of a table as information_schema describes it.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    data_type: String,
    charset: String,
    primary: bool,
}

impl Column {
    fn is_integer(&self) -> bool {
        matches!(
            self.data_type.as_str(),
            "tinyint" | "smallint" | "mediumint" | "int" | "bigint"
        )
    }

    fn is_text(&self) -> bool {
        matches!(
            self.data_type.as_str(),
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext"
        ) && !self.charset.is_empty()
    }

    /// `col = <value>` for a primary-key value read back as bytes.
    fn equals(&self, value: &[u8]) -> String {
        let numeric = matches!(
            self.data_type.as_str(),
            "tinyint" | "smallint" | "mediumint" | "int" | "bigint" | "decimal"
        );
        if numeric
            && !value.is_empty()
            && value
                .iter()
                .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'.'))
        {
            format!("{} = {}", ident(&self.name), String::from_utf8_lossy(value))
        } else if !self.charset.is_empty() {
            format!(
                "{} = CONVERT(X'{}' USING {})",
                ident(&self.name),
                hex::encode(value),
                self.charset
            )
        } else {
            format!(
                "CAST({} AS BINARY) = X'{}'",
                ident(&self.name),
                hex::encode(value)
            )
        }
    }
}

/// What a search-replace changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Replaced {
    /// Values changed, per table.
    pub per_table: BTreeMap<String, u64>,
    /// Values that hold an old address but were left unchanged, each with where it is and why.
    pub left_unchanged: Vec<String>,
}

impl Replaced {
    pub fn values(&self) -> u64 {
        self.per_table.values().sum()
    }
}

/// A table is read at most this many matching rows at a time...
const BATCH_ROWS: usize = 1000;
/// ...and about this many bytes of text (a single larger row is read on its own).
const BATCH_BYTES: u64 = 8 << 20;

/// Replace each `from` with its `to` in every text column of every table with the site's
/// prefix, PHP-serialized values included, in one transaction. A table with a one-column
/// integer primary key (all of WordPress's own) is read in batches of [`BATCH_ROWS`] rows and
/// about [`BATCH_BYTES`] bytes, and each batch's UPDATEs are sent before the next is read, so
/// memory stays flat whatever the table's size; another table is read whole.
pub fn search_replace(
    creds: &DatabaseConfig,
    name: &str,
    prefix: &str,
    pairs: &[(String, String)],
) -> anyhow::Result<Replaced> {
    let tables = columns(creds, name, prefix)?;
    let mut replaced = Replaced::default();
    let mut session: Option<Session> = None;
    // A post's guid is its permanent identity, not a link: WordPress says never to change it.
    let posts = format!("{prefix}posts");
    for (table, columns) in &tables {
        let text: Vec<&Column> = columns
            .iter()
            .filter(|c| c.is_text() && !(*table == posts && c.name == "guid"))
            .collect();
        if text.is_empty() {
            continue;
        }
        let pk: Vec<&Column> = columns.iter().filter(|c| c.primary).collect();
        let t = Table {
            name: table,
            pk: &pk,
            text: &text,
        };
        let mut after: Option<String> = None;
        loop {
            // Stopped between batches: the open transaction is never committed.
            crate::interrupt::check()?;
            let (rows, next) = t.batch(creds, name, pairs, after.as_deref())?;
            let updates = t.updates(&rows, pairs, &mut replaced.left_unchanged);
            if !updates.is_empty() {
                let s = match &mut session {
                    Some(s) => s,
                    None => session.insert(begin(creds, name)?),
                };
                for (update, n) in updates {
                    s.write(&update)
                        .context("cannot write the replaced values")?;
                    *replaced.per_table.entry(table.clone()).or_default() += n;
                }
            }
            match next {
                Some(key) => after = Some(key),
                None => break,
            }
        }
    }
    if let Some(mut s) = session {
        s.write("COMMIT;\n")
            .and_then(|()| s.finish())
            .context("cannot write the replaced values")?;
    }
    Ok(replaced)
}

/// A client session in `name` with a transaction started, for the replaced values.
fn begin(creds: &DatabaseConfig, name: &str) -> anyhow::Result<Session> {
    let mut s = Session::open(creds, name)?;
    s.write("SET NAMES utf8mb4;\nSTART TRANSACTION;\n")
        .context("cannot write the replaced values")?;
    Ok(s)
}

/// The columns of the base tables whose names start with `prefix`, per table.
fn columns(
    creds: &DatabaseConfig,
    name: &str,
    prefix: &str,
) -> anyhow::Result<BTreeMap<String, Vec<Column>>> {
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        bail!("table prefix {prefix:?} holds characters WordPress does not allow");
    }
    let pattern = format!("{}%", prefix.replace('_', "\\_"));
    let out = sql(
        creds,
        Some(name),
        &format!(
            "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, COALESCE(c.CHARACTER_SET_NAME, ''), c.COLUMN_KEY
             FROM information_schema.COLUMNS c JOIN information_schema.TABLES t
               ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
             WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE'
               AND c.TABLE_NAME LIKE {}
             ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION",
            sql_str(&pattern)
        ),
    )?;
    let mut tables: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if let [table, column, data_type, charset, key] = f.as_slice() {
            tables.entry(table.to_string()).or_default().push(Column {
                name: column.to_string(),
                data_type: data_type.to_ascii_lowercase(),
                charset: charset.to_string(),
                primary: *key == "PRI",
            });
        }
    }
    Ok(tables)
}

/// One table being rewritten: its primary key and text columns.
struct Table<'a> {
    name: &'a str,
    pk: &'a [&'a Column],
    text: &'a [&'a Column],
}

/// A batch of rows, and the key after which the next one starts when there may be one.
type BatchRows = (Vec<Vec<Option<Vec<u8>>>>, Option<String>);

/// From `key\tbytes` lines in key order: the last key of a batch of at most [`BATCH_BYTES`]
/// (at least one row), and whether rows may follow it. `None` when there are no rows.
fn batch_end(sizes: &str, table: &str) -> anyhow::Result<Option<(String, bool)>> {
    let mut total = 0u64;
    let mut last: Option<&str> = None;
    let mut lines = 0;
    for line in sizes.lines() {
        lines += 1;
        let (key, len) = line.split_once('\t').unwrap_or((line, ""));
        let len: u64 = len.trim().parse().unwrap_or(0);
        let digits = key.strip_prefix('-').unwrap_or(key);
        let integer = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        if !integer {
            bail!("unexpected primary key {key:?} from table {table}");
        }
        if last.is_some() && total + len > BATCH_BYTES {
            return Ok(last.map(|k| (k.to_string(), true)));
        }
        total += len;
        last = Some(key);
    }
    Ok(last.map(|k| (k.to_string(), lines >= BATCH_ROWS)))
}

impl Table<'_> {
    /// The rows whose text columns hold any `from` (and whose key is in `range`, SQL to add
    /// to the condition): the primary key, then the text columns, as bytes (`None` for NULL).
    fn matching_rows(
        &self,
        creds: &DatabaseConfig,
        name: &str,
        pairs: &[(String, String)],
        range: &str,
    ) -> anyhow::Result<Vec<Vec<Option<Vec<u8>>>>> {
        let (table, pk, text) = (self.name, self.pk, self.text);
        let select: Vec<String> = pk
            .iter()
            .chain(text.iter())
            .map(|c| format!("HEX(CAST({} AS BINARY))", ident(&c.name)))
            .collect();
        let rows = sql(
            creds,
            Some(name),
            &format!(
                "SELECT {} FROM {} WHERE ({}){range}",
                select.join(", "),
                ident(table),
                self.matches(pairs)
            ),
        )
        .with_context(|| format!("cannot read table {table}"))?;
        let mut out = Vec::new();
        for line in rows.lines() {
            let fields: Vec<Option<Vec<u8>>> = line
                .split('\t')
                .map(|h| {
                    if h == "NULL" {
                        None
                    } else {
                        hex::decode(h).ok()
                    }
                })
                .collect();
            if fields.len() != pk.len() + text.len() {
                bail!("unexpected row from table {table}");
            }
            out.push(fields);
        }
        Ok(out)
    }

    /// The SQL condition: any text column holds any `from`.
    fn matches(&self, pairs: &[(String, String)]) -> String {
        let mut any = Vec::new();
        for c in self.text {
            for (from, _) in pairs {
                any.push(format!(
                    "LOCATE(X'{}', CAST({} AS BINARY)) > 0",
                    hex::encode(from),
                    ident(&c.name)
                ));
            }
        }
        any.join(" OR ")
    }

    /// The next batch of matching rows after key `after`, and the key to read on from when
    /// more may follow. A table without a one-column integer primary key is read whole.
    fn batch(
        &self,
        creds: &DatabaseConfig,
        name: &str,
        pairs: &[(String, String)],
        after: Option<&str>,
    ) -> anyhow::Result<BatchRows> {
        let [key] = self.pk else {
            return Ok((self.matching_rows(creds, name, pairs, "")?, None));
        };
        if !key.is_integer() {
            return Ok((self.matching_rows(creds, name, pairs, "")?, None));
        }
        let k = ident(&key.name);
        let from = after.map(|a| format!(" AND {k} > {a}")).unwrap_or_default();
        let lengths: Vec<String> = self
            .text
            .iter()
            .map(|c| format!("COALESCE(LENGTH({}), 0)", ident(&c.name)))
            .collect();
        let sizes = sql(
            creds,
            Some(name),
            &format!(
                "SELECT {k}, {} FROM {} WHERE ({}){from} ORDER BY {k} LIMIT {BATCH_ROWS}",
                lengths.join(" + "),
                ident(self.name),
                self.matches(pairs)
            ),
        )
        .with_context(|| format!("cannot read table {}", self.name))?;
        let Some((last, more)) = batch_end(&sizes, self.name)? else {
            return Ok((Vec::new(), None));
        };
        let range = format!("{from} AND {k} <= {last}");
        let rows = self.matching_rows(creds, name, pairs, &range)?;
        Ok((rows, more.then_some(last)))
    }

    /// The UPDATE statements for `rows` (as [`matching_rows`] reads them), each with the number
    /// of values it changes; a value that cannot be rewritten is named in `left_unchanged`.
    fn updates(
        &self,
        rows: &[Vec<Option<Vec<u8>>>],
        pairs: &[(String, String)],
        left_unchanged: &mut Vec<String>,
    ) -> Vec<(String, u64)> {
        let byte_pairs: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .map(|(f, t)| (f.as_bytes(), t.as_bytes()))
            .collect();
        rows.iter()
            .filter_map(|row| self.update(row, &byte_pairs, left_unchanged))
            .collect()
    }

    /// The UPDATE of one row, when any of its values changes.
    fn update(
        &self,
        row: &[Option<Vec<u8>>],
        pairs: &[(&[u8], &[u8])],
        left_unchanged: &mut Vec<String>,
    ) -> Option<(String, u64)> {
        let (keys, values) = row.split_at(self.pk.len());
        let mut sets = Vec::new();
        let mut olds = Vec::new();
        for (c, v) in self.text.iter().zip(values) {
            let Some(v) = v else { continue };
            let new = match crate::serialized::replace(v, pairs) {
                Ok(new) => new,
                Err(e) => {
                    left_unchanged.push(self.describe(&c.name, keys, e));
                    None
                }
            };
            if let Some(new) = new {
                sets.push(format!(
                    "{} = CONVERT(X'{}' USING {})",
                    ident(&c.name),
                    hex::encode(&new),
                    c.charset
                ));
                olds.push(format!(
                    "CAST({} AS BINARY) = X'{}'",
                    ident(&c.name),
                    hex::encode(v)
                ));
            }
        }
        if sets.is_empty() {
            return None;
        }
        let cond: Vec<String> = if self.pk.is_empty() || keys.iter().any(Option::is_none) {
            olds
        } else {
            self.pk
                .iter()
                .zip(keys)
                .map(|(c, k)| c.equals(k.as_deref().unwrap_or_default()))
                .collect()
        };
        let update = format!(
            "UPDATE {} SET {} WHERE {};\n",
            ident(self.name),
            sets.join(", "),
            cond.join(" AND ")
        );
        Some((update, sets.len() as u64))
    }

    /// Where a value is (table, column, the row's primary key) and why it was left unchanged.
    fn describe(
        &self,
        column: &str,
        keys: &[Option<Vec<u8>>],
        why: impl std::fmt::Display,
    ) -> String {
        let row: Vec<String> = self
            .pk
            .iter()
            .zip(keys)
            .map(|(c, k)| match k {
                Some(k) => format!("{} = {}", c.name, String::from_utf8_lossy(k)),
                None => format!("{} IS NULL", c.name),
            })
            .collect();
        let row = if row.is_empty() {
            "a row without a primary key".to_string()
        } else {
            format!("the row where {}", row.join(" AND "))
        };
        format!("table {}, column {column}, {row}: {why}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_key_conditions() {
        let col = |t: &str, cs: &str| Column {
            name: "ID".into(),
            data_type: t.into(),
            charset: cs.into(),
            primary: true,
        };
        assert_eq!(col("bigint", "").equals(b"42"), "`ID` = 42");
        assert_eq!(
            col("varchar", "utf8mb4").equals(b"a"),
            "`ID` = CONVERT(X'61' USING utf8mb4)"
        );
        assert_eq!(
            col("varbinary", "").equals(b"a"),
            "CAST(`ID` AS BINARY) = X'61'"
        );
        // Something that is not a number never becomes SQL text.
        assert_eq!(
            col("int", "").equals(b"1 OR 1=1"),
            "CAST(`ID` AS BINARY) = X'31204f5220313d31'"
        );
        assert!(col("longtext", "utf8mb4").is_text());
        assert!(!col("blob", "").is_text());
    }

    #[test]
    fn values_too_deep_or_with_colliding_keys_are_left_unchanged_and_named() {
        let col = |name: &str, t: &str, primary| Column {
            name: name.into(),
            data_type: t.into(),
            charset: "utf8mb4".into(),
            primary,
        };
        let (id, value) = (
            col("option_id", "bigint", true),
            col("option_value", "longtext", false),
        );
        let table = Table {
            name: "wp_options",
            pk: &[&id],
            text: &[&value],
        };
        let s = |t: &str| format!("s:{}:\"{t}\";", t.len());
        let deep = (0..1000).fold(s("http://old.example/x"), |v, _| s(&v));
        let shallow = s(&s("http://old.example/x"));
        // Keys that the move would make equal (one entry would be lost).
        let clash = format!(
            "a:2:{{{}i:1;{}i:2;}}",
            s("http://old.example/a"),
            s("https://new.example/a")
        );
        let rows = vec![
            vec![Some(b"5".to_vec()), Some(deep.into_bytes())],
            vec![Some(b"6".to_vec()), Some(shallow.into_bytes())],
            vec![Some(b"7".to_vec()), Some(clash.into_bytes())],
        ];
        let pairs = [(
            "http://old.example".to_string(),
            "https://new.example".to_string(),
        )];
        let mut left = Vec::new();
        let updates = table.updates(&rows, &pairs, &mut left);
        assert_eq!(updates.len(), 1, "only the shallow value is rewritten");
        assert!(updates[0].0.contains("`option_id` = 6"), "{}", updates[0].0);
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(
            left[0].starts_with(
                "table wp_options, column option_value, the row where option_id = 5: "
            ) && left[0].contains("left unchanged"),
            "{}",
            left[0]
        );
        assert!(
            left[1].starts_with(
                "table wp_options, column option_value, the row where option_id = 7: two keys"
            ) && left[1].contains("\"https://new.example/a\""),
            "{}",
            left[1]
        );
    }

    #[test]
    fn batches_end_at_the_row_or_byte_budget() {
        let lines = |sizes: &[u64]| -> String {
            sizes
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{}\t{n}\n", i + 1))
                .collect()
        };
        assert_eq!(batch_end("", "t").unwrap(), None);
        // Fewer rows than a batch, within the budget: the last one, nothing after.
        assert_eq!(
            batch_end(&lines(&[10, 20]), "t").unwrap(),
            Some(("2".into(), false))
        );
        // A full batch of rows: more may follow.
        let full = lines(&vec![1; BATCH_ROWS]);
        assert_eq!(
            batch_end(&full, "t").unwrap(),
            Some((BATCH_ROWS.to_string(), true))
        );
        // The byte budget ends it early; a single row larger than the budget is read alone.
        let half = BATCH_BYTES / 2 + 1;
        assert_eq!(
            batch_end(&lines(&[half, half, 1]), "t").unwrap(),
            Some(("1".into(), true))
        );
        let huge = BATCH_BYTES * 3;
        assert_eq!(
            batch_end(&lines(&[huge, 1]), "t").unwrap(),
            Some(("1".into(), true))
        );
        // A key that is not an integer never becomes SQL.
        assert!(batch_end("1 OR 1=1\t5\n", "t").is_err());
        assert!(batch_end("-\t5\n", "t").is_err());
    }
}
