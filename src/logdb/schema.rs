//! The tables `backups.db` keeps and `sync-d1` pushes to D1, each column written once: what
//! `LogDb::open` creates and migrates locally and what `d1::sync` creates, migrates and
//! inserts in D1 are all made from [`TABLES`], so a column added here is stored and pushed,
//! and one that is not here is neither.
//!
//! A table's columns are listed in D1's order. backups.db has the same ones but the D1-only
//! ([`Role::LocalId`], [`Role::DbId`]); its order is the list's without them. A column is
//! either `created` (in the table's `CREATE TABLE`: the original tool's columns, every column
//! of a table wpbackup created) or added later, with `ALTER TABLE ... ADD COLUMN`, to a table
//! from before it: at the end, so the order stays the list's on both sides, in an old file or
//! D1 database as in a new one. A new column goes at the end of its table, not created.
//!
//! The texts made from here are those the hand-written schema made (the tests below keep the
//! files and D1 tables from before equal to those made now), so existing `backups.db` files and
//! D1 databases go on as they were. `meta` (the file's identity) and `d1_sync` (what D1
//! confirmed) stay in backups.db and are not pushed; `site_latest` is D1's only
//! (`d1/site_latest.rs`).

/// What a column holds, and on which side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `id INTEGER PRIMARY KEY AUTOINCREMENT`: each side numbers its own rows; backups.db's id
    /// reaches D1 as [`Role::LocalId`].
    RowId,
    /// In backups.db, pushed to D1 as it is.
    Data,
    /// D1 only: the row's id in the backups.db it came from.
    LocalId,
    /// D1 only: that backups.db's identity (`meta.db_id`, or `''` for its rows from before it
    /// had one).
    DbId,
}

impl Role {
    /// backups.db has the column.
    pub fn local(self) -> bool {
        matches!(self, Role::RowId | Role::Data)
    }

    /// `sync-d1` sends a value for it (D1 numbers its own rows).
    pub fn pushed(self) -> bool {
        self != Role::RowId
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    /// The declaration after the name: `TEXT`, `DATETIME DEFAULT CURRENT_TIMESTAMP`, ...
    pub decl: &'static str,
    pub role: Role,
    /// In the table's `CREATE TABLE`; else added with `ALTER TABLE` to a table that lacks it.
    pub created: bool,
    /// Run once in backups.db right after the column was added to an older file (D1 has no
    /// such step: its older rows keep NULL).
    pub backfill: Option<&'static str>,
}

const fn column(name: &'static str, decl: &'static str, role: Role, created: bool) -> Column {
    Column {
        name,
        decl,
        role,
        created,
        backfill: None,
    }
}

/// The row id, in the `CREATE TABLE`.
const fn row_id() -> Column {
    column("id", "INTEGER PRIMARY KEY AUTOINCREMENT", Role::RowId, true)
}

/// A column of the table's `CREATE TABLE`, in both.
const fn created(name: &'static str, decl: &'static str) -> Column {
    column(name, decl, Role::Data, true)
}

/// A column added after the table's `CREATE TABLE`, in both.
const fn added(name: &'static str, decl: &'static str) -> Column {
    column(name, decl, Role::Data, false)
}

/// D1's `local_id` and `db_id`, added to D1's tables after their `CREATE TABLE`.
const LOCAL_ID: Column = column("local_id", "INTEGER", Role::LocalId, false);
const DB_ID: Column = column("db_id", "TEXT", Role::DbId, false);

#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    /// In D1's order (see the module's comment).
    pub columns: &'static [Column],
}

/// `binlog_files`: each binary log file `wpbackup binlog` shipped, so none is shipped twice;
/// pushed to D1 (issue 27 item 3), where `site_latest` reads each server's newest shipped
/// second from it. Its `(server_id, file)` is unique in backups.db ([`BINLOG_FILES_UNIQUE`];
/// files from before made it a constraint of the table).
pub const BINLOG_FILES: Table = Table {
    name: "binlog_files",
    columns: &[
        row_id(),
        created("timestamp", "DATETIME DEFAULT CURRENT_TIMESTAMP"),
        created("server_id", "TEXT NOT NULL"),
        created("file", "TEXT NOT NULL"),
        created("first_event", "DATETIME NOT NULL"),
        created("object_key", "TEXT NOT NULL"),
        created("storage_name", "TEXT NOT NULL"),
        created("size_bytes", "INTEGER NOT NULL"),
        created("sha256", "TEXT NOT NULL"),
        LOCAL_ID,
        DB_ID,
        added("last_event", "DATETIME"),
    ],
};

/// backups.db's one file per server and name in `binlog_files` (what `record_binlog`'s
/// `INSERT OR REPLACE` relies on).
pub const BINLOG_FILES_UNIQUE: &str =
    "CREATE UNIQUE INDEX IF NOT EXISTS binlog_files_server_file ON binlog_files (server_id, file)";

/// Every table backups.db keeps and D1 receives, in the order they are created and pushed.
pub const TABLES: [Table; 4] = [BACKUP_LOG, S3_ARCHIVES, DRILL_LOG, BINLOG_FILES];

/// One row per site per run, and per restore, verify or prune (the original tool's table).
pub const BACKUP_LOG: Table = Table {
    name: "backup_log",
    columns: &[
        row_id(),
        created("timestamp", "DATETIME DEFAULT CURRENT_TIMESTAMP"),
        created("status", "TEXT"),
        created("details", "TEXT"),
        created("site_name", "TEXT"),
        created("server_id", "TEXT"),
        LOCAL_ID,
        DB_ID,
        added("action", "TEXT"),
        added("storage_name", "TEXT"),
        added("archive_key", "TEXT"),
        added("duration_secs", "REAL"),
    ],
};

