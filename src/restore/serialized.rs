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
//!
//! Whitespace around a value is read as WordPress's `maybe_unserialize()` reads it (PHP's
//! `trim()`: space, `\t`, `\n`, `\r`, `\0`, `\x0B`) and kept as it was. Arrays and objects are
//! walked with a stack of our own, not by recursion, so no nesting depth can overflow the
//! stack; a serialized string inside a serialized string is read up to [`MAX_NESTED`] levels
//! deep, and a value nested deeper is left unchanged and reported ([`TooDeep`]).

/// How many serialized strings deep inside one another a value is still rewritten.
pub const MAX_NESTED: usize = 32;

/// A value holds serialized strings nested more than [`MAX_NESTED`] deep: left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "it holds PHP-serialized strings nested more than {MAX_NESTED} deep, so it was left unchanged; if it holds the old address, edit it by hand"
)]
pub struct TooDeep;

/// Replace every `(from, to)` pair in `value`. `Ok(None)` when nothing changed.
pub fn replace(value: &[u8], pairs: &[(&[u8], &[u8])]) -> Result<Option<Vec<u8>>, TooDeep> {
    let pairs: Vec<(&[u8], &[u8])> = pairs
        .iter()
        .copied()
        .filter(|(from, to)| !from.is_empty() && from != to)
        .collect();
    if pairs.is_empty() || !pairs.iter().any(|(from, _)| contains(value, from)) {
        return Ok(None);
    }
    let out = replace_value(value, &pairs, 0)?;
    Ok((out != value).then_some(out))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// What PHP's `trim()` removes by default.
fn php_space(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\0' | b'\x0b')
}

/// `value` split as PHP's `trim()` would: leading space, the rest, trailing space.
fn php_trim(value: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let start = value
        .iter()
        .position(|b| !php_space(b))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !php_space(b))
        .map_or(start, |i| i + 1);
    (&value[..start], &value[start..end], &value[end..])
}

