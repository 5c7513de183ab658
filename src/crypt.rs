//! Client-side encryption of archives with age (<https://age-encryption.org>).
//!
//! With `encryption.recipients` set in config.json, the zstd stream is encrypted to those age
//! public keys on its way to the upload (`tar | zstd | age`), and stored as `.tar.zst.age`:
//! the server holds only public keys, so neither the storage provider nor anyone who later
//! reads the bucket can open an archive. The sha256 recorded with an archive is that of the
//! stored (encrypted) object. `restore` and `verify` take `--identity FILE`, an age identity
//! file as `age-keygen` writes it; the standard `age -d -i FILE` opens the same archives.

use std::io::{self, BufRead, Read, Write};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context as _, bail};

/// Suffix an encrypted archive's key has after `.tar.zst`.
pub const AGE_SUFFIX: &str = ".age";

/// The public keys archives are encrypted to (validated `encryption` block of config.json).
#[derive(Clone)]
pub struct Encryption {
    recipients: Vec<age::x25519::Recipient>,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<String> = self.recipients.iter().map(|r| r.to_string()).collect();
        f.debug_struct("Encryption")
            .field("recipients", &keys)
            .finish()
    }
}

impl Encryption {
    /// Parse public keys; the error names the index of the first one that is not an age key.
    pub fn parse(keys: &[String]) -> Result<Encryption, (usize, String)> {
        if keys.is_empty() {
            return Err((
                0,
                "no recipient: add at least one age public key (age1..., from `age-keygen -y FILE`)"
                    .into(),
            ));
        }
        let mut recipients = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let k = k.trim();
            if k.starts_with("AGE-SECRET-KEY-") {
                return Err((
                    i,
                    "this is a secret key (an identity): put only its public key (age1..., `age-keygen -y FILE`) in config.json and keep the identity off this server".into(),
                ));
            }
            let r = age::x25519::Recipient::from_str(k)
                .map_err(|e| (i, format!("{k:?} is not an age public key (age1...): {e}")))?;
            recipients.push(r);
        }
        Ok(Encryption { recipients })
    }

    /// Wrap `out` so that what is written to it is encrypted; call `finish` on the result.
    pub fn encrypt<W: Write>(&self, out: W) -> io::Result<age::stream::StreamWriter<W>> {
        let encryptor = age::Encryptor::with_recipients(
            self.recipients.iter().map(|r| r as &dyn age::Recipient),
        )
        .map_err(|e| io::Error::other(format!("cannot start age encryption: {e}")))?;
        encryptor.wrap_output(out)
    }
}

/// The age identities (secret keys) given with `--identity FILE`.
#[derive(Clone)]
pub struct Identities(Arc<Vec<age::x25519::Identity>>);

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities({} keys, **redacted**)", self.0.len())
    }
}

impl Identities {
    /// Read an identity file as `age-keygen` writes it: `AGE-SECRET-KEY-1...` lines, `#`
    /// comments and blank lines. The lines themselves never reach an error message.
    pub fn load(path: &Path) -> anyhow::Result<Identities> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("--identity {}: cannot open", path.display()))?;
        Self::parse(io::BufReader::new(file))
            .with_context(|| format!("--identity {}", path.display()))
    }

    pub fn parse(reader: impl BufRead) -> anyhow::Result<Identities> {
        let mut ids = Vec::new();
        for (n, line) in reader.lines().enumerate() {
            let line = line.context("cannot read")?;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match age::x25519::Identity::from_str(line) {
                Ok(id) => ids.push(id),
                Err(_) => bail!(
                    "line {} is not an age identity (AGE-SECRET-KEY-1..., as `age-keygen` writes it); passphrase-protected or SSH identities are not supported: decrypt with `age -d` by hand",
                    n + 1
                ),
            }
        }
        if ids.is_empty() {
            bail!("holds no age identity (AGE-SECRET-KEY-1...)");
        }
        Ok(Identities(Arc::new(ids)))
    }
}

/// True when an archive key names an encrypted archive (`.tar.zst.age`).
pub fn is_encrypted(key: &str) -> bool {
    key.ends_with(AGE_SUFFIX)
}

/// The message when an encrypted archive is met without an identity.
pub fn identity_needed(key: &str) -> String {
    format!(
        "{key} is encrypted with age: pass --identity FILE (the age identity whose public key is in config.json's encryption.recipients)"
    )
}

/// Refuse early when `key` is encrypted and no identity was given.
pub fn ensure_identity(key: &str, identities: Option<&Identities>) -> anyhow::Result<()> {
    if is_encrypted(key) && identities.is_none() {
        bail!("{}", identity_needed(key));
    }
    Ok(())
}

/// The compressed (`tar.zst`) stream of the archive stored under `key`: decrypted when the key
/// says it is encrypted, `reader` itself otherwise.
pub fn open<'a, R: Read + 'a>(
    reader: R,
    key: &str,
    identities: Option<&Identities>,
) -> anyhow::Result<Box<dyn Read + 'a>> {
    if !is_encrypted(key) {
        return Ok(Box::new(reader));
    }
    let Some(ids) = identities else {
        bail!("{}", identity_needed(key));
    };
    let decryptor = age::Decryptor::new(reader)
        .map_err(|e| anyhow::anyhow!("{key}: not a readable age file: {e}"))?;
    let stream = decryptor
        .decrypt(ids.0.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => anyhow::anyhow!(
                "{key}: none of the identities given with --identity can decrypt it (it was encrypted to other public keys)"
            ),
            other => anyhow::anyhow!("{key}: cannot decrypt: {other}"),
        })?;
    Ok(Box::new(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn round_trip_and_errors() {
        let id = age::x25519::Identity::generate();
        let public = id.to_public().to_string();
        let enc = Encryption::parse(std::slice::from_ref(&public)).unwrap();
        let mut w = enc.encrypt(Vec::new()).unwrap();
        w.write_all(b"hello archive").unwrap();
        let sealed = w.finish().unwrap();
        assert!(!sealed.windows(5).any(|x| x == b"hello"));

        let file = format!(
            "# created: now\n# public key: {public}\n{}\n",
            id.to_string().expose_secret()
        );
        let ids = Identities::parse(file.as_bytes()).unwrap();
        let mut out = Vec::new();
        open(&sealed[..], "a.tar.zst.age", Some(&ids))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello archive");

        let err = open(&sealed[..], "a.tar.zst.age", None).err().unwrap();
        assert!(format!("{err}").contains("--identity"), "{err}");
        let other = age::x25519::Identity::generate();
        let others = Identities::parse(other.to_string().expose_secret().as_bytes()).unwrap();
        let err = open(&sealed[..], "a.tar.zst.age", Some(&others))
            .err()
            .unwrap();
        assert!(format!("{err}").contains("none of the identities"), "{err}");
        // Plain archives pass through untouched.
        let mut out = Vec::new();
        open(&b"plain"[..], "a.tar.zst", None)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"plain");

        let (i, msg) = Encryption::parse(&[public, "age1nope".into()]).unwrap_err();
        assert_eq!(i, 1);
        assert!(msg.contains("not an age public key"), "{msg}");
        let secret = id.to_string().expose_secret().to_string();
        let (_, msg) = Encryption::parse(std::slice::from_ref(&secret)).unwrap_err();
        assert!(
            msg.contains("secret key") && !msg.contains(&secret),
            "{msg}"
        );
        let err = Identities::parse(format!("junk-{secret}\n").as_bytes()).unwrap_err();
        assert!(!format!("{err:#}").contains(&secret));
    }
}
