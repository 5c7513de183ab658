//! One storage suite that every backend passes (restic's `internal/backend/test`): the cases
//! are written once, against the [`Storage`] trait and a [`Backend`] that gives each test an
//! empty place of its own, and instantiated for the local storage, s3s-fs and moto's S3 server
//! (`storage_suite::local::*`, `storage_suite::s3s::*`, `storage_suite::moto::*`).
//!
//! A case that needs something only some backends have (keys that are checked, a server that
//! can stall, unfinished uploads that can be listed) asks for it as a trait bound, so a backend
//! runs it only when it has it; the backends it skips, and why, are written at
//! [`suite!`]'s calls and in docs/storage.md.

mod backends;

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use wpbackup::config::UploadSettings;
use wpbackup::storage::{Body, ProducerError, PutOutcome, Storage, StorageError};

use crate::util::wordpress::noise;

/// A place of its own on one backend, for one test, and what the suite needs to see behind
/// the [`Storage`] trait.
pub trait Backend: Sized {
    /// Start (or join) the backend; every call gives an empty place (a bucket prefix, a
    /// directory) that no other test uses.
    fn new(test: &str) -> Self;
    /// The storage under test on that place, cutting uploads into parts of `upload.part_size`.
    fn storage(&self) -> Box<dyn Storage>;
    /// What the backend holds on that place beside the objects `list` shows: unfinished
    /// multipart uploads and their parts, partial files, checksum files of removed archives.
    async fn debris(&self) -> Vec<String>;
    /// The same storage pointed at a bucket (for a local storage, a directory) that does not
    /// exist, and that bucket's name as a person would look for it in an error.
    fn missing_bucket(&self) -> (Box<dyn Storage>, String);
    /// Whether an upload into a missing bucket is refused (s3s-fs 0.14 makes the bucket's
    /// directory instead; the pre-flight check, which every backup runs first, still fails).
    const REFUSES_UPLOAD_TO_MISSING_BUCKET: bool = true;
}

/// A backend that checks the keys it is sent.
pub trait ChecksKeys: Backend {
    /// The same place, with a wrong secret key.
    fn wrong_key(&self) -> Box<dyn Storage>;
}

/// A backend whose unfinished uploads can be listed, so that what a killed run left can be
/// found and removed (`Storage::clean_leftovers`).
pub trait ListsUploads: Backend {
    /// Leave an upload of `key` unfinished, as a run killed in the middle of it does.
    async fn leave_unfinished(&self, key: &str);
}

/// A backend on a server that can be made to stop answering.
pub trait Stalls: Backend {
    /// A server of its own (stopping the shared one would stall the other tests), and a
    /// storage on it with `upload`'s timeouts.
    fn stalling(&self, upload: UploadSettings) -> backends::Stalling;
}

/// The upload settings of the suite: parts of 5 MiB (S3's smallest, which moto enforces), so
/// that a multipart upload of several parts stays small.
pub fn upload_settings() -> UploadSettings {
    UploadSettings {
        part_size: PART,
        parts_in_flight: 2,
        connect_timeout_secs: 10,
        timeout_secs: 120,
        max_attempts: 3,
        max_bytes_per_sec: None,
    }
}

const PART: usize = 5 << 20;
/// The size of the ranges `S3Storage::get` downloads an object in (its `RANGE_SIZE`), and how
/// many it has in flight (`RANGES_IN_FLIGHT`).
const RANGE: usize = 4 << 20;
const RANGES_IN_FLIGHT: usize = 8;

/// Run one case on a runtime of its own.
fn run<F: Future>(case: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(case)
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// An upload body streaming `bytes` in 1 MiB chunks, then failing with `fail` when given (as
/// a dump that breaks in the middle of an archive).
fn body(bytes: Vec<u8>, fail: Option<&'static str>) -> Body {
    let (tx, body) = Body::channel(4);
    tokio::spawn(async move {
        let bytes = Bytes::from(bytes);
        for start in (0..bytes.len()).step_by(1 << 20) {
            let end = (start + (1 << 20)).min(bytes.len());
            if tx.send(Ok(bytes.slice(start..end))).await.is_err() {
                return;
            }
        }
        if let Some(reason) = fail {
            let _ = tx.send(Err(ProducerError::msg(reason))).await;
        }
    });
    body
}

async fn put(st: &dyn Storage, key: &str, bytes: &[u8]) -> PutOutcome {
    st.put(key, body(bytes.to_vec(), None))
        .await
        .unwrap_or_else(|e| panic!("put {key} ({} bytes): {e}", bytes.len()))
}

/// The whole object, or the error of the download (opening it or reading it).
async fn read(st: &dyn Storage, key: &str) -> Result<Vec<u8>, String> {
    let mut download = st.get(key).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    download
        .read_to_end(&mut out)
        .await
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// The keys `list(prefix)` gives, sorted.
async fn keys(st: &dyn Storage, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = st
        .list(prefix)
        .await
        .unwrap_or_else(|e| panic!("list {prefix:?}: {e}"))
        .into_iter()
        .map(|o| o.key)
        .collect();
    keys.sort();
    keys
}

/// `text` names `what`, or the test fails showing both.
fn assert_names(text: &str, what: &str) {
    assert!(text.contains(what), "{what:?} is not named in: {text}");
}

/// Nothing of `key` is left: not listed, not there to head, no unfinished upload or partial
/// file on the backend.
async fn assert_nothing_left<B: Backend>(b: &B, st: &dyn Storage, key: &str) {
    assert_eq!(keys(st, "").await, Vec::<String>::new());
    assert!(
        matches!(st.head(key).await, Err(StorageError::NotFound(_))),
        "{key} should not exist"
    );
    assert_eq!(b.debris().await, Vec::<String>::new());
}

mod cases;

/// The tests of one backend: `suite!(name: Type; case, ...)` makes `mod name` with one
/// `#[test] fn case` per case, each on a new place of that backend.
macro_rules! suite {
    ($name:ident: $backend:ty; $($case:ident),* $(,)?) => {
        mod $name {
            use super::*;
            $(
                #[test]
                fn $case() {
                    let b = <$backend as Backend>::new(stringify!($case));
                    run(cases::$case(&b));
                }
            )*
        }
    };
}

suite!(local: backends::Local;
    round_trip, ranged_get, listing_pages, head, delete, multipart, aborted_upload,
    missing_bucket, leftovers_of_a_killed_run,
    // Not here: wrong_key (a directory has no keys), stalled_server (no server).
);

suite!(s3s: backends::S3s;
    round_trip, ranged_get, listing_pages, head, delete, multipart, aborted_upload,
    missing_bucket, wrong_key, stalled_server,
    // Not here: leftovers_of_a_killed_run (s3s-fs 0.14 does not implement
    // ListMultipartUploads: tests/leftovers.rs checks the warning a backup gives instead).
);

suite!(moto: backends::Moto;
    round_trip, ranged_get, listing_pages, head, delete, multipart, aborted_upload,
    missing_bucket, leftovers_of_a_killed_run, stalled_server,
    // Not here: wrong_key (moto accepts any key; see tests/moto/moto_server.py).
);
