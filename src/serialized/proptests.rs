//! Property tests of the serialized rewrite against PHP itself: thousands of random values
//! (multibyte text, quotes, whitespace, serialized strings inside strings, arrays and objects
//! with the old address in values, array keys and property names) are rewritten here and read
//! back by PHP's `unserialize()`, which must find the new address wherever the old one was
//! (never in property names, which are kept) and every entry still there; and a value whose
//! rewrite would make two array keys equal, which PHP says loses an entry, must be exactly the
//! one left unchanged.

use super::tests::{rewrite, s};
use super::{Unchanged, replace};

const OLD: &str = "http://old.example";
const NEW: &str = "https://new.example.org/wp";

/// Where the generator put the old address.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    values: usize,
    array_keys: usize,
    property_names: usize,
}

/// Which count a piece of text adds to.
#[derive(Clone, Copy)]
enum Place {
    Value,
    ArrayKey,
    PropertyName,
}

/// Random serialized values (xorshift, fixed seed), counting where the old address was put.
/// With `colliding`, array keys come from a few texts (some with the old address, some with
/// the new one), so that a rewrite often makes two keys of an array equal. Keys of one array
/// are distinct, as PHP's `serialize()` writes them.
struct Gen {
    state: u64,
    counts: Counts,
    colliding: bool,
}

impl Gen {
    fn new(state: u64, colliding: bool) -> Gen {
        Gen {
            state,
            counts: Counts::default(),
            colliding,
        }
    }

