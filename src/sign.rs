//! Archive signatures, in minisign's format (<https://jedisct1.github.io/minisign/>), so that a
//! person can check one by hand with `minisign -Vm ARCHIVE -P KEY`.
//!
//! Every archive is signed by the server that made it: an Ed25519 signature over the BLAKE2b-512
//! hash of the stored object's bytes (minisign's *prehashed* signature, algorithm `ED`), with a
//! trusted comment (signed too) naming the archive's key, its site and server and the sha256 of
//! the object. The signature is stored beside the archive as `<key>.minisig`. The secret key is
//! minisign's unencrypted secret key file, `<home>/signing.key` (0600): a timer signs
//! unattended, so there is no password to ask for. Its public key is a minisign public key
//! string (`RWQ...`), listed in config.json's `trusted_keys`.
//!
//! A reader checks an archive with a [`Trust`]: the keys it trusts, whether unsigned archives
//! are accepted (`--trust-unsigned`) and whether archives must be encrypted. [`Trust::before`]
//! runs before a byte of the archive is read (the signature present, from a trusted key, its
//! trusted comment genuine and naming this archive); [`Checked::after`] once every byte was
//! hashed, before anything uses what was read (the hash signed, the sha256 named).
//!
//! Imports nothing of ours: the signing side ([`SecretKey`], [`Prehasher`]) and the checking
//! side are written against the format, and tested against the `minisign` tool itself
//! (`tests/signing.rs`).

use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

/// The signature of archive `KEY` is stored as `KEY` + this suffix, beside it.
pub const SIG_SUFFIX: &str = ".minisig";
/// The key of archive `key`'s signature.
pub fn signature_key(key: &str) -> String {
    format!("{key}{SIG_SUFFIX}")
}

/// The secret key's file name in the home directory.
pub const SECRET_KEY_FILE: &str = "signing.key";
/// The public key's file name in the home directory (minisign's `.pub` format).
pub const PUBLIC_KEY_FILE: &str = "signing.pub";
/// A signature file is four short lines; anything longer is not one (read at most this much).
pub const MAX_SIGNATURE_BYTES: u64 = 4096;

/// minisign's algorithm bytes: a key (`Ed`) and a prehashed signature (`ED`).
const ALG_KEY: [u8; 2] = *b"Ed";
const ALG_PREHASHED: [u8; 2] = *b"ED";
const ALG_LEGACY: [u8; 2] = *b"Ed";
/// The checksum algorithm named in a secret key file (BLAKE2b-256).
const ALG_CHK: [u8; 2] = *b"B2";

/// The key id minisign prints: the 8 key-number bytes as a little-endian number, in hex.
fn key_id(keynum: &[u8; 8]) -> String {
    format!("{:016X}", u64::from_le_bytes(*keynum))
}

/// A public key: what `trusted_keys` lists.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    keynum: [u8; 8],
    key: VerifyingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

impl PublicKey {
    /// Parse a minisign public key: the base64 string (`RWQ...`), or a `.pub` file's text (its
    /// `untrusted comment:` line is skipped).
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .unwrap_or("");
        let bad = |why: &str| {
            format!(
                "{line:?} is not a minisign public key (a string like RWQ... as `wpbackup status` prints it, or the second line of a minisign .pub file): {why}"
            )
        };
        let bin = B64.decode(line).map_err(|e| bad(&e.to_string()))?;
        if bin.len() != 42 {
            return Err(bad(&format!("{} bytes instead of 42", bin.len())));
        }
        if bin[0..2] != ALG_KEY {
            return Err(bad("not an Ed25519 key"));
        }
        let mut keynum = [0u8; 8];
        keynum.copy_from_slice(&bin[2..10]);
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&bin[10..42]);
        let key = VerifyingKey::from_bytes(&raw).map_err(|e| bad(&e.to_string()))?;
        Ok(PublicKey { keynum, key })
    }

    /// The key as `trusted_keys` and `minisign -P` take it.
    pub fn to_base64(&self) -> String {
        let mut bin = Vec::with_capacity(42);
        bin.extend_from_slice(&ALG_KEY);
        bin.extend_from_slice(&self.keynum);
        bin.extend_from_slice(self.key.as_bytes());
        B64.encode(bin)
    }

    /// The key id minisign prints (`BAF359CCA99A4812`).
    pub fn id(&self) -> String {
        key_id(&self.keynum)
    }

    /// minisign's `.pub` file: a comment line, then the key.
    pub fn to_file_text(&self) -> String {
        format!(
            "untrusted comment: minisign public key {}\n{}\n",
            self.id(),
            self.to_base64()
        )
    }
}

