//! Storage: where archives go.
//!
//! One narrow trait, [`Storage`], that every provider implements (S3-compatible services in
//! [`s3`], a local directory in [`local`]); the code that backs up, restores, lists and prunes is
//! written once against it. Its error contract is part of the interface: [`StorageError`] says
//! whether an object was missing, whether retrying could help, or whether the provider itself is
//! unusable (wrong credentials, missing bucket), so that failover can decide what to do.
//!
//! Uploads are streamed: the producer (the archiver) sends chunks through a bounded channel
//! ([`Body`]); the storage consumes them and hashes them as they pass, so no temporary file holds
//! the archive and memory stays bounded by the channel and the parts in flight.

pub mod catalog;
pub mod failover;
pub mod leftovers;
pub mod local;
pub mod prune;
pub mod s3;

use std::io;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::io::AsyncRead;
use tokio::sync::mpsc;

use crate::config::{StorageConfig, StorageKind};

/// Object metadata key (S3 `x-amz-meta-sha256`) holding the sha256 of the whole object.
pub const SHA256_METADATA_KEY: &str = "sha256";

/// The most objects one listing returns: a bucket anyone can write to must not make a
/// command hold an unbounded list (a site's nightly archives for decades are a few thousand).
pub const MAX_LISTED: usize = 1_000_000;

/// The error of a listing that passed [`MAX_LISTED`] objects.
pub fn too_many_listed(storage: &str, prefix: &str) -> StorageError {
    StorageError::Permanent(format!(
        "storage {storage}: more than {MAX_LISTED} objects under {prefix:?}: not what wpbackup stores there; look at the bucket (a prefix shared with something else, or objects written by someone else) and remove what is not archives"
    ))
}

/// What can go wrong talking to a storage, classed by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object (or prefix) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The storage cannot be used as configured: wrong credentials, missing bucket, no
    /// permission. Retrying will not help; a person must fix the config or the provider.
    #[error("{0}")]
    Permanent(String),
    /// A network failure, a timeout, a 5xx that survived the retries: the storage may work later.
    #[error("{0}")]
    Transient(String),
    /// The producer of an upload failed (the dump or the file walk): the upload was aborted
    /// and the storage itself is fine.
    #[error(transparent)]
    Source(#[from] ProducerError),
}

impl StorageError {
    /// True when the failure is the producer's, not the storage's (failover would not help).
    pub fn is_source(&self) -> bool {
        matches!(self, StorageError::Source(_))
    }
}

/// One stored object as a listing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Key relative to the storage's prefix (`server/site/site_20260101T000000Z.tar.zst`).
    pub key: String,
    pub size: u64,
    pub last_modified: Option<DateTime<Utc>>,
    /// The sha256 recorded with the object, when the listing call returns it (head does).
    pub sha256: Option<String>,
}

/// What a finished upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    pub size: u64,
    /// Lower-case hex sha256 of the whole object, computed while streaming.
    pub sha256: String,
}

/// Why the producer of an upload (the archiver) could not go on; the cause chain is kept and
/// shown whole (`a: b: c`).
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct ProducerError(pub anyhow::Error);

impl ProducerError {
    pub fn msg(m: impl std::fmt::Display + std::fmt::Debug + Send + Sync + 'static) -> Self {
        ProducerError(anyhow::Error::msg(m))
    }
}

/// A chunk of an upload, or the producer's failure (which aborts the upload).
pub type Chunk = Result<Bytes, ProducerError>;

/// What a progress display is told about an upload as it happens. Called from the storage's
/// tasks: it must be quick and never block.
pub trait UploadProgress: Send + Sync {
    /// `bytes` more are stored (an S3 part accepted, bytes written to a local file).
    fn stored(&self, bytes: u64);
    /// Every byte is stored: the storage is finishing the object (completing the multipart
    /// upload and recording its sha256, or syncing and renaming the file into place).
    fn completing(&self);
}

/// A storage's handle on an upload's [`UploadProgress`] (nothing, when nobody watches).
#[derive(Clone, Default)]
pub struct ProgressSink(Option<std::sync::Arc<dyn UploadProgress>>);

impl ProgressSink {
    pub fn stored(&self, bytes: u64) {
        if let Some(p) = &self.0 {
            p.stored(bytes);
        }
    }

    pub fn completing(&self) {
        if let Some(p) = &self.0 {
            p.completing();
        }
    }
}

