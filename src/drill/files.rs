//! The restored files against the manifest, on disk after the extraction: as many files and
//! symlinks, as many bytes, and the archived sha256 of each sampled file
//! ([`crate::manifest::FileSample`]) read back from the restored copy (never through a
//! symlink).

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::manifest::Manifest;
use crate::output::human_bytes;

/// What the files showed: proofs, failures, and what could not be compared.
#[derive(Debug, Default)]
pub struct FilesChecked {
    pub proven: Vec<String>,
    pub failed: Vec<String>,
    pub notes: Vec<String>,
}

/// Files and symlinks under `root` (not the directories), and the bytes of the files.
fn count(root: &Path) -> anyhow::Result<(u64, u64)> {
    let (mut files, mut bytes) = (0u64, 0u64);
    for entry in walkdir::WalkDir::new(root).follow_links(false).min_depth(1) {
        let entry = entry?;
        let t = entry.file_type();
        if t.is_symlink() {
            files += 1;
        } else if t.is_file() {
            files += 1;
            bytes += entry.metadata()?.len();
        }
    }
    Ok((files, bytes))
}

/// The sha256 of the regular file at `path` (a symlink there is an error, not followed).
fn sha256_of(path: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// Check the files restored under `root` against `m`.
pub fn check(root: &Path, m: &Manifest) -> FilesChecked {
    let mut out = FilesChecked::default();
    // A differential archive's restore point is the whole site, as its manifest counts it.
    let (want_files, want_bytes) = match &m.differential {
        Some(d) => (d.site_file_count, d.site_bytes),
        None => (m.file_count, m.bytes),
    };
    match count(root) {
        Ok((files, bytes)) if files == want_files && bytes == want_bytes => out
            .proven
            .push(format!("{files} files, {} as recorded", human_bytes(bytes))),
        Ok((files, bytes)) => out.failed.push(format!(
            "the restored files do not match manifest.json: {files} files of {bytes} bytes on disk, {want_files} of {want_bytes} recorded"
        )),
        Err(e) => out
            .failed
            .push(format!("cannot read the restored files: {e}")),
    }
    if m.file_samples.is_empty() {
        out.notes.push(
            "the archive records no file hashes (made before wpbackup recorded them): only the count and bytes of the files were compared".into(),
        );
        return out;
    }
    let mut bad = Vec::new();
    for s in &m.file_samples {
        match sha256_of(&root.join(&s.path)) {
            Ok(h) if h == s.sha256 => {}
            Ok(h) => bad.push(format!("{} has sha256 {h}, {} recorded", s.path, s.sha256)),
            Err(e) => bad.push(format!("{}: {e}", s.path)),
        }
    }
    if bad.is_empty() {
        out.proven.push(format!(
            "{} sampled files' sha256 as recorded",
            m.file_samples.len()
        ));
    } else {
        out.failed.push(format!(
            "restored files differ from the archived ones: {}",
            bad.join("; ")
        ));
    }
    out
}
