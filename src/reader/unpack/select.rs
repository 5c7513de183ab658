//! Which part of `files/` an extraction keeps, for `restore --only`: some paths of the site,
//! each a file, a symlink or a directory with everything under it. The directories on the way
//! to a path are kept too (with the archive's mode), and nothing else is written; the rest of
//! the archive is still read, hashed and checked against its manifest. What was found of each
//! path, and how much was extracted, is counted as the entries go by.

use std::path::{Path, PathBuf};

use anyhow::bail;
use tar::EntryType;

/// The paths to extract (relative to the site, no `..`) and what was found of them.
#[derive(Debug, Clone)]
pub struct Selection {
    paths: Vec<PathBuf>,
    found: Vec<bool>,
    /// Files, symlinks and hard links extracted.
    pub files: u64,
    /// Bytes of the regular files extracted.
    pub bytes: u64,
}

impl Selection {
    pub fn new(paths: Vec<PathBuf>) -> Selection {
        Selection {
            found: vec![false; paths.len()],
            paths,
            files: 0,
            bytes: 0,
        }
    }

    /// Whether `rel` is one of the paths or under one.
    pub fn covers(&self, rel: &Path) -> bool {
        self.paths.iter().any(|p| rel.starts_with(p))
    }

    /// Whether the entry at `rel` (of `kind`, `size` bytes) is extracted: it is one of the
    /// paths or under one (the path is then found, and the entry counted), or a directory on
    /// the way to one.
    pub fn wants(&mut self, rel: &Path, kind: EntryType, size: u64) -> bool {
        let mut covered = false;
        for (p, found) in self.paths.iter().zip(self.found.iter_mut()) {
            if rel.starts_with(p) {
                *found = true;
                covered = true;
            }
        }
        if !covered {
            return kind == EntryType::Directory && self.paths.iter().any(|p| p.starts_with(rel));
        }
        if kind != EntryType::Directory {
            self.files += 1;
        }
        if kind.is_file() || kind == EntryType::Continuous {
            self.bytes += size;
        }
        true
    }

    /// A hard link at `rel` can only be made to a file that is extracted too.
    pub fn ensure_link_target(&self, rel: &Path, target: &Path) -> anyhow::Result<()> {
        if !self.covers(target) {
            bail!(
                "files/{} is a hard link to files/{}, which is not among the paths restored: add --only {}",
                rel.display(),
                target.display(),
                target.display()
            );
        }
        Ok(())
    }

    /// The paths that are not in the archive.
    pub fn missing(&self) -> Vec<&Path> {
        self.paths
            .iter()
            .zip(&self.found)
            .filter(|(_, found)| !**found)
            .map(|(p, _)| p.as_path())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_directories_on_the_way_and_nothing_else() {
        let mut s = Selection::new(vec!["wp-content/uploads/2026".into(), "robots.txt".into()]);
        let (d, f) = (EntryType::Directory, EntryType::Regular);
        assert!(s.wants(Path::new(""), d, 0));
        assert!(s.wants(Path::new("wp-content"), d, 0));
        assert!(!s.wants(Path::new("wp-content"), f, 3), "a file on the way");
        assert!(!s.wants(Path::new("wp-content/plugins"), d, 0));
        assert!(!s.wants(Path::new("wp-content/uploads/2025/a.jpg"), f, 3));
        assert!(!s.wants(Path::new("wp-content/uploads/20261"), d, 0));
        assert_eq!(s.missing().len(), 2);
        assert!(s.wants(Path::new("wp-content/uploads/2026"), d, 0));
        assert!(s.wants(Path::new("wp-content/uploads/2026/01/a.jpg"), f, 5));
        assert!(s.wants(
            Path::new("wp-content/uploads/2026/l"),
            EntryType::Symlink,
            0
        ));
        assert_eq!(s.missing(), vec![Path::new("robots.txt")]);
        assert!(s.wants(Path::new("robots.txt"), f, 7));
        assert!(s.missing().is_empty());
        assert_eq!((s.files, s.bytes), (3, 12));
        assert!(
            s.ensure_link_target(Path::new("robots.txt"), Path::new("a"))
                .is_err()
        );
        assert!(
            s.ensure_link_target(
                Path::new("robots.txt"),
                Path::new("wp-content/uploads/2026/x")
            )
            .is_ok()
        );
    }
}
