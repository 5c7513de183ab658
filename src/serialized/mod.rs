//! Search and replace that understands PHP-serialized values, as `wp search-replace` does.
//!
//! WordPress stores arrays and objects in the database as PHP-serialized text, where every
//! string carries its length in bytes: `a:1:{s:3:"url";s:22:"http://127.0.0.1:8080/";}`.
//! A plain replace (`sed`) that changes a string's length breaks the value, and PHP's
//! `unserialize()` then fails, silently losing the option or widget. Here a value that parses
//! as serialized data is rebuilt with the replacement made inside each string *value* and each
//! length recomputed (in bytes, as PHP counts them); a string that is itself serialized (double
//! serialization, common in plugins) is handled recursively. A value that does not parse as a
//! whole is replaced as plain text, as WordPress's own tools do.
//!
//! Array keys are rewritten too (page builders and caches key arrays by URL), which
//! `wp search-replace` does not do: it walks `array_keys()` and replaces only values. A rewrite
//! can make two keys of one array equal (`http://old/a` becomes `http://new/a`, which the array
//! already has), and PHP keeps only the last of two equal keys, silently dropping the other
//! entry; such a value is left unchanged as a whole and reported ([`Unchanged::KeysCollide`]).
//! Keys are compared as PHP indexes them (`"5"` is the integer key 5). Property names of objects
//! and class names are left alone: they are the class's own.
//!
//! This is done in Rust rather than by running PHP so that restore needs no php-cli and never
//! unserializes (and so never instantiates) objects of the site's classes.
//!
//! Whitespace around a value is read as WordPress's `maybe_unserialize()` reads it (PHP's
//! `trim()`: space, `\t`, `\n`, `\r`, `\0`, `\x0B`) and kept as it was. Arrays and objects are
//! walked with a stack of our own, not by recursion, so no nesting depth can overflow the
//! stack; a serialized string inside a serialized string is read up to [`MAX_NESTED`] levels
//! deep, and a value nested deeper is left unchanged and reported ([`Unchanged::TooDeep`]).

/// How many serialized strings deep inside one another a value is still rewritten.
pub const MAX_NESTED: usize = 32;

/// Why a value that holds an old address was left unchanged, as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unchanged {
    /// It holds serialized strings nested more than [`MAX_NESTED`] deep.
    #[error(
        "it holds PHP-serialized strings nested more than {MAX_NESTED} deep, so it was left unchanged; if it holds the old address, edit it by hand"
    )]
    TooDeep,
    /// Two keys of one of its arrays would be equal once rewritten: PHP would keep one.
    #[error(
        "two keys of one of its arrays would both become {key:?} with the new address, and PHP keeps only one of two equal keys, so it was left unchanged; merge the two entries by hand"
    )]
    KeysCollide { key: String },
}