/// The secret key archives are signed with.
pub struct SecretKey {
    keynum: [u8; 8],
    signing: SigningKey,
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> anyhow::Result<SecretKey> {
        let mut seed = [0u8; 32];
        let mut keynum = [0u8; 8];
        getrandom::getrandom(&mut seed)
            .and_then(|()| getrandom::getrandom(&mut keynum))
            .map_err(|e| anyhow::anyhow!("cannot get random bytes for a signing key: {e}"))?;
        Ok(SecretKey {
            keynum,
            signing: SigningKey::from_bytes(&seed),
        })
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            keynum: self.keynum,
            key: self.signing.verifying_key(),
        }
    }

    /// The 64 bytes minisign calls the secret key: the seed, then the public key.
    fn sk_bytes(&self) -> [u8; 64] {
        self.signing.to_keypair_bytes()
    }

    /// minisign's checksum of a secret key: BLAKE2b-256 of the algorithm, key number and key.
    fn checksum(&self) -> [u8; 32] {
        let mut h = blake2b_simd::Params::new().hash_length(32).to_state();
        h.update(&ALG_KEY);
        h.update(&self.keynum);
        h.update(&self.sk_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(h.finalize().as_bytes());
        out
    }

    /// minisign's secret key file, unencrypted (no KDF: `minisign -G -W` writes the same).
    pub fn to_file_text(&self) -> String {
        let mut bin = Vec::with_capacity(158);
        bin.extend_from_slice(&ALG_KEY);
        bin.extend_from_slice(&[0, 0]); // no KDF: the key is stored as it is
        bin.extend_from_slice(&ALG_CHK);
        bin.extend_from_slice(&[0u8; 32 + 8 + 8]); // KDF salt, opslimit, memlimit: unused
        bin.extend_from_slice(&self.keynum);
        bin.extend_from_slice(&self.sk_bytes());
        bin.extend_from_slice(&self.checksum());
        format!(
            "untrusted comment: wpbackup signing key {} (unencrypted: keep this file 0600)\n{}\n",
            self.public().id(),
            B64.encode(bin)
        )
    }

    /// Read minisign's unencrypted secret key file.
    pub fn parse(text: &str) -> Result<SecretKey, String> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .unwrap_or("");
        let bin = B64
            .decode(line)
            .map_err(|e| format!("not a minisign secret key: {e}"))?;
        if bin.len() != 158 || bin[0..2] != ALG_KEY {
            return Err("not a minisign Ed25519 secret key".into());
        }
        if bin[2..4] != [0, 0] {
            return Err(
                "an encrypted (password-protected) key: wpbackup signs unattended and needs an unencrypted one (`minisign -G -W`)"
                    .into(),
            );
        }
        let mut keynum = [0u8; 8];
        keynum.copy_from_slice(&bin[54..62]);
        let mut sk = [0u8; 64];
        sk.copy_from_slice(&bin[62..126]);
        let signing = SigningKey::from_keypair_bytes(&sk)
            .map_err(|e| format!("the secret key does not match its public half: {e}"))?;
        let key = SecretKey { keynum, signing };
        let chk = &bin[126..158];
        if chk != [0u8; 32] && chk != key.checksum() {
            return Err("its checksum does not match: the file is damaged".into());
        }
        Ok(key)
    }

    /// Sign an object whose BLAKE2b-512 is `prehash`; the signature file's text.
    pub fn sign(&self, prehash: &[u8; 64], trusted_comment: &str) -> String {
        let sig = self.signing.sign(prehash).to_bytes();
        let mut global = Vec::with_capacity(64 + trusted_comment.len());
        global.extend_from_slice(&sig);
        global.extend_from_slice(trusted_comment.as_bytes());
        let global = self.signing.sign(&global).to_bytes();
        let mut bin = Vec::with_capacity(74);
        bin.extend_from_slice(&ALG_PREHASHED);
        bin.extend_from_slice(&self.keynum);
        bin.extend_from_slice(&sig);
        format!(
            "untrusted comment: signature from wpbackup secret key {}\n{}\ntrusted comment: {trusted_comment}\n{}\n",
            self.public().id(),
            B64.encode(bin),
            B64.encode(global)
        )
    }
}

