//! Reading an archive's tar.zst stream the way restore and verify need it: every entry is read
//! and its path checked (absolute paths and `..` are refused, never skipped quietly), `files/`
//! is optionally extracted under a new directory, `database.sql` is hashed and optionally
//! copied out, and [`Contents::problems`] compares `manifest.json` with what was actually read.
//!
//! Entries may come in any order (formats.md). Directories are created private first and get
//! their own mode, mtime (and owner, when running as root) at the end, deepest first, so a
//! read-only directory in the archive cannot block its own contents.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};
use sha2::{Digest, Sha256};
use tar::EntryType;

use crate::archive::{FORMAT_VERSION, Manifest};
use crate::dump::COMPLETION_MARKER;

/// What to do with the archive's contents besides checking them.
#[derive(Default)]
pub struct Options<'a> {
    /// Extract `files/` into `<dir>/files` (`dir` must exist and hold no `files`).
    pub extract_to: Option<&'a Path>,
    /// Copy `database.sql` into this file.
    pub database_to: Option<&'a mut File>,
    /// Restore the owner and group of every entry (only root can).
    pub preserve_owner: bool,
}

/// `database.sql` as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseFacts {
    pub sha256: String,
    pub bytes: u64,
    /// Ends with the dump tool's completion line.
    pub complete: bool,
}

/// What the archive holds.
#[derive(Debug, Default)]
pub struct Contents {
    pub manifest: Option<Manifest>,
    pub manifest_error: Option<String>,
    /// Files and symlinks under `files/` (what the manifest's `file_count` counts).
    pub file_count: u64,
    /// Bytes of the regular files under `files/`.
    pub bytes: u64,
    pub database: Option<DatabaseFacts>,
    /// `files/wp-config.php`, when the archive has one.
    pub wp_config: Option<Vec<u8>>,
}

impl Contents {
    /// Everything that does not add up; empty when the archive is whole.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Some(m) = &self.manifest else {
            out.push(match &self.manifest_error {
                Some(e) => format!("manifest.json cannot be read: {e}"),
                None => "manifest.json is missing".into(),
            });
            return out;
        };
        if m.format_version > FORMAT_VERSION {
            out.push(format!(
                "the archive has format version {} and this wpbackup reads up to {FORMAT_VERSION}: upgrade wpbackup",
                m.format_version
            ));
        }
        if m.file_count != self.file_count {
            out.push(format!(
                "manifest.json lists {} files but the archive holds {}",
                m.file_count, self.file_count
            ));
        }
        if m.bytes != self.bytes {
            out.push(format!(
                "manifest.json counts {} bytes of files but the archive holds {}",
                m.bytes, self.bytes
            ));
        }
        match &self.database {
            None => out.push("database.sql is missing".into()),
            Some(db) => {
                if db.sha256 != m.database_sha256 || db.bytes != m.database_bytes {
                    out.push(format!(
                        "database.sql ({} bytes, sha256 {}) is not the dump manifest.json describes ({} bytes, sha256 {})",
                        db.bytes, db.sha256, m.database_bytes, m.database_sha256
                    ));
                }
                if !db.complete {
                    out.push(
                        "database.sql does not end with the dump tool's completion line: the dump is incomplete"
                            .into(),
                    );
                }
            }
        }
        out
    }
}

/// Where an entry belongs.
#[derive(Debug, PartialEq, Eq)]
enum Place {
    /// Under `files/`: the path relative to the site ("" for `files` itself).
    File(PathBuf),
    Database,
    Manifest,
    /// Another top-level entry (a later format's): read and ignored.
    Other,
}