/// The body of a streamed upload: chunks from a bounded channel, hashed and counted as they
/// are taken. The producer ends the stream by dropping its sender after the last chunk; a
/// producer that fails sends `Err(reason)` and the storage aborts the upload.
pub struct Body {
    rx: mpsc::Receiver<Chunk>,
    hasher: Sha256,
    size: u64,
    progress: ProgressSink,
    /// `upload.max_mib_per_sec`: the pace chunks are handed to the storage at.
    pace: Option<Pace>,
}

/// A bandwidth limit, as a schedule: the body's first `n` bytes are not all handed over before
/// `n / bytes_per_sec` seconds after the first one was asked for. Without a burst allowance, so
/// the whole body takes at least its size over the limit; a storage that waited (a slow part
/// upload) does not earn a burst beyond the schedule either, it only finds the next chunk due.
#[derive(Debug, Clone, Copy)]
struct Pace {
    bytes_per_sec: u64,
    /// When the first chunk was asked for.
    start: Option<tokio::time::Instant>,
}

impl Pace {
    /// When the body's first `total` bytes may all have been handed over.
    fn due(&mut self, total: u64) -> tokio::time::Instant {
        let start = *self.start.get_or_insert_with(tokio::time::Instant::now);
        start + std::time::Duration::from_secs_f64(total as f64 / self.bytes_per_sec as f64)
    }
}