    fn next(&mut self, n: u64) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state % n
    }

    /// Text of multibyte UTF-8, quotes, semicolons and the old address.
    fn text(&mut self, place: Place) -> String {
        const PIECES: [&str; 8] = ["Grüße", "日本語", " 🎉 ", "\";}", "s:1:", "\n", "x", "ü"];
        let mut t = String::new();
        for _ in 0..self.next(6) {
            if self.next(3) == 0 {
                // Followed by a path, as addresses are: `http://old.examplex` is another host
                // (plain_replace leaves it; its own tests show that).
                t.push_str(OLD);
                t.push('/');
                match place {
                    Place::Value => self.counts.values += 1,
                    Place::ArrayKey => self.counts.array_keys += 1,
                    Place::PropertyName => self.counts.property_names += 1,
                }
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

    /// The keys of an array of `n` members, distinct as PHP writes them. With `colliding`,
    /// drawn from a few (some with the old address, some with the new one).
    fn array_keys(&mut self, n: u64) -> Vec<String> {
        if !self.colliding {
            return (0..n)
                .map(|i| match self.next(2) {
                    0 => format!("i:{i};"),
                    _ => s(&format!("{i}{}", self.text(Place::ArrayKey))),
                })
                .collect();
        }
        let mut pool = vec![
            "i:0;".to_string(),
            "i:5;".to_string(),
            s(OLD),
            s(NEW),
            s("http://old.example/a"),
            s("https://new.example.org/wp/a"),
            s("a"),
        ];
        (0..n)
            .map(|_| pool.swap_remove(self.next(pool.len() as u64) as usize))
            .collect()
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
            3 | 4 => s(&self.text(Place::Value)),
            5 | 6 => {
                let n = self.next(4);
                let members: String = self
                    .array_keys(n)
                    .into_iter()
                    .map(|key| format!("{key}{}", self.value(depth + 1)))
                    .collect();
                format!("a:{n}:{{{members}}}")
            }
            7 => {
                let n = self.next(4);
                let members: String = (0..n)
                    .map(|i| {
                        let name = s(&format!("p{i}{}", self.text(Place::PropertyName)));
                        format!("{name}{}", self.value(depth + 1))
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

    /// One whole value, with whitespace around it.
    fn top(&mut self) -> String {
        self.counts = Counts::default();
        let (lead, trail) = (self.pad(), self.pad());
        format!("{lead}{}{trail}", self.value(0))
    }
}

/// PHP's reading of a value as WordPress reads it (`maybe_unserialize`, also on strings
/// inside): `walk` counts the old and new address in string values, array keys and property
/// names; `entries` counts the entries of arrays and objects, with the arrays' string keys
/// rewritten when `$rekey` (as PHP would index them: an entry whose key becomes another's is
/// lost).
const PHP_READ: &str = r#"
    function inner($v) {
        if (!is_string($v)) return null;
        $t = trim($v);
        $u = @unserialize($t);
        return ($t !== "" && ($u !== false || $t === "b:0;")) ? [$u] : null;
    }
    function walk($v, &$c) {
        if ($i = inner($v)) { walk($i[0], $c); return; }
        if (is_string($v)) { $c[0] += substr_count($v, OLD); $c[1] += substr_count($v, NEW_URL); return; }
        if (is_array($v)) {
            foreach ($v as $k => $x) { $c[2] += substr_count((string)$k, OLD); $c[3] += substr_count((string)$k, NEW_URL); walk($x, $c); }
        } elseif (is_object($v)) {
            foreach ((array)$v as $k => $x) { $c[4] += substr_count((string)$k, OLD); walk($x, $c); }
        }
    }
    function entries($v, $rekey) {
        if ($i = inner($v)) return entries($i[0], $rekey);
        $n = 0;
        if (is_array($v)) {
            $out = [];
            foreach ($v as $k => $x) $out[($rekey && is_string($k)) ? str_replace(OLD, NEW_URL, $k) : $k] = entries($x, $rekey);
            foreach ($out as $c) $n += 1 + $c;
        } elseif (is_object($v)) {
            foreach ((array)$v as $x) $n += 1 + entries($x, $rekey);
        }
        return $n;
    }
    function read($hex) {
        $t = trim(hex2bin($hex));
        $u = @unserialize($t);
        return ($u === false && $t !== "b:0;") ? null : [$u];
    }"#;

/// Run `php` on `script` with `input` on its stdin; its stdout.
fn php(script: &str, input: &[u8]) -> String {
    use std::io::Write as _;
    let script = format!("const OLD = \"{OLD}\"; const NEW_URL = \"{NEW}\";{PHP_READ}{script}");
    let mut child = std::process::Command::new("php")
        .args(["-d", "unserialize_max_depth=0", "-r", &script])
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
    let mut generator = Gen::new(0x9E37_79B9_7F4A_7C15, false);
    for _ in 0..3000 {
        let value = generator.top();
        let out = rewrite(value.as_bytes(), OLD, NEW);
        input.extend_from_slice(hex::encode(&out).as_bytes());
        input.push(b'\n');
        let c = generator.counts;
        // Old and new address in values, in array keys, and the old one in property names.
        let where_ = format!("0 {} 0 {} {}", c.values, c.array_keys, c.property_names);
        want.push((value, where_));
    }
    let got = php(
        r#"
        while (($line = fgets(STDIN)) !== false) {
            $u = read(trim($line));
            if ($u === null) { echo "fail\n"; continue; }
            $c = [0, 0, 0, 0, 0]; walk($u[0], $c); echo implode(" ", $c), "\n";
        }"#,
        &input,
    );
    let got: Vec<&str> = got.lines().collect();
    assert_eq!(got.len(), want.len());
    assert!(want.iter().any(|(_, w)| !w.ends_with(" 0 0")));
    for (got, (value, want)) in got.iter().zip(&want) {
        assert_eq!(
            got, want,
            "value {value:?} (old, new in values; old, new in array keys; old in property names)"
        );
    }
}

#[test]
fn exactly_the_values_whose_keys_would_collide_are_left_unchanged() {
    let mut input = Vec::new();
    let mut values = Vec::new();
    let mut generator = Gen::new(0x2545_F491_4F6C_DD1D, true);
    for _ in 0..3000 {
        let value = generator.top();
        let out = match replace(value.as_bytes(), &[(OLD.as_bytes(), NEW.as_bytes())]) {
            Ok(out) => hex::encode(out.unwrap_or_else(|| value.clone().into_bytes())),
            Err(Unchanged::KeysCollide { .. }) => "-".to_string(),
            Err(e) => panic!("{value:?}: {e}"),
        };
        input.extend_from_slice(format!("{} {out}\n", hex::encode(&value)).as_bytes());
        values.push((value, out));
    }
    // Per value: whether rewriting its keys loses an entry (PHP's own reading), then for a
    // rewritten value whether it unserializes with as many entries and no old address in
    // values or array keys.
    let got = php(
        r#"
        while (($line = fgets(STDIN)) !== false) {
            [$in, $out] = explode(" ", trim($line));
            $u = read($in)[0];
            echo entries($u, false) == entries($u, true) ? "keeps" : "loses";
            if ($out === "-") { echo " -\n"; continue; }
            $o = read($out);
            if ($o === null) { echo " fail\n"; continue; }
            $c = [0, 0, 0, 0, 0]; walk($o[0], $c);
            echo " ", entries($o[0], false) - entries($u, false), " ", $c[0] + $c[2], "\n";
        }"#,
        &input,
    );
    let got: Vec<&str> = got.lines().collect();
    assert_eq!(got.len(), values.len());
    let mut left = 0;
    for (got, (value, out)) in got.iter().zip(&values) {
        let want = if out == "-" {
            left += 1;
            "loses -"
        } else {
            "keeps 0 0"
        };
        assert_eq!(*got, want, "value {value:?}");
    }
    // The generator makes both kinds often enough for the comparison to mean something.
    assert!(
        left > 100 && left < values.len() - 100,
        "{left} left unchanged"
    );
}
