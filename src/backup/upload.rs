//! One upload attempt: the archive produced on a blocking thread and streamed through a
//! bounded channel into one storage's `put`, with the progress line ticking meanwhile.
//!
//! The outcome is classed for failover: the archive could not be made (a *source* error, no
//! other storage would help), the run was interrupted, or this storage failed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use indicatif::ProgressBar;

use super::archive::{self, ArchiveSpec, Manifest, Progress};
use super::dump::DumpCell;
use crate::crypt::Encryption;
use crate::output;
use crate::storage::failover::AttemptError;
use crate::storage::{Body, BodyWriter, PutOutcome, Storage};

/// Chunks handed from the archiver to the upload (bounded channel of `CHANNEL_CHUNKS`).
const CHUNK_SIZE: usize = 1024 * 1024;
const CHANNEL_CHUNKS: usize = 4;

/// Everything an attempt needs, the same for every storage tried.
pub struct Upload<'a> {
    pub rt: &'a tokio::runtime::Runtime,
    pub spec: Arc<ArchiveSpec>,
    pub dump: Arc<DumpCell>,
    pub encryption: Option<Encryption>,
    pub key: &'a str,
    pub bar: &'a ProgressBar,
}

impl Upload<'_> {
    /// Produce the archive into `st`; what it stored and the archive's manifest.
    pub fn attempt(&self, st: &dyn Storage) -> Result<(PutOutcome, Manifest), AttemptError> {
        self.bar.set_message(format!("→ {}", st.name()));
        let progress = Arc::new(Progress::default());
        let (tx, body) = Body::channel(CHANNEL_CHUNKS);
        let producer = {
            let (spec, dump, progress) = (self.spec.clone(), self.dump.clone(), progress.clone());
            let encryption = self.encryption.clone();
            let writer = BodyWriter::new(tx, CHUNK_SIZE);
            std::thread::spawn(move || produce(writer, &spec, &dump, &progress, encryption))
        };
        let ticker = self.ticker(st.name(), progress);
        let put = self.rt.block_on(st.put(self.key, body));
        ticker.abort();
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the archiver panicked")));
        if let (Some(sig), Err(_)) = (crate::interrupt::received(), &put) {
            let during = format!("while storing on {}", st.name());
            return Err(AttemptError::Stop(crate::interrupt::details(sig, &during)));
        }
        match (put, produced) {
            (Ok(out), Ok(manifest)) => Ok((out, manifest)),
            (Err(e), Err(why)) if e.is_source() => Err(AttemptError::Source(why)),
            (Ok(_), Err(why)) => {
                // The archive itself could not be made (dump failed, site unreadable): another
                // storage would not help. (Ok with a producer error cannot happen: the writer
                // aborts the upload; if it ever did, the object is removed.)
                let _ = self.rt.block_on(st.delete(self.key));
                Err(AttemptError::Source(why))
            }
            (Err(e), _) => {
                tracing::warn!(
                    site = self.spec.site,
                    storage = st.name(),
                    "upload failed, trying the next storage: {e}"
                );
                Err(AttemptError::Storage(e.into()))
            }
        }
    }

    /// The progress line: files and bytes read so far, every quarter second.
    fn ticker(&self, store: &str, progress: Arc<Progress>) -> tokio::task::JoinHandle<()> {
        let bar = self.bar.clone();
        let store = store.to_string();
        self.rt.spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                let read = progress.bytes_read.load(Ordering::Relaxed);
                let files = progress.files.load(Ordering::Relaxed);
                bar.set_message(format!(
                    "→ {store}: {files} files, {} read",
                    output::human_bytes(read)
                ));
            }
        })
    }
}

/// Write the archive (encrypted when configured) into the upload's writer and end the stream.
/// The writer goes down with any error; its drop tells the storage to abort.
fn produce(
    writer: BodyWriter,
    spec: &ArchiveSpec,
    dump: &DumpCell,
    progress: &Progress,
    encryption: Option<Encryption>,
) -> anyhow::Result<Manifest> {
    let dump = || dump.get().map_err(anyhow::Error::from);
    match &encryption {
        None => {
            let (writer, manifest) = archive::write_archive(writer, spec, dump, progress)?;
            writer.finish()?;
            Ok(manifest)
        }
        // tar | zstd | age: the stored object is the encrypted stream.
        Some(enc) => {
            let sealed = enc.encrypt(writer)?;
            let (sealed, manifest) = archive::write_archive(sealed, spec, dump, progress)?;
            sealed.finish()?.finish()?;
            Ok(manifest)
        }
    }
}
