//! The statement-level check against a real dump and the ways around a line-level one.

use super::*;

/// What the check says of `dump`: `None` if it passes, else the statement, line and reason.
fn refused(dump: &str) -> Option<(u64, u64, String)> {
    match check(dump.as_bytes()) {
        Ok(()) => None,
        Err(CheckError::Refused(r)) => Some((r.statement, r.line, r.what)),
        Err(e) => panic!("{e}"),
    }
}

/// A dump of a small WordPress-like database by `mariadb-dump` 10.11 with the options of
/// `dbtools::dump` and `--master-data=2`: a trigger, a function, a procedure and a view, values
/// holding `;`, quotes, `-- `, `/*!`, backslashes and newlines.
const REAL: &str = include_str!("mariadb-dump.sql");

#[test]
fn a_real_dump_passes() {
    assert_eq!(refused(REAL), None);
}

#[test]
fn a_real_dump_passes_whatever_its_reads_are_cut_into() {
    /// A reader giving a few bytes at a time.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    for step in [1, 2, 3, 7, 64, 4096] {
        assert!(check(Trickle(REAL.as_bytes(), step)).is_ok(), "step {step}");
    }
}

/// `bad` placed after the real dump's header (statement 11 on line 18 starts after it).
fn after_header(bad: &str) -> String {
    let head: String = REAL.lines().take(17).map(|l| format!("{l}\n")).collect();
    format!("{head}{bad}\n")
}

#[test]
fn what_slips_past_a_line_check_is_refused_with_its_statement_and_line() {
    for (bad, what) in [
        ("CREATE/**/DATABASE x;", "a statement on a whole database"),
        ("SELECT 1; USE mysql;", "a SELECT"),
        ("INSERT INTO `t` VALUES (1); USE mysql;", "USE"),
        ("/*!50000 GRANT ALL ON *.* TO x*/;", "a grant"),
        (
            "INSERT INTO mysql.user VALUES (1);",
            "another database (`mysql`",
        ),
        (
            "INSERT INTO `wp_other`.`wp_posts` VALUES (1);",
            "(`wp_other`",
        ),
        (
            "INSERT INTO\n`t`\nVALUES (1);\nGRANT\nALL ON *.* TO x;",
            "a grant",
        ),
        (
            "INSERT INTO t VALUES ('a;b'); GRANT ALL ON *.* TO x;",
            "a grant",
        ),
        (
            "DELIMITER ;;\nINSERT INTO t VALUES (1);;\n\\! touch /tmp/x\n",
            "a client command",
        ),
        (
            "DELIMITER ;;\nCREATE TABLE t (a int); GRANT ALL ON *.* TO x;;",
            "a grant",
        ),
        (
            "DELIMITER ;;\nDROP TABLE t; DROP TABLE u;;",
            "two statements",
        ),
        ("CREATE USER x IDENTIFIED BY 'y';", "a user or role"),
        ("DROP /* */ USER x;", "a user or role"),
        ("RENAME USER x TO y;", "a user or role"),
        ("SET PASSWORD FOR root = PASSWORD('x');", "a password"),
        ("SET GLOBAL general_log = 1;", "a global server variable"),
        ("SET @@global.general_log = 1;", "a global server variable"),
        ("SET ROLE admin;", "a role"),
        ("SET DEFAULT ROLE admin FOR x;", "a role"),
        ("SET sql_mode = 'NO_BACKSLASH_ESCAPES';", "sql_mode"),
        ("SET @m = 'ANSI_QUOTES'; SET sql_mode = @m;", "sql_mode"),
        ("SET NAMES gbk;", "character set"),
        (
            "SET STATEMENT max_statement_time=1 FOR GRANT ALL ON *.* TO x;",
            "SET STATEMENT",
        ),
        ("system touch /tmp/x", "a client command"),
        ("source /etc/passwd;", "a client command"),
        (
            "LOAD DATA INFILE '/etc/passwd' INTO TABLE t;",
            "a load from a file",
        ),
        ("SELECT * FROM t INTO OUTFILE '/tmp/x';", "a server file"),
        (
            "INSERT INTO t VALUES (LOAD_FILE('/etc/shadow'));",
            "a server file",
        ),
        ("INSTALL SONAME 'ha_x';", "a server plugin"),
        (
            "CREATE FUNCTION f RETURNS STRING SONAME 'x.so';",
            "a server plugin",
        ),
        ("FLUSH PRIVILEGES;", "a command to the server"),
        ("KILL 1;", "a command to the server"),
        ("PREPARE s FROM @x;", "a prepared"),
        ("CALL p();", "a CALL"),
        ("HANDLER t OPEN;", "never holds"),
        (
            "ALTER DATABASE wp CHARACTER SET latin1;",
            "a statement on a whole database",
        ),
        ("ALTER USER root IDENTIFIED BY 'x';", "a user or role"),
        (
            "ALTER TABLE t RENAME TO other.t;",
            "another database (`other`",
        ),
        ("DROP TABLE IF EXISTS `t`, `other`.`t`;", "another database"),
        ("SELECT other.f();", "a routine of another database"),
        (
            "INSERT INTO t VALUES (other.f(1));",
            "a routine of another database",
        ),
        (
            "INSERT INTO t SELECT * FROM a, mysql.user;",
            "another database (`mysql`",
        ),
        (
            "CREATE TABLE t (a int REFERENCES other.u (id));",
            "another database",
        ),
        ("LOCK TABLES t WRITE, other.u WRITE;", "another database"),
        ("INSERT INTO t VALUES (a.b.c);", "qualified by a database"),
        (
            "DELIMITER ;;\nCREATE TRIGGER x AFTER INSERT ON t FOR EACH ROW UPDATE wp_other.wp_posts SET a = 1;;",
            "another database",
        ),
        (
            "CREATE PROCEDURE p() BEGIN SET sql_mode = ''; END;",
            "sql_mode",
        ),
        ("/*!50000 /*!50000 GRANT ALL */ */;", "inside another"),
        (
            "/*!50000 INSERT INTO t VALUES (1); GRANT ALL ON *.* TO x */;",
            "inside a /*!",
        ),
        ("DELIMITER GRANT\n", "a DELIMITER a dump does not set"),
        ("INSERT INTO t VALUES (1); delimiter ;;", "DELIMITER"),
        ("INSERT INTO t VALUES ('never closed);", "never closed"),
        ("BINLOG 'Zm9v';", "a command to the server"),
        ("\\. /tmp/x.sql", "a client command"),
        (
            "CREATE TABLE t (a int) ENGINE=FEDERATED CONNECTION='mysql://root@h/mysql/user';",
            "a storage engine",
        ),
        (
            "CREATE TABLE t (a int) ENGINE = MRG_MyISAM UNION=(t1);",
            "a storage engine",
        ),
        (
            "CREATE TABLE t (a int) ENGINE=InnoDB DATA DIRECTORY='/etc';",
            "kept elsewhere",
        ),
    ] {
        let dump = after_header(bad);
        let Some((statement, line, why)) = refused(&dump) else {
            panic!("passed: {bad}");
        };
        assert!(why.contains(what), "{bad}: {why}");
        assert!(
            (11..=13).contains(&statement),
            "{bad}: statement {statement}"
        );
        assert!((18..=21).contains(&line), "{bad}: line {line}");
    }
}

