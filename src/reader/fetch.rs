//! Downloading an archive while hashing it, straight through a reader on a blocking thread:
//! verify reads and keeps nothing; restore unpacks into a staging directory that it throws
//! away unless the hash matches ([`first_intact`]: the first storage whose copy is the one
//! recorded).
//!
//! The whole object is read and hashed, even when the reader stops early, so the
//! sha256 that is compared is always the sha256 of everything the storage sent. A SIGTERM or
//! SIGINT (see [`crate::interrupt`]) stops both the download and the reader.

use std::io::{self, Read};

use anyhow::{Context as _, bail};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::logdb::LogDb;
use crate::manifest::Base;
use crate::sign::{Prehash, Refused, Trust};
use crate::storage::catalog::{self, Expected};
use crate::storage::{Storage, StorageError, io_error};

/// What was downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub size: u64,
    pub sha256: String,
    /// BLAKE2b-512 of the download: what its signature signs.
    pub prehash: [u8; 64],
}

const CHUNK: usize = 1024 * 1024;

/// Stream `key` through `consume`, which runs on a thread of its own and reads the archive as
/// it arrives. Returns what `consume` returned and the hash of the whole download; a failed
/// download is an error whatever `consume` said.
pub fn stream<T, F>(
    rt: &tokio::runtime::Runtime,
    st: &dyn Storage,
    key: &str,
    consume: F,
) -> Result<(anyhow::Result<T>, Fetched), StorageError>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Read) -> anyhow::Result<T> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let consumer = std::thread::spawn(move || {
        let mut reader = ChannelReader {
            rx,
            current: Bytes::new(),
        };
        consume(&mut reader)
    });
    let download = async {
        let mut download = st.get(key).await?;
        let mut hasher = Sha256::new();
        let mut prehash = Prehash::default();
        let mut size = 0u64;
        let mut tx = Some(tx);
        // One buffer, filled by however much each read brings and handed over a chunk at a
        // time: reads from a socket are small, and a fresh zeroed buffer per read cost more
        // than the hashing.
        let mut buf = bytes::BytesMut::with_capacity(CHUNK);
        loop {
            let n = download
                .read_buf(&mut buf)
                .await
                .map_err(|e| io_error(&format!("storage {}: download of {key}", st.name()), &e))?;
            if n > 0 && buf.len() < CHUNK / 4 {
                continue;
            }
            if !buf.is_empty() {
                let chunk = buf.split().freeze();
                hasher.update(&chunk);
                prehash.update(&chunk);
                size += chunk.len() as u64;
                // A reader that stopped (an error in the archive) drops its end: keep hashing.
                if let Some(sender) = &tx
                    && sender.send(chunk).await.is_err()
                {
                    tx = None;
                }
                buf.reserve(CHUNK);
            }
            if n == 0 {
                break;
            }
        }
        Ok(Fetched {
            size,
            sha256: hex::encode(hasher.finalize()),
            prehash: prehash.finish(),
        })
    };
    // A SIGTERM or SIGINT ends the download (and so the reader's input) where it is.
    let downloaded = rt
        .block_on(crate::interrupt::until(download))
        .unwrap_or_else(|stop| {
            Err(StorageError::Transient(format!(
                "storage {}: download of {key} {stop}",
                st.name()
            )))
        });
    // The sender is gone (end of stream, or the download failed): the reader sees its end.
    let consumed = consumer
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the archive reader panicked")));
    downloaded.map(|f| (consumed, f))
}

/// Why a copy of an archive was not read, or not accepted once read.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Its signature is missing, wrong or from a key not trusted; or it is plaintext where
    /// archives are encrypted.
    #[error(transparent)]
    Untrusted(#[from] Refused),
}

impl Rejected {
    /// As an error a command ends with: a refusal stays a [`Refused`] (exit status 2).
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            Rejected::Storage(e) => e.into(),
            Rejected::Untrusted(e) => e.into(),
        }
    }
}