/// The server's signing key, `<home>/signing.key`, made (0600, with `signing.pub` beside it)
/// when missing. The bool is true when it was made now.
pub fn load_or_create(home: &Path) -> anyhow::Result<(SecretKey, bool)> {
    let path = home.join(SECRET_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mode = std::fs::metadata(&path)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            if mode & 0o077 != 0 {
                bail!(
                    "{}: the signing key is readable by others (mode {:o}): `chmod 600 {}`",
                    path.display(),
                    mode & 0o777,
                    path.display()
                );
            }
            let key = SecretKey::parse(&text).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e}; move it aside and a new key is made on the next backup",
                    path.display()
                )
            })?;
            Ok((key, false))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = SecretKey::generate()?;
            write_private(&path, &key.to_file_text())?;
            let pub_path = home.join(PUBLIC_KEY_FILE);
            write_private(&pub_path, &key.public().to_file_text())?;
            Ok((key, true))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the signing key {}", path.display())),
    }
}

/// The server's public key, when it has a signing key (`None` before its first backup).
pub fn own_public_key(home: &Path) -> Option<PublicKey> {
    let text = std::fs::read_to_string(home.join(SECRET_KEY_FILE)).ok()?;
    SecretKey::parse(&text).ok().map(|k| k.public())
}

/// Write `text` into a new file (0600) next to `path`, then rename it into place.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp: PathBuf = dir.join(format!(
        ".{}.new-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// Add `key` to config.json's `trusted_keys`, keeping the file's text otherwise as it is (and
/// its mode). Ok(false) when it was there already.
pub fn add_trusted_key(config: &Path, key: &PublicKey) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read {}", config.display()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", config.display()))?;
    let b64 = key.to_base64();
    let listed = |d: &serde_json::Value| {
        d.get("trusted_keys")
            .and_then(|v| v.as_array())
            .is_some_and(|a| {
                a.iter().any(|k| {
                    k.as_str()
                        .and_then(|s| PublicKey::parse(s).ok())
                        .is_some_and(|k| k == *key)
                })
            })
    };
    if listed(&doc) {
        return Ok(false);
    }
    let edited = match text.find("\"trusted_keys\"") {
        // Insert at the start of the existing list.
        Some(at) => text[at..].find('[').map(|open| {
            let open = at + open + 1;
            let rest = text[open..].trim_start();
            let sep = if rest.starts_with(']') { "" } else { ", " };
            format!("{}\"{b64}\"{sep}{}", &text[..open], &text[open..])
        }),
        // A new first key of the top-level object.
        None => text.find('{').map(|open| {
            format!(
                "{}\n  \"trusted_keys\": [\"{b64}\"],{}",
                &text[..=open],
                &text[open + 1..]
            )
        }),
    };
    let Some(edited) =
        edited.filter(|e| serde_json::from_str::<serde_json::Value>(e).is_ok_and(|d| listed(&d)))
    else {
        bail!(
            "cannot add the key to {}'s trusted_keys by itself: add \"{b64}\" to it by hand",
            config.display()
        );
    };
    let mode = std::fs::metadata(config)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o600);
    write_private(config, &edited)?;
    let _ = std::fs::set_permissions(config, std::fs::Permissions::from_mode(mode));
    Ok(true)
}

