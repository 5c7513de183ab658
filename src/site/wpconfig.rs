//! Reading a site's database credentials from its `wp-config.php`, the way PHP sees them.
//!
//! A small lexer (not a pile of regexes) turns the file into PHP tokens: single- and
//! double-quoted strings with PHP's escape rules, identifiers, variables and punctuation, with
//! `//`, `#` and `/* */` comments dropped (comment markers inside strings are not comments).
//! `define('DB_NAME', '...')` in any case, `const DB_NAME = '...'` and `$table_prefix = '...'`
//! are read from the tokens; as in PHP, the first definition of a constant wins. A value that
//! PHP computes at run time (`getenv(...)`, a variable, concatenation, interpolation) cannot be
//! read here, and says so. [`comments`] says where the comments are, so that a rewrite of the
//! file for a clone changes only live code.

use std::path::{Path, PathBuf};

use crate::config::{DbHost, parse_db_host};
use crate::secret::Secret;

/// The credentials a site's wp-config.php defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WpConfig {
    pub db_name: String,
    pub db_user: String,
    pub db_password: Secret,
    pub db_host: DbHost,
    pub table_prefix: String,
    /// The file that was read (empty for [`parse`]).
    pub path: PathBuf,
}

/// Why the credentials could not be read. Messages never contain the password.
#[derive(Debug, thiserror::Error)]
pub enum WpConfigError {
    #[error(
        "no wp-config.php in {0} or its parent directory: is this a WordPress site? Otherwise add a \"database\" block for it to config.json"
    )]
    NotFound(PathBuf),
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file that could hand the site another site's credentials ([`super::root::open_wp_config`]).
    #[error(transparent)]
    Refused(super::root::OpenError),
    #[error(
        "{path}: {name} is not defined: add it, or add a \"database\" block for this site to config.json"
    )]
    Missing { path: String, name: &'static str },
    #[error(
        "{path}: the value of {name} is computed by PHP code and cannot be read without running it: add a \"database\" block for this site to config.json"
    )]
    Computed { path: String, name: &'static str },
    #[error("{path}: DB_HOST: {reason}")]
    BadHost {
        path: String,
        reason: crate::config::DbHostError,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A string literal PHP reads as this exact text.
    Str(String),
    /// A string with `$var` interpolation: its value is only known at run time.
    Interpolated,
    Ident(String),
    Var(String),
    Punct(char),
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || !c.is_ascii()
}

/// Tokenize PHP source, dropping comments and whitespace.
fn lex(src: &str) -> Vec<Token> {
    scan(src).0
}

/// Where the comments of PHP source are (`//`, `#` and `/* */`, not their look-alikes inside
/// strings), as byte ranges in order: what a rewrite of the live code must leave alone.
pub fn comments(src: &str) -> Vec<std::ops::Range<usize>> {
    let bytes: Vec<usize> = src
        .char_indices()
        .map(|(b, _)| b)
        .chain([src.len()])
        .collect();
    let byte = |i: usize| bytes[i.min(bytes.len() - 1)];
    scan(src)
        .1
        .into_iter()
        .map(|r| byte(r.start)..byte(r.end))
        .collect()
}

/// PHP source as tokens (comments and whitespace dropped), and where its comments are (char
/// indexes).
fn scan(src: &str) -> (Vec<Token>, Vec<std::ops::Range<usize>>) {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut comments = Vec::new();
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied();
    while let Some(c) = at(i) {
        let start = i;
        match c {
            c if c.is_whitespace() => i += 1,
            '#' => {
                i = skip_line(&chars, i);
                comments.push(start..i);
            }
            '/' if at(i + 1) == Some('/') => {
                i = skip_line(&chars, i);
                comments.push(start..i);
            }
            '/' if at(i + 1) == Some('*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && at(i + 1) == Some('/')) {
                    i += 1;
                }
                i = (i + 2).min(chars.len());
                comments.push(start..i);
            }
            '\'' => {
                let (token, next) = single_quoted(&chars, i);
                out.push(token);
                i = next;
            }
            '"' => {
                let (token, next) = double_quoted(&chars, i);
                out.push(token);
                i = next;
            }
            '$' if at(i + 1).is_some_and(is_ident) => {
                let start = i + 1;
                i += 1;
                while at(i).is_some_and(is_ident) {
                    i += 1;
                }
                out.push(Token::Var(chars[start..i].iter().collect()));
            }
            c if is_ident(c) => {
                let start = i;
                while at(i).is_some_and(is_ident) {
                    i += 1;
                }
                out.push(Token::Ident(chars[start..i].iter().collect()));
            }
            c => {
                out.push(Token::Punct(c));
                i += 1;
            }
        }
    }
    (out, comments)
}