/// Classify an entry path, refusing anything that could land outside the target.
fn place(path: &Path) -> Result<Place, String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::CurDir if parts.is_empty() => {}
            _ => {
                return Err(format!(
                    "unsafe path {:?} in the archive (absolute or with \"..\"): refusing it",
                    path.display().to_string()
                ));
            }
        }
    }
    Ok(match parts.as_slice() {
        [] => Place::Other,
        [first, rest @ ..] if *first == "files" => Place::File(rest.iter().collect()),
        [only] if *only == "database.sql" => Place::Database,
        [only] if *only == "manifest.json" => Place::Manifest,
        _ => Place::Other,
    })
}

/// A directory to finish once everything is in it.
struct DirMeta {
    path: PathBuf,
    mode: u32,
    mtime: u64,
    owner: Option<(u32, u32)>,
}

/// Read the whole archive from `reader` (the compressed bytes), doing what `opts` says.
pub fn read(mut reader: impl Read, opts: Options) -> anyhow::Result<Contents> {
    let Options {
        extract_to,
        mut database_to,
        preserve_owner,
    } = opts;
    let decoder =
        zstd::stream::read::Decoder::new(&mut reader).context("cannot start the zstd decoder")?;
    let mut archive = tar::Archive::new(decoder);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_preserve_ownerships(preserve_owner);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(false);
    let mut contents = Contents::default();
    let mut dirs: Vec<DirMeta> = Vec::new();
    let entries = archive
        .entries()
        .context("cannot read the archive (not a tar.zst?)")?;
    for entry in entries {
        let mut entry = entry.context("the archive is damaged or truncated")?;
        let path = entry
            .path()
            .context("an entry has an unreadable path")?
            .into_owned();
        let place = place(&path).map_err(anyhow::Error::msg)?;
        let kind = entry.header().entry_type();
        match place {
            Place::File(rel) => {
                let is_dir = kind == EntryType::Directory;
                if kind.is_file() || kind == EntryType::Continuous {
                    contents.file_count += 1;
                    contents.bytes += entry.size();
                } else if kind == EntryType::Symlink || kind == EntryType::Link {
                    contents.file_count += 1;
                } else if !is_dir {
                    // Devices and fifos are never archived; a foreign archive's are skipped.
                    continue;
                }
                let Some(root) = extract_to else {
                    if rel == Path::new("wp-config.php") && kind.is_file() {
                        contents.wp_config = Some(read_small(&mut entry, "wp-config.php")?);
                    }
                    continue;
                };
                let dst = root.join("files").join(&rel);
                if is_dir {
                    std::fs::create_dir_all(&dst)
                        .with_context(|| format!("cannot create {}", dst.display()))?;
                    let h = entry.header();
                    dirs.push(DirMeta {
                        path: dst,
                        mode: h.mode().unwrap_or(0o755) & 0o7777,
                        mtime: h.mtime().unwrap_or(0),
                        owner: match (preserve_owner, h.uid(), h.gid()) {
                            (true, Ok(u), Ok(g)) => Some((u as u32, g as u32)),
                            _ => None,
                        },
                    });
                } else {
                    let done = entry
                        .unpack_in(root)
                        .with_context(|| format!("cannot extract {}", path.display()))?;
                    if !done {
                        bail!("refusing to extract {}: unsafe path", path.display());
                    }
                    if rel == Path::new("wp-config.php") && kind.is_file() {
                        contents.wp_config = Some(
                            std::fs::read(&dst)
                                .with_context(|| format!("cannot read back {}", dst.display()))?,
                        );
                    }
                }
            }
            Place::Database => {
                let mut tap = Tap::default();
                let mut out = database_to.as_deref_mut();
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = entry
                        .read(&mut buf)
                        .context("cannot read database.sql from the archive")?;
                    if n == 0 {
                        break;
                    }
                    tap.update(&buf[..n]);
                    if let Some(f) = out.as_mut() {
                        f.write_all(&buf[..n])
                            .context("cannot write database.sql out")?;
                    }
                }
                contents.database = Some(tap.finish());
            }
            Place::Manifest => {
                let data = read_small(&mut entry, "manifest.json")?;
                match serde_json::from_slice::<Manifest>(&data) {
                    Ok(m) => contents.manifest = Some(m),
                    Err(e) => contents.manifest_error = Some(e.to_string()),
                }
            }
            Place::Other => {}
        }
    }
    // The rest of the stream (tar padding, the end of the zstd frame) must decode too.
    let mut decoder = archive.into_inner();
    io::copy(&mut decoder, &mut io::sink()).context("the archive is damaged or truncated")?;
    drop(decoder);
    io::copy(&mut reader, &mut io::sink()).context("cannot read the archive to its end")?;
    if let Some(f) = database_to {
        f.flush().context("cannot write database.sql out")?;
    }
    finish_dirs(dirs)?;
    Ok(contents)
}