/// BLAKE2b-512 of a stream, hashed on a thread of its own: what a prehashed signature signs.
///
/// The archiver's thread is a backup's critical path (walk, tar, compression), and BLAKE2b
/// costs about 1 s of CPU a GiB here (BENCHMARKS.md, issue 23's cost of signing): hashing the
/// chunks the upload is given, on another thread, takes it off that path. The chunks are
/// shared (`Bytes`), not copied; the bounded channel holds the producer back if the hash ever
/// lags.
pub struct Prehasher {
    handle: std::thread::JoinHandle<[u8; 64]>,
}

/// Chunks waiting for the hash, at most (each one an upload chunk, 1 MiB).
const PREHASH_QUEUE: usize = 8;

impl Prehasher {
    /// The hashing thread, and the sender to give it every chunk of the stream, in order; the
    /// stream ends when every sender is dropped.
    pub fn start() -> io::Result<(std::sync::mpsc::SyncSender<bytes::Bytes>, Prehasher)> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(PREHASH_QUEUE);
        let handle = std::thread::Builder::new()
            .name("prehash".into())
            .spawn(move || {
                let mut hash = Prehash::default();
                for chunk in rx {
                    hash.update(&chunk);
                }
                hash.finish()
            })?;
        Ok((tx, Prehasher { handle }))
    }

    /// The hash of every chunk sent, once the senders are gone.
    pub fn finish(self) -> io::Result<[u8; 64]> {
        self.handle.join().map_err(|_| {
            io::Error::other("the thread hashing the archive for its signature panicked")
        })
    }
}

/// BLAKE2b-512, chunk by chunk: what a prehashed signature signs (of the archive as it is
/// stored, and of a download). `blake2b_simd` picks its AVX2 code at run time when the CPU has
/// it: about 10-15% faster than portable code here, on a pass over every archive.
pub struct Prehash(blake2b_simd::State);

impl Default for Prehash {
    fn default() -> Prehash {
        Prehash(blake2b_simd::Params::new().hash_length(64).to_state())
    }
}

impl Prehash {
    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    pub fn finish(self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.0.finalize().as_bytes());
        out
    }
}

/// What the trusted comment of an archive's signature says (signed with the archive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// The archive's key.
    pub archive: String,
    pub site: String,
    pub server: String,
    pub sha256: String,
}

impl Comment {
    /// `wpbackup-archive:KEY\tsite:SITE\tserver:ID\tsha256:HEX` (tab-separated, as minisign's
    /// own `timestamp:...\tfile:...`).
    pub fn to_text(&self) -> String {
        format!(
            "wpbackup-archive:{}\tsite:{}\tserver:{}\tsha256:{}",
            self.archive, self.site, self.server, self.sha256
        )
    }

    pub fn parse(text: &str) -> Option<Comment> {
        let mut fields = std::collections::HashMap::new();
        for f in text.split('\t') {
            let (k, v) = f.split_once(':')?;
            fields.insert(k, v);
        }
        Some(Comment {
            archive: fields.get("wpbackup-archive")?.to_string(),
            site: fields.get("site")?.to_string(),
            server: fields.get("server")?.to_string(),
            sha256: fields.get("sha256")?.to_string(),
        })
    }
}

/// A parsed signature file.
#[derive(Debug, Clone)]
pub struct Signature {
    keynum: [u8; 8],
    prehashed: bool,
    sig: [u8; 64],
    trusted_comment: String,
    global: [u8; 64],
}