/// A single-quoted string starting at `i`: the token and the index after it.
fn single_quoted(chars: &[char], mut i: usize) -> (Token, usize) {
    let at = |i: usize| chars.get(i).copied();
    let mut s = String::new();
    i += 1;
    while let Some(c) = at(i) {
        match c {
            '\'' => break,
            '\\' if matches!(at(i + 1), Some('\'' | '\\')) => {
                s.push(chars[i + 1]);
                i += 2;
            }
            c => {
                s.push(c);
                i += 1;
            }
        }
    }
    i += 1;
    (Token::Str(s), i)
}

/// A double-quoted string starting at `i`, with PHP's escapes: the token and the index after it.
fn double_quoted(chars: &[char], mut i: usize) -> (Token, usize) {
    let at = |i: usize| chars.get(i).copied();
    let mut s = String::new();
    let mut interpolated = false;
    i += 1;
    while let Some(c) = at(i) {
        match c {
            '"' => break,
            '\\' => {
                let (push, step) = match at(i + 1) {
                    Some('n') => (Some('\n'), 2),
                    Some('t') => (Some('\t'), 2),
                    Some('r') => (Some('\r'), 2),
                    Some('v') => (Some('\u{b}'), 2),
                    Some('e') => (Some('\u{1b}'), 2),
                    Some('f') => (Some('\u{c}'), 2),
                    Some('0') => (Some('\0'), 2),
                    Some(c @ ('\\' | '$' | '"')) => (Some(c), 2),
                    _ => (Some('\\'), 1),
                };
                if let Some(p) = push {
                    s.push(p);
                }
                i += step;
            }
            '$' if at(i + 1).is_some_and(|n| is_ident(n) && !n.is_ascii_digit() || n == '{') => {
                interpolated = true;
                s.push('$');
                i += 1;
            }
            '{' if at(i + 1) == Some('$') => {
                interpolated = true;
                s.push('{');
                i += 1;
            }
            c => {
                s.push(c);
                i += 1;
            }
        }
    }
    i += 1;
    let token = if interpolated {
        Token::Interpolated
    } else {
        Token::Str(s)
    };
    (token, i)
}

/// Skip a one-line comment: it ends at the end of the line or at `?>`.
fn skip_line(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i] != '\n' {
        if chars[i] == '?' && chars.get(i + 1) == Some(&'>') {
            return i;
        }
        i += 1;
    }
    i
}

/// A definition's value: a plain string literal, `true`/`false` (or `1`/`0`), or something
/// PHP computes.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Literal(String),
    Bool(bool),
    Computed,
}

fn value_of(tokens: &[Token]) -> Value {
    match tokens {
        [Token::Str(s)] => Value::Literal(s.clone()),
        [Token::Ident(b)] if b.eq_ignore_ascii_case("true") || b == "1" => Value::Bool(true),
        [Token::Ident(b)] if b.eq_ignore_ascii_case("false") || b == "0" => Value::Bool(false),
        _ => Value::Computed,
    }
}

