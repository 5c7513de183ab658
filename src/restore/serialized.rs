//! Search and replace that understands PHP-serialized values, as `wp search-replace` does.
//!
//! WordPress stores arrays and objects in the database as PHP-serialized text, where every
//! string carries its length in bytes: `a:1:{s:3:"url";s:22:"http://127.0.0.1:8080/";}`.
//! A plain replace (`sed`) that changes a string's length breaks the value, and PHP's
//! `unserialize()` then fails, silently losing the option or widget. Here a value that parses
//! as serialized data is rebuilt with the replacement made inside each string *value* and each
//! length recomputed (in bytes, as PHP counts them); a string that is itself serialized (double
//! serialization, common in plugins) is handled recursively; array keys, property names and
//! class names are left alone. A value that does not parse as a whole is replaced as plain text,
//! as WordPress's own tools do.
//!
//! This is done in Rust rather than by running PHP so that restore needs no php-cli and never
//! unserializes (and so never instantiates) objects of the site's classes.

/// Replace every `(from, to)` pair in `value`. `None` when nothing changed.
pub fn replace(value: &[u8], pairs: &[(&[u8], &[u8])]) -> Option<Vec<u8>> {
    let pairs: Vec<(&[u8], &[u8])> = pairs
        .iter()
        .copied()
        .filter(|(from, to)| !from.is_empty() && from != to)
        .collect();
    if pairs.is_empty() || !pairs.iter().any(|(from, _)| contains(value, from)) {
        return None;
    }
    let out = replace_value(value, &pairs);
    (out != value).then_some(out)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A string value: serialized data rebuilt, anything else replaced as plain text.
fn replace_value(value: &[u8], pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    if looks_serialized(value) {
        let mut p = Parser {
            input: value,
            pos: 0,
            out: Vec::with_capacity(value.len() + 16),
            pairs,
        };
        if p.value(true).is_some() && value[p.pos..].iter().all(u8::is_ascii_whitespace) {
            p.out.extend_from_slice(&value[p.pos..]);
            return p.out;
        }
    }
    plain_replace(value, pairs)
}

/// Every non-overlapping occurrence, left to right; at one position the longest `from` wins.
/// Replacements are not scanned again.
fn plain_replace(value: &[u8], pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut sorted: Vec<(&[u8], &[u8])> = pairs.to_vec();
    sorted.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    'outer: while i < value.len() {
        for (from, to) in &sorted {
            if value[i..].starts_with(from) {
                out.extend_from_slice(to);
                i += from.len();
                continue 'outer;
            }
        }
        out.push(value[i]);
        i += 1;
    }
    out
}

/// WordPress's `is_serialized()` shape test, before trying a full parse.
fn looks_serialized(v: &[u8]) -> bool {
    let t = v.trim_ascii();
    if t == b"N;" {
        return true;
    }
    t.len() >= 4
        && t[1] == b':'
        && matches!(
            t[0],
            b'a' | b'O' | b'C' | b'E' | b's' | b'S' | b'i' | b'd' | b'b'
        )
        && matches!(t[t.len() - 1], b';' | b'}')
}