impl Signature {
    pub fn parse(text: &str) -> Result<Signature, String> {
        let mut lines = text.lines();
        let mut next = |what: &str| {
            lines
                .next()
                .map(|l| l.trim_end_matches('\r'))
                .ok_or_else(|| format!("not a minisign signature: no {what} line"))
        };
        let _untrusted = next("comment")?;
        let bin = B64
            .decode(next("signature")?.trim())
            .map_err(|e| format!("not a minisign signature: {e}"))?;
        let trusted = next("trusted comment")?;
        let global = B64
            .decode(next("comment signature")?.trim())
            .map_err(|e| format!("not a minisign signature: {e}"))?;
        let trusted_comment = trusted
            .strip_prefix("trusted comment: ")
            .ok_or("not a minisign signature: no trusted comment")?
            .to_string();
        if bin.len() != 74 || global.len() != 64 {
            return Err("not a minisign signature: wrong length".into());
        }
        let prehashed = match [bin[0], bin[1]] {
            ALG_PREHASHED => true,
            ALG_LEGACY => false,
            _ => return Err("not a minisign Ed25519 signature".into()),
        };
        let (mut keynum, mut sig, mut g) = ([0u8; 8], [0u8; 64], [0u8; 64]);
        keynum.copy_from_slice(&bin[2..10]);
        sig.copy_from_slice(&bin[10..74]);
        g.copy_from_slice(&global);
        Ok(Signature {
            keynum,
            prehashed,
            sig,
            trusted_comment,
            global: g,
        })
    }

    /// The id of the key that made it (as minisign prints it).
    pub fn key_id(&self) -> String {
        key_id(&self.keynum)
    }

    pub fn trusted_comment(&self) -> &str {
        &self.trusted_comment
    }

    /// Whether the trusted comment was signed by `key`.
    fn comment_signed_by(&self, key: &PublicKey) -> bool {
        let mut global = Vec::with_capacity(64 + self.trusted_comment.len());
        global.extend_from_slice(&self.sig);
        global.extend_from_slice(self.trusted_comment.as_bytes());
        let sig = ed25519_dalek::Signature::from_bytes(&self.global);
        key.keynum == self.keynum && key.key.verify_strict(&global, &sig).is_ok()
    }

    /// Whether the object whose BLAKE2b-512 is `prehash` was signed by `key`.
    fn object_signed_by(&self, key: &PublicKey, prehash: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(&self.sig);
        self.prehashed && key.keynum == self.keynum && key.key.verify_strict(prehash, &sig).is_ok()
    }
}

/// What a reader trusts.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// config.json's `trusted_keys`, `--trusted-key`, and this server's own key.
    pub keys: Vec<PublicKey>,
    /// `--trust-unsigned`: an archive without a signature is read (with a WARNING).
    pub unsigned: bool,
    /// `encryption` is configured: a plaintext archive is refused.
    pub require_encrypted: bool,
}

/// Why an archive is not trusted. Shown as it is; the command exits 2.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// An archive whose signature passed [`Trust::before`]: what remains to check once its bytes
/// were hashed.
#[derive(Debug, Clone)]
pub struct Checked {
    archive: String,
    /// `None`: unsigned, accepted by `--trust-unsigned`.
    signed: Option<(Signature, PublicKey, Comment)>,
}

impl Trust {
    /// Check `archive`'s signature (the text of its `.minisig`, `None` when there is none)
    /// before reading it; `encrypted` says whether the archive is an age one (`.age`).
    pub fn before(
        &self,
        archive: &str,
        encrypted: bool,
        signature: Option<&str>,
    ) -> Result<Checked, Refused> {
        if self.require_encrypted && !encrypted {
            return Err(Refused(format!(
                "refusing {archive}: it is not encrypted, but config.json's `encryption` is set, so every archive of this server is; anyone can write a plaintext archive into a bucket"
            )));
        }
        let Some(text) = signature else {
            if self.unsigned {
                tracing::warn!(
                    "{archive} has no signature ({archive}{SIG_SUFFIX}): read anyway (--trust-unsigned); nothing proves who made it"
                );
                return Ok(Checked {
                    archive: archive.to_string(),
                    signed: None,
                });
            }
            return Err(Refused(format!(
                "refusing {archive}: it has no signature ({archive}{SIG_SUFFIX} is missing), so nothing proves this server's fleet made it; an archive made before signing (wpbackup before 2026-12) is read only with --trust-unsigned"
            )));
        };
        let sig = Signature::parse(text).map_err(|e| {
            Refused(format!(
                "refusing {archive}: its signature {archive}{SIG_SUFFIX} is {e}"
            ))
        })?;
        let Some(key) = self.keys.iter().find(|k| k.keynum == sig.keynum) else {
            return Err(Refused(format!(
                "refusing {archive}: it is signed by key {}, which is not trusted (trusted: {}); if that key is yours, add its public key to config.json's trusted_keys or give it with --trusted-key",
                sig.key_id(),
                self.ids()
            )));
        };
        if !sig.comment_signed_by(key) {
            return Err(Refused(format!(
                "refusing {archive}: its signature claims key {} but was not made by it (forged or damaged)",
                sig.key_id()
            )));
        }
        let comment = Comment::parse(sig.trusted_comment()).ok_or_else(|| {
            Refused(format!(
                "refusing {archive}: signed by key {} but not as a wpbackup archive (trusted comment {:?})",
                sig.key_id(),
                sig.trusted_comment()
            ))
        })?;
        if comment.archive != archive {
            return Err(Refused(format!(
                "refusing {archive}: its signature (key {}) is for another archive, {}",
                sig.key_id(),
                comment.archive
            )));
        }
        Ok(Checked {
            archive: archive.to_string(),
            signed: Some((sig, key.clone(), comment)),
        })
    }

