//! The database side of a restore, through the MariaDB/MySQL client with the dump's secret
//! handling (the password only in a `0600` defaults file, a child environment with nothing of
//! ours in it; SQL is fed on stdin, never on a command line): is the target database there and
//! does it hold tables; create it (as the site's user when allowed, else as root through the
//! local socket, granting the site's user access); keep a compressed copy of what it held;
//! import `database.sql`; and move the site to a new address with the PHP-serialization-aware
//! replace of [`crate::restore::serialized`], row by row through the primary key.
//!
//! Values travel as hex (`HEX(CAST(col AS BINARY))` out, `CONVERT(X'..' USING charset)` in) so
//! that every byte round-trips in the column's own character set, whatever it holds.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, bail};

use crate::config::{DatabaseConfig, DbHost, Timeouts};
use crate::dbtools;
use crate::secret::Secret;

/// A SQL string literal.
pub fn sql_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A quoted identifier.
pub fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// Arguments of the client (no secret among them). SQL comes on stdin.
pub fn client_args(defaults: &Path, database: Option<&str>) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        format!("--defaults-extra-file={}", defaults.display()).into(),
        "--default-character-set=utf8mb4".into(),
        "--batch".into(),
        "--skip-column-names".into(),
        "--max-allowed-packet=1G".into(),
    ];
    if let Some(db) = database {
        args.push("--".into());
        args.push(db.into());
    }
    args
}

/// The last bytes of a child's stderr, as one line.
fn tail(buf: &[u8]) -> String {
    let start = buf.len().saturating_sub(600);
    let s = String::from_utf8_lossy(&buf[start..])
        .trim()
        .replace('\n', " | ");
    if s.is_empty() { "no message".into() } else { s }
}

/// Run the client as `creds` (in `database` when given) with `input` on stdin; its stdout.
fn run(creds: &DatabaseConfig, database: Option<&str>, input: Input) -> anyhow::Result<String> {
    let tool = dbtools::find_tool(&["mariadb", "mysql"])?;
    let defaults = dbtools::defaults_file(creds)?;
    let mut cmd = dbtools::command(&tool);
    cmd.args(client_args(defaults.path(), database))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = match input {
        Input::File(path) => {
            let f = std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            cmd.stdin(f)
                .output()
                .with_context(|| format!("cannot run {}", tool.display()))?
        }
        Input::Sql(sql) => {
            let mut child = cmd
                .stdin(Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot run {}", tool.display()))?;
            let mut stdin = child.stdin.take().context("no stdin pipe")?;
            let sql = sql.to_vec();
            // Written from a thread: a large script must not deadlock against a full stdout.
            let writer = std::thread::spawn(move || stdin.write_all(&sql));
            let out = child
                .wait_with_output()
                .context("cannot wait for the client")?;
            let _ = writer.join();
            out
        }
    };
    drop(defaults);
    if !out.status.success() {
        bail!("{}", tail(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

enum Input<'a> {
    Sql(&'a [u8]),
    File(&'a Path),
}

/// Run SQL as `creds`; stdout as tab-separated rows.
pub fn sql(creds: &DatabaseConfig, database: Option<&str>, sql: &str) -> anyhow::Result<String> {
    run(creds, database, Input::Sql(sql.as_bytes()))
}

/// Root through the local socket: `socket` (from `MYSQL_UNIX_PORT`, or the site's own socket),
/// else the client's default socket. Works where root authenticates by socket (Debian's
/// default, when wpbackup runs as root) or has no password.
pub fn admin(socket: Option<PathBuf>, timeouts: Timeouts) -> DatabaseConfig {
    DatabaseConfig {
        name: String::new(),
        user: "root".into(),
        password: Secret::new(""),
        host: DbHost::Socket(socket),
        table_prefix: None,
        timeouts,
    }
}

/// What the target database holds, as far as `creds` can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbState {
    Missing,
    Tables(u64),
}

pub fn state(creds: &DatabaseConfig, name: &str) -> anyhow::Result<DbState> {
    let out = sql(
        creds,
        None,
        &format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {n};
             SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {n};",
            n = sql_str(name)
        ),
    )?;
    let nums: Vec<u64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    Ok(match nums.as_slice() {
        [0, ..] => DbState::Missing,
        [_, tables] => DbState::Tables(*tables),
        _ => bail!("unexpected answer from the database server: {out:?}"),
    })
}

/// Create database `name` for the site's user. Says how it was done.
pub fn create(
    site: &DatabaseConfig,
    name: &str,
    admin_socket: Option<PathBuf>,
) -> anyhow::Result<String> {
    let create = format!(
        "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;",
        ident(name)
    );
    let as_user = match sql(site, None, &create) {
        Ok(_) => return Ok(format!("created database {name}")),
        Err(e) => format!("{e:#}"),
    };
    let root = admin(admin_socket, site.timeouts);
    let as_root = (|| -> anyhow::Result<String> {
        let tables: u64 = sql(
            &root,
            None,
            &format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {}",
                sql_str(name)
            ),
        )?
        .trim()
        .parse()
        .unwrap_or(0);
        if tables > 0 {
            bail!(
                "database {name} exists and holds {tables} tables that user {} cannot see: choose another --db-name, or grant the user access and run again",
                site.user
            );
        }
        let hosts = sql(
            &root,
            None,
            &format!(
                "SELECT Host FROM mysql.user WHERE User = {}",
                sql_str(&site.user)
            ),
        )?;
        let hosts: Vec<&str> = hosts
            .lines()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .collect();
        if hosts.is_empty() {
            bail!("user {} does not exist on this database server", site.user);
        }
        let mut script = create.clone();
        for h in &hosts {
            script.push_str(&format!(
                "\nGRANT ALL PRIVILEGES ON {}.* TO {}@{};",
                ident(name),
                sql_str(&site.user),
                sql_str(h)
            ));
        }
        sql(&root, None, &script)?;
        Ok(format!(
            "created database {name} as root through the local socket and granted user {} all privileges on it",
            site.user
        ))
    })();
    as_root.map_err(|e| {
        anyhow::anyhow!(
            "cannot create database {name}: as user {}: {as_user}; as root through the local socket: {e:#}. Create it yourself (CREATE DATABASE {name}; GRANT ALL ON {name}.* TO '{}'@'localhost';) and run restore again",
            site.user,
            site.user
        )
    })
}

/// Dump database `name` into `dest` (zstd, `0600`, must not exist). Returns its size.
pub fn save_copy(creds: &DatabaseConfig, name: &str, dest: &Path) -> anyhow::Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut db = creds.clone();
    db.name = name.to_string();
    let tmp_dir = dest.parent().unwrap_or(Path::new("."));
    let dump = dbtools::run_dump(&db, tmp_dir)?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .with_context(|| format!("cannot create {}", dest.display()))?;
    let mut enc = zstd::stream::write::Encoder::new(file, 3)?;
    let mut reader = dump.reader()?;
    std::io::copy(&mut reader, &mut enc)
        .and_then(|_| enc.finish()?.sync_all())
        .with_context(|| format!("cannot write {}", dest.display()))?;
    Ok(std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0))
}

/// Import `sql_file` (a complete dump) into database `name`.
pub fn import(creds: &DatabaseConfig, name: &str, sql_file: &Path) -> anyhow::Result<()> {
    run(creds, Some(name), Input::File(sql_file)).map(|_| ())
}

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
}

