//! A local directory as storage (a mounted disk, an NFS share, the `--path` default).
//!
//! Keys become paths under the directory. An upload is written to a hidden temporary name in
//! the target directory, fsynced and renamed, so a crash or a full disk never leaves a file
//! that looks like a finished archive. The sha256 sits beside the archive in `KEY.sha256`
//! (the format `sha256sum -c` reads). Directories and files are created private (0700/0600).

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::leftovers::{self, Cleanup, Removed};
use super::{Body, Download, ObjectInfo, PutOutcome, Storage, StorageError, io_error};

/// Suffix of the checksum file beside each archive.
const SHA_SUFFIX: &str = ".sha256";
/// Marker in the names of uploads in progress.
const PARTIAL_MARKER: &str = ".partial-";

pub struct LocalStorage {
    name: String,
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(name: &str, root: PathBuf) -> LocalStorage {
        LocalStorage {
            name: name.to_string(),
            root,
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        let rel = Path::new(key);
        if key.is_empty()
            || rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(StorageError::Permanent(format!("invalid key {key:?}")));
        }
        Ok(self.root.join(rel))
    }

    fn ctx(&self, what: &str, path: &Path) -> String {
        format!("storage {}: {what} {}", self.name, path.display())
    }

    /// Write the body into a new file at `tmp`, synced. Each chunk is written on a blocking
    /// thread as it came (shared, not copied into a buffer of tokio's `File`) while the next
    /// one is received and hashed: one write in flight, as tokio's `File` would have it.
    async fn write_body(&self, tmp: &Path, mut body: Body) -> Result<Body, StorageError> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp)
            .map_err(|e| io_error(&self.ctx("cannot create", tmp), &e))?;
        let progress = body.progress();
        let mut slot = Slot::Idle(file);
        while let Some(chunk) = body.next().await? {
            let file = self.landed(slot, tmp, &progress).await?;
            slot = Slot::Busy(tokio::task::spawn_blocking(move || {
                use std::io::Write;
                let mut file = file;
                let written = file.write_all(&chunk).map(|()| chunk.len() as u64);
                (file, written)
            }));
        }
        let file = self.landed(slot, tmp, &progress).await?;
        progress.completing();
        tokio::task::spawn_blocking(move || file.sync_all())
            .await
            .map_err(|e| StorageError::Transient(format!("{}: {e}", self.ctx("cannot sync", tmp))))?
            .map_err(|e| io_error(&self.ctx("cannot sync", tmp), &e))?;
        Ok(body)
    }

    /// The file once the write in flight (if any) has landed, counted as stored.
    async fn landed(
        &self,
        slot: Slot,
        tmp: &Path,
        progress: &super::ProgressSink,
    ) -> Result<std::fs::File, StorageError> {
        match slot {
            Slot::Idle(file) => Ok(file),
            Slot::Busy(write) => {
                let (file, written) = write.await.map_err(|e| {
                    StorageError::Transient(format!("{}: {e}", self.ctx("cannot write", tmp)))
                })?;
                let n = written.map_err(|e| io_error(&self.ctx("cannot write", tmp), &e))?;
                progress.stored(n);
                Ok(file)
            }
        }
    }
}

impl LocalStorage {
    /// The partial files of uploads of `server_id`'s archives (`.{file}.partial-{pid}`, and
    /// `.{file}.sha256.partial-{pid}`): each path, and the key it was going to become.
    fn partial_files(&self, server_id: &str) -> Result<Vec<(PathBuf, String)>, StorageError> {
        let base = self.root.join(server_id);
        let mut out = Vec::new();
        if !base.is_dir() {
            return Ok(out);
        }
        for entry in walkdir::WalkDir::new(&base).follow_links(false) {
            let entry = entry
                .map_err(|e| StorageError::Transient(format!("storage {}: {e}", self.name)))?;
            let name = entry.file_name().to_string_lossy();
            let Some(file) = name
                .strip_prefix('.')
                .and_then(|n| n.rsplit_once(PARTIAL_MARKER))
                .filter(|(_, pid)| pid.bytes().all(|b| b.is_ascii_digit()))
                .map(|(file, _)| file.strip_suffix(SHA_SUFFIX).unwrap_or(file))
            else {
                continue;
            };
            let Some(dir) = entry
                .path()
                .parent()
                .and_then(|d| d.strip_prefix(&self.root).ok())
            else {
                continue;
            };
            let key = format!("{}/{file}", dir.to_string_lossy());
            if entry.file_type().is_file() && super::catalog::is_ours(&key, server_id) {
                out.push((entry.path().to_path_buf(), key));
            }
        }
        Ok(out)
    }

    /// The probes of pre-flight checks (`.wpbackup-check-{pid}` in the root) a dead run left.
    fn check_probes(&self) -> Vec<(PathBuf, String)> {
        let Ok(dir) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        dir.flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let pid = name.strip_prefix(CHECK_PROBE)?;
                (!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| (e.path(), name))
            })
            .collect()
    }
}