/// One row per stored archive (the original tool's table).
pub const S3_ARCHIVES: Table = Table {
    name: "s3_archives",
    columns: &[
        row_id(),
        created("filename", "TEXT"),
        created("storage_name", "TEXT"),
        created("s3_endpoint", "TEXT"),
        created("s3_bucket", "TEXT"),
        created("file_size", "INTEGER"),
        created("server_id", "TEXT"),
        LOCAL_ID,
        DB_ID,
        added("site_name", "TEXT"),
        added("created_at", "DATETIME"),
        added("sha256", "TEXT"),
        added("duration_secs", "REAL"),
        // Issue 13: every archive before differential ones was full.
        Column {
            backfill: Some("UPDATE s3_archives SET kind = 'full' WHERE kind IS NULL"),
            ..added("kind", "TEXT")
        },
        added("base_key", "TEXT"),
        // Issue 27: where the dump is in the server's binary log (NULL without `binlog`).
        added("binlog_file", "TEXT"),
        added("binlog_position", "INTEGER"),
    ],
};

/// One row per site per restore drill (wpbackup's own table).
pub const DRILL_LOG: Table = Table {
    name: "drill_log",
    columns: &[
        row_id(),
        created("timestamp", "DATETIME"),
        created("server_id", "TEXT"),
        created("site_name", "TEXT"),
        created("archive_key", "TEXT"),
        created("storage_name", "TEXT"),
        created("result", "TEXT"),
        created("failed", "TEXT"),
        created("recovery_secs", "REAL"),
        created("details", "TEXT"),
        LOCAL_ID,
        DB_ID,
    ],
};

impl Table {
    /// backups.db's columns, in its order.
    pub fn local(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.role.local())
    }

    /// The columns `sync-d1` inserts, in D1's order.
    pub fn pushed(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.role.pushed())
    }

    /// backups.db's `CREATE TABLE IF NOT EXISTS` (its created columns; the others are added).
    pub fn create_local(&self) -> String {
        self.create(|c| c.role.local() && c.created)
    }

    /// D1's `CREATE TABLE IF NOT EXISTS`: every column at once.
    pub fn create_d1(&self) -> String {
        self.create(|_| true)
    }

    /// The columns backups.db gains with `ALTER TABLE` when it lacks them.
    pub fn added_local(&self) -> impl Iterator<Item = &Column> {
        self.local().filter(|c| !c.created)
    }

    /// The columns a D1 table gains with `ALTER TABLE` when it lacks them.
    pub fn added_d1(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| !c.created)
    }

    fn create(&self, keep: impl Fn(&Column) -> bool) -> String {
        let columns: Vec<String> = self
            .columns
            .iter()
            .filter(|c| keep(c))
            .map(|c| format!("{} {}", c.name, c.decl))
            .collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {} (\n    {}\n)",
            self.name,
            columns.join(",\n    ")
        )
    }
}

impl Column {
    /// `ALTER TABLE ... ADD COLUMN`, for a `table` that lacks it.
    pub fn add_to(&self, table: &str) -> String {
        format!("ALTER TABLE {table} ADD COLUMN {} {}", self.name, self.decl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name once per table, the row id first, the D1-only columns where D1 has them.
    #[test]
    fn each_table_is_well_formed() {
        for t in &TABLES {
            let names: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
            let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
            assert_eq!(unique.len(), names.len(), "{}: {names:?}", t.name);
            assert_eq!(t.columns[0].role, Role::RowId, "{}", t.name);
            assert_eq!(
                t.columns.iter().filter(|c| c.role == Role::RowId).count(),
                1
            );
            for role in [Role::LocalId, Role::DbId] {
                assert_eq!(
                    t.columns.iter().filter(|c| c.role == role).count(),
                    1,
                    "{}: one {role:?}",
                    t.name
                );
            }
            // Created columns first: an added one is appended by ALTER TABLE, so one listed
            // before a created one would sit elsewhere in an old file than in a new one.
            assert!(
                t.columns.windows(2).all(|w| w[0].created || !w[1].created),
                "{}: created columns first",
                t.name
            );
            assert!(
                t.columns
                    .iter()
                    .all(|c| c.backfill.is_none() || (!c.created && c.role.local())),
                "{}: only a column added to backups.db is backfilled",
                t.name
            );
            assert!(t.columns.iter().any(|c| c.name == "server_id"));
        }
    }

    /// The tables as docs/formats.md describes them: every backups.db column, in order, with
    /// its type.
    #[test]
    fn formats_md_describes_every_column() {
        let doc = include_str!("../../docs/formats.md");
        let section = doc
            .split("\n## backups.db")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .unwrap_or_else(|| panic!("docs/formats.md lost its backups.db section"));
        for t in &TABLES {
            let documented: Vec<(String, String)> = section
                .split(&format!("\n`{}`:", t.name))
                .nth(1)
                .unwrap_or_else(|| panic!("docs/formats.md: no `{}` table", t.name))
                .lines()
                .skip_while(|l| !l.starts_with('|'))
                .take_while(|l| l.starts_with('|'))
                .skip(2)
                .map(|l| {
                    let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                    (cells[1].to_string(), cells[2].to_string())
                })
                .collect();
            let expected: Vec<(String, String)> = t
                .local()
                .map(|c| {
                    let ty = c.decl.split_whitespace().next().unwrap_or_default();
                    let ty = if c.role == Role::RowId {
                        format!("{ty} PK")
                    } else {
                        ty.to_string()
                    };
                    (c.name.to_string(), ty)
                })
                .collect();
            assert_eq!(documented, expected, "docs/formats.md's `{}`", t.name);
        }
    }
}
