//! The architecture of docs/architecture.md, checked on the source itself: every
//! `crate::...` and `super::...` path in `src/` is read, and
//! - a top-level module only imports the layers below it (never one above, never a sibling of
//!   its own layer: backup, restore and d1 know nothing of each other);
//! - inside a folder, the files do not import each other in a cycle.
//!
//! Comments are skipped; everything else (code, tests) counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layer of each top-level module (file or folder of `src/`), lowest first.
fn layer(top: &str) -> Option<u32> {
    Some(match top {
        "secret" | "interrupt" | "output" | "lock" | "error" | "crypt" | "retention"
        | "manifest" | "logdb" | "cli" | "serialized" => 0,
        "config" => 1,
        "storage" | "dbtools" => 2,
        "site" | "reader" | "clone" => 3,
        "backup" | "restore" | "d1" => 4,
        "report" | "drill" => 5,
        "configure" => 6,
        "app" => 7,
        "commands" => 8,
        "main" | "lib" => 9,
        _ => return None,
    })
}

/// A module path (`["restore", "database"]`) for each source file.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

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

/// The source without comments and without string and char literals.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Every path that starts at `crate::` or `super::`, groups expanded:
/// `crate::{a::{b, c}, d}` gives `crate::a::b`, `crate::a::c`, `crate::d`.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(pos) = code[from..].find(start) {
            let at = from + pos;
            from = at + start.len();
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let head = start.trim_end_matches("::").to_string();
            expand(&code[from..], vec![head], &mut out);
        }
    }
    out
}

fn expand(rest: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut depth = 1;
        let mut item_start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' | ',' if depth == 1 => {
                    expand(&inner[item_start..i], prefix.clone(), out);
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
    let ident: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if ident.is_empty() {
        out.push(prefix);
        return;
    }
    let mut path = prefix;
    path.push(ident.clone());
    match rest[ident.len()..].strip_prefix("::") {
        Some(next) => expand(next, path, out),
        None => out.push(path),
    }
}

/// `crate::a::b::c` or `super::x` from module `at`, as an absolute module path.
fn absolute(at: &[String], path: &[String]) -> Vec<String> {
    let mut base: Vec<String> = Vec::new();
    let mut rest = path;
    if path[0] == "super" {
        base = at.to_vec();
        // `super` in `x/mod.rs` (module `x`) is the crate root; in `x/y.rs` it is `x`.
        while rest.first().is_some_and(|s| s == "super") {
            base.pop();
            rest = &rest[1..];
        }
    } else {
        rest = &rest[1..];
    }
    base.extend(rest.iter().cloned());
    base
}

struct Source {
    module: Vec<String>,
    refs: Vec<Vec<String>>,
}

fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .iter()
        .map(|f| {
            let module = module_of(&src, f);
            let text = std::fs::read_to_string(f).unwrap();
            let refs = paths(&code_only(&text))
                .iter()
                .map(|p| absolute(&module, p))
                .filter(|p| !p.is_empty())
                .collect();
            Source { module, refs }
        })
        .collect()
}

#[test]
fn no_module_imports_a_layer_above_or_beside_it() {
    let mut wrong = BTreeSet::new();
    for s in sources() {
        let from = s.module[0].clone();
        let Some(from_layer) = layer(&from) else {
            panic!(
                "src/{from}: not in the layer table of tests/layout.rs and docs/architecture.md"
            );
        };
        for r in &s.refs {
            let to = &r[0];
            if *to == from {
                continue;
            }
            let Some(to_layer) = layer(to) else {
                continue; // an item of main.rs's scope (a macro, say), not a module
            };
            if to_layer >= from_layer {
                wrong.insert(format!("{} imports {}", s.module.join("::"), r.join("::")));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers of docs/architecture.md:\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn files_of_a_folder_import_each_other_without_cycles() {
    let all = sources();
    let modules: BTreeSet<Vec<String>> = all.iter().map(|s| s.module.clone()).collect();
    // Edges between sibling files (not the folder's own mod.rs, which declares them).
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for s in &all {
        if s.module.len() < 2 {
            continue;
        }
        for r in &s.refs {
            // The longest prefix of the path that is a module of the crate.
            let target = (1..=r.len())
                .rev()
                .map(|n| r[..n].to_vec())
                .find(|p| modules.contains(p));
            if let Some(t) = target
                && t.len() == s.module.len()
                && t[..t.len() - 1] == s.module[..s.module.len() - 1]
                && t != s.module
            {
                edges.entry(s.module.clone()).or_default().insert(t);
            }
        }
    }
    for start in edges.keys() {
        let mut stack = vec![(start.clone(), vec![start.join("::")])];
        let mut seen = BTreeSet::new();
        while let Some((m, trail)) = stack.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                if next == start {
                    panic!(
                        "import cycle: {} -> {}",
                        trail.join(" -> "),
                        start.join("::")
                    );
                }
                if seen.insert(next.clone()) {
                    let mut t = trail.clone();
                    t.push(next.join("::"));
                    stack.push((next.clone(), t));
                }
            }
        }
    }
}

#[test]
fn the_checker_sees_grouped_and_relative_imports() {
    let code = code_only(
        "use crate::{a::{b, c::D}, e}; // crate::hidden\nlet s = \"crate::x\"; super::f::g();",
    );
    let found = paths(&code);
    let joined: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        joined,
        ["crate::a::b", "crate::a::c::D", "crate::e", "super::f::g"]
    );
    let at = vec!["restore".to_string(), "stage".to_string()];
    assert_eq!(
        absolute(&at, &["super".into(), "fetch".into()]),
        ["restore", "fetch"]
    );
}