    fn ids(&self) -> String {
        if self.keys.is_empty() {
            return "none".into();
        }
        self.keys
            .iter()
            .map(PublicKey::id)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Checked {
    /// Check the hash of every byte read (`prehash`, BLAKE2b-512) and its sha256 against the
    /// signature, before anything uses what was read.
    pub fn after(&self, prehash: &[u8; 64], sha256: &str) -> Result<(), Refused> {
        let Some((sig, key, comment)) = &self.signed else {
            return Ok(());
        };
        let archive = &self.archive;
        if !sig.object_signed_by(key, prehash) {
            return Err(Refused(format!(
                "refusing {archive}: its bytes are not the ones key {} signed (the archive was changed after it was signed)",
                sig.key_id()
            )));
        }
        if !comment.sha256.eq_ignore_ascii_case(sha256) {
            return Err(Refused(format!(
                "refusing {archive}: key {} signed sha256 {} but the archive read has {sha256}",
                sig.key_id(),
                comment.sha256
            )));
        }
        Ok(())
    }

    /// The id of the key that signed it (`None`: unsigned, read with --trust-unsigned).
    pub fn key_id(&self) -> Option<String> {
        self.signed.as_ref().map(|(s, _, _)| s.key_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by `minisign -G -W` and `minisign -S -m data -t 'wpbackup test'` (minisign 0.11),
    /// over the 4 bytes `test`: the format as the reference tool writes it.
    const MINISIGN_PUB: &str = "RWQSSJqpzFnzuiQZqXe5BwwaUnGYdPk1CG5HUdDa+E2RiT5zrNdCkKVp";
    const MINISIGN_KEY: &str = "untrusted comment: minisign encrypted secret key\nRWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEkiaqcxZ87rYhEEDpbjIe9GuJIMaY6piB6hBXgWhdqXr23DjhV6HtiQZqXe5BwwaUnGYdPk1CG5HUdDa+E2RiT5zrNdCkKVpAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    const MINISIGN_SIG: &str = "untrusted comment: signature from minisign secret key\nRUQSSJqpzFnzui6IcX0gZAE3pDF3yJIVXW7lUeFND0wrSGP3FtuWUBSnNJMBDW1SeLvhNte8s6+XoNS4QV3muLJFmRiT+shbQgY=\ntrusted comment: wpbackup test\nDAVaDZBZ/8Lv0Jzwje1N3wiCK5G7UkLm7oHHVnwM5kt+ABy4g1qO6y5ySknyZLqxw70C7M3VKAhIM9CCXWB/BA==\n";

    fn prehash(data: &[u8]) -> [u8; 64] {
        let mut p = Prehash::default();
        p.update(data);
        p.finish()
    }

    #[test]
    fn reads_what_the_minisign_tool_writes() {
        let pk = PublicKey::parse(MINISIGN_PUB).unwrap();
        assert_eq!(pk.id(), "BAF359CCA99A4812");
        assert_eq!(pk.to_base64(), MINISIGN_PUB);
        let sig = Signature::parse(MINISIGN_SIG).unwrap();
        assert_eq!(sig.key_id(), "BAF359CCA99A4812");
        assert!(sig.comment_signed_by(&pk));
        assert!(sig.object_signed_by(&pk, &prehash(b"test")));
        assert!(!sig.object_signed_by(&pk, &prehash(b"Test")));
        // Its secret key signs what it verifies, the same bytes as the tool (Ed25519 is
        // deterministic).
        let sk = SecretKey::parse(MINISIGN_KEY).unwrap();
        assert_eq!(sk.public(), pk);
        assert_eq!(
            sk.sign(&prehash(b"test"), "wpbackup test").lines().nth(1),
            MINISIGN_SIG.lines().nth(1)
        );
    }

    #[test]
    fn a_new_key_round_trips_and_signs() {
        let sk = SecretKey::generate().unwrap();
        let again = SecretKey::parse(&sk.to_file_text()).unwrap();
        assert_eq!(again.public(), sk.public());
        assert_eq!(
            PublicKey::parse(&sk.public().to_file_text()).unwrap(),
            sk.public()
        );
        let comment = Comment {
            archive: "web-01/blog/blog_20261124T030405Z.tar.zst".into(),
            site: "blog".into(),
            server: "web-01".into(),
            sha256: "ab".repeat(32),
        };
        let text = sk.sign(&prehash(b"archive"), &comment.to_text());
        let trust = Trust {
            keys: vec![sk.public()],
            ..Trust::default()
        };
        let checked = trust.before(&comment.archive, false, Some(&text)).unwrap();
        checked
            .after(&prehash(b"archive"), &"AB".repeat(32))
            .unwrap();
        assert!(
            checked
                .after(&prehash(b"archivE"), &"ab".repeat(32))
                .is_err()
        );
        assert!(
            checked
                .after(&prehash(b"archive"), &"cd".repeat(32))
                .is_err()
        );
        // Another archive's key, another key, no signature, plaintext where encryption is set.
        let other = "web-01/blog/blog_20261125T030405Z.tar.zst";
        assert!(
            trust
                .before(other, false, Some(&text))
                .unwrap_err()
                .0
                .contains("another archive")
        );
        let stranger = Trust {
            keys: vec![SecretKey::generate().unwrap().public()],
            ..Trust::default()
        };
        let e = stranger
            .before(&comment.archive, false, Some(&text))
            .unwrap_err();
        assert!(e.0.contains(&sk.public().id()), "{e}");
        assert!(trust.before(&comment.archive, false, None).is_err());
        let unsigned = Trust {
            unsigned: true,
            ..trust.clone()
        };
        assert!(unsigned.before(&comment.archive, false, None).is_ok());
        let enc = Trust {
            require_encrypted: true,
            ..trust.clone()
        };
        assert!(enc.before(&comment.archive, false, Some(&text)).is_err());
        // A trusted comment changed after signing.
        let forged = text.replace("site:blog", "site:blog2");
        assert!(
            trust
                .before(&comment.archive, false, Some(&forged))
                .unwrap_err()
                .0
                .contains("forged")
        );
    }

    #[test]
    fn trusted_keys_are_added_to_config_json_keeping_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{ \"server_id\": \"web-01\",\n  \"sites\": [] }\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (a, b) = (
            SecretKey::generate().unwrap().public(),
            SecretKey::generate().unwrap().public(),
        );
        assert!(add_trusted_key(&path, &a).unwrap());
        assert!(!add_trusted_key(&path, &a).unwrap());
        assert!(add_trusted_key(&path, &b).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc["trusted_keys"],
            serde_json::json!([b.to_base64(), a.to_base64()])
        );
        assert!(
            text.contains("\"server_id\": \"web-01\",\n  \"sites\": []"),
            "{text}"
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