#[test]
fn look_alikes_pass() {
    for ok in [
        "INSERT INTO `wp_options` VALUES (1,'x','\\'; GRANT ALL ON *.* TO x; -- ','yes');",
        "INSERT INTO `wp_options` VALUES (1,'x',\"it''s; USE mysql\",'yes');",
        "CREATE TABLE `user_grants` (`user` varchar(10), `grant` int, `mysql` int);",
        "INSERT INTO `user_grants` VALUES ('a', 1, 2), ('b', 0x5C27, -1.5e-10);",
        "INSERT INTO `t` VALUES ('a\\\\'); -- '; GRANT ALL",
        "INSERT INTO `t` VALUES (1) # ; GRANT ALL\n;",
        "INSERT INTO `t` VALUES (1) /* ; GRANT ALL */;",
        "DROP TABLE IF EXISTS `a`, `b`;",
        "START TRANSACTION;\nSAVEPOINT sp;\nCOMMIT;",
        "SET @x = 'NO_BACKSLASH_ESCAPES';",
        "SET SESSION sql_mode = 'STRICT_TRANS_TABLES', time_zone = '+00:00';",
        "CREATE TABLE `u` (`s` set('a','b') CHARACTER SET utf8mb4 NOT NULL);",
        "INSERT INTO `t` VALUES (1) ON DUPLICATE KEY UPDATE `a` = VALUES(`a`);",
        "CREATE TABLE `e` (`a` int) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4;",
        "CREATE TABLE `e` (`a` int) ENGINE = Aria;",
    ] {
        assert_eq!(refused(&after_header(ok)), None, "{ok}");
    }
}

#[test]
fn the_refusal_names_the_statement() {
    let dump = "SET NAMES utf8mb4;\nINSERT INTO t VALUES\n(1, ';');\nDROP TABLE t; GRANT ALL ON *.* TO\n x;\n";
    let Err(CheckError::Refused(r)) = check(dump.as_bytes()) else {
        panic!("passed");
    };
    assert_eq!((r.statement, r.line), (4, 4));
    assert_eq!(r.excerpt, "GRANT ALL ON *.* TO");
    let message = r.to_string();
    assert!(
        message.contains("statement 4 (line 4): a grant"),
        "{message}"
    );
    // Refused by its first words once it ended: the same statement, the line it began on.
    let dump = "SET NAMES utf8mb4;\nINSERT INTO t VALUES (1);\n\nSELECT\n 1;\n";
    let Err(CheckError::Refused(r)) = check(dump.as_bytes()) else {
        panic!("passed");
    };
    assert_eq!(
        (r.statement, r.line, r.excerpt.as_str()),
        (3, 4, "SELECT 1;")
    );
}

/// By hand, in release mode: `cargo test --release --lib dumpcheck::tests::speed -- --ignored
/// --nocapture` prints the check's speed on a generated dump of 300 MiB.
#[test]
#[ignore]
fn speed() {
    let row = "(12345,'a post title','<!-- wp:paragraph --><p>Some text with \\'quotes\\' and \\\\ and a ; or two</p>',0x0123456789ABCDEF,-1.5e10,NULL),";
    let mut dump = String::from(REAL);
    while dump.len() < 300 << 20 {
        dump.push_str("INSERT INTO `wp_posts` VALUES ");
        for _ in 0..8000 {
            dump.push_str(row);
        }
        dump.pop();
        dump.push_str(";\n");
    }
    let started = std::time::Instant::now();
    assert!(check(dump.as_bytes()).is_ok());
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} MiB in {secs:.2} s: {:.0} MB/s",
        dump.len() >> 20,
        dump.len() as f64 / secs / 1e6
    );
}
