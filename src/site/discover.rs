//! Finding the WordPress sites on a server, for `configure` to offer by name.
//!
//! A site is a directory holding `wp-config.php`, or a WordPress root (`wp-settings.php`) whose
//! `wp-config.php` sits in the parent directory (WordPress's own rule). The usual places are
//! searched a few levels deep, without following symlinks and without descending into a site
//! once found; any folder a person names is searched the same way.

use std::path::{Path, PathBuf};

use super::root::{self, ConfigAt};

/// Where web servers usually keep sites (`*` is one directory level, as in a shell glob).
pub const DEFAULT_ROOTS: &[&str] = &[
    "/var/www",
    "/srv/www",
    "/home/*/public_html",
    "/usr/share/nginx",
];

/// How deep under a root a site may sit (`/var/www/example.com/htdocs/blog` is 3).
const MAX_DEPTH: usize = 4;

/// Directory names that say nothing about the site: the site is named after their parent.
const GENERIC_NAMES: &[&str] = &[
    "public_html",
    "html",
    "htdocs",
    "www",
    "web",
    "public",
    "wordpress",
    "wp",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundSite {
    pub name: String,
    pub path: PathBuf,
}

/// The default roots that exist on this machine, `*` expanded. `WPBACKUP_SCAN_ROOTS` (paths
/// separated by `:`; empty for none) replaces them, for containers that keep sites elsewhere.
pub fn default_roots() -> Vec<PathBuf> {
    if let Ok(v) = std::env::var("WPBACKUP_SCAN_ROOTS") {
        return v
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
    }
    let mut out = Vec::new();
    for root in DEFAULT_ROOTS {
        match root.split_once("/*/") {
            Some((base, rest)) => {
                let Ok(rd) = std::fs::read_dir(base) else {
                    continue;
                };
                let mut dirs: Vec<PathBuf> = rd.flatten().map(|e| e.path().join(rest)).collect();
                dirs.sort();
                out.extend(dirs.into_iter().filter(|p| p.is_dir()));
            }
            None => {
                let p = PathBuf::from(root);
                if p.is_dir() {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// True when `dir` is a WordPress site root: it holds the `wp-config.php` WordPress loads, or
/// it is a WordPress root (`wp-settings.php`) that loads its parent's
/// ([`super::root::wp_config`]).
pub fn is_site(dir: &Path) -> bool {
    match root::wp_config(dir) {
        Some(ConfigAt::Root(_)) => true,
        Some(ConfigAt::Parent(_)) => dir.join("wp-settings.php").exists(),
        None => false,
    }
}

/// Every site under `roots`, each once (by canonical path), in a stable order.
pub fn find(roots: &[PathBuf]) -> Vec<FoundSite> {
    let mut found: Vec<FoundSite> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for root in roots {
        let mut walk = walkdir::WalkDir::new(root)
            .max_depth(MAX_DEPTH)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter();
        while let Some(entry) = walk.next() {
            let Ok(entry) = entry else { continue };
            if !entry.file_type().is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            if name == "wp-content" || name == "wp-includes" || name == "wp-admin" {
                walk.skip_current_dir();
                continue;
            }
            let path = entry.path();
            if is_site(path) {
                // A wp-config.php in a parent of a WordPress root belongs to the root below it.
                if !path.join("wp-settings.php").is_file() && !root::roots_reading(path).is_empty()
                {
                    continue;
                }
                let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
                if seen.insert(canon.clone()) {
                    found.push(FoundSite {
                        name: site_name(&canon),
                        path: canon,
                    });
                }
                walk.skip_current_dir();
            }
        }
    }
    found
}

/// A name for the site at `path`, usable in object keys: the directory's name, or its parent's
/// when the directory's is generic (`/home/alice/public_html` is `alice`).
pub fn site_name(path: &Path) -> String {
    let mut comps: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    if comps.len() > 1
        && comps
            .last()
            .is_some_and(|l| GENERIC_NAMES.contains(&l.to_ascii_lowercase().as_str()))
    {
        comps.pop();
    }
    let raw = comps.pop().unwrap_or_else(|| "site".into());
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches('.').to_string();
    if clean.is_empty() {
        "site".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "<?php\n").unwrap();
    }

    #[test]
    fn finds_sites_in_the_usual_shapes_once_each() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        touch(&r.join("example.com/wp-config.php"));
        touch(&r.join("example.com/wp-settings.php"));
        touch(&r.join("example.com/wp-content/plugins/x/wp-config.php")); // never descended
        // wp-config.php one level up, as WordPress allows.
        touch(&r.join("shop.example/wp-config.php"));
        touch(&r.join("shop.example/htdocs/wp-settings.php"));
        touch(&r.join("alice/public_html/wp-config.php"));
        touch(&r.join("not-a-site/index.html"));
        std::os::unix::fs::symlink(r.join("example.com"), r.join("link")).unwrap();
        let found = find(&[r.to_path_buf(), r.join("example.com")]);
        let names: Vec<_> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["alice", "example.com", "shop.example"], "{found:?}");
        assert!(found[2].path.ends_with("shop.example/htdocs"), "{found:?}");
    }

    #[test]
    fn names_are_safe_for_keys() {
        assert_eq!(site_name(Path::new("/var/www/example.com")), "example.com");
        assert_eq!(site_name(Path::new("/home/bob/public_html")), "bob");
        assert_eq!(site_name(Path::new("/srv/www/my site/htdocs")), "my-site");
        assert_eq!(site_name(Path::new("/var/www/html")), "www");
    }
}