/// Replace every `(from, to)` pair in `value`. `Ok(None)` when nothing changed.
pub fn replace(value: &[u8], pairs: &[(&[u8], &[u8])]) -> Result<Option<Vec<u8>>, Unchanged> {
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
fn replace_value(
    value: &[u8],
    pairs: &[(&[u8], &[u8])],
    depth: usize,
) -> Result<Vec<u8>, Unchanged> {
    let (lead, body, trail) = php_trim(value);
    if looks_serialized(body) {
        if depth > MAX_NESTED {
            return Err(Unchanged::TooDeep);
        }
        let mut p = Parser {
            input: body,
            pos: 0,
            out: Vec::with_capacity(value.len() + 16),
            pairs,
            depth,
            keys: Vec::new(),
        };
        p.out.extend_from_slice(lead);
        match p.run() {
            Ok(()) if p.pos == body.len() => {
                p.out.extend_from_slice(trail);
                return Ok(p.out);
            }
            Err(Stop::Unchanged(why)) => return Err(why),
            Ok(()) | Err(Stop::NotSerialized) => {}
        }
    }
    Ok(plain_replace(value, pairs))
}

/// Every non-overlapping occurrence, left to right; at one position the longest `from` wins.
/// Replacements are not scanned again. An occurrence that the text goes on from, as a longer
/// host or name would ([`continues_at`]), is not one: `http://old.example` is not replaced in
/// `http://old.example.com.evil/` nor in `http://old.example:8080/`.
pub fn plain_replace(value: &[u8], pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut sorted: Vec<(&[u8], &[u8])> = pairs.to_vec();
    sorted.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    'outer: while i < value.len() {
        for (from, to) in &sorted {
            if value[i..].starts_with(from) && !continues_at(value, from, i + from.len()) {
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

/// Whether `value` goes on at `end` from a `from` that ends there, the way a longer host, port,
/// name or path segment would: `from` ends in a letter or digit and the next byte is a letter,
/// a digit, `-` or `_`, or a `.` or `:` followed by a letter or digit. A `/`, `?`, `#`, quote,
/// space, `\` (JSON's `\/`), `%` (`%2F`) or a sentence's final `.` end it.
fn continues_at(value: &[u8], from: &[u8], end: usize) -> bool {
    let word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    if !word(from.last()) {
        return false;
    }
    match value.get(end) {
        Some(b) if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_') => true,
        Some(b'.' | b':') => word(value.get(end + 1)),
        _ => false,
    }
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
    /// The whole value is left unchanged, for this reason.
    Unchanged(Unchanged),
}

/// One value read: a whole one, or the opening of an array (`array`) or object of `n` members.
enum Step {
    Done,
    Open { n: usize, array: bool },
}

/// An array or object being read: how many of its keys and values are left, and whether its
/// string values are replaced. For an array, where its keys start in [`Parser::keys`] and
/// whether any of them was rewritten (only then can two of them collide).
struct Open {
    left: usize,
    replace: bool,
    array: bool,
    keys_from: usize,
    keys_changed: bool,
}

/// An array key as read: its text in the input (the digits of an integer key), and whether it
/// is an integer key.
struct KeyAt {
    start: usize,
    end: usize,
    int: bool,
}

/// A key as PHP indexes an array by it: an integer, or a string that does not read as one.
#[derive(PartialEq, Eq, Hash)]
enum Key<'k> {
    Int(i64),
    Str(std::borrow::Cow<'k, [u8]>),
}

impl<'k> Key<'k> {
    /// The key an `i:N;` (`int`) or `s:N:"...";` key with this text stands for. A string that
    /// is an integer written canonically (`5`, `-12`, not `05`, `+5` or `-0`) is that integer,
    /// as PHP's `unserialize()` reads it.
    fn of(text: std::borrow::Cow<'k, [u8]>, int: bool) -> Key<'k> {
        let canonical = |t: &[u8]| {
            let digits = t.strip_prefix(b"-").unwrap_or(t);
            match digits {
                [b'0'] => t.len() == 1,
                [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
                _ => false,
            }
        };
        let number = (int || canonical(&text))
            .then(|| std::str::from_utf8(&text).ok()?.parse::<i64>().ok())
            .flatten();
        match number {
            Some(n) => Key::Int(n),
            None => Key::Str(text),
        }
    }

    fn shown(&self) -> String {
        match self {
            Key::Int(n) => n.to_string(),
            Key::Str(s) => String::from_utf8_lossy(s).into_owned(),
        }
    }
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
    /// The keys of the arrays being read, innermost array's last.
    keys: Vec<KeyAt>,
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
            let replace = match open.last_mut() {
                None => true,
                Some(o) if o.left % 2 == 0 => {
                    // A key: an integer or a string; an array's string keys are rewritten.
                    if !matches!(self.peek(), Some(b'i' | b's')) {
                        return Err(Stop::NotSerialized);
                    }
                    if o.array {
                        o.keys_changed |= self.array_key()?;
                        o.left -= 1;
                        continue;
                    }
                    false
                }
                Some(o) => o.replace,
            };
            match self.value(replace)? {
                Step::Open { n, array } => open.push(Open {
                    left: n.checked_mul(2).ok_or(Stop::NotSerialized)?,
                    replace,
                    array,
                    keys_from: self.keys.len(),
                    keys_changed: false,
                }),
                Step::Done => match open.last_mut() {
                    Some(o) => o.left -= 1,
                    None => return Ok(()),
                },
            }
            // Close every array or object whose members are all read.
            while let Some(o) = open.pop_if(|o| o.left == 0) {
                self.expect(b'}').ok_or(Stop::NotSerialized)?;
                self.out.push(b'}');
                if o.keys_changed {
                    self.ensure_distinct_keys(o.keys_from)?;
                }
                self.keys.truncate(o.keys_from);
                match open.last_mut() {
                    Some(o) => o.left -= 1,
                    None => return Ok(()),
                }
            }
        }
    }

    /// An array key (`i:N;` or `s:N:"...";`), copied, a string one with the addresses
    /// replaced as plain text and its length recomputed; remembered in [`Parser::keys`].
    /// Whether it changed.
    fn array_key(&mut self) -> Result<bool, Stop> {
        let start = self.pos;
        let int = self.peek() == Some(b'i');
        self.pos += 1;
        if int {
            self.scalar(b'i').ok_or(Stop::NotSerialized)?;
            self.copy_from(start);
            // The digits, between `i:` and `;`.
            let (start, end) = (start + 2, self.pos - 1);
            self.keys.push(KeyAt { start, end, int });
            return Ok(false);
        }
        let text = self.string_text().ok_or(Stop::NotSerialized)?;
        let end = self.pos - 2;
        self.keys.push(KeyAt {
            start: end - text.len(),
            end,
            int,
        });
        if !self.pairs.iter().any(|(from, _)| contains(text, from)) {
            self.copy_from(start);
            return Ok(false);
        }
        let new = plain_replace(text, self.pairs);
        self.out
            .extend_from_slice(format!("s:{}:\"", new.len()).as_bytes());
        self.out.extend_from_slice(&new);
        self.out.extend_from_slice(b"\";");
        Ok(true)
    }

    /// The keys of the array just read (from `keys_from` in [`Parser::keys`]): two keys that
    /// were different must not become equal once rewritten (PHP would keep only one entry),
    /// else the whole value is left unchanged. Keys already equal in the value (PHP kept the
    /// last one when it wrote it) are not this rewrite's doing.
    fn ensure_distinct_keys(&self, keys_from: usize) -> Result<(), Stop> {
        use std::borrow::Cow;
        use std::collections::hash_map::{Entry, HashMap};
        // Each key as rewritten, and the key it was.
        let mut seen: HashMap<Key, Key> = HashMap::new();
        for k in &self.keys[keys_from..] {
            let text = &self.input[k.start..k.end];
            let changed = !k.int && self.pairs.iter().any(|(from, _)| contains(text, from));
            let new = if changed {
                Cow::Owned(plain_replace(text, self.pairs))
            } else {
                Cow::Borrowed(text)
            };
            let was = Key::of(Cow::Borrowed(text), k.int);
            match seen.entry(Key::of(new, k.int)) {
                Entry::Occupied(e) if *e.get() != was => {
                    let key = e.key().shown();
                    return Err(Stop::Unchanged(Unchanged::KeysCollide { key }));
                }
                Entry::Occupied(_) => {}
                Entry::Vacant(e) => {
                    e.insert(was);
                }
            }
        }
        Ok(())
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
            let new = replace_value(text, self.pairs, self.depth + 1).map_err(Stop::Unchanged)?;
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
        let array = self.input[start] == b'a';
        let n = (|| {
            self.expect(b':')?;
            let n = self.length()?;
            self.expect(b':')?;
            self.expect(b'{')?;
            Some(n)
        })()
        .ok_or(Stop::NotSerialized)?;
        self.copy_from(start);
        Ok(Step::Open { n, array })
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
mod proptests;

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
    pub(super) fn s(text: &str) -> String {
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
            // Nested arrays, keys holding the URL rewritten with their lengths.
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
                    s(NEW),
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

    #[test]
    fn array_keys_are_rewritten_with_their_lengths() {
        // A key longer after the rewrite, and shorter, in bytes; integer keys kept.
        let pairs: [(&[u8], &[u8]); 2] =
            [(b"http://a", b"https://b\xc3\xa9"), (b"ftp://x/y", b"z")];
        let out = replace(
            b"a:3:{s:10:\"http://a/p\";i:1;i:7;s:1:\"v\";s:9:\"ftp://x/y\";b:1;}",
            &pairs,
        );
        assert_eq!(
            out,
            Ok(Some(
                b"a:3:{s:13:\"https://b\xc3\xa9/p\";i:1;i:7;s:1:\"v\";s:1:\"z\";b:1;}".to_vec()
            ))
        );
    }

    #[test]
    fn property_names_are_never_rewritten() {
        // An object's property names are the class's own.
        let v = format!("O:8:\"stdClass\":1:{{{}{}}}", s(OLD), s(OLD));
        assert_eq!(
            r(&v),
            format!("O:8:\"stdClass\":1:{{{}{}}}", s(OLD), s(NEW))
        );
    }

    /// `replace` of `value` with `pairs` must leave it unchanged for colliding keys, naming
    /// the key they would share.
    fn collides(value: &str, pairs: &[(&[u8], &[u8])], key: &str) {
        assert_eq!(
            replace(value.as_bytes(), pairs),
            Err(Unchanged::KeysCollide { key: key.into() }),
            "{value}"
        );
    }

    #[test]
    fn keys_that_a_rewrite_makes_equal_leave_the_value_unchanged() {
        let one: [(&[u8], &[u8]); 1] = [(OLD.as_bytes(), NEW.as_bytes())];
        let both = format!("{NEW}/a");
        // The new address is already a key.
        let v = format!("a:2:{{{}i:1;{}i:2;}}", s(&format!("{OLD}/a")), s(&both));
        collides(&v, &one, &both);
        // Two old addresses that both move to the new one (http and https).
        let https = OLD.replace("http:", "https:");
        let two: [(&[u8], &[u8]); 2] = [
            (OLD.as_bytes(), NEW.as_bytes()),
            (https.as_bytes(), NEW.as_bytes()),
        ];
        let v = format!(
            "a:2:{{{}i:1;{}i:2;}}",
            s(&format!("{OLD}/a")),
            s(&format!("{https}/a"))
        );
        collides(&v, &two, &both);
        // Deep inside, and inside a serialized string: the whole value is left as it was.
        let inner = format!("a:2:{{{}i:1;{}i:2;}}", s(OLD), s(NEW));
        let v = format!("a:2:{{i:0;{}i:1;a:1:{{i:0;{inner}}}}}", s(OLD));
        collides(&v, &one, NEW);
        let v = format!("a:2:{{i:0;{}i:1;{}}}", s(OLD), s(&inner));
        collides(&v, &one, NEW);
        // A string key PHP reads as an integer meets that integer key.
        let digits: [(&[u8], &[u8]); 1] = [(b"old", b"5")];
        collides("a:2:{i:5;b:1;s:3:\"old\";b:0;}", &digits, "5");
        collides("a:2:{i:-5;b:1;s:4:\"-old\";b:0;}", &digits, "-5");
    }

    #[test]
    fn keys_that_stay_distinct_are_rewritten() {
        let digits: [(&[u8], &[u8]); 1] = [(b"old", b"5")];
        // "05", "+5" and "-0" are strings to PHP, not the integers 5 and 0.
        for (value, want) in [
            (
                "a:2:{i:5;b:1;s:4:\"0old\";b:0;}",
                "a:2:{i:5;b:1;s:2:\"05\";b:0;}",
            ),
            (
                "a:2:{i:5;b:1;s:4:\"+old\";b:0;}",
                "a:2:{i:5;b:1;s:2:\"+5\";b:0;}",
            ),
        ] {
            let out = replace(value.as_bytes(), &digits).unwrap();
            assert_eq!(
                out.unwrap_or_else(|| value.as_bytes().to_vec()),
                want.as_bytes()
            );
        }
        let zero: [(&[u8], &[u8]); 1] = [(b"z", b"0")];
        let out = replace(b"a:2:{i:0;b:1;s:2:\"-z\";b:0;}", &zero).unwrap();
        assert_eq!(out.unwrap(), b"a:2:{i:0;b:1;s:2:\"-0\";b:0;}".to_vec());
        // Keys equal in the value already (PHP kept the last) are not the rewrite's doing.
        let one: [(&[u8], &[u8]); 1] = [(OLD.as_bytes(), NEW.as_bytes())];
        let v = format!("a:3:{{{}i:1;{}i:2;i:0;{}}}", s(OLD), s(OLD), s(OLD));
        assert_eq!(
            r(&v),
            format!("a:3:{{{}i:1;{}i:2;i:0;{}}}", s(NEW), s(NEW), s(NEW))
        );
        // Equal keys in two different arrays do not collide.
        let v = format!("a:2:{{{}i:1;i:0;a:1:{{{}i:2;}}}}", s(OLD), s(NEW));
        assert_eq!(
            replace(v.as_bytes(), &one).unwrap().unwrap(),
            format!("a:2:{{{}i:1;i:0;a:1:{{{}i:2;}}}}", s(NEW), s(NEW)).into_bytes()
        );
    }

    /// `replace` as a restore applies it: the value written back, or the input when unchanged.
    pub(super) fn rewrite(v: &[u8], old: &str, new: &str) -> Vec<u8> {
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
            assert_eq!(
                replace(deep.as_bytes(), &pairs),
                Err(Unchanged::TooDeep),
                "{levels}"
            );
        }
    }
}