impl Body {
    /// A channel of `capacity` chunks: the sender for the producer, the body for the storage.
    pub fn channel(capacity: usize) -> (mpsc::Sender<Chunk>, Body) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            tx,
            Body {
                rx,
                hasher: Sha256::new(),
                size: 0,
                progress: ProgressSink::default(),
                pace: None,
            },
        )
    }

    /// Tell `progress` what the storage does with this body.
    pub fn with_progress(mut self, progress: std::sync::Arc<dyn UploadProgress>) -> Body {
        self.progress = ProgressSink(Some(progress));
        self
    }

    /// Hand the chunks over no faster than `bytes_per_sec` (`None`: as fast as they come).
    pub fn with_limit(mut self, bytes_per_sec: Option<u64>) -> Body {
        self.pace = bytes_per_sec.filter(|b| *b > 0).map(|bytes_per_sec| Pace {
            bytes_per_sec,
            start: None,
        });
        self
    }

    /// Where the storage reports the bytes it stored and the object's completion.
    pub fn progress(&self) -> ProgressSink {
        self.progress.clone()
    }

    /// The next chunk, `Ok(None)` at the end, or the producer's failure.
    /// A SIGTERM or SIGINT ends the body with an error, so the storage aborts the upload.
    pub async fn next(&mut self) -> Result<Option<Bytes>, StorageError> {
        if let Some(pace) = &mut self.pace {
            pace.due(0); // the clock starts when the storage first asks
        }
        let received = tokio::select! {
            biased;
            sig = crate::interrupt::wait() => return Err(interrupted(sig)),
            r = self.rx.recv() => r,
        };
        match received {
            None => Ok(None),
            Some(Ok(bytes)) => {
                self.hasher.update(&bytes);
                self.size += bytes.len() as u64;
                if let Some(pace) = &mut self.pace {
                    let due = pace.due(self.size);
                    tokio::select! {
                        biased;
                        sig = crate::interrupt::wait() => return Err(interrupted(sig)),
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
                Ok(Some(bytes))
            }
            Some(Err(reason)) => Err(StorageError::Source(reason)),
        }
    }

    /// Size and sha256 of everything taken so far (call after `next` returned `Ok(None)`).
    pub fn finish(self) -> PutOutcome {
        PutOutcome {
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }
}

/// The error that ends a body when the run is interrupted by `sig`.
fn interrupted(sig: i32) -> StorageError {
    ProducerError::msg(format!("interrupted by {}", crate::interrupt::name(sig))).into()
}

/// A download, as an async byte stream.
pub type Download = Pin<Box<dyn AsyncRead + Send>>;

/// The interface every storage provider implements. Keys are relative to the storage's
/// configured prefix (or directory); implementations add it.
#[async_trait]
pub trait Storage: Send + Sync {
    /// The storage's name from config.json.
    fn name(&self) -> &str;
    /// Endpoint and bucket, as recorded in `s3_archives` (`local` storages give their path).
    fn location(&self) -> (String, String);
    /// A cheap pre-flight check that the storage is reachable and the credentials are accepted.
    async fn check(&self) -> Result<(), StorageError>;
    /// Store `body` under `key`, streaming; on failure nothing is left looking like a finished
    /// object (multipart uploads are aborted, partial files removed).
    async fn put(&self, key: &str, body: Body) -> Result<PutOutcome, StorageError>;
    /// Stream an object down.
    async fn get(&self, key: &str) -> Result<Download, StorageError>;
    /// Size, time and recorded sha256 of one object.
    async fn head(&self, key: &str) -> Result<ObjectInfo, StorageError>;
    /// Every object whose key starts with `prefix`, in no particular order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError>;
    /// Remove one object; removing a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Remove what uploads of `server_id`'s archives left behind when their run died (killed,
    /// out of memory, power lost) and are older than `min_age`: S3 multipart uploads never
    /// completed, a local storage's partial files. Only keys shaped like this server's archives
    /// are touched. Nothing to do by default.
    async fn clean_leftovers(
        &self,
        server_id: &str,
        min_age: std::time::Duration,
    ) -> Result<leftovers::Cleanup, StorageError> {
        let _ = (server_id, min_age);
        Ok(leftovers::Cleanup::default())
    }
}

/// Build the storage a config entry describes.
pub fn open(cfg: &StorageConfig) -> anyhow::Result<Box<dyn Storage>> {
    Ok(match &cfg.kind {
        StorageKind::Local { path } => Box::new(local::LocalStorage::new(&cfg.name, path.clone())),
        StorageKind::S3(s3cfg) => Box::new(s3::S3Storage::new(&cfg.name, s3cfg)?),
    })
}

/// Map an I/O error to the storage error class it belongs to.
pub fn io_error(context: &str, err: &io::Error) -> StorageError {
    let mut msg = format!("{context}: {err}");
    if matches!(
        err.raw_os_error(),
        Some(libc::ENOSPC | libc::EFBIG | libc::EDQUOT)
    ) {
        msg.push_str(": out of space (free some, or point the storage elsewhere)");
    }
    match err.kind() {
        io::ErrorKind::NotFound => StorageError::NotFound(msg),
        io::ErrorKind::PermissionDenied => StorageError::Permanent(msg),
        _ => StorageError::Transient(msg),
    }
}

/// The producer's end of a [`Body`]: a blocking `Write` (for the archiver's thread) that cuts
/// the stream into chunks. Dropped without [`BodyWriter::finish`] (an error, a panic), it sends
/// a failure so the storage aborts instead of storing a truncated archive.
pub struct BodyWriter {
    tx: Option<mpsc::Sender<Chunk>>,
    /// Also given every chunk sent, before the storage gets it (the signature's hash).
    tap: Option<std::sync::mpsc::SyncSender<Bytes>>,
    buf: Vec<u8>,
    chunk_size: usize,
}

impl BodyWriter {
    pub fn new(tx: mpsc::Sender<Chunk>, chunk_size: usize) -> BodyWriter {
        BodyWriter {
            tx: Some(tx),
            tap: None,
            buf: Vec::with_capacity(chunk_size),
            chunk_size,
        }
    }

    /// Give `tap` every chunk too (shared, not copied), in order; it is dropped when the
    /// stream ends or the writer goes down.
    pub fn with_tap(mut self, tap: std::sync::mpsc::SyncSender<Bytes>) -> BodyWriter {
        self.tap = Some(tap);
        self
    }

    fn send(&mut self, chunk: Chunk) -> io::Result<()> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| io::Error::other("upload already ended"))?;
        tx.blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, UPLOAD_STOPPED))
    }

    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(self.chunk_size),
        ));
        if let Some(tap) = &self.tap {
            tap.send(full.clone())
                .map_err(|_| io::Error::other("the archive's hash stopped taking data"))?;
        }
        self.send(Ok(full))
    }

    /// Send what is buffered and end the stream cleanly.
    pub fn finish(mut self) -> io::Result<()> {
        self.send_buf()?;
        self.tx = None;
        self.tap = None;
        Ok(())
    }
}

/// The message of the error a producer gets when the storage stopped taking data.
pub const UPLOAD_STOPPED: &str = "the storage stopped taking data";

impl io::Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.chunk_size - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= self.chunk_size {
            self.send_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.blocking_send(Err(ProducerError::msg(
                "the archive producer stopped before the end",
            )));
        }
    }
}
