//! Where WordPress finds a site's `wp-config.php`, by wp-load.php's own rule, and which
//! WordPress root a directory inside a site belongs to.
//!
//! wp-load.php loads `ABSPATH . 'wp-config.php'` when it exists; else
//! `dirname(ABSPATH) . '/wp-config.php'`, but only when that exists and the parent holds no
//! `wp-settings.php` (such a parent is another WordPress install, and its configuration is not
//! this one's). ABSPATH is the real path of the WordPress root (PHP's `__DIR__` resolves
//! symlinks) and `file_exists` follows symlinks: so do these functions.

use std::path::{Path, PathBuf};

/// Where WordPress reads a site's `wp-config.php` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigAt {
    /// `<root>/wp-config.php`: inside the site (archived under `files/`).
    Root(PathBuf),
    /// `<parent of root>/wp-config.php`: beside the site (archived as `parent/wp-config.php`).
    Parent(PathBuf),
}

impl ConfigAt {
    pub fn path(&self) -> &Path {
        match self {
            ConfigAt::Root(p) | ConfigAt::Parent(p) => p,
        }
    }
}

/// The `wp-config.php` WordPress would load for the root `site`, by wp-load.php's rule.
pub fn wp_config(site: &Path) -> Option<ConfigAt> {
    let here = site.join("wp-config.php");
    if here.exists() {
        return Some(ConfigAt::Root(here));
    }
    let real = site.canonicalize().unwrap_or_else(|_| site.to_path_buf());
    let parent = real.parent()?;
    let there = parent.join("wp-config.php");
    (there.exists() && !parent.join("wp-settings.php").exists()).then_some(ConfigAt::Parent(there))
}

/// The parent directory's `wp-config.php`, when it is the one WordPress loads for `site`.
pub fn parent_wp_config(site: &Path) -> Option<PathBuf> {
    match wp_config(site)? {
        ConfigAt::Parent(p) => Some(p),
        ConfigAt::Root(_) => None,
    }
}

/// For a directory inside a site (`.../site/wp-content`): the WordPress root above it, the
/// nearest directory holding `wp-settings.php`. `None` when `dir` is a site itself (a
/// WordPress root, or a directory with a `wp-config.php` WordPress would load) or lies in no
/// site.
pub fn root_above(dir: &Path) -> Option<PathBuf> {
    if dir.join("wp-settings.php").exists() || wp_config(dir).is_some() {
        return None;
    }
    let real = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    real.ancestors()
        .skip(1)
        .find(|a| a.join("wp-settings.php").exists())
        .map(Path::to_path_buf)
}

/// The WordPress roots directly in `dir` that load `dir/wp-config.php` (roots without their
/// own, when `dir` is not a root itself): the sites a `wp-config.php` there belongs to.
pub fn roots_reading(dir: &Path) -> Vec<PathBuf> {
    if dir.join("wp-settings.php").exists() {
        return Vec::new();
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut roots: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("wp-settings.php").exists() && !p.join("wp-config.php").exists())
        .collect();
    roots.sort();
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "<?php\n").unwrap();
    }

    #[test]
    fn wp_load_rule() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().canonicalize().unwrap();
        let site = top.join("example.com/htdocs");
        touch(&site.join("wp-settings.php"));
        assert_eq!(wp_config(&site), None);
        // In the parent: used.
        touch(&top.join("example.com/wp-config.php"));
        let parent = top.join("example.com/wp-config.php");
        assert_eq!(wp_config(&site), Some(ConfigAt::Parent(parent.clone())));
        assert_eq!(parent_wp_config(&site), Some(parent.clone()));
        // Reached through a symlink: the parent is the real directory's, as PHP's __DIR__.
        std::os::unix::fs::symlink(&site, top.join("link")).unwrap();
        assert_eq!(parent_wp_config(&top.join("link")), Some(parent.clone()));
        // A parent that is a WordPress root itself (a nested install): not this site's.
        touch(&top.join("example.com/wp-settings.php"));
        assert_eq!(wp_config(&site), None);
        std::fs::remove_file(top.join("example.com/wp-settings.php")).unwrap();
        // The site's own wins.
        touch(&site.join("wp-config.php"));
        assert_eq!(
            wp_config(&site),
            Some(ConfigAt::Root(site.join("wp-config.php")))
        );
        assert_eq!(parent_wp_config(&site), None);
    }

    #[test]
    fn a_directory_inside_a_site_names_its_root() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().canonicalize().unwrap();
        let site = top.join("site");
        touch(&site.join("wp-settings.php"));
        touch(&site.join("wp-config.php"));
        touch(&site.join("wp-content/uploads/a.jpg"));
        assert_eq!(root_above(&site.join("wp-content")), Some(site.clone()));
        assert_eq!(
            root_above(&site.join("wp-content/uploads")),
            Some(site.clone())
        );
        assert_eq!(root_above(&site), None);
        assert_eq!(root_above(&top), None);
        // A nested install inside a site is a site of its own.
        touch(&site.join("blog/wp-settings.php"));
        assert_eq!(root_above(&site.join("blog")), None);
    }

    #[test]
    fn the_roots_a_parent_config_belongs_to() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path();
        touch(&top.join("wp-config.php"));
        touch(&top.join("a/wp-settings.php"));
        touch(&top.join("b/wp-settings.php"));
        touch(&top.join("b/wp-config.php"));
        touch(&top.join("c/index.html"));
        assert_eq!(roots_reading(top), vec![top.join("a")]);
        touch(&top.join("wp-settings.php"));
        assert!(roots_reading(top).is_empty());
    }
}
