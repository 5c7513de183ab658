//! One upload attempt: the archive produced on a blocking thread and streamed through a
//! bounded channel into one storage's `put`, with the progress line ([`super::progress`])
//! ticking meanwhile.
//!
//! The outcome is classed for failover: the archive could not be made (a *source* error, no
//! other storage would help), the run was interrupted, or this storage failed.

use std::sync::Arc;

use indicatif::ProgressBar;

use super::archive::{self, ArchiveSpec, Manifest, Tree};
use super::dump::DumpCell;
use super::plan::{self, Plan};
use super::progress::{Phase, Progress};
use crate::crypt::Encryption;
use crate::sign::{self, Comment, Prehasher, SecretKey};
use crate::storage::catalog;
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
    /// Full or differential; a storage that does not hold the base gets a full archive.
    pub plan: &'a Plan,
    pub bar: &'a ProgressBar,
    /// `upload.max_mib_per_sec`, in bytes per second.
    pub limit: Option<u64>,
    /// The server's signing key: each archive's `.minisig` is stored beside it.
    pub signer: &'a SecretKey,
}

/// What an attempt stored.
pub struct Attempted {
    pub key: String,
    pub out: PutOutcome,
    pub manifest: Manifest,
    /// The site's tree as walked (for the index of bases).
    pub tree: Tree,
}

impl Upload<'_> {
    /// The archive `st` gets: the plan's differential when `st` holds its base, else full.
    fn spec_for(&self, st: &dyn Storage) -> Arc<ArchiveSpec> {
        let Plan::Differential(d) = self.plan else {
            return self.spec.clone();
        };
        match self.rt.block_on(plan::check_chain(st, d)) {
            Ok(()) => Arc::new(ArchiveSpec {
                differential: Some(d.clone()),
                ..(*self.spec).clone()
            }),
            Err(why) => {
                tracing::warn!(
                    site = self.spec.site,
                    storage = st.name(),
                    "a full archive instead of a level-{} differential: {why}",
                    d.level
                );
                self.spec.clone()
            }
        }
    }

    /// Produce the archive into `st`; what it stored and the archive's manifest.
    pub fn attempt(&self, st: &dyn Storage) -> Result<Attempted, AttemptError> {
        let spec = self.spec_for(st);
        let key = catalog::archive_key(
            &spec.server_id,
            &spec.site,
            spec.created_at,
            spec.differential.as_ref().map(|d| d.base.created_at),
            self.encryption.is_some(),
        );
        let progress = Arc::new(Progress::new(&self.spec.site, st.name(), self.bar.clone()));
        progress.redraw();
        let (tx, body) = Body::channel(CHANNEL_CHUNKS);
        let body = body.with_progress(progress.clone()).with_limit(self.limit);
        let producer = {
            let (spec, dump, progress) = (spec.clone(), self.dump.clone(), progress.clone());
            let encryption = self.encryption.clone();
            let writer = BodyWriter::new(tx, CHUNK_SIZE);
            std::thread::spawn(move || {
                let (tap, prehasher) = Prehasher::start()
                    .map_err(|e| anyhow::anyhow!("cannot start hashing the archive: {e}"))?;
                let writer = writer.with_tap(tap);
                let (manifest, tree) = produce(writer, &spec, &dump, &progress, encryption)?;
                Ok((manifest, tree, prehasher.finish()?))
            })
        };
        let ticker = self.ticker(progress);
        let put = self.rt.block_on(st.put(&key, body));
        ticker.abort();
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the archiver panicked")));
        if let (Some(sig), Err(_)) = (crate::interrupt::received(), &put) {
            let during = format!("while storing on {}", st.name());
            return Err(AttemptError::Stop(crate::interrupt::details(sig, &during)));
        }
        match (put, produced) {
            (Ok(out), Ok((manifest, tree, prehash))) => {
                self.put_signature(st, &key, &out, &prehash)?;
                Ok(Attempted {
                    key,
                    out,
                    manifest,
                    tree,
                })
            }
            (Err(e), Err(why)) if e.is_source() => Err(AttemptError::Source(why)),
            (Ok(_), Err(why)) => {
                // The archive itself could not be made (dump failed, site unreadable): another
                // storage would not help. (Ok with a producer error cannot happen: the writer
                // aborts the upload; if it ever did, the object is removed.)
                let _ = self.rt.block_on(st.delete(&key));
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

    /// Sign the archive just stored under `key` and store the signature beside it
    /// (`KEY.minisig`). When that fails the archive is removed: an unsigned archive would be
    /// refused by every reader, so the next storage is tried.
    fn put_signature(
        &self,
        st: &dyn Storage,
        key: &str,
        out: &PutOutcome,
        prehash: &[u8; 64],
    ) -> Result<(), AttemptError> {
        let comment = Comment {
            archive: key.to_string(),
            site: self.spec.site.clone(),
            server: self.spec.server_id.clone(),
            sha256: out.sha256.clone(),
        };
        let text = self.signer.sign(prehash, &comment.to_text());
        let sig_key = sign::signature_key(key);
        let (tx, body) = Body::channel(1);
        let stored = self.rt.block_on(async {
            let _ = tx.send(Ok(bytes::Bytes::from(text))).await;
            drop(tx);
            st.put(&sig_key, body).await
        });
        if let Err(e) = stored {
            let _ = self.rt.block_on(st.delete(key));
            tracing::warn!(
                site = self.spec.site,
                storage = st.name(),
                "cannot store the signature {sig_key}, trying the next storage: {e}"
            );
            return Err(AttemptError::Storage(e.into()));
        }
        Ok(())
    }

    /// The progress line redrawn every quarter second (phase changes redraw it at once).
    fn ticker(&self, progress: Arc<Progress>) -> tokio::task::JoinHandle<()> {
        self.rt.spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                progress.redraw();
            }
        })
    }
}

/// Write the archive (encrypted when configured) into the upload's writer and end the stream
/// (the writer's tap hashes what it sends, for the signature). The writer goes down with any
/// error; its drop tells the storage to abort.
fn produce(
    writer: BodyWriter,
    spec: &ArchiveSpec,
    dump: &DumpCell,
    progress: &Progress,
    encryption: Option<Encryption>,
) -> anyhow::Result<(Manifest, Tree)> {
    let dump = || dump.get().map_err(anyhow::Error::from);
    match &encryption {
        // The storage sees the end of the stream only at `finish`: after the phase moved on.
        None => {
            let (writer, manifest, tree) = archive::write_archive(writer, spec, dump, progress)?;
            progress.enter(Phase::Upload);
            writer.finish()?;
            Ok((manifest, tree))
        }
        // tar | zstd | age: the stored object is the encrypted stream.
        Some(enc) => {
            let sealed = enc.encrypt(writer)?;
            let (sealed, manifest, tree) = archive::write_archive(sealed, spec, dump, progress)?;
            progress.enter(Phase::Upload);
            sealed.finish()?.finish()?;
            Ok((manifest, tree))
        }
    }
}