/// The text of `key`'s signature (`KEY.minisig`) on `st`; `None` when there is none. Read
/// bounded: anything past [`crate::sign::MAX_SIGNATURE_BYTES`] is not a signature.
pub fn signature(
    rt: &tokio::runtime::Runtime,
    st: &dyn Storage,
    key: &str,
) -> Result<Option<String>, Rejected> {
    let sig_key = crate::sign::signature_key(key);
    rt.block_on(async {
        let download = match st.get(&sig_key).await {
            Ok(d) => d,
            Err(StorageError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut text = Vec::new();
        download
            .take(crate::sign::MAX_SIGNATURE_BYTES + 1)
            .read_to_end(&mut text)
            .await
            .map_err(|e| io_error(&format!("storage {}: download of {sig_key}", st.name()), &e))?;
        if text.len() as u64 > crate::sign::MAX_SIGNATURE_BYTES {
            return Err(Refused(format!(
                "refusing {key}: its signature {sig_key} is larger than {} bytes, so it is not one",
                crate::sign::MAX_SIGNATURE_BYTES
            ))
            .into());
        }
        Ok(Some(String::from_utf8_lossy(&text).into_owned()))
    })
}

/// [`stream`], with `key`'s signature checked against `trust`: before a byte of the archive is
/// read (present, from a trusted key, for this archive), and after the last one, before
/// `consume`'s result is returned (the bytes read are the ones signed). A refused archive's
/// `consume` result is dropped (a staging directory removes itself). A download whose sha256
/// is not `recorded` (the one the caller checks it against) is returned unjudged: the caller
/// refuses it as damaged (exit status 1), as it did before signatures.
pub fn stream_trusted<T, F>(
    rt: &tokio::runtime::Runtime,
    st: &dyn Storage,
    key: &str,
    trust: &Trust,
    recorded: Option<&str>,
    consume: F,
) -> Result<(anyhow::Result<T>, Fetched), Rejected>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Read) -> anyhow::Result<T> + Send + 'static,
{
    let text = signature(rt, st, key)?;
    let encrypted = key.ends_with(crate::crypt::AGE_SUFFIX);
    let checked = trust.before(key, encrypted, text.as_deref())?;
    let (value, got) = stream(rt, st, key, consume)?;
    if recorded.is_some_and(|r| !r.eq_ignore_ascii_case(&got.sha256)) {
        return Ok((value, got));
    }
    if let Err(e) = checked.after(&got.prehash, &got.sha256) {
        drop(value);
        return Err(e.into());
    }
    if let Some(id) = checked.key_id() {
        tracing::debug!(storage = st.name(), "{key}: signature by key {id} checked");
    }
    Ok((value, got))
}

/// What `consume` made of an archive whose download matched its recorded sha256.
pub struct Intact<T> {
    pub value: T,
    /// The storage it came from.
    pub storage: String,
    pub expected: Expected,
    /// Bytes downloaded (the stored object's size).
    pub size: u64,
}

/// Stream `key` through `consume` (which unpacks it as it arrives) from the first of
/// `storages` whose copy has the sha256 recorded for it (object metadata, `.sha256` sidecar,
/// or backups.db when there is one). A copy that does not match, or has no recorded sha256,
/// is refused, what `consume` made of it dropped (a staging directory removes itself), and the
/// next storage tried. An error of `consume` on a matching copy is the archive's own: returned
/// as it is. `pinned` is a sha256 the copy must also have (a differential archive's manifest
/// names its base's). Each copy's signature is checked against `trust` ([`stream_trusted`]);
/// when no copy is accepted and one was refused for its signature, the error is a
/// [`Refused`] (exit status 2).
pub fn first_intact<T, F>(
    rt: &tokio::runtime::Runtime,
    key: &str,
    storages: &[&dyn Storage],
    logdb: Option<&LogDb>,
    trust: &Trust,
    pinned: Option<&str>,
    consume: F,
) -> anyhow::Result<Intact<T>>
where
    T: Send + 'static,
    F: Fn(&mut dyn Read) -> anyhow::Result<T> + Clone + Send + 'static,
{
    let mut refused = Vec::new();
    let mut untrusted = false;
    for st in storages {
        let name = st.name();
        let head = match rt.block_on(st.head(key)) {
            Ok(h) => h,
            Err(e) => {
                refused.push(format!("{name}: {e}"));
                continue;
            }
        };
        let recorded = logdb.and_then(|db| db.archive_sha256(key, name).ok().flatten());
        if let (Some(p), Some(r)) = (pinned, &recorded)
            && !p.eq_ignore_ascii_case(r)
        {
            refused.push(format!(
                "{name}: backups.db records sha256 {r} but the differential archive built on it names {p}"
            ));
            continue;
        }
        let recorded = recorded.or(pinned.map(str::to_string));
        let expected = match catalog::expected(key, head.sha256.as_deref(), recorded.as_deref()) {
            Ok(e) => e,
            Err(e) => {
                refused.push(format!("{name}: {e}"));
                continue;
            }
        };
        tracing::info!(storage = name, "downloading and unpacking {key}");
        let (value, got) =
            match stream_trusted(rt, *st, key, trust, Some(&expected.sha256), consume.clone()) {
                Ok(x) => x,
                Err(e) => {
                    untrusted |= matches!(e, Rejected::Untrusted(_));
                    tracing::warn!("{name}: {e}");
                    refused.push(format!("{name}: {e}"));
                    continue;
                }
            };
        if got.sha256 != expected.sha256 {
            drop(value);
            let why = format!(
                "{name}: the downloaded copy ({} bytes) has sha256 {} but the sha256 recorded in {} is {}: the archive was changed or damaged",
                got.size, got.sha256, expected.source, expected.sha256
            );
            tracing::warn!("{why}");
            refused.push(why);
            continue;
        }
        // The copy is the one that was stored: if it does not unpack, no other copy will.
        return Ok(Intact {
            value: value?,
            storage: name.to_string(),
            expected,
            size: got.size,
        });
    }
    let why = format!(
        "refusing to restore {key}: no intact copy ({}); nothing was changed",
        refused.join("; ")
    );
    if untrusted {
        return Err(Refused(why).into());
    }
    bail!(why)
}

/// A restore point has at most this many archives (a full, a level 1, a level 2).
pub const MAX_CHAIN: usize = 3;

/// One base of a restore point, as `consume` made of it.
pub struct Based<T> {
    pub key: String,
    pub value: T,
    /// Bytes downloaded.
    pub size: u64,
}

/// The bases of the differential archive `key`, newest first from `first`, each downloaded
/// from `holder` (the storage `key` came from, see [`came_from`]: a differential is only ever
/// stored beside its bases) with the sha256 its successor's manifest names, and read by `consume` (which gets
/// the base's key and returns what it made of it and that base's own base). A chain longer
/// than [`MAX_CHAIN`] archives is refused.
pub fn bases<T, F>(
    rt: &tokio::runtime::Runtime,
    key: &str,
    holder: &[&dyn Storage],
    logdb: Option<&LogDb>,
    trust: &Trust,
    first: Option<Base>,
    consume: F,
) -> anyhow::Result<Vec<Based<T>>>
where
    T: Send + 'static,
    F: Fn(&mut dyn Read, &str) -> anyhow::Result<(T, Option<Base>)> + Clone + Send + 'static,
{
    let mut out = Vec::new();
    let mut next = first;
    while let Some(base) = next.take() {
        if out.len() + 1 >= MAX_CHAIN {
            bail!(
                "{key}: its chain of bases is longer than {MAX_CHAIN} archives; it was not made by wpbackup"
            );
        }
        let (k, c) = (base.key.clone(), consume.clone());
        let got = first_intact(
            rt,
            &base.key,
            holder,
            logdb,
            trust,
            Some(&base.sha256),
            move |r| c(r, &k),
        )
        .with_context(|| format!("{key} is a differential archive on {}", base.key))?;
        let (value, its_base) = got.value;
        next = its_base;
        out.push(Based {
            key: base.key,
            value,
            size: got.size,
        });
    }
    Ok(out)
}

/// The storage named `name` among `storages` (where an archive came from), as [`bases`] takes it.
pub fn came_from<'a>(storages: &[&'a dyn Storage], name: &str) -> Vec<&'a dyn Storage> {
    storages
        .iter()
        .copied()
        .filter(|s| s.name() == name)
        .collect()
}