/// What a wp-config.php says of a multisite network: `MULTISITE`, `SUBDOMAIN_INSTALL`,
/// `DOMAIN_CURRENT_SITE` and `PATH_CURRENT_SITE`, when defined as plain values (a value PHP
/// computes reads as not defined).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkDefines {
    pub multisite: bool,
    pub subdomain_install: Option<bool>,
    pub domain_current_site: Option<String>,
    pub path_current_site: Option<String>,
}

/// The network constants of wp-config.php text (see [`NetworkDefines`]).
pub fn network_defines(src: &str) -> NetworkDefines {
    let (defs, _) = definitions(&lex(src));
    let first = |name: &str| defs.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let flag = |name: &str| match first(name) {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::Literal(s)) => Some(!matches!(s.as_str(), "" | "0" | "false")),
        _ => None,
    };
    let text = |name: &str| match first(name) {
        Some(Value::Literal(s)) => Some(s.clone()),
        _ => None,
    };
    NetworkDefines {
        multisite: flag("MULTISITE").unwrap_or(false),
        subdomain_install: flag("SUBDOMAIN_INSTALL"),
        domain_current_site: text("DOMAIN_CURRENT_SITE"),
        path_current_site: text("PATH_CURRENT_SITE"),
    }
}

/// Constants defined with `define(...)` or `const`, first definition first; and `$table_prefix`.
fn definitions(tokens: &[Token]) -> (Vec<(String, Value)>, Option<Value>) {
    let mut defs: Vec<(String, Value)> = Vec::new();
    let mut prefix = None;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Ident(id)
                if id.eq_ignore_ascii_case("define")
                    && tokens.get(i + 1) == Some(&Token::Punct('(')) =>
            {
                if let (Some(Token::Str(name)), Some(Token::Punct(','))) =
                    (tokens.get(i + 2), tokens.get(i + 3))
                {
                    // The value runs to the `)` closing define( at depth 0, or a second argument.
                    let start = i + 4;
                    let mut j = start;
                    let mut depth = 0i32;
                    while let Some(t) = tokens.get(j) {
                        match t {
                            Token::Punct('(' | '[') => depth += 1,
                            Token::Punct(')' | ']') if depth == 0 => break,
                            Token::Punct(')' | ']') => depth -= 1,
                            Token::Punct(',') if depth == 0 => break,
                            Token::Punct(';') => break,
                            _ => {}
                        }
                        j += 1;
                    }
                    defs.push((name.clone(), value_of(&tokens[start..j.min(tokens.len())])));
                    i = j;
                    continue;
                }
            }
            Token::Ident(id) if id.eq_ignore_ascii_case("const") => {
                if let (Some(Token::Ident(name)), Some(Token::Punct('='))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    let end = until_semicolon(tokens, i + 3);
                    defs.push((name.clone(), value_of(&tokens[i + 3..end])));
                    i = end;
                    continue;
                }
            }
            Token::Var(v)
                if v == "table_prefix" && tokens.get(i + 1) == Some(&Token::Punct('=')) =>
            {
                let end = until_semicolon(tokens, i + 2);
                if prefix.is_none() {
                    prefix = Some(value_of(&tokens[i + 2..end]));
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    (defs, prefix)
}

fn until_semicolon(tokens: &[Token], from: usize) -> usize {
    let mut j = from;
    while j < tokens.len() && tokens[j] != Token::Punct(';') {
        j += 1;
    }
    j
}

/// Parse wp-config.php text (`path` names it in errors).
pub fn parse_named(src: &str, path: &str) -> Result<WpConfig, WpConfigError> {
    let (defs, prefix) = definitions(&lex(src));
    let get = |name: &'static str| -> Result<String, WpConfigError> {
        match defs.iter().find(|(n, _)| n == name).map(|(_, v)| v) {
            Some(Value::Literal(s)) => Ok(s.clone()),
            Some(Value::Computed | Value::Bool(_)) => Err(WpConfigError::Computed {
                path: path.to_string(),
                name,
            }),
            None => Err(WpConfigError::Missing {
                path: path.to_string(),
                name,
            }),
        }
    };
    let db_name = get("DB_NAME")?;
    let db_user = get("DB_USER")?;
    let db_password = Secret::new(get("DB_PASSWORD")?);
    let host = get("DB_HOST")?;
    let db_host = parse_db_host(&host).map_err(|reason| WpConfigError::BadHost {
        path: path.to_string(),
        reason,
    })?;
    let table_prefix = match prefix {
        None => "wp_".to_string(),
        Some(Value::Literal(p)) => p,
        Some(Value::Computed | Value::Bool(_)) => {
            return Err(WpConfigError::Computed {
                path: path.to_string(),
                name: "$table_prefix",
            });
        }
    };
    Ok(WpConfig {
        db_name,
        db_user,
        db_password,
        db_host,
        table_prefix,
        path: PathBuf::from(path),
    })
}

/// Parse wp-config.php text (the table-driven and property tests' entry point).
#[cfg(test)]
pub fn parse(src: &str) -> Result<WpConfig, WpConfigError> {
    parse_named(src, "wp-config.php")
}

/// Find and read the site's wp-config.php where WordPress would ([`super::root::wp_config`]):
/// in the site's directory, or in its parent when the parent is not itself a WordPress root;
/// opened and checked by [`super::root::open_wp_config`], never by path.
pub fn read(site_path: &Path) -> Result<WpConfig, WpConfigError> {
    use std::io::Read as _;
    let (at, file) = match super::root::open_wp_config(site_path) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Err(WpConfigError::NotFound(site_path.to_path_buf())),
        Err(super::root::OpenError::Unreadable { path, source }) => {
            return Err(WpConfigError::Unreadable { path, source });
        }
        Err(e) => return Err(WpConfigError::Refused(e)),
    };
    let path = at.path().to_path_buf();
    let mut bytes = Vec::new();
    file.take(MAX_WP_CONFIG)
        .read_to_end(&mut bytes)
        .map_err(|source| WpConfigError::Unreadable {
            path: path.clone(),
            source,
        })?;
    let mut cfg = parse_named(
        &String::from_utf8_lossy(&bytes),
        &path.display().to_string(),
    )?;
    cfg.path = path;
    Ok(cfg)
}

