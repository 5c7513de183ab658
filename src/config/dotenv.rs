//! Reading `.env`, the file people edit by hand, without ever repeating a value.
//!
//! One `KEY=value` per line (`export KEY=value` too), `#` comments and blank lines. A value is
//! - bare: taken as written up to a ` #` comment, quotes inside included (`A=p@ss"w0rd` is
//!   `p@ss"w0rd`: unambiguous, so accepted);
//! - single-quoted: literal, nothing escaped;
//! - double-quoted: `\\`, `\"`, `\$`, `\n`, `\t` escapes, as `configure` writes them.
//!
//! What is ambiguous (a quote never closed, text after the closing quote, a line with no `=`)
//! is an error that names the file, the line number, the key and what to change, and never
//! the value: error messages go to the journal and to cron mail, and the value is a secret.
//! Unlike dotenvy, `$VAR` is not expanded: a password holding `$` is read as written.

use std::path::Path;

/// A line of `.env` that cannot be read. Its Display holds no value from the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: line {line}{}: {problem}", key.as_ref().map(|k| format!(" ({k})")).unwrap_or_default())]
pub struct DotenvError {
    pub file: String,
    pub line: usize,
    /// The variable the line sets, when that much could be read.
    pub key: Option<String>,
    pub problem: String,
}

/// The variables of a `.env` text, in file order (a later line wins when read into a map).
pub fn parse(text: &str, file: &Path) -> Result<Vec<(String, String)>, DotenvError> {
    let mut out = Vec::new();
    // A byte order mark, as some Windows editors write one, is not part of the first key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let fail = |key: Option<&str>, problem: &str| DotenvError {
            file: file.display().to_string(),
            line: i + 1,
            key: key.map(str::to_string),
            problem: problem.to_string(),
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, rest)) = line.split_once('=') else {
            return Err(fail(None, "expected KEY=value (or a # comment)"));
        };
        let key = key.trim_end();
        if !is_key(key) {
            return Err(fail(
                None,
                "the name before '=' must be letters, digits and '_', not starting with a digit",
            ));
        }
        let value = value(rest.trim_start()).map_err(|problem| fail(Some(key), problem))?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn is_key(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// The value after `=`; the error is a fixed sentence saying what to change.
fn value(rest: &str) -> Result<String, &'static str> {
    if let Some(body) = rest.strip_prefix('\'') {
        let end = body.find('\'').ok_or(
            "the single quote is never closed on this line: end the value with ' (a value cannot span lines)",
        )?;
        after_quote(&body[end + 1..])?;
        return Ok(body[..end].to_string());
    }
    if let Some(body) = rest.strip_prefix('"') {
        return double_quoted(body);
    }
    // Bare: up to a comment that follows whitespace.
    let mut end = rest.len();
    let bytes = rest.as_bytes();
    for i in 1..bytes.len() {
        if bytes[i] == b'#' && bytes[i - 1].is_ascii_whitespace() {
            end = i;
            break;
        }
    }
    Ok(rest[..end].trim_end().to_string())
}

fn double_quoted(body: &str) -> Result<String, &'static str> {
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                after_quote(&body[i + 1..])?;
                return Ok(out);
            }
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(c @ ('\\' | '"' | '$' | '\'' | '#' | '`')) => out.push(c),
                Some(c) => {
                    out.push('\\');
                    out.push(c);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(
        "the double quote is never closed on this line: end the value with \" (write a \" inside it as \\\"), or use single quotes",
    )
}

/// After a closing quote only a comment may follow.
fn after_quote(tail: &str) -> Result<(), &'static str> {
    let tail = tail.trim_start();
    if tail.is_empty() || tail.starts_with('#') {
        Ok(())
    } else {
        Err(
            "text after the closing quote: quote the whole value, e.g. KEY='...' (or leave it unquoted)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<(String, String)>, DotenvError> {
        parse(text, Path::new("/home/.env"))
    }

    fn one(text: &str) -> String {
        let v = read(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(v.len(), 1, "{text:?}");
        v[0].1.clone()
    }

    #[test]
    fn values_as_people_write_them() {
        assert_eq!(one("A=plain"), "plain");
        assert_eq!(one("A=p@ss\"w0rd"), "p@ss\"w0rd");
        assert_eq!(one("A=it's"), "it's");
        assert_eq!(one("export A = spaced  # a comment"), "spaced");
        assert_eq!(one("A=no#comment"), "no#comment");
        assert_eq!(one("A='lit $HOME \\n # x'"), "lit $HOME \\n # x");
        assert_eq!(
            one("A=\"a \\\"q\\\" \\$5 \\\\ \\n\" # c"),
            "a \"q\" $5 \\ \n"
        );
        assert_eq!(one("A="), "");
        assert_eq!(one("A=$NOT_EXPANDED"), "$NOT_EXPANDED");
        let all = read("\u{feff}A=1\r\nB=2\n").unwrap();
        assert_eq!(all, [("A".into(), "1".into()), ("B".into(), "2".into())]);
        let all = read("# c\n\nA=1\r\nB=2\n").unwrap();
        assert_eq!(all, [("A".into(), "1".into()), ("B".into(), "2".into())]);
    }

    #[test]
    fn errors_name_file_line_and_key_never_the_value() {
        let cases = [
            (
                "OK=1\nA='sekrit\nB=topsecret\n",
                2,
                Some("A"),
                "single quote",
            ),
            ("A=\"sek\"rit\n", 1, Some("A"), "after the closing quote"),
            ("A=\"sekrit\n", 1, Some("A"), "double quote is never closed"),
            ("OK=1\n\nsekrit\n", 3, None, "KEY=value"),
            ("1A=sekrit\n", 1, None, "letters, digits"),
        ];
        for (text, line, key, says) in cases {
            let e = read(text).unwrap_err();
            assert_eq!((e.line, e.key.as_deref()), (line, key), "{text:?}");
            let shown = e.to_string();
            assert!(shown.starts_with("/home/.env: line "), "{shown}");
            assert!(shown.contains(says), "{shown}");
            assert!(
                !shown.contains("sekrit") && !shown.contains("topsecret"),
                "{shown}"
            );
        }
    }
}