/// Name of the probe file the pre-flight check writes (its pid after it).
const CHECK_PROBE: &str = ".wpbackup-check-";

fn mkdirs(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The file an upload is written to: free, or with one chunk's write in flight.
enum Slot {
    Idle(std::fs::File),
    Busy(tokio::task::JoinHandle<(std::fs::File, std::io::Result<u64>)>),
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[async_trait]
impl Storage for LocalStorage {
    fn name(&self) -> &str {
        &self.name
    }

    fn location(&self) -> (String, String) {
        ("local".to_string(), self.root.display().to_string())
    }

    async fn check(&self) -> Result<(), StorageError> {
        mkdirs(&self.root)
            .map_err(|e| io_error(&self.ctx("cannot create the directory", &self.root), &e))?;
        let probe = self
            .root
            .join(format!("{CHECK_PROBE}{}", std::process::id()));
        std::fs::write(&probe, b"ok").map_err(|e| {
            StorageError::Permanent(format!("{}: {e}", self.ctx("cannot write to", &self.root)))
        })?;
        let _ = std::fs::remove_file(&probe);
        Ok(())
    }

    async fn put(&self, key: &str, body: Body) -> Result<PutOutcome, StorageError> {
        let path = self.path(key)?;
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        mkdirs(&dir).map_err(|e| io_error(&self.ctx("cannot create the directory", &dir), &e))?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(
            ".{file_name}{PARTIAL_MARKER}{}",
            std::process::id()
        ));
        let body = match self.write_body(&tmp, body).await {
            Ok(b) => b,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let outcome = body.finish();
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_error(&self.ctx("cannot rename into", &path), &e));
        }
        // A signature (`KEY.minisig`) is small and signed: no checksum file of its own.
        if file_name.ends_with(crate::sign::SIG_SUFFIX) {
            sync_dir(&dir);
            return Ok(outcome);
        }
        let sha_path = dir.join(format!("{file_name}{SHA_SUFFIX}"));
        let sha_tmp = dir.join(format!(
            ".{file_name}{SHA_SUFFIX}{PARTIAL_MARKER}{}",
            std::process::id()
        ));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&sha_tmp)
            .and_then(|mut f| {
                use std::io::Write;
                writeln!(f, "{}  {file_name}", outcome.sha256)?;
                f.sync_all()
            })
            .and_then(|_| std::fs::rename(&sha_tmp, &sha_path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&sha_tmp);
            let _ = std::fs::remove_file(&path);
            return Err(io_error(&self.ctx("cannot write", &sha_path), &e));
        }
        sync_dir(&dir);
        Ok(outcome)
    }

    async fn get(&self, key: &str) -> Result<Download, StorageError> {
        let path = self.path(key)?;
        let f = tokio::fs::File::open(&path)
            .await
            .map_err(|e| io_error(&self.ctx("cannot open", &path), &e))?;
        Ok(Box::pin(f))
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, StorageError> {
        let path = self.path(key)?;
        let meta =
            std::fs::metadata(&path).map_err(|e| io_error(&self.ctx("cannot read", &path), &e))?;
        let sha256 = std::fs::read_to_string(format!("{}{SHA_SUFFIX}", path.display()))
            .ok()
            .and_then(|s| s.split_whitespace().next().map(str::to_string));
        Ok(ObjectInfo {
            key: key.to_string(),
            size: meta.len(),
            last_modified: meta.modified().ok().map(DateTime::<Utc>::from),
            sha256,
        })
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let mut out = Vec::new();
        if !self.root.exists() {
            return Ok(out);
        }
        for entry in walkdir::WalkDir::new(&self.root).follow_links(false) {
            let entry = entry
                .map_err(|e| StorageError::Transient(format!("storage {}: {e}", self.name)))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            if name.starts_with('.')
                || name.ends_with(SHA_SUFFIX)
                || name.ends_with(crate::sign::SIG_SUFFIX)
            {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&self.root) else {
                continue;
            };
            let key = rel.to_string_lossy().into_owned();
            if !key.starts_with(prefix) {
                continue;
            }
            let meta = entry
                .metadata()
                .map_err(|e| StorageError::Transient(format!("storage {}: {e}", self.name)))?;
            if out.len() >= super::MAX_LISTED {
                return Err(super::too_many_listed(&self.name, prefix));
            }
            out.push(ObjectInfo {
                key,
                size: meta.len(),
                last_modified: meta.modified().ok().map(DateTime::<Utc>::from),
                sha256: None,
            });
        }
        Ok(out)
    }

    async fn clean_leftovers(
        &self,
        server_id: &str,
        min_age: std::time::Duration,
    ) -> Result<Cleanup, StorageError> {
        let now = Utc::now();
        let mut cleanup = Cleanup::default();
        let mut found = self.partial_files(server_id)?;
        found.extend(self.check_probes());
        for (path, key) in found {
            let modified = std::fs::symlink_metadata(&path)
                .and_then(|m| m.modified())
                .map(DateTime::<Utc>::from);
            // A file still being written is touched all the time: its age is since its last write.
            let Some(age) = modified
                .ok()
                .and_then(|t| leftovers::stale(t, now, min_age))
            else {
                continue;
            };
            match std::fs::remove_file(&path) {
                Ok(()) => cleanup.removed.push(Removed { key, age }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => cleanup.failed.push(
                    io_error(&self.ctx("cannot remove the partial file", &path), &e).to_string(),
                ),
            }
        }
        Ok(cleanup)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key)?;
        for p in [
            path.clone(),
            PathBuf::from(format!("{}{SHA_SUFFIX}", path.display())),
        ] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&self.ctx("cannot delete", &p), &e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tokio::io::AsyncReadExt;

    /// Create `rel` under `root`, last written `hours` ago.
    fn plant(root: &Path, rel: &str, hours: u64) -> PathBuf {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"part of an archive").unwrap();
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(hours * 3600);
        filetime::set_file_mtime(&p, filetime::FileTime::from_system_time(t)).unwrap();
        p
    }

    #[tokio::test]
    async fn a_killed_runs_partial_files_are_removed_once_old() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let st = LocalStorage::new("l", root.to_path_buf());
        let archive = ".blog_20260101T030000Z.tar.zst";
        let stale = [
            plant(root, &format!("srv/blog/{archive}.partial-4242"), 30),
            plant(root, &format!("srv/blog/{archive}.sha256.partial-4242"), 30),
            plant(root, ".wpbackup-check-4242", 30),
        ];
        let kept = [
            // Still being written (or just died): too young.
            plant(root, &format!("srv/blog/{archive}.partial-77"), 1),
            // Another server's, a finished archive, and files that are not wpbackup's.
            plant(root, &format!("other/blog/{archive}.partial-4242"), 30),
            plant(root, "srv/blog/blog_20260101T030000Z.tar.zst", 30),
            plant(root, "srv/blog/.notes.partial-4242", 30),
            plant(root, "srv/blog/.blog_x.tar.zst.partial-4242", 30),
        ];
        let min_age = std::time::Duration::from_secs(12 * 3600);
        let cleanup = st.clean_leftovers("srv", min_age).await.unwrap();
        for p in &stale {
            assert!(!p.exists(), "{} should be gone", p.display());
        }
        for p in &kept {
            assert!(p.exists(), "{} should be kept", p.display());
        }
        let mut keys: Vec<_> = cleanup.removed.iter().map(|r| r.key.as_str()).collect();
        keys.sort();
        let key = "srv/blog/blog_20260101T030000Z.tar.zst";
        assert_eq!(keys, vec![".wpbackup-check-4242", key, key]);
        assert!(cleanup.removed.iter().all(|r| r.age >= min_age));
        assert!(cleanup.failed.is_empty(), "{:?}", cleanup.failed);
    }

    #[tokio::test]
    async fn round_trip_and_failed_upload_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let st = LocalStorage::new("l", dir.path().to_path_buf());
        st.check().await.unwrap();

        let (tx, body) = Body::channel(2);
        tokio::spawn(async move {
            tx.send(Ok(Bytes::from_static(b"hello "))).await.unwrap();
            tx.send(Ok(Bytes::from_static(b"world"))).await.unwrap();
        });
        let out = st.put("s/a/a_1.tar.zst", body).await.unwrap();
        assert_eq!(out.size, 11);
        let info = st.head("s/a/a_1.tar.zst").await.unwrap();
        assert_eq!(info.sha256.as_deref(), Some(out.sha256.as_str()));
        let mut got = Vec::new();
        st.get("s/a/a_1.tar.zst")
            .await
            .unwrap()
            .read_to_end(&mut got)
            .await
            .unwrap();
        assert_eq!(got, b"hello world");

        let (tx, body) = Body::channel(2);
        tokio::spawn(async move {
            tx.send(Ok(Bytes::from_static(b"partial"))).await.unwrap();
            tx.send(Err(crate::storage::ProducerError::msg("dump failed")))
                .await
                .unwrap();
        });
        let err = st.put("s/a/a_2.tar.zst", body).await.unwrap_err();
        assert!(err.is_source(), "{err}");
        let keys: Vec<String> = st
            .list("s/")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys, vec!["s/a/a_1.tar.zst".to_string()]);
        let names: Vec<String> = std::fs::read_dir(dir.path().join("s/a"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");

        st.delete("s/a/a_1.tar.zst").await.unwrap();
        assert!(st.list("").await.unwrap().is_empty());
        assert!(matches!(
            st.head("s/a/a_1.tar.zst").await,
            Err(StorageError::NotFound(_))
        ));
        assert!(st.path("../x").is_err());
    }
}