fn read_small(entry: &mut impl Read, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut data = Vec::new();
    entry
        .take(4 * 1024 * 1024)
        .read_to_end(&mut data)
        .with_context(|| format!("cannot read {what} from the archive"))?;
    Ok(data)
}

/// Give directories their archived mode, mtime and owner, deepest first.
fn finish_dirs(mut dirs: Vec<DirMeta>) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    dirs.sort_by_key(|d| std::cmp::Reverse(d.path.components().count()));
    for d in dirs {
        if let Some((uid, gid)) = d.owner {
            std::os::unix::fs::chown(&d.path, Some(uid), Some(gid))
                .with_context(|| format!("cannot set the owner of {}", d.path.display()))?;
        }
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(d.mtime);
        if let Ok(f) = File::open(&d.path) {
            let _ = f.set_modified(t);
        }
        std::fs::set_permissions(&d.path, std::fs::Permissions::from_mode(d.mode))
            .with_context(|| format!("cannot set the mode of {}", d.path.display()))?;
    }
    Ok(())
}

/// Hash, count and keep the end of `database.sql`.
#[derive(Default)]
struct Tap {
    hasher: Sha256,
    bytes: u64,
    tail: Vec<u8>,
}

impl Tap {
    fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        self.tail.extend_from_slice(data);
        if self.tail.len() > 4096 {
            self.tail.drain(..self.tail.len() - 256);
        }
    }

    fn finish(self) -> DatabaseFacts {
        let tail = &self.tail[self.tail.len().saturating_sub(256)..];
        DatabaseFacts {
            sha256: hex::encode(self.hasher.finalize()),
            bytes: self.bytes,
            complete: tail
                .windows(COMPLETION_MARKER.len())
                .any(|w| w == COMPLETION_MARKER),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tar::Header;

    pub(crate) const DUMP: &[u8] = b"CREATE TABLE t (id int);\n-- Dump completed on 2026-11-24\n";

    /// manifest.json for an archive of `files` files of `bytes` bytes and dump `db`.
    pub(crate) fn manifest(files: u64, bytes: u64, db: &[u8]) -> Vec<u8> {
        let m = Manifest {
            format_version: 1,
            wpbackup_version: "0".into(),
            site: "s".into(),
            server_id: "x".into(),
            created_at: "2026-11-24T00:00:00Z".into(),
            wordpress_version: None,
            database_name: "d".into(),
            table_prefix: "wp_".into(),
            siteurl: None,
            file_count: files,
            bytes,
            database_sha256: hex::encode(Sha256::digest(db)),
            database_bytes: db.len() as u64,
            skipped: vec![],
        };
        serde_json::to_vec(&m).unwrap()
    }

    /// A tar.zst with raw entry names (the tar crate refuses to write unsafe ones itself).
    fn archive(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(if *kind == EntryType::Directory {
                0o755
            } else {
                0o644
            });
            h.set_mtime(1_700_000_000);
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            h.set_cksum();
            tar.append(&h, *data).unwrap();
        }
        zstd::encode_all(tar.into_inner().unwrap().as_slice(), 3).unwrap()
    }

    fn good() -> Vec<u8> {
        let m = manifest(2, 5, DUMP);
        archive(&[
            ("files", EntryType::Directory, b""),
            ("files/wp-content", EntryType::Directory, b""),
            ("files/wp-content/a.txt", EntryType::Regular, b"hello"),
            ("files/wp-config.php", EntryType::Regular, b""),
            ("database.sql", EntryType::Regular, DUMP),
            ("manifest.json", EntryType::Regular, &m),
        ])
    }

    #[test]
    fn a_whole_archive_has_no_problems_and_extracts() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = tempfile::tempfile().unwrap();
        let c = read(
            good().as_slice(),
            Options {
                extract_to: Some(dir.path()),
                database_to: Some(&mut db),
                preserve_owner: false,
            },
        )
        .unwrap();
        assert_eq!(c.problems(), Vec::<String>::new());
        assert_eq!(
            std::fs::read(dir.path().join("files/wp-content/a.txt")).unwrap(),
            b"hello"
        );
        assert_eq!(c.wp_config.as_deref(), Some(&b""[..]));
        use std::io::Seek;
        db.rewind().unwrap();
        let mut back = Vec::new();
        db.read_to_end(&mut back).unwrap();
        assert_eq!(back, DUMP);
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(dir.path().join("files/wp-content")).unwrap();
        assert_eq!(meta.mtime(), 1_700_000_000);
        assert_eq!(meta.mode() & 0o777, 0o755);
    }

    #[test]
    fn mismatches_are_problems() {
        let m = manifest(3, 5, DUMP);
        let cut = &DUMP[..20];
        let a = archive(&[
            ("files/a.txt", EntryType::Regular, b"hello"),
            ("database.sql", EntryType::Regular, cut),
            ("manifest.json", EntryType::Regular, &m),
        ]);
        let p = read(a.as_slice(), Options::default()).unwrap().problems();
        assert!(p.iter().any(|s| s.contains("lists 3 files")), "{p:?}");
        assert!(p.iter().any(|s| s.contains("is not the dump")), "{p:?}");
        assert!(p.iter().any(|s| s.contains("completion line")), "{p:?}");

        let a = archive(&[("files/a.txt", EntryType::Regular, b"x")]);
        let p = read(a.as_slice(), Options::default()).unwrap().problems();
        assert_eq!(p, vec!["manifest.json is missing".to_string()]);
    }

    #[test]
    fn traversal_is_refused() {
        for bad in [
            "files/../../evil",
            "/etc/evil",
            "../evil",
            "files/a/../../x",
        ] {
            let a = archive(&[(bad, EntryType::Regular, b"x")]);
            let dir = tempfile::tempdir().unwrap();
            let err = read(
                a.as_slice(),
                Options {
                    extract_to: Some(&dir.path().join("t")),
                    ..Options::default()
                },
            )
            .unwrap_err();
            assert!(format!("{err:#}").contains("unsafe path"), "{bad}: {err:#}");
        }
        // A symlink pointing out, then a file written through it: the tar crate checks the
        // real parent of every file against the target.
        let out = tempfile::tempdir().unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Symlink);
        h.set_size(0);
        tar.append_link(&mut h, "files/link", out.path()).unwrap();
        let mut h = Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        tar.append_data(&mut h, "files/link/evil", &b"x"[..])
            .unwrap();
        let a = zstd::encode_all(tar.into_inner().unwrap().as_slice(), 3).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = read(
            a.as_slice(),
            Options {
                extract_to: Some(dir.path()),
                ..Options::default()
            },
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("outside"), "{err:#}");
        assert!(!out.path().join("evil").exists());
    }

    #[test]
    fn truncated_or_garbage_is_an_error() {
        let a = good();
        assert!(read(&a[..a.len() / 2], Options::default()).is_err());
        assert!(read(&b"not an archive"[..], Options::default()).is_err());
        let mut extra = a.clone();
        extra.extend_from_slice(b"trailing garbage");
        assert!(read(extra.as_slice(), Options::default()).is_err());
    }
}