/// The most of a `wp-config.php` read (a real one is a few KiB).
const MAX_WP_CONFIG: u64 = 4 * 1024 * 1024;

/// WordPress's version from `wp-includes/version.php` (`$wp_version = '6.1.1';`), read by
/// handle from the site's root, never through a symlink.
pub fn wordpress_version(site_path: &Path) -> Option<String> {
    use std::io::Read as _;
    let file = super::root::open_in_site(site_path, Path::new("wp-includes/version.php"))?;
    let mut src = String::new();
    file.take(MAX_WP_CONFIG).read_to_string(&mut src).ok()?;
    let tokens = lex(&src);
    tokens.windows(3).find_map(|w| match w {
        [Token::Var(v), Token::Punct('='), Token::Str(s)] if v == "wp_version" => Some(s.clone()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_constants() {
        let src = "<?php
// define('MULTISITE', false);
define( 'WP_ALLOW_MULTISITE', true );
define( 'MULTISITE', true );
define( 'SUBDOMAIN_INSTALL', 0 );
define( 'DOMAIN_CURRENT_SITE', 'old.example' );
define( 'PATH_CURRENT_SITE', '/' );
define( 'SITE_ID_CURRENT_SITE', 1 );
";
        assert_eq!(
            network_defines(src),
            NetworkDefines {
                multisite: true,
                subdomain_install: Some(false),
                domain_current_site: Some("old.example".into()),
                path_current_site: Some("/".into()),
            }
        );
        let single = network_defines("<?php define('DB_NAME', 'a'); define('MULTISITE', FALSE);");
        assert_eq!(single, NetworkDefines::default());
        let computed = network_defines(
            "<?php define('DOMAIN_CURRENT_SITE', $_SERVER['HTTP_HOST']); define('SUBDOMAIN_INSTALL', true);",
        );
        assert_eq!(computed.domain_current_site, None);
        assert_eq!(computed.subdomain_install, Some(true));
    }

    fn creds(src: &str) -> (String, String, String, DbHost, String) {
        let c = parse(src).unwrap_or_else(|e| panic!("{e}\n---\n{src}"));
        (
            c.db_name,
            c.db_user,
            c.db_password.expose().to_string(),
            c.db_host,
            c.table_prefix,
        )
    }

    fn tcp(h: &str, p: Option<u16>) -> DbHost {
        DbHost::Tcp {
            host: h.into(),
            port: p,
        }
    }

    const SAMPLE: &str = "<?php
/** The name of the database for WordPress */
define( 'DB_NAME', 'database_name_here' );
/** Database username */
define( 'DB_USER', 'username_here' );
/** Database password */
define( 'DB_PASSWORD', 'password_here' );
/** Database hostname */
define( 'DB_HOST', 'localhost' );
define( 'DB_CHARSET', 'utf8' );
$table_prefix = 'wp_';
if ( ! defined( 'ABSPATH' ) ) {
\tdefine( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
";

    #[test]
    fn real_world_variants() {
        let d = |n: &str, u: &str, p: &str, h: &str, rest: &str| {
            format!(
                "<?php\ndefine('DB_NAME', {n});\ndefine('DB_USER', {u});\ndefine('DB_PASSWORD', {p});\ndefine('DB_HOST', {h});\n{rest}"
            )
        };
        type Expected<'a> = (&'a str, &'a str, &'a str, DbHost, &'a str);
        let cases: Vec<(String, Expected)> = vec![
            (SAMPLE.into(), ("database_name_here", "username_here", "password_here", DbHost::Socket(None), "wp_")),
            (d("\"wp\"", "\"u\"", "\"p\"", "\"127.0.0.1\"", ""), ("wp", "u", "p", tcp("127.0.0.1", None), "wp_")),
            (d("'wp'", "'u'", r"'pa\'ss'", "'db:3307'", ""), ("wp", "u", "pa'ss", tcp("db", Some(3307)), "wp_")),
            (d("'wp'", "'u'", r#""pa\"ss\\x""#, "'localhost:/run/mysqld/m.sock'", ""), ("wp", "u", "pa\"ss\\x", DbHost::Socket(Some("/run/mysqld/m.sock".into())), "wp_")),
            (d("'wp'", "'u'", "'p#1//2/*3?>4'", "'[::1]:3306'", "$table_prefix  = 'wp_abc_';"), ("wp", "u", "p#1//2/*3?>4", tcp("::1", Some(3306)), "wp_abc_")),
            (d("'wp'", "'u'", r"'back\slash'", "'localhost:3307'", ""), ("wp", "u", "back\\slash", DbHost::Socket(None), "wp_")),
            (d("'wp'", "'u'", "\"cost \\$5\"", "'::1'", ""), ("wp", "u", "cost $5", tcp("::1", None), "wp_")),
            (
                "<?php\n  DEFINE  (  'DB_NAME' ,\n 'spaced'  )  ;\nDefine('DB_USER','u');define('DB_PASSWORD','');define('DB_HOST','h');".into(),
                ("spaced", "u", "", tcp("h", None), "wp_"),
            ),
            (
                "<?php\n// define('DB_NAME', 'old');\n# define('DB_NAME', 'older');\n/* define('DB_NAME', 'oldest');\n define('DB_USER','x'); */\ndefine('DB_NAME','new');define('DB_USER','u');define('DB_PASSWORD','p');define('DB_HOST','localhost');".into(),
                ("new", "u", "p", DbHost::Socket(None), "wp_"),
            ),
            (
                "<?php\ndefine('DB_NAME','first');define('DB_NAME','second');define('DB_USER','u');define('DB_PASSWORD','p');define('DB_HOST','localhost');".into(),
                ("first", "u", "p", DbHost::Socket(None), "wp_"),
            ),
            (
                "<?php\nconst DB_NAME = 'c'; const DB_USER = 'u'; const DB_PASSWORD = 'p'; const DB_HOST = 'localhost';".into(),
                ("c", "u", "p", DbHost::Socket(None), "wp_"),
            ),
        ];
        for (src, (n, u, p, h, prefix)) in cases {
            assert_eq!(
                creds(&src),
                (n.into(), u.into(), p.into(), h, prefix.into()),
                "\n---\n{src}"
            );
        }
    }

    #[test]
    fn computed_and_missing_values_are_clear_errors() {
        let src = "<?php define('DB_NAME','wp'); define('DB_USER','u'); define('DB_PASSWORD', getenv('DB_PASSWORD')); define('DB_HOST','localhost');";
        let e = parse(src).unwrap_err().to_string();
        assert!(
            e.contains("DB_PASSWORD") && e.contains("computed") && e.contains("config.json"),
            "{e}"
        );
        let src = "<?php define('DB_NAME','wp'); define('DB_PASSWORD','hunter2'); define('DB_HOST','localhost');";
        let e = parse(src).unwrap_err().to_string();
        assert!(
            e.contains("DB_USER") && e.contains("not defined") && !e.contains("hunter2"),
            "{e}"
        );
        let src = "<?php define('DB_NAME','wp'); define('DB_USER', 'u' . 'x'); define('DB_PASSWORD','p'); define('DB_HOST','h');";
        assert!(matches!(
            parse(src),
            Err(WpConfigError::Computed {
                name: "DB_USER",
                ..
            })
        ));
        let src = "<?php $h='x'; define('DB_NAME',\"db_$h\"); define('DB_USER','u'); define('DB_PASSWORD','p'); define('DB_HOST','h');";
        assert!(matches!(
            parse(src),
            Err(WpConfigError::Computed {
                name: "DB_NAME",
                ..
            })
        ));
        let src = "<?php define('DB_NAME','wp'); define('DB_USER','u'); define('DB_PASSWORD','sekrit'); define('DB_HOST','h:99999');";
        let e = parse(src).unwrap_err().to_string();
        assert!(e.contains("DB_HOST") && !e.contains("sekrit"), "{e}");
    }

    #[test]
    fn comments_are_found_as_php_sees_them() {
        let src = "<?php // é one\n$a = 'x // y # z /* w */'; # two ?>\n/* ü\nthree */ $b = \"//\"; /* open";
        let found: Vec<&str> = comments(src).into_iter().map(|r| &src[r]).collect();
        assert_eq!(found, ["// é one", "# two ", "/* ü\nthree */", "/* open"]);
        assert!(comments("").is_empty());
    }

    #[test]
    fn never_panics_on_odd_input() {
        for src in [
            "",
            "'",
            "\"",
            "/*",
            "define(",
            "define('DB_NAME',",
            "$",
            "$table_prefix =",
            "\\",
            "define('DB_NAME'\u{0}",
        ] {
            let _ = parse(src);
        }
    }

    #[test]
    fn reads_from_site_or_parent_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("public_html");
        std::fs::create_dir_all(site.join("wp-includes")).unwrap();
        assert!(matches!(read(&site), Err(WpConfigError::NotFound(_))));
        std::fs::write(dir.path().join("wp-config.php"), SAMPLE).unwrap();
        let c = read(&site).unwrap();
        assert_eq!(c.path, dir.path().join("wp-config.php"));
        // A parent that is itself a WordPress root does not lend its config.
        std::fs::write(dir.path().join("wp-settings.php"), "<?php").unwrap();
        assert!(read(&site).is_err());
        std::fs::write(site.join("wp-config.php"), SAMPLE).unwrap();
        assert_eq!(read(&site).unwrap().db_name, "database_name_here");
        std::fs::write(
            site.join("wp-includes/version.php"),
            "<?php\n$wp_version = '6.1.1';\n",
        )
        .unwrap();
        assert_eq!(wordpress_version(&site).as_deref(), Some("6.1.1"));
    }
}
