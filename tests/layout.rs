//! The architecture of docs/architecture.md, checked on the source itself.
//!
//! Every path of `src/` that starts at `crate::`, `super::`, `self::` or at one of the file's
//! own submodules (`use stage::Staged;` in `restore/mod.rs`) is read, `use` groups expanded,
//! and resolved to a path from the crate root. Comments and the contents of string and char
//! literals are skipped (raw strings, byte strings, `'"'`, `'\''`, nested block comments;
//! lifetimes are code); everything else (code, tests) counts. The checker only reads text, so
//! it is fed `(path under src/, text)` pairs: the real tree, or the fixtures of the tests at
//! the bottom, which plant each kind of violation and see it caught.
//!
//! The rules:
//!
//! 1. **Layers.** A top-level module imports only the layers below it: never one above, never
//!    another module of its own layer (backup, restore and d1 know nothing of each other).
//!    Every top-level module must be in the layer table below.
//! 2. **Every path resolves.** `super::` counts from the module the path is written in,
//!    inline modules included: in `reader/stage.rs`, inside `mod tests { … }`, `super::` is
//!    `reader::stage`. A path from the crate root must then start at a module of the layer
//!    table or at an item declared in the crate root file itself (lib.rs, or main.rs for the
//!    binary), and such an item belongs to that file's layer (9). Anything else (`crate::x`
//!    for an `x` nobody declared, a re-export made in lib.rs, `super::` above the crate root)
//!    fails rather than being skipped: a path the checker cannot place is a path it cannot
//!    check.
//! 3. **No cycle among the files of a folder.** For each folder (a module with submodules:
//!    `restore/`, `reader/unpack/`, `restore/copies.rs` with `copies/`), its children are the
//!    nodes, a subfolder counting as one node with everything under it (its mod.rs and its
//!    files). Child A depends on child B when a file of A names something of B, directly or
//!    through the parent: a name the parent's mod.rs re-exports from B (`super::Thing` for a
//!    `pub use b::Thing;`), or an item defined in the parent whose code (its definition, its
//!    `impl` blocks, the parent's items it names in turn) names B. These dependencies must
//!    not form a cycle.
//!
//!    The parent and its own children are not checked against each other: a mod.rs both
//!    holds what its children share (the `Storage` trait, `Request`, errors) and uses them
//!    (the `open` that picks `s3` or `local`; `use stage::Staged;`), so a parent and a child
//!    importing each other is the design of every folder here (config, d1, dbtools, storage
//!    do), not a cycle. For the same reason the parent is looked into item by item rather
//!    than taken as one node: taken whole, `leftovers -> mod.rs` (for `Storage`) and `mod.rs
//!    -> s3` (in `open`) would make `leftovers` depend on `s3`, which no code says. Where the
//!    checker cannot tell which of the parent's items is meant (a `use super::*;` in a
//!    child, a name it does not find in the parent, a glob `use` in the parent), it assumes
//!    all of them: it may see a cycle that is not there, never miss one. A cycle the tree has
//!    today is tolerated only by name, in `KNOWN_CYCLES`, until it is gone.
//!
//! Refused, because the checker could not follow them: `#[path]`, `include!`, another name
//! for `crate`, `super` or `self` (`use crate as root;`), and a file whose braces do not
//! balance once literals are removed (a literal misread). Not read: a path inside a string
//! (`#[serde(with = "…")]`), and what a macro expands to.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Layer of each top-level module (file or folder of `src/`), lowest first.
fn layer(top: &str) -> Option<u32> {
    Some(match top {
        "secret" | "interrupt" | "output" | "lock" | "error" | "crypt" | "retention"
        | "manifest" | "logdb" | "cli" | "serialized" | "sign" => 0,
        "config" => 1,
        "storage" | "dbtools" => 2,
        "site" | "reader" | "clone" | "binlog" => 3,
        "backup" | "restore" | "d1" => 4,
        "report" | "drill" => 5,
        "configure" => 6,
        "app" => 7,
        "commands" => 8,
        "main" | "lib" => 9,
        _ => return None,
    })
}