/// A string value, `depth` serialized strings deep: serialized data rebuilt (its surrounding
/// whitespace kept), anything else replaced as plain text.
fn replace_value(value: &[u8], pairs: &[(&[u8], &[u8])], depth: usize) -> Result<Vec<u8>, TooDeep> {
    let (lead, body, trail) = php_trim(value);
    if looks_serialized(body) {
        if depth > MAX_NESTED {
            return Err(TooDeep);
        }
        let mut p = Parser {
            input: body,
            pos: 0,
            out: Vec::with_capacity(value.len() + 16),
            pairs,
            depth,
        };
        p.out.extend_from_slice(lead);
        match p.run() {
            Ok(()) if p.pos == body.len() => {
                p.out.extend_from_slice(trail);
                return Ok(p.out);
            }
            Err(Stop::TooDeep) => return Err(TooDeep),
            Ok(()) | Err(Stop::NotSerialized) => {}
        }
    }
    Ok(plain_replace(value, pairs))
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

/// WordPress's `is_serialized()` shape test on a trimmed value, before trying a full parse.
fn looks_serialized(t: &[u8]) -> bool {
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

/// Why a parse stopped short.
enum Stop {
    /// Not serialized data: the caller replaces it as plain text.
    NotSerialized,
    /// Serialized strings nested too deep: the whole value is left unchanged.
    TooDeep,
}

/// One value read: a whole one, or the opening of an array or object of `n` members.
enum Step {
    Done,
    Open(usize),
}

/// An array or object being read: how many of its keys and values are left, and whether its
/// string values are replaced.
struct Open {
    left: usize,
    replace: bool,
}

/// A strict parser of PHP's serialization format that copies what it reads to `out`, with
/// string values replaced.
struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    out: Vec<u8>,
    pairs: &'a [(&'a [u8], &'a [u8])],
    /// How many serialized strings deep `input` is.
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.pos += 1)
    }

    /// One whole value from the current position, arrays and objects walked with a stack of
    /// the ones open (so any depth fits in memory, none overflows the call stack).
    fn run(&mut self) -> Result<(), Stop> {
        let mut open: Vec<Open> = Vec::new();
        loop {
            let replace = match open.last() {
                None => true,
                Some(o) if o.left % 2 == 0 => {
                    // A key: an integer or a string, never replaced.
                    if !matches!(self.peek(), Some(b'i' | b's')) {
                        return Err(Stop::NotSerialized);
                    }
                    false
                }
                Some(o) => o.replace,
            };
            match self.value(replace)? {
                Step::Open(n) => open.push(Open {
                    left: n.checked_mul(2).ok_or(Stop::NotSerialized)?,
                    replace,
                }),
                Step::Done => match open.last_mut() {
                    Some(o) => o.left -= 1,
                    None => return Ok(()),
                },
            }
            // Close every array or object whose members are all read.
            while open.last().is_some_and(|o| o.left == 0) {
                self.expect(b'}').ok_or(Stop::NotSerialized)?;
                self.out.push(b'}');
                open.pop();
                match open.last_mut() {
                    Some(o) => o.left -= 1,
                    None => return Ok(()),
                }
            }
        }
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

    /// One value, or the head of an array or object (`a:2:{`) copied; `replace` is false
    /// for array keys and property names.
    fn value(&mut self, replace: bool) -> Result<Step, Stop> {
        let start = self.pos;
        let tag = self.peek().ok_or(Stop::NotSerialized)?;
        self.pos += 1;
        let done = match tag {
            b'N' | b'b' | b'i' | b'r' | b'R' | b'd' => self.scalar(tag),
            b's' => return self.string(start, replace).map(|()| Step::Done),
            b'S' => self.escaped_string(),
            b'a' => return self.members(start),
            b'O' => {
                self.class_name().ok_or(Stop::NotSerialized)?;
                return self.members(start);
            }
            b'C' => self.custom(),
            b'E' => self.enum_case(),
            _ => None,
        };
        done.ok_or(Stop::NotSerialized)?;
        self.copy_from(start);
        Ok(Step::Done)
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
    fn string(&mut self, start: usize, replace: bool) -> Result<(), Stop> {
        let text = self.string_text().ok_or(Stop::NotSerialized)?;
        if replace && self.pairs.iter().any(|(from, _)| contains(text, from)) {
            let new = replace_value(text, self.pairs, self.depth + 1).map_err(|_| Stop::TooDeep)?;
            self.out
                .extend_from_slice(format!("s:{}:\"", new.len()).as_bytes());
            self.out.extend_from_slice(&new);
            self.out.extend_from_slice(b"\";");
        } else {
            self.copy_from(start);
        }
        Ok(())
    }

    /// After the tag of `s:N:"...";`: the rest of it, and its text.
    fn string_text(&mut self) -> Option<&'a [u8]> {
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
        Some(&self.input[s..end])
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

    /// `:N:{` of an array or object (from `start`, its tag), copied; its members are read by
    /// [`Parser::run`].
    fn members(&mut self, start: usize) -> Result<Step, Stop> {
        let n = (|| {
            self.expect(b':')?;
            let n = self.length()?;
            self.expect(b':')?;
            self.expect(b'{')?;
            Some(n)
        })()
        .ok_or(Stop::NotSerialized)?;
        self.copy_from(start);
        Ok(Step::Open(n))
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
            Ok(Some(out)) => String::from_utf8(out).unwrap(),
            Ok(None) => v.to_string(),
            Err(e) => panic!("{v:?}: {e}"),
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
        assert_eq!(replace(b"nothing here", &pairs), Ok(None));
        assert_eq!(replace(b"same", &[(b"same", b"same")]), Ok(None));
        let pairs: [(&[u8], &[u8]); 2] = [(b"http://a", b"X"), (b"http://a/wp", b"Y")];
        assert_eq!(
            replace(b"http://a/wp/x http://a/y", &pairs)
                .unwrap()
                .unwrap(),
            b"Y/x X/y".to_vec()
        );
        // A replacement is not scanned again.
        let pairs: [(&[u8], &[u8]); 1] = [(b"http://a", b"http://a.staging/http://a")];
        assert_eq!(
            replace(b"http://a", &pairs).unwrap().unwrap(),
            b"http://a.staging/http://a".to_vec()
        );
    }

    #[test]
    fn lengths_are_recomputed_in_bytes() {
        let pairs: [(&[u8], &[u8]); 1] = [("é".as_bytes(), "eé€".as_bytes())];
        let out = replace(b"a:1:{i:0;s:5:\"\xc3\xa9t\xc3\xa9\";}", &pairs)
            .unwrap()
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "a:1:{i:0;s:13:\"eé€teé€\";}");
    }

    /// `replace` as a restore applies it: the value written back, or the input when unchanged.
    fn rewrite(v: &[u8], old: &str, new: &str) -> Vec<u8> {
        let pairs: [(&[u8], &[u8]); 1] = [(old.as_bytes(), new.as_bytes())];
        match replace(v, &pairs) {
            Ok(out) => out.unwrap_or_else(|| v.to_vec()),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_million_nesting_levels_are_rewritten_without_a_crash() {
        let levels = 1_000_000;
        let value = |url: &str| {
            let mut v = "a:1:{i:0;".repeat(levels);
            v.push_str(&s(url));
            v.push_str(&"}".repeat(levels));
            v
        };
        let out = rewrite(value(OLD).as_bytes(), OLD, NEW);
        assert!(
            out == value(NEW).as_bytes(),
            "the deep value was not rewritten"
        );
    }

    #[test]
    fn whitespace_around_a_value_is_trimmed_as_wordpress_does() {
        for pad in [" ", "\n", "\t", "\r\n", "\0", "\x0b"] {
            let input = format!("{pad}{}{pad}", s(&format!("{OLD}/x")));
            let want = format!("{pad}{}{pad}", s(&format!("{NEW}/x")));
            assert_eq!(r(&input), want, "padding {pad:?}");
        }
        // Form feed is not in PHP's trim(): WordPress reads such a value as plain text.
        let input = format!("\x0c{}", s(OLD));
        assert_eq!(r(&input), format!("\x0c{}", s(OLD).replace(OLD, NEW)));
    }

    #[test]
    fn serialized_strings_nested_too_deep_are_left_unchanged() {
        let nest = |levels: usize, url: &str| (0..levels).fold(s(url), |v, _| s(&v));
        // As deep as is still rewritten.
        let ok = nest(MAX_NESTED, OLD);
        assert_eq!(r(&ok), nest(MAX_NESTED, NEW));
        // One level deeper, and a thousand: reported, never rewritten by halves.
        for levels in [MAX_NESTED + 1, 1000] {
            let pairs: [(&[u8], &[u8]); 1] = [(OLD.as_bytes(), NEW.as_bytes())];
            let deep = format!("a:1:{{i:0;{}}}", nest(levels, OLD));
            assert_eq!(replace(deep.as_bytes(), &pairs), Err(TooDeep), "{levels}");
        }
    }

    const PHP_OLD: &str = "http://old.example";
    const PHP_NEW: &str = "https://new.example.org/wp";

    /// Random serialized values (xorshift, fixed seed) with the old address in keys and values,
    /// counting where it was put.
    struct Gen {
        state: u64,
        in_values: usize,
        in_keys: usize,
    }

    impl Gen {
        fn next(&mut self, n: u64) -> u64 {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            self.state % n
        }

        /// Text of multibyte UTF-8, quotes, semicolons and the old address.
        fn text(&mut self, key: bool) -> String {
            const PIECES: [&str; 8] = ["Grüße", "日本語", " 🎉 ", "\";}", "s:1:", "\n", "x", "ü"];
            let mut t = String::new();
            for _ in 0..self.next(6) {
                if self.next(3) == 0 {
                    t.push_str(PHP_OLD);
                    *if key {
                        &mut self.in_keys
                    } else {
                        &mut self.in_values
                    } += 1;
                } else {
                    t.push_str(PIECES[self.next(PIECES.len() as u64) as usize]);
                }
            }
            t
        }

        fn pad(&mut self) -> &'static str {
            const PADS: [&str; 8] = ["", "", "", " ", "\n", "\t\r\n", "\0", "\x0b "];
            PADS[self.next(PADS.len() as u64) as usize]
        }

        fn value(&mut self, depth: usize) -> String {
            let pick = if depth > 4 {
                self.next(5)
            } else {
                self.next(9)
            };
            match pick {
                0 => format!("i:{};", self.next(1000) as i64 - 500),
                1 => format!("d:{}.5;", self.next(100)),
                2 => ["b:0;", "b:1;", "N;"][self.next(3) as usize].to_string(),
                3 | 4 => s(&self.text(false)),
                5 | 6 => {
                    let n = self.next(4);
                    let members: String = (0..n)
                        .map(|i| match self.next(2) {
                            0 => format!("i:{i};{}", self.value(depth + 1)),
                            _ => format!(
                                "{}{}",
                                s(&format!("{i}{}", self.text(true))),
                                self.value(depth + 1)
                            ),
                        })
                        .collect();
                    format!("a:{n}:{{{members}}}")
                }
                7 => {
                    let n = self.next(4);
                    let members: String = (0..n)
                        .map(|i| {
                            format!(
                                "{}{}",
                                s(&format!("p{i}{}", self.text(true))),
                                self.value(depth + 1)
                            )
                        })
                        .collect();
                    format!("O:8:\"stdClass\":{n}:{{{members}}}")
                }
                // A serialized string inside, with whitespace around it.
                _ => {
                    let (lead, trail) = (self.pad(), self.pad());
                    s(&format!("{lead}{}{trail}", self.value(depth + 1)))
                }
            }
        }
    }

    /// For each hex-encoded value on stdin, as WordPress reads it (`maybe_unserialize`, also
    /// on strings inside): `fail`, or the old address in string values, the new one in string
    /// values, the old one in keys.
    const PHP_CHECK: &str = r#"
        function walk($v, &$c) {
            if (is_string($v)) {
                $t = trim($v);
                $u = @unserialize($t);
                if ($t !== "" && ($u !== false || $t === "b:0;")) { walk($u, $c); return; }
                $c[0] += substr_count($v, OLD); $c[1] += substr_count($v, NEW_URL); return;
            }
            if (is_array($v) || is_object($v)) {
                foreach ((array)$v as $k => $x) { $c[2] += substr_count((string)$k, OLD); walk($x, $c); }
            }
        }
        while (($line = fgets(STDIN)) !== false) {
            $t = trim(hex2bin(trim($line)));
            $u = @unserialize($t);
            if ($u === false && $t !== "b:0;") { echo "fail\n"; continue; }
            $c = [0, 0, 0]; walk($u, $c); echo implode(" ", $c), "\n";
        }"#;

    /// Run `php` on `script` with `input` on its stdin; its stdout.
    fn php(script: &str, input: &[u8]) -> String {
        use std::io::Write as _;
        let mut child = std::process::Command::new("php")
            .args(["-d", "unserialize_max_depth=0", "-r", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("php-cli is needed by this test (scripts/test.sh installs it)");
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(input).expect("php reads its stdin");
        drop(stdin);
        let out = child.wait_with_output().expect("php runs");
        assert!(out.status.success(), "php failed: {out:?}");
        String::from_utf8(out.stdout).expect("php prints text")
    }

    #[test]
    fn php_unserializes_every_rewritten_value_with_the_address_replaced() {
        let mut input = Vec::new();
        let mut want = Vec::new();
        let mut generator = Gen {
            state: 0x9E37_79B9_7F4A_7C15,
            in_values: 0,
            in_keys: 0,
        };
        for _ in 0..3000 {
            (generator.in_values, generator.in_keys) = (0, 0);
            let (lead, trail) = (generator.pad(), generator.pad());
            let value = format!("{lead}{}{trail}", generator.value(0));
            let out = rewrite(value.as_bytes(), PHP_OLD, PHP_NEW);
            input.extend_from_slice(hex::encode(&out).as_bytes());
            input.push(b'\n');
            want.push((
                value,
                format!("0 {} {}", generator.in_values, generator.in_keys),
            ));
        }
        let script =
            format!("const OLD = \"{PHP_OLD}\"; const NEW_URL = \"{PHP_NEW}\";{PHP_CHECK}");
        let got = php(&script, &input);
        let got: Vec<&str> = got.lines().collect();
        assert_eq!(got.len(), want.len());
        for (got, (value, want)) in got.iter().zip(&want) {
            assert_eq!(
                got, want,
                "value {value:?} (old in values, new in values, old in keys)"
            );
        }
    }
}