impl Replaced {
    pub fn values(&self) -> u64 {
        self.per_table.values().sum()
    }
}

/// Replace each `from` with its `to` in every text column of every table with the site's
/// prefix, PHP-serialized values included.
pub fn search_replace(
    creds: &DatabaseConfig,
    name: &str,
    prefix: &str,
    pairs: &[(String, String)],
) -> anyhow::Result<Replaced> {
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
    let byte_pairs: Vec<(&[u8], &[u8])> = pairs
        .iter()
        .map(|(f, t)| (f.as_bytes(), t.as_bytes()))
        .collect();
    let mut replaced = Replaced::default();
    let mut script = String::from("SET NAMES utf8mb4;\nSTART TRANSACTION;\n");
    for (table, columns) in &tables {
        let text: Vec<&Column> = columns.iter().filter(|c| c.is_text()).collect();
        if text.is_empty() {
            continue;
        }
        let pk: Vec<&Column> = columns.iter().filter(|c| c.primary).collect();
        let select: Vec<String> = pk
            .iter()
            .chain(text.iter())
            .map(|c| format!("HEX(CAST({} AS BINARY))", ident(&c.name)))
            .collect();
        let mut any = Vec::new();
        for c in &text {
            for (from, _) in pairs {
                any.push(format!(
                    "LOCATE(X'{}', CAST({} AS BINARY)) > 0",
                    hex::encode(from),
                    ident(&c.name)
                ));
            }
        }
        let rows = sql(
            creds,
            Some(name),
            &format!(
                "SELECT {} FROM {} WHERE {}",
                select.join(", "),
                ident(table),
                any.join(" OR ")
            ),
        )
        .with_context(|| format!("cannot read table {table}"))?;
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
            let (keys, values) = fields.split_at(pk.len());
            let mut sets = Vec::new();
            let mut olds = Vec::new();
            for (c, v) in text.iter().zip(values) {
                let Some(v) = v else { continue };
                if let Some(new) = crate::restore::serialized::replace(v, &byte_pairs) {
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
                continue;
            }
            let cond: Vec<String> = if pk.is_empty() || keys.iter().any(Option::is_none) {
                olds
            } else {
                pk.iter()
                    .zip(keys)
                    .map(|(c, k)| c.equals(k.as_deref().unwrap_or_default()))
                    .collect()
            };
            script.push_str(&format!(
                "UPDATE {} SET {} WHERE {};\n",
                ident(table),
                sets.join(", "),
                cond.join(" AND ")
            ));
            *replaced.per_table.entry(table.clone()).or_default() += sets.len() as u64;
        }
    }
    if replaced.values() > 0 {
        script.push_str("COMMIT;\n");
        run(creds, Some(name), Input::Sql(script.as_bytes()))
            .context("cannot write the replaced values")?;
    }
    Ok(replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sql_str(r"a'b\c"), r"'a\'b\\c'");
        assert_eq!(ident("wp`x"), "`wp``x`");
    }

    #[test]
    fn client_arguments_hold_no_secret() {
        let args: Vec<String> = client_args(Path::new("/tmp/x.cnf"), Some("wp"))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args[0], "--defaults-extra-file=/tmp/x.cnf");
        assert_eq!(&args[args.len() - 2..], ["--", "wp"]);
        assert!(!args.iter().any(|a| a.contains("password") || a == "-e"));
        let args = client_args(Path::new("/tmp/x.cnf"), None);
        assert!(!args.iter().any(|a| a == "--"));
    }

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
}