/// A blocking `Read` over chunks from an async channel.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // The unpacking stops too, without waiting for the chunks already received.
        crate::interrupt::check().map_err(io::Error::other)?;
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.current = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Body;
    use crate::storage::local::LocalStorage;

    async fn put(st: &LocalStorage, key: &str, data: Vec<u8>) {
        let (tx, body) = Body::channel(2);
        tokio::spawn(async move {
            for c in data.chunks(1000) {
                tx.send(Ok(Bytes::copy_from_slice(c))).await.unwrap();
            }
        });
        st.put(key, body).await.unwrap();
    }

    #[test]
    fn downloads_hash_everything_even_when_the_reader_stops() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let st = LocalStorage::new("l", dir.path().join("store"));
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let want = hex::encode(Sha256::digest(&data));
        rt.block_on(put(&st, "s/a/a_1.tar.zst", data.clone()));

        let (got, f) = stream(&rt, &st, "s/a/a_1.tar.zst", |r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v)?;
            Ok(v)
        })
        .unwrap();
        assert_eq!(got.unwrap(), data);
        assert_eq!(
            (f.size, f.sha256.as_str()),
            (data.len() as u64, want.as_str())
        );

        // A reader that gives up after a few bytes: the hash still covers the whole object.
        let (got, f) = stream(&rt, &st, "s/a/a_1.tar.zst", |r| -> anyhow::Result<()> {
            let mut v = [0u8; 10];
            r.read_exact(&mut v)?;
            anyhow::bail!("stop")
        })
        .unwrap();
        assert!(got.is_err());
        assert_eq!(f.sha256, want);

        assert!(matches!(
            stream(&rt, &st, "s/a/missing.tar.zst", |_| Ok(())),
            Err(StorageError::NotFound(_))
        ));
    }
}