/// A strict parser of PHP's serialization format that copies what it reads to `out`, with
/// string values replaced. `None` means "not serialized data" (the caller falls back).
struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    out: Vec<u8>,
    pairs: &'a [(&'a [u8], &'a [u8])],
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.pos += 1)
    }

    /// Digits (with an optional sign when `signed`), as text.
    fn number(&mut self, signed: bool) -> Option<&[u8]> {
        let start = self.pos;
        if signed && matches!(self.peek(), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        let digits = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        (self.pos > digits).then(|| &self.input[start..self.pos])
    }

    fn length(&mut self) -> Option<usize> {
        std::str::from_utf8(self.number(false)?).ok()?.parse().ok()
    }

    /// Copy the input from `start` to the current position unchanged.
    fn copy_from(&mut self, start: usize) {
        self.out.extend_from_slice(&self.input[start..self.pos]);
    }

    /// One value; `replace` is false for array keys and property names.
    fn value(&mut self, replace: bool) -> Option<()> {
        let start = self.pos;
        let tag = self.peek()?;
        self.pos += 1;
        match tag {
            b'N' | b'b' | b'i' | b'r' | b'R' | b'd' => self.scalar(tag)?,
            b's' => return self.string(start, replace),
            b'S' => self.escaped_string()?,
            b'a' => return self.members(start, replace),
            b'O' => {
                self.class_name()?;
                return self.members(start, replace);
            }
            b'C' => self.custom()?,
            b'E' => self.enum_case()?,
            _ => return None,
        }
        self.copy_from(start);
        Some(())
    }

    /// After the tag of `N;`, `b:0;`, `i:-7;`, `r:1;`, `R:1;` or `d:0.5;`: the rest of it.
    fn scalar(&mut self, tag: u8) -> Option<()> {
        match tag {
            b'N' => {}
            b'b' => {
                self.expect(b':')?;
                match self.peek()? {
                    b'0' | b'1' => self.pos += 1,
                    _ => return None,
                }
            }
            b'd' => {
                self.expect(b':')?;
                let s = self.pos;
                while matches!(
                    self.peek(),
                    Some(
                        b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-' | b'I' | b'N' | b'F' | b'A'
                    )
                ) {
                    self.pos += 1;
                }
                if self.pos == s {
                    return None;
                }
            }
            _ => {
                self.expect(b':')?;
                self.number(tag == b'i')?;
            }
        }
        self.expect(b';')
    }

    /// `s:N:"...";` (from `start`, its tag), its text replaced and length recomputed when
    /// `replace`.
    fn string(&mut self, start: usize, replace: bool) -> Option<()> {
        self.expect(b':')?;
        let len = self.length()?;
        self.expect(b':')?;
        self.expect(b'"')?;
        let s = self.pos;
        let end = s.checked_add(len)?;
        if end > self.input.len() {
            return None;
        }
        self.pos = end;
        self.expect(b'"')?;
        self.expect(b';')?;
        let text = &self.input[s..end];
        if replace && self.pairs.iter().any(|(from, _)| contains(text, from)) {
            let new = replace_value(text, self.pairs);
            self.out
                .extend_from_slice(format!("s:{}:\"", new.len()).as_bytes());
            self.out.extend_from_slice(&new);
            self.out.extend_from_slice(b"\";");
        } else {
            self.copy_from(start);
        }
        Some(())
    }

    /// After the tag of `S:N:"...";`, an escaped string (`\41` is one byte): rare; copied
    /// unchanged.
    fn escaped_string(&mut self) -> Option<()> {
        self.expect(b':')?;
        let len = self.length()?;
        self.expect(b':')?;
        self.expect(b'"')?;
        for _ in 0..len {
            if self.peek()? == b'\\' {
                self.pos += 1;
                for _ in 0..2 {
                    if !self.peek()?.is_ascii_hexdigit() {
                        return None;
                    }
                    self.pos += 1;
                }
            } else {
                self.pos += 1;
            }
        }
        self.expect(b'"')?;
        self.expect(b';')
    }

    /// `:N:{key value ...}` of an array or object (from `start`, its tag): keys copied,
    /// values replaced when `replace`.
    fn members(&mut self, start: usize, replace: bool) -> Option<()> {
        self.expect(b':')?;
        let n = self.length()?;
        self.expect(b':')?;
        self.expect(b'{')?;
        self.copy_from(start);
        for _ in 0..n {
            if !matches!(self.peek()?, b'i' | b's') {
                return None;
            }
            self.value(false)?;
            self.value(replace)?;
        }
        let close = self.pos;
        self.expect(b'}')?;
        self.copy_from(close);
        Some(())
    }

    /// After the tag of `C:N:"Name":M:{...}`, a class with its own serialize(): an opaque
    /// payload, copied unchanged.
    fn custom(&mut self) -> Option<()> {
        self.class_name()?;
        self.expect(b':')?;
        let len = self.length()?;
        self.expect(b':')?;
        self.expect(b'{')?;
        let end = self.pos.checked_add(len)?;
        if end > self.input.len() {
            return None;
        }
        self.pos = end;
        self.expect(b'}')
    }

    /// After the tag of an enum case (`E:11:"Suit:Heart";`): copied unchanged.
    fn enum_case(&mut self) -> Option<()> {
        self.expect(b':')?;
        let len = self.length()?;
        self.expect(b':')?;
        self.expect(b'"')?;
        self.pos = self.pos.checked_add(len)?;
        if self.pos > self.input.len() {
            return None;
        }
        self.expect(b'"')?;
        self.expect(b';')
    }

    /// `:N:"Name"` after `O` or `C`.
    fn class_name(&mut self) -> Option<()> {
        self.expect(b':')?;
        let len = self.length()?;
        self.expect(b':')?;
        self.expect(b'"')?;
        let end = self.pos.checked_add(len)?;
        if end > self.input.len() {
            return None;
        }
        self.pos = end;
        self.expect(b'"')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "http://127.0.0.1:54321";
    const NEW: &str = "http://127.0.0.1:8080";

    fn r(v: &str) -> String {
        let pairs: [(&[u8], &[u8]); 1] = [(OLD.as_bytes(), NEW.as_bytes())];
        match replace(v.as_bytes(), &pairs) {
            Some(out) => String::from_utf8(out).unwrap(),
            None => v.to_string(),
        }
    }

    /// `s:N:"text";` with N in bytes, as PHP writes it.
    fn s(text: &str) -> String {
        format!("s:{}:\"{text}\";", text.len())
    }

    #[test]
    fn table() {
        let cases: Vec<(String, String)> = vec![
            // Plain text, not serialized.
            (
                format!("<a href=\"{OLD}/?p=1\">x</a> and {OLD}"),
                format!("<a href=\"{NEW}/?p=1\">x</a> and {NEW}"),
            ),
            // A serialized string: the length follows.
            (s(&format!("{OLD}/landing")), s(&format!("{NEW}/landing"))),
            // Nested arrays, with keys left alone even when they hold the URL.
            (
                format!(
                    "a:2:{{{}{}{}a:1:{{i:0;{}}}}}",
                    s("url"),
                    s(&format!("{OLD}/landing")),
                    s(OLD),
                    s(OLD)
                ),
                format!(
                    "a:2:{{{}{}{}a:1:{{i:0;{}}}}}",
                    s("url"),
                    s(&format!("{NEW}/landing")),
                    s(OLD),
                    s(NEW)
                ),
            ),
            // Multi-byte UTF-8: PHP counts bytes, not characters.
            (
                format!("a:1:{{i:0;{}}}", s(&format!("Grüße 日本 {OLD}"))),
                format!("a:1:{{i:0;{}}}", s(&format!("Grüße 日本 {NEW}"))),
            ),
            // Objects, including a private property (NUL bytes in its name).
            (
                format!(
                    "O:8:\"stdClass\":2:{{{}{}{}{}}}",
                    s("\0Foo\0home"),
                    s(OLD),
                    s("n"),
                    "i:5;"
                ),
                format!(
                    "O:8:\"stdClass\":2:{{{}{}{}{}}}",
                    s("\0Foo\0home"),
                    s(NEW),
                    s("n"),
                    "i:5;"
                ),
            ),
            // A serialized string inside a serialized value (double serialization).
            (
                format!("a:1:{{i:0;{}}}", s(&s(OLD))),
                format!("a:1:{{i:0;{}}}", s(&s(NEW))),
            ),
            // Scalars of every kind around the string.
            (
                format!("a:5:{{i:0;N;i:1;b:1;i:2;d:0.5;i:3;i:-7;i:4;{}}}", s(OLD)),
                format!("a:5:{{i:0;N;i:1;b:1;i:2;d:0.5;i:3;i:-7;i:4;{}}}", s(NEW)),
            ),
            // A custom-serialized object is opaque: unchanged.
            (
                format!("C:3:\"Foo\":{}:{{{OLD}}}", OLD.len()),
                format!("C:3:\"Foo\":{}:{{{OLD}}}", OLD.len()),
            ),
            // A broken serialized value (wrong length) is replaced as plain text.
            (format!("s:3:\"{OLD}\";"), format!("s:3:\"{NEW}\";")),
            // Strings with quotes and semicolons inside are read by their length.
            (
                format!("a:1:{{i:0;{}}}", s(&format!("\";}} {OLD} s:1:\""))),
                format!("a:1:{{i:0;{}}}", s(&format!("\";}} {NEW} s:1:\""))),
            ),
            // Trailing whitespace is kept.
            (format!("{}\n", s(OLD)), format!("{}\n", s(NEW))),
            // Nothing to replace.
            ("a:1:{i:0;s:1:\"x\";}".into(), "a:1:{i:0;s:1:\"x\";}".into()),
        ];
        for (input, want) in cases {
            assert_eq!(r(&input), want, "input: {input:?}");
        }
    }

    #[test]
    fn unchanged_is_none_and_longest_match_wins() {
        let pairs: [(&[u8], &[u8]); 1] = [(b"http://a", b"http://b")];
        assert_eq!(replace(b"nothing here", &pairs), None);
        assert_eq!(replace(b"same", &[(b"same", b"same")]), None);
        let pairs: [(&[u8], &[u8]); 2] = [(b"http://a", b"X"), (b"http://a/wp", b"Y")];
        assert_eq!(
            replace(b"http://a/wp/x http://a/y", &pairs).unwrap(),
            b"Y/x X/y".to_vec()
        );
        // A replacement is not scanned again.
        let pairs: [(&[u8], &[u8]); 1] = [(b"http://a", b"http://a.staging/http://a")];
        assert_eq!(
            replace(b"http://a", &pairs).unwrap(),
            b"http://a.staging/http://a".to_vec()
        );
    }

    #[test]
    fn lengths_are_recomputed_in_bytes() {
        let pairs: [(&[u8], &[u8]); 1] = [("é".as_bytes(), "eé€".as_bytes())];
        let out = replace(b"a:1:{i:0;s:5:\"\xc3\xa9t\xc3\xa9\";}", &pairs).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "a:1:{i:0;s:13:\"eé€teé€\";}");
    }
}