/// The module of a source file, from its path under `src/`: `reader/stage.rs` is
/// `["reader", "stage"]`, `restore/mod.rs` is `["restore"]`, `lib.rs` is `["lib"]`.
fn module_of(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = path
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The crate a file belongs to: `main` for main.rs (the binary), `lib` for the rest.
fn root_of(module: &[String]) -> &'static str {
    if module == ["main"] { "main" } else { "lib" }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

// ---------------------------------------------------------------------------------------
// Reading a file

/// The source without comments and without the contents of string and char literals: a
/// string (`"…"`, `b"…"`, `c"…"`, raw `r#"…"#`, `br"…"`, `cr"…"`) becomes `""`, a char
/// (`'"'`, `'\''`, `b'{'`, `'\u{7f}'`) becomes `' '`, a comment (`//…`, nested `/* /* */ */`)
/// becomes a space. Lifetimes and labels (`'a`, `'static`) are code. Newlines inside what is
/// removed are kept, so line numbers still hold.
fn code_only(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let after_ident = i > 0 && is_ident(c[i - 1]);
        if c[i] == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
            out.push(' ');
        } else if c[i] == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
            out.push(' ');
        } else if let Some((hashes, open)) = raw_string_start(&c, i).filter(|_| !after_ident) {
            // No escapes: the string ends at a `"` followed by as many `#` as it opened with.
            i = open + 1;
            while i < c.len() && !(c[i] == '"' && (1..=hashes).all(|h| at(i + h) == '#')) {
                if c[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1 + hashes;
            out.push_str("\"\"");
        } else if c[i] == '"' {
            // Also b"…" and c"…": their prefix was copied as code, like an identifier.
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\n' || (c[i] == '\\' && at(i + 1) == '\n') {
                    out.push('\n');
                }
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c[i] == '\'' && at(i + 1) == '\\' {
            // '\n', '\'', '\\', '\x7f', '\u{1F600}': the escaped char, then up to the quote.
            i += 3;
            while i < c.len() && c[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else if c[i] == '\'' && at(i + 2) == '\'' && at(i + 1) != '\n' {
            i += 3;
            out.push_str("' '");
        } else {
            // Code, and the quote of a lifetime or a label ('a, 'static, 'outer: loop).
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// At `i`, the start of a raw string (`r`, `br` or `cr`, then `#`s, then `"`): the number of
/// `#`s and the index of the opening quote. `r#ident` (a raw identifier) is not one.
fn raw_string_start(c: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if matches!(c.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = c[j..].iter().take_while(|&&ch| ch == '#').count();
    (c.get(j + hashes) == Some(&'"')).then_some((hashes, j + hashes))
}

/// A path as written, before it is resolved.
#[derive(Debug)]
struct Written {
    /// Where it starts in the code (an index into [`code_only`]'s output).
    offset: usize,
    /// The inline modules (`mod tests { … }`) around it, outermost first.
    inline: Vec<String>,
    /// `["super", "fetch", "Thing"]`.
    path: Vec<String>,
}

/// An item at the top of a file: `fn run`, `struct Request`, `trait Storage`, `impl … for
/// Request`, an inline `mod tests { … }`.
#[derive(Debug)]
struct Item {
    /// Its name; an `impl` block has none (it goes with the items its header names).
    name: Option<String>,
    /// For an `impl` block, its header (`impl From<io::Error> for StorageError`).
    header: String,
    span: Range<usize>,
}

/// What a file says, read from its code (from [`code_only`]).
#[derive(Debug, Default)]
struct Parsed {
    paths: Vec<Written>,
    /// The names the file's top-level `use` declarations bind, and the paths they bind:
    /// `("Staged", ["stage", "Staged"])`, `("Result", ["anyhow", "Result"])`; a glob is
    /// named `*`.
    uses: Vec<(String, Vec<String>)>,
    items: Vec<Item>,
    /// Where `crate`, `super` or `self` is given another name (`use crate as root;`).
    aliases: Vec<usize>,
    /// The braces balance: a literal misread would most likely have swallowed one.
    balanced: bool,
}

/// Reads a file's code (from [`code_only`]). `children` are the file's own submodules: a path
/// that starts at one of them is relative (`use stage::Staged;` in `restore/mod.rs`).
fn parse(code: &str, children: &BTreeSet<String>) -> Parsed {
    let b = code.as_bytes();
    let word_at = |i: usize| -> &str {
        let end = (i..b.len())
            .find(|&j| !is_ident_byte(b[j]))
            .unwrap_or(b.len());
        &code[i..end]
    };
    let skip_space = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut out = Parsed {
        balanced: true,
        ..Parsed::default()
    };
    let mut depth = 0usize;
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => depth += 1,
            b'}' => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                out.balanced &= depth > 0;
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        let prev = if i == 0 { b' ' } else { b[i - 1] };
        if !is_ident_byte(b[i]) || is_ident_byte(prev) || b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let word = word_at(i);
        let after = i + word.len();
        let top = depth == 0 && inline.is_empty();
        if top && word == "use" {
            let end = code[after..].find(';').map_or(b.len(), |e| after + e);
            let tree = code[after..end].trim_start().trim_start_matches("::");
            let mut found = Vec::new();
            expand(tree, Vec::new(), &mut found);
            for (path, alias) in found {
                let name = alias.or_else(|| {
                    let mut named = path.iter().rev().filter(|s| *s != "self");
                    named.next().cloned()
                });
                if let Some(name) = name {
                    out.uses.push((name, path));
                }
            }
        }
        if top && let Some(item) = item_at(code, i, word) {
            out.items.push(item);
        }
        if word == "mod" {
            // `mod name {`: an inline module, until its closing brace.
            let name_at = skip_space(after);
            let name = word_at(name_at);
            let open = skip_space(name_at + name.len());
            if name_at > after && !name.is_empty() && b.get(open) == Some(&b'{') {
                depth += 1;
                inline.push((name.to_string(), depth));
                i = open + 1;
                continue;
            }
        }
        let root_word = matches!(word, "crate" | "super" | "self");
        if root_word && prev != b':' && code[after..].trim_start().starts_with("as ") {
            // `use crate as root;`, `extern crate self as wpbackup;`: a second name for a
            // module the checker would not know to follow.
            out.aliases.push(i);
        }
        let relative = root_word || children.contains(word);
        let tail = code[after..].trim_start();
        // Not a field or method (`x.select::<T>()`), not the middle of a path (`a::dump`).
        if relative && prev != b'.' && prev != b':' && tail.starts_with("::") {
            let rest = &tail[2..];
            if !(children.contains(word) && rest.trim_start().starts_with('<')) {
                let mut found = Vec::new();
                expand(rest, vec![word.to_string()], &mut found);
                let names: Vec<String> = inline.iter().map(|(n, _)| n.clone()).collect();
                for (path, _) in found {
                    out.paths.push(Written {
                        offset: i,
                        inline: names.clone(),
                        path,
                    });
                }
            }
        }
        i = after;
    }
    out.balanced &= depth == 0;
    out
}

/// A path's tail after `prefix::`, groups expanded: `{a::{b, c as d}, *}` gives `a::b`,
/// `a::c` (bound as `d`) and `*`.
fn expand(rest: &str, prefix: Vec<String>, out: &mut Vec<(Vec<String>, Option<String>)>) {
    let rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut depth = 1;
        let mut item_start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' | ',' if depth == 1 => {
                    if !inner[item_start..i].trim().is_empty() {
                        expand(&inner[item_start..i], prefix.clone(), out);
                    }
                    item_start = i + 1;
                    if c == '}' {
                        return;
                    }
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        return;
    }
    let mut path = prefix;
    if rest.starts_with('*') {
        path.push("*".into());
        out.push((path, None));
        return;
    }
    let ident: String = rest.chars().take_while(|&c| is_ident(c)).collect();
    if ident.is_empty() {
        // Nothing nameable after the `::`: what was read so far.
        if !path.is_empty() {
            out.push((path, None));
        }
        return;
    }
    path.push(ident.clone());
    let tail = rest[ident.len()..].trim_start();
    if let Some(next) = tail.strip_prefix("::") {
        return expand(next, path, out);
    }
    let alias = tail
        .strip_prefix("as")
        .filter(|t| t.starts_with(char::is_whitespace))
        .map(|t| {
            t.trim_start()
                .chars()
                .take_while(|&c| is_ident(c))
                .collect()
        });
    out.push((path, alias));
}

/// The top-level item that starts at `word` (index `i` of `code`), if it is one.
fn item_at(code: &str, i: usize, word: &str) -> Option<Item> {
    let keyword = matches!(
        word,
        "fn" | "struct"
            | "enum"
            | "union"
            | "trait"
            | "type"
            | "const"
            | "static"
            | "mod"
            | "impl"
            | "macro_rules"
    );
    if !keyword {
        return None;
    }
    // Only where an item can start: not `&'static str`, `-> impl Trait`, `*const T`,
    // `x: fn()`. Before it: nothing, the end of an item or an attribute, `pub(crate)`, a
    // qualifier, or `extern ""`.
    let before = code[..i].trim_end();
    let qualifier = before
        .rsplit(|c: char| !is_ident(c))
        .next()
        .filter(|w| !w.is_empty())
        .is_some_and(|w| ["pub", "unsafe", "async", "const", "extern", "default"].contains(&w));
    if !(before.is_empty() || before.ends_with([';', '}', ']', ')', '"']) || qualifier) {
        return None;
    }
    let names: Vec<&str> = code[i + word.len()..]
        .split(|c: char| !is_ident(c))
        .filter(|w| !w.is_empty())
        .take(2)
        .collect();
    let first = names.first().copied().unwrap_or_default();
    let name = match word {
        "impl" => None,
        // `const fn`, `const unsafe fn`: the `fn` that follows is the item.
        "const" if ["fn", "unsafe", "async", "extern"].contains(&first) => return None,
        "static" if first == "mut" => Some(names.get(1)?.to_string()),
        _ => Some(first.to_string()).filter(|n| !n.is_empty()),
    };
    // The item ends at a `;` outside brackets, or at the `}` that closes its body (a fn,
    // struct, enum, trait, impl, mod); a `const X: T = T { … };` goes on to its `;`.
    let block = !matches!(word, "const" | "static" | "type");
    let mut nest = 0i32;
    let mut end = code.len();
    let mut header_end = code.len();
    for (j, c) in code[i..].char_indices() {
        match c {
            '(' | '[' | '{' => {
                if c == '{' && nest == 0 {
                    header_end = header_end.min(i + j);
                }
                nest += 1;
            }
            ')' | ']' | '}' => {
                nest -= 1;
                if c == '}' && nest == 0 && block {
                    end = i + j + 1;
                    break;
                }
            }
            ';' if nest == 0 => {
                end = i + j + 1;
                break;
            }
            _ => {}
        }
    }
    if word == "mod" && code[i..end].ends_with(';') {
        return None; // `mod child;`: a file of its own
    }
    Some(Item {
        name,
        header: code[i..header_end.min(end)].to_string(),
        span: i..end,
    })
}

// ---------------------------------------------------------------------------------------
// Resolving

/// One path of the source, resolved.
#[derive(Clone, Debug)]
struct Reference {
    /// `reader/stage.rs:12`.
    at: String,
    /// Where it starts in its file's code.
    offset: usize,
    /// The module of its file (`["restore", "stage"]`; `["lib"]` for lib.rs).
    from: Vec<String>,
    /// The path as written (`super::super::fetch::Thing`).
    written: String,
    /// The path from the crate root (`["restore", "fetch", "Thing"]`); an item of a crate root
    /// file is under that file's name (`["lib", "thing"]`).
    target: Vec<String>,
}

/// One file, read and resolved.
struct File {
    path: String,
    module: Vec<String>,
    code: String,
    items: Vec<Item>,
    /// The names its top-level `use`s bind, and where they lead (`None`: outside the crate).
    uses: Vec<(String, Option<Vec<String>>)>,
}

/// What a scan of the source found.
struct Scan {
    files: Vec<File>,
    refs: Vec<Reference>,
    /// What the checker could not place: a module outside the layer table, a path it could
    /// not resolve, a `#[path]`, an `include!`, another name for `crate`, braces that do not
    /// balance.
    problems: Vec<String>,
}

/// Reads and resolves `(path under src/, text)` pairs: the checker's whole input.
fn scan(sources: &[(String, String)]) -> Scan {
    let modules: BTreeSet<Vec<String>> = sources.iter().map(|(p, _)| module_of(p)).collect();
    let mut parsed = Vec::new();
    for (path, text) in sources {
        let module = module_of(path);
        let code = code_only(text);
        let here = crate_path(&module);
        let children: BTreeSet<String> = if module == ["main"] {
            BTreeSet::new() // the binary declares no module: it uses the library's
        } else {
            modules
                .iter()
                .filter(|m| m.len() > here.len() && m.starts_with(&here))
                .map(|m| m[here.len()].clone())
                .filter(|m| !here.is_empty() || (m != "lib" && m != "main"))
                .collect()
        };
        let p = parse(&code, &children);
        parsed.push((path.clone(), module, code, children, p));
    }
    let mut root_items: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (_, module, _, _, p) in &parsed {
        if *module == ["lib"] || *module == ["main"] {
            let names = p.items.iter().filter_map(|it| it.name.clone()).collect();
            root_items.insert(root_of(module), names);
        }
    }
    let mut files = Vec::new();
    let mut refs = Vec::new();
    let mut problems = Vec::new();
    for (path, module, code, children, p) in parsed {
        if layer(&module[0]).is_none() {
            problems.push(format!(
                "src/{path}: module {} is not in the layer table of tests/layout.rs \
                 (and docs/architecture.md)",
                module[0]
            ));
        }
        let line = |offset: usize| code[..offset].matches('\n').count() + 1;
        for at in attributes_naming(&code, "path") {
            problems.push(format!(
                "src/{path}:{}: a #[path] attribute (the checker knows a module by its file's \
                 path)",
                line(at)
            ));
        }
        for (at, _) in code.match_indices("include!") {
            if at == 0 || !is_ident_byte(code.as_bytes()[at - 1]) {
                problems.push(format!(
                    "src/{path}:{}: include! (the checker reads each file as its own module)",
                    line(at)
                ));
            }
        }
        if !p.balanced {
            problems.push(format!(
                "src/{path}: its braces do not balance once comments and literals are removed: \
                 the checker misread a literal or a comment, and may have missed paths"
            ));
        }
        for &at in &p.aliases {
            problems.push(format!(
                "src/{path}:{}: another name for crate, super or self (the checker would not \
                 follow it)",
                line(at)
            ));
        }
        let root = root_of(&module);
        let here = crate_path(&module);
        for w in &p.paths {
            let at = format!("{path}:{}", line(w.offset));
            let written = w.path.join("::");
            match resolve(&here, &w.inline, &w.path, root, &root_items) {
                Ok(target) => refs.push(Reference {
                    at,
                    offset: w.offset,
                    from: module.clone(),
                    written,
                    target,
                }),
                Err(why) => problems.push(format!("src/{at}: {written}: {why}")),
            }
        }
        let uses = p
            .uses
            .iter()
            .filter(|(name, _)| name != "_")
            .map(|(name, path)| {
                let ours = path.first().is_some_and(|s| {
                    matches!(s.as_str(), "crate" | "super" | "self") || children.contains(s)
                });
                let target = ours
                    .then(|| resolve(&here, &[], path, root, &root_items).ok())
                    .flatten();
                (name.clone(), target)
            })
            .collect();
        files.push(File {
            path,
            module,
            code,
            items: p.items,
            uses,
        });
    }
    Scan {
        files,
        refs,
        problems,
    }
}

/// Where an attribute (`#[…]`, `#![…]`) of `code` names `key` (`#[path = …]`,
/// `#[cfg_attr(test, path = …)]`).
fn attributes_naming(code: &str, key: &str) -> Vec<usize> {
    let mut found = Vec::new();
    for (start, _) in code.match_indices('#') {
        let rest = code[start + 1..].trim_start_matches('!').trim_start();
        let Some(inner) = rest.strip_prefix('[') else {
            continue;
        };
        let mut depth = 1;
        let end = inner
            .char_indices()
            .find(|&(_, c)| {
                depth += i32::from(c == '[') - i32::from(c == ']');
                depth == 0
            })
            .map_or(inner.len(), |(i, _)| i);
        if words(&inner[..end]).any(|w| w == key) {
            found.push(start);
        }
    }
    found
}

/// A file's module from the crate root: a crate root file (lib.rs, main.rs) is the root.
fn crate_path(module: &[String]) -> Vec<String> {
    if module == ["lib"] || module == ["main"] {
        Vec::new()
    } else {
        module.to_vec()
    }
}

/// `path`, written in module `here` inside the inline modules `inline`, from the crate root.
fn resolve(
    here: &[String],
    inline: &[String],
    path: &[String],
    root: &str,
    root_items: &BTreeMap<&str, BTreeSet<String>>,
) -> Result<Vec<String>, String> {
    let mut scope: Vec<String> = here.iter().chain(inline).cloned().collect();
    let mut rest = path;
    match path[0].as_str() {
        "crate" => {
            scope.clear();
            rest = &path[1..];
        }
        "self" => rest = &path[1..],
        "super" => {
            while rest.first().is_some_and(|s| s == "super") {
                if scope.pop().is_none() {
                    return Err("super:: above the crate root".into());
                }
                rest = &rest[1..];
            }
        }
        _ => scope.truncate(here.len()), // a submodule of the file's module
    }
    let mut target = scope;
    target.extend(rest.iter().filter(|s| *s != "self").cloned());
    let Some(first) = target.first() else {
        return Ok(vec![root.to_string()]); // the crate root itself
    };
    if first == "*" {
        return Err("a glob of the crate root: every top-level module, any layer".into());
    }
    if root == "lib" && first != "lib" && first != "main" && layer(first).is_some() {
        return Ok(target);
    }
    if root_items
        .get(root)
        .is_some_and(|names| names.contains(first))
    {
        target.insert(0, root.to_string());
        return Ok(target);
    }
    Err(format!(
        "`{first}` is neither a module of the layer table nor an item declared in {root}.rs"
    ))
}

// ---------------------------------------------------------------------------------------
// The rules

/// Rule 1: the references to a layer above or beside their module's.
fn layer_violations(scan: &Scan) -> Vec<String> {
    let mut wrong = Vec::new();
    for r in &scan.refs {
        let (from, to) = (&r.from[0], &r.target[0]);
        if from == to {
            continue;
        }
        let (Some(from_layer), Some(to_layer)) = (layer(from), layer(to)) else {
            continue; // a module outside the table is one of scan's problems already
        };
        if to_layer >= from_layer {
            let how = if to_layer == from_layer {
                "beside"
            } else {
                "above"
            };
            wrong.push(format!(
                "src/{}: {} (layer {from_layer}) imports {} (layer {to_layer}, {how} it): {}",
                r.at,
                r.from.join("::"),
                r.target.join("::"),
                r.written
            ));
        }
    }
    wrong
}

/// An import cycle among the children of a folder.
struct Cycle {
    /// The folder's module (`storage`, `restore::unpack`).
    folder: String,
    /// The children in the cycle, sorted.
    children: BTreeSet<String>,
    /// The cycle, each step with the reference that makes it.
    text: String,
}

/// Rule 3: the cycles among the children of each folder (see the module's doc).
fn cycles(scan: &Scan) -> Vec<Cycle> {
    let modules: BTreeSet<&[String]> = scan.files.iter().map(|f| f.module.as_slice()).collect();
    let folders: BTreeSet<Vec<String>> = scan
        .files
        .iter()
        .filter(|f| f.module.len() > 1)
        .map(|f| f.module[..f.module.len() - 1].to_vec())
        .collect();
    let mut found = Vec::new();
    for parent in &folders {
        let n = parent.len();
        // The child of `parent` a path from the crate root falls in, if it is one.
        let child_of = |path: &[String]| -> Option<String> {
            let name = path.get(n).filter(|_| path.starts_with(parent))?;
            let mut child = parent.clone();
            child.push(name.clone());
            modules
                .iter()
                .any(|m| m.starts_with(&child))
                .then(|| name.clone())
        };
        let through = ParentItems::of(scan, parent, &child_of);
        // child -> child -> the reference that makes the edge.
        let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for r in &scan.refs {
            let Some(from) = child_of(&r.from) else {
                continue;
            };
            let (to, how): (BTreeSet<String>, String) = if let Some(to) = child_of(&r.target) {
                ([to].into(), format!("src/{}: {}", r.at, r.written))
            } else if r.target.starts_with(parent) {
                let item = r.target.get(n).map_or("*", String::as_str);
                let (to, via) = through.deps(item);
                let how = format!("src/{}: {} ({via})", r.at, r.written);
                (to, how)
            } else {
                continue;
            };
            for t in to.into_iter().filter(|t| *t != from) {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(t)
                    .or_insert_with(|| how.clone());
            }
        }
        for cycle in find_cycles(&edges) {
            let steps: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("  {} -> {}: {}", w[0], w[1], edges[&w[0]][&w[1]]))
                .collect();
            let folder = parent.join("::");
            found.push(Cycle {
                text: format!(
                    "import cycle among the children of {}: {}\n{}",
                    folder,
                    cycle.join(" -> "),
                    steps.join("\n")
                ),
                children: cycle.into_iter().collect(),
                folder,
            });
        }
    }
    found
}

/// What the items of a folder's parent module (its mod.rs) lead to among its children.
struct ParentItems {
    /// The parent's file, for the explanations.
    file: String,
    /// Each name of the parent (an item it defines, a name a `use` of it binds) and the
    /// children that name leads to.
    leads: BTreeMap<String, BTreeSet<String>>,
    /// What every name leads to together: for a name the checker does not find.
    all: BTreeSet<String>,
    /// The parent has a glob `use` of one of its children: any name may come from there.
    globbed: BTreeSet<String>,
}

impl ParentItems {
    fn of(scan: &Scan, parent: &[String], child_of: &dyn Fn(&[String]) -> Option<String>) -> Self {
        let mut leads: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut globbed = BTreeSet::new();
        let Some(file) = scan.files.iter().find(|f| f.module == parent) else {
            return ParentItems {
                file: String::new(),
                leads,
                all: BTreeSet::new(),
                globbed,
            };
        };
        for (name, target) in &file.uses {
            let to = target.as_deref().and_then(child_of);
            if name == "*" {
                globbed.extend(to);
            } else {
                leads.entry(name.clone()).or_default().extend(to);
            }
        }
        // Each item's spans: its definition, and the `impl` blocks whose header names it.
        let names: BTreeSet<&str> = file
            .items
            .iter()
            .filter_map(|i| i.name.as_deref())
            .collect();
        let mut spans: BTreeMap<&str, Vec<Range<usize>>> = BTreeMap::new();
        for item in &file.items {
            match &item.name {
                Some(name) => spans.entry(name).or_default().push(item.span.clone()),
                None => {
                    for w in words(&item.header) {
                        if let Some(&name) = names.get(w) {
                            spans.entry(name).or_default().push(item.span.clone());
                        }
                    }
                }
            }
        }
        // Directly: the paths into a child written in the spans, and the names of the
        // parent (its items, its `use`s) the spans mention.
        let mut mentions: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for (&name, ranges) in &spans {
            let mut to: BTreeSet<String> = globbed.clone();
            let mut named = BTreeSet::new();
            for range in ranges {
                for r in scan
                    .refs
                    .iter()
                    .filter(|r| r.from == parent && range.contains(&r.offset))
                {
                    to.extend(child_of(&r.target));
                }
                named.extend(words(&file.code[range.clone()]).map(str::to_string));
            }
            named.remove(name);
            for w in &named {
                if let Some(via_use) = file.uses.iter().find(|(n, _)| n == w) {
                    to.extend(via_use.1.as_deref().and_then(child_of));
                }
            }
            leads.entry(name.to_string()).or_default().extend(to);
            mentions.insert(name, named);
        }
        // Then through the parent's other items, to a fixed point.
        loop {
            let mut grew = false;
            for (name, named) in &mentions {
                let extra: BTreeSet<String> = named
                    .iter()
                    .filter(|w| names.contains(w.as_str()))
                    .flat_map(|w| leads[w].clone())
                    .collect();
                let own = leads.get_mut(*name).unwrap();
                let before = own.len();
                own.extend(extra);
                grew |= own.len() > before;
            }
            if !grew {
                break;
            }
        }
        let all = leads.values().flatten().chain(&globbed).cloned().collect();
        ParentItems {
            file: file.path.clone(),
            leads,
            all,
            globbed,
        }
    }

    /// The children `name` of the parent leads to, and how (for the explanation).
    fn deps(&self, name: &str) -> (BTreeSet<String>, String) {
        let (mut to, how) = match self.leads.get(name) {
            Some(to) => (to.clone(), format!("{name} of src/{}", self.file)),
            None => (
                self.all.clone(),
                format!("`{name}`: any item of src/{}", self.file),
            ),
        };
        to.extend(self.globbed.iter().cloned());
        let list: Vec<&str> = to.iter().map(String::as_str).collect();
        (to.clone(), format!("{how}, which uses {}", list.join(", ")))
    }
}

/// The identifiers of some code.
fn words(code: &str) -> impl Iterator<Item = &str> {
    code.split(|c: char| !is_ident(c))
        .filter(|w| w.starts_with(|c: char| c.is_alphabetic() || c == '_'))
}

/// One cycle through each node that has one, each cycle reported once (by its set of nodes),
/// as the list of its nodes with the first repeated at the end.
fn find_cycles(edges: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut seen: BTreeSet<BTreeSet<String>> = BTreeSet::new();
    for start in edges.keys() {
        // Breadth first from `start`: the shortest way back to it.
        let mut came_from: BTreeMap<&String, &String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut back = None;
        while let Some(m) = queue.pop_front() {
            for next in edges.get(m).into_iter().flat_map(|e| e.keys()) {
                if next == start {
                    back = Some(m);
                    break;
                }
                if !came_from.contains_key(next) {
                    came_from.insert(next, m);
                    queue.push_back(next);
                }
            }
            if back.is_some() {
                break;
            }
        }
        let Some(last) = back else { continue };
        let mut cycle = vec![last.clone()];
        while cycle.last() != Some(start) {
            cycle.push(came_from[cycle.last().unwrap()].clone());
        }
        cycle.reverse();
        cycle.push(start.clone());
        if seen.insert(cycle.iter().cloned().collect()) {
            found.push(cycle);
        }
    }
    found
}

/// Everything wrong with some source: what the checker could not place, the layers broken,
/// the cycles.
fn check(sources: &[(String, String)]) -> Vec<String> {
    let scan = scan(sources);
    let mut wrong = scan.problems.clone();
    wrong.extend(layer_violations(&scan));
    wrong.extend(cycles(&scan).into_iter().map(|c| c.text));
    wrong
}

// ---------------------------------------------------------------------------------------
// The real tree

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src/`, as `(path under src/, text)` pairs.
fn real_sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(&src).unwrap();
            let rel: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into()).collect();
            (rel.join("/"), std::fs::read_to_string(f).unwrap())
        })
        .collect()
}

/// Cycles the real tree has, each tolerated by name until it is gone (the test then asks for
/// its line here to be removed): the folder, and the children in the cycle.
const KNOWN_CYCLES: &[(&str, &[&str])] = &[];

/// The real tree, scanned once for all the tests below.
fn real() -> &'static Scan {
    static SCAN: std::sync::OnceLock<Scan> = std::sync::OnceLock::new();
    SCAN.get_or_init(|| scan(&real_sources()))
}

#[test]
fn the_checker_reads_the_whole_source_and_places_every_path() {
    let scan = real();
    assert!(
        scan.problems.is_empty(),
        "what the layout check cannot place:\n{}",
        scan.problems.join("\n")
    );
    // An empty or half-read scan would pass every rule: each kind of path must be there.
    let count = |f: &dyn Fn(&Reference) -> bool| scan.refs.iter().filter(|r| f(r)).count();
    let files = scan.files.len();
    let all = scan.refs.len();
    let from_crate = count(&|r| r.written.starts_with("crate::"));
    let from_super = count(&|r| r.written.starts_with("super::"));
    let into_child = count(&|r| {
        !r.written.starts_with("crate::")
            && !r.written.starts_with("super::")
            && !r.written.starts_with("self::")
    });
    let in_folders = scan.files.iter().filter(|f| f.module.len() > 1).count();
    let tests_modules: usize = scan
        .files
        .iter()
        .map(|f| {
            f.items
                .iter()
                .filter(|i| i.name.as_deref() == Some("tests"))
                .count()
        })
        .sum();
    assert!(files > 80, "only {files} files read in src/");
    assert!(
        in_folders > 60,
        "only {in_folders} files in folders of src/"
    );
    assert!(all > 500, "only {all} paths found in src/");
    assert!(from_crate > 100, "only {from_crate} crate:: paths found");
    assert!(from_super > 100, "only {from_super} super:: paths found");
    assert!(
        into_child > 20,
        "only {into_child} paths into a file's own submodule"
    );
    assert!(
        tests_modules > 30,
        "only {tests_modules} inline mod tests found"
    );
}

#[test]
fn no_module_imports_a_layer_above_or_beside_it() {
    let wrong = layer_violations(real());
    assert!(
        wrong.is_empty(),
        "imports against the layers of docs/architecture.md:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn files_of_a_folder_import_each_other_without_cycles() {
    let found = cycles(real());
    let known = |c: &Cycle| {
        KNOWN_CYCLES.iter().any(|(folder, children)| {
            c.folder == *folder
                && c.children
                    .iter()
                    .map(String::as_str)
                    .eq(children.iter().copied())
        })
    };
    let new: Vec<&str> = found
        .iter()
        .filter(|c| !known(c))
        .map(|c| c.text.as_str())
        .collect();
    assert!(new.is_empty(), "{}", new.join("\n"));
    for (folder, children) in KNOWN_CYCLES {
        assert!(
            found.iter().any(|c| c.folder == *folder
                && c.children
                    .iter()
                    .map(String::as_str)
                    .eq(children.iter().copied())),
            "the cycle among {children:?} of {folder} is gone: remove it from KNOWN_CYCLES"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The checker, against planted violations

/// A small tree that follows every rule, with what the real one does: a parent and its
/// children importing each other, re-exports, a subfolder, inline test modules, and the
/// literals and comments that once hid paths.
const CLEAN: &[(&str, &str)] = &[
    (
        "lib.rs",
        "mod backup;\nmod error;\nmod restore;\npub mod storage;\n\
         pub fn version() -> &'static str { \"1\" }\n",
    ),
    ("main.rs", "fn main() { let _ = wpbackup::version(); }\n"),
    (
        "error.rs",
        "pub struct UsageError;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
    ),
    (
        "storage/mod.rs",
        r##"pub mod catalog;
pub mod local;

pub use catalog::Key;

/// What every backend is: [`crate::backup::run`] uses it.
pub trait Storage {
    fn name(&self) -> &str;
}

pub struct StorageError;

impl From<catalog::Key> for StorageError {
    fn from(_: catalog::Key) -> Self {
        StorageError
    }
}

pub fn open() -> Box<dyn Storage> {
    Box::new(local::Local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::local::Local;
}
"##,
    ),
    (
        "storage/catalog.rs",
        r##"//! Keys. /* a /* nested */ comment: crate::backup::Plan */
use super::{Storage, StorageError};
use crate::error::UsageError;

pub struct Key;

pub fn list<'a>(s: &'a dyn Storage) -> &'a str {
    let _quote = '"';
    let _apostrophe = '\'';
    let _backslash = '\\';
    let _brace = '{';
    let _byte = b'"';
    let _raw = r#"a "quoted" crate::backup::Plan"#;
    let _bytes = br"\ crate::backup::Plan";
    let _text = "a \"crate::backup::Plan\" {";
    'outer: loop {
        break 'outer;
    }
    s.name()
}

#[cfg(test)]
mod tests {
    use super::super::Storage;
    use super::Key;
}
"##,
    ),
    (
        "storage/local.rs",
        "use super::{Storage, catalog::Key};\n\npub struct Local;\n\n\
         impl Storage for Local {\n    fn name(&self) -> &str { \"local\" }\n}\n",
    ),
    (
        "backup/mod.rs",
        "pub mod plan;\n\nuse crate::storage::{self, Storage};\nuse plan::Plan;\n\n\
         pub fn run() -> Plan {\n    let _ = storage::open();\n    plan::choose()\n}\n",
    ),
    (
        "backup/plan.rs",
        "use crate::storage::Key;\n\npub struct Plan;\n\npub fn choose() -> Plan { Plan }\n\n\
         #[cfg(test)]\nmod tests {\n    use super::super::run;\n    use super::*;\n}\n",
    ),
    (
        "restore/mod.rs",
        "pub mod fetch;\npub mod unpack;\n\npub struct Request;\n\n\
         pub fn restore(r: Request) { fetch::get(&r); }\n",
    ),
    (
        "restore/fetch.rs",
        "use super::Request;\nuse super::unpack::select::keep;\n\n\
         pub fn get(_: &Request) -> bool { keep() }\n",
    ),
    (
        "restore/unpack/mod.rs",
        "pub mod select;\n\npub struct Entry;\n\n#[cfg(test)]\nmod tests {\n    \
         use super::super::Request;\n    use super::select::keep;\n}\n",
    ),
    (
        "restore/unpack/select.rs",
        "use crate::storage::Key;\n\npub fn keep() -> bool { true }\n",
    ),
];

/// `CLEAN` with some files added or replaced, as the checker's input.
fn tree(changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut files: BTreeMap<String, String> = CLEAN
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
    for (path, text) in changes {
        files.insert(path.to_string(), text.to_string());
    }
    files.into_iter().collect()
}

/// `CLEAN` with `file` given `text` appended.
fn with(file: &str, text: &str) -> Vec<(String, String)> {
    let old = CLEAN
        .iter()
        .find(|(p, _)| *p == file)
        .map_or("", |(_, t)| t);
    tree(&[(file, &format!("{old}\n{text}\n"))])
}

/// Asserts that the checker finds exactly one problem in `sources`, and that it says `what`.
#[track_caller]
fn caught(sources: Vec<(String, String)>, what: &str) {
    let wrong = check(&sources);
    assert!(
        wrong.len() == 1 && wrong[0].contains(what),
        "expected one problem saying {what:?}, got:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_clean_tree_passes_and_all_its_paths_are_read() {
    let sources = tree(&[]);
    assert_eq!(check(&sources), Vec::<String>::new());
    let scan = scan(&sources);
    let written: Vec<String> = scan
        .refs
        .iter()
        .map(|r| format!("{} {} = {}", r.at, r.written, r.target.join("::")))
        .collect();
    assert_eq!(
        written,
        [
            "backup/mod.rs:3 crate::storage::self = storage",
            "backup/mod.rs:3 crate::storage::Storage = storage::Storage",
            "backup/mod.rs:4 plan::Plan = backup::plan::Plan",
            "backup/mod.rs:8 plan::choose = backup::plan::choose",
            "backup/plan.rs:1 crate::storage::Key = storage::Key",
            "backup/plan.rs:9 super::super::run = backup::run",
            "backup/plan.rs:10 super::* = backup::plan::*",
            "error.rs:4 super::* = error::*",
            "restore/fetch.rs:1 super::Request = restore::Request",
            "restore/fetch.rs:2 super::unpack::select::keep = restore::unpack::select::keep",
            "restore/mod.rs:6 fetch::get = restore::fetch::get",
            "restore/unpack/mod.rs:7 super::super::Request = restore::Request",
            "restore/unpack/mod.rs:8 super::select::keep = restore::unpack::select::keep",
            "restore/unpack/select.rs:1 crate::storage::Key = storage::Key",
            "storage/catalog.rs:2 super::Storage = storage::Storage",
            "storage/catalog.rs:2 super::StorageError = storage::StorageError",
            "storage/catalog.rs:3 crate::error::UsageError = error::UsageError",
            "storage/catalog.rs:24 super::super::Storage = storage::Storage",
            "storage/catalog.rs:25 super::Key = storage::catalog::Key",
            "storage/local.rs:1 super::Storage = storage::Storage",
            "storage/local.rs:1 super::catalog::Key = storage::catalog::Key",
            "storage/mod.rs:4 catalog::Key = storage::catalog::Key",
            "storage/mod.rs:13 catalog::Key = storage::catalog::Key",
            "storage/mod.rs:14 catalog::Key = storage::catalog::Key",
            "storage/mod.rs:20 local::Local = storage::local::Local",
            "storage/mod.rs:25 super::* = storage::*",
            "storage/mod.rs:26 super::local::Local = storage::local::Local",
        ]
    );
}

#[test]
fn a_layer_above_is_caught() {
    let said = "storage::catalog (layer 2) imports backup::Plan (layer 4, above it)";
    caught(with("storage/catalog.rs", "use crate::backup::Plan;"), said);
    caught(
        with("storage/catalog.rs", "use super::super::backup::Plan;"),
        said,
    );
    caught(
        with(
            "storage/catalog.rs",
            "use crate::{error::UsageError, backup::{Plan}};",
        ),
        said,
    );
    caught(
        with("storage/catalog.rs", "fn f() { crate :: backup :: Plan; }"),
        said,
    );
    // lib.rs is layer 9, and so are the items it declares.
    caught(
        with("storage/catalog.rs", "fn f() { crate::version(); }"),
        "imports lib::version (layer 9, above it)",
    );
    caught(
        with("backup/plan.rs", "use crate::restore::Request;"),
        "backup::plan (layer 4) imports restore::Request (layer 4, beside it)",
    );
}

#[test]
fn an_import_after_a_char_literal_is_caught() {
    let said = "storage/catalog.rs:29: storage::catalog (layer 2) imports backup::Plan";
    for literal in ["'\"'", "'\\''", "'\\\\'", "b'\"'", "'{'", "'\\u{22}'"] {
        let planted =
            format!("const C: char = {literal};\nuse crate::backup::Plan;\nconst S: &str = \"\";");
        caught(with("storage/catalog.rs", &planted), said);
    }
}

#[test]
fn an_import_after_a_raw_string_is_caught() {
    let said = "storage/catalog.rs:29: storage::catalog (layer 2) imports backup::Plan";
    for literal in [
        "r#\"say \"hi\"#",
        "r\"\\\"",
        "br##\"a \"# b\"##",
        "\"a \\\" b\"",
    ] {
        let planted =
            format!("const S: &str = {literal};\nuse crate::backup::Plan;\nconst T: &str = \"\";");
        caught(with("storage/catalog.rs", &planted), said);
    }
    let planted = "/* /* nested */ */\nuse crate::backup::Plan;\n/* */";
    caught(with("storage/catalog.rs", planted), said);
}

#[test]
fn super_in_an_inline_module_counts_from_that_module() {
    // Three steps up from storage::catalog::tests: the crate root.
    caught(
        with(
            "storage/catalog.rs",
            "#[cfg(test)]\nmod tests {\n    use super::super::super::backup::Plan;\n}",
        ),
        "storage/catalog.rs:30: storage::catalog (layer 2) imports backup::Plan (layer 4",
    );
    // Two steps up from storage::local::tests: storage, so catalog and local import each
    // other (one step too many, and this was `crate::catalog`, unknown and skipped).
    caught(
        tree(&[
            (
                "storage/local.rs",
                "pub struct Local;\n#[cfg(test)]\nmod tests {\n    \
                 use super::super::catalog::Key;\n}\n",
            ),
            (
                "storage/catalog.rs",
                "use super::local::Local;\npub struct Key;\n",
            ),
        ]),
        "import cycle among the children of storage: catalog -> local -> catalog",
    );
    // Nested inline modules count too; past the crate root is an error.
    caught(
        with(
            "error.rs",
            "mod a {\n    mod b {\n        use super::super::super::super::x;\n    }\n}",
        ),
        "src/error.rs:9: super::super::super::super::x: super:: above the crate root",
    );
    let at = ["restore".to_string(), "stage".to_string()];
    let super_fetch = ["super".to_string(), "fetch".to_string()];
    let items = BTreeMap::new();
    assert_eq!(
        resolve(&at, &["tests".into()], &super_fetch, "lib", &items).unwrap(),
        ["restore", "stage", "fetch"]
    );
    assert_eq!(
        resolve(&at, &[], &super_fetch, "lib", &items).unwrap(),
        ["restore", "fetch"]
    );
}

#[test]
fn a_cycle_through_a_mod_rs_is_caught() {
    let cycle = "import cycle among the children of storage: catalog -> local -> catalog";
    // Through a name the parent re-exports: `super::Key` is catalog's.
    caught(
        tree(&[
            ("storage/local.rs", "use super::Key;\npub struct Local;\n"),
            (
                "storage/catalog.rs",
                "use super::local::Local;\npub struct Key;\n",
            ),
        ]),
        cycle,
    );
    // Through an item of the parent: `open` uses local.
    caught(
        tree(&[(
            "storage/catalog.rs",
            "pub struct Key;\nfn f() { super::open(); }\n",
        )]),
        "catalog -> local: src/storage/catalog.rs:2: super::open (open of src/storage/mod.rs, \
         which uses local)",
    );
    // Through an item whose impl block uses a child: the trait's default method.
    caught(
        tree(&[
            (
                "storage/mod.rs",
                "pub mod catalog;\npub mod local;\npub trait Storage {}\n\
                 impl dyn Storage {\n    fn key(&self) -> catalog::Key { catalog::Key }\n}\n",
            ),
            (
                "storage/catalog.rs",
                "pub struct Key;\nfn f() { super::local::g(); }\n",
            ),
            ("storage/local.rs", "use super::Storage;\npub fn g() {}\n"),
        ]),
        cycle,
    );
    // Through a glob of the parent: any of its items.
    caught(
        tree(&[
            ("storage/local.rs", "use super::*;\npub struct Local;\n"),
            (
                "storage/mod.rs",
                "pub mod catalog;\npub mod local;\npub fn keys() { catalog::f(); }\n",
            ),
            (
                "storage/catalog.rs",
                "pub fn f() { super::local::Local; }\n",
            ),
        ]),
        cycle,
    );
    // Through a subfolder's mod.rs, and through a file below it.
    let cycle = "import cycle among the children of restore: fetch -> unpack -> fetch";
    caught(
        with("restore/unpack/mod.rs", "use super::fetch::get;"),
        cycle,
    );
    caught(
        with(
            "restore/unpack/select.rs",
            "use crate::restore::fetch::get;",
        ),
        cycle,
    );
}

#[test]
fn a_parent_is_read_item_by_item() {
    let code = code_only(
        "pub static NAME: &'static str = \"\";\n\
         pub(crate) const fn open(x: *const u8) -> impl Storage { x }\n\
         unsafe impl Send for Storage {}\n\
         #[cfg(test)]\nmod tests { fn f(g: fn()) {} }\n\
         mod child;\n\
         use child::{self as c, Thing as Other, *};\n",
    );
    let parsed = parse(&code, &["child".to_string()].into());
    let items: Vec<String> = parsed
        .items
        .iter()
        .map(|i| {
            format!(
                "{}: {}",
                i.name.as_deref().unwrap_or("impl"),
                &code[i.span.clone()]
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            "NAME: static NAME: &'static str = \"\";",
            "open: fn open(x: *const u8) -> impl Storage { x }",
            "impl: impl Send for Storage {}",
            "tests: mod tests { fn f(g: fn()) {} }",
        ]
    );
    let uses: Vec<String> = parsed
        .uses
        .iter()
        .map(|(name, path)| format!("{name} = {}", path.join("::")))
        .collect();
    assert_eq!(
        uses,
        ["c = child::self", "Other = child::Thing", "* = child::*"]
    );
    // A submodule named inside an inline module is still the file's own.
    let code = code_only("mod tests {\n    use child::Thing;\n}\n");
    let parsed = parse(&code, &["child".to_string()].into());
    let at = ["restore".to_string()];
    let w = &parsed.paths[0];
    assert_eq!(w.inline, ["tests"]);
    let target = resolve(&at, &w.inline, &w.path, "lib", &BTreeMap::new()).unwrap();
    assert_eq!(target, ["restore", "child", "Thing"]);
}

#[test]
fn what_the_checker_cannot_place_fails() {
    caught(
        with("storage/catalog.rs", "use crate::nowhere::Thing;"),
        "crate::nowhere::Thing: `nowhere` is neither a module of the layer table nor an item \
         declared in lib.rs",
    );
    caught(
        with("storage/catalog.rs", "use super::super::*;"),
        "a glob of the crate root",
    );
    caught(
        tree(&[("newthing.rs", "pub struct New;\n")]),
        "src/newthing.rs: module newthing is not in the layer table",
    );
    caught(
        with("storage/catalog.rs", "use crate as root;"),
        "another name for crate",
    );
    caught(
        with("lib.rs", "extern crate self as wpbackup;"),
        "another name for crate",
    );
    caught(
        with("storage/catalog.rs", "include!(\"x.rs\");"),
        "include!",
    );
    caught(
        with("storage/catalog.rs", "fn f() { let s = \"unterminated; }"),
        "src/storage/catalog.rs: its braces do not balance",
    );
    caught(
        with(
            "storage/mod.rs",
            "#[cfg_attr(test, path = \"elsewhere.rs\")]\nmod other;",
        ),
        "a #[path] attribute",
    );
}

#[test]
fn code_only_keeps_code_and_lines() {
    let code = code_only(
        "let a = '\"'; let b = '\\''; let c = b'{'; // crate::x\n\
         fn f<'a>(x: &'a str) -> &'static str { 'l: loop { break 'l; } }\n\
         let r = r#\"\" crate::y\"#; let s = \"\\\"\"; let r#type = 1; /* /* */ crate::z */\n\
         crate::kept",
    );
    assert_eq!(
        code,
        "let a = ' '; let b = ' '; let c = b' ';  \n\
         fn f<'a>(x: &'a str) -> &'static str { 'l: loop { break 'l; } }\n\
         let r = \"\"; let s = \"\"; let r#type = 1;  \n\
         crate::kept"
    );
}

/// A folder that grows past a fifth of `src/` holds more than one thing (issue 21: `restore/`
/// was a quarter of it); split it before it does, and say why in docs/architecture.md.
#[test]
fn no_folder_holds_more_than_a_fifth_of_the_source() {
    let mut per_top: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    for (path, text) in real_sources() {
        let lines = text.lines().count();
        total += lines;
        if let Some((top, _)) = path.split_once('/') {
            *per_top.entry(top.to_string()).or_default() += lines;
        }
    }
    assert!(total > 10_000, "src/ read as {total} lines");
    let big: Vec<String> = per_top
        .iter()
        .filter(|(_, n)| **n * 5 > total)
        .map(|(top, n)| format!("src/{top}/: {n} of {total} lines"))
        .collect();
    assert!(big.is_empty(), "folders above a fifth of src/: {big:?}");
}
