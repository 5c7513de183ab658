//! Archive signatures by hand, with the `minisign` tool (Debian's `minisign`, installed by
//! scripts/setup.sh), as docs/formats.md tells a person to check one: `minisign -Vm ARCHIVE
//! -x ARCHIVE.minisig -P KEY`. Also what a test needs to stand in for a server that signed
//! something (a doctored archive re-signed with the home's key) or for an attacker's key.

use std::path::Path;
use std::process::{Command, Output};

/// `minisign ARGS`, failing the test with a hint when the tool is not installed.
fn minisign(args: &[&std::ffi::OsStr]) -> Output {
    Command::new("minisign")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run minisign ({e}): install it (`apt-get install minisign`, scripts/setup.sh)")
        })
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

/// The trusted comment wpbackup signs with an archive (docs/formats.md, "Signatures").
pub fn comment(key: &str, sha256: &str) -> String {
    let mut parts = key.split('/');
    let server = parts.next().unwrap_or_default();
    let site = parts.next().unwrap_or_default();
    format!("wpbackup-archive:{key}\tsite:{site}\tserver:{server}\tsha256:{sha256}")
}

/// Sign `file` (stored under `key`) with the minisign secret key `secret_key` into `sig`, the
/// comment naming `key` and the file's sha256.
pub fn sign(secret_key: &Path, file: &Path, key: &str, sig: &Path) {
    use sha2::Digest as _;
    let sha = hex::encode(sha2::Sha256::digest(std::fs::read(file).unwrap()));
    let out = minisign(&[
        os("-S"),
        os("-s"),
        secret_key.as_os_str(),
        os("-m"),
        file.as_os_str(),
        os("-x"),
        sig.as_os_str(),
        os("-t"),
        os(&comment(key, &sha)),
    ]);
    assert!(
        out.status.success(),
        "minisign -S: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new key pair in `dir` (no password): (secret key file, public key string).
pub fn new_key(dir: &Path) -> (std::path::PathBuf, String) {
    let (sk, pk) = (dir.join("other.key"), dir.join("other.pub"));
    let out = minisign(&[
        os("-G"),
        os("-W"),
        os("-f"),
        os("-s"),
        sk.as_os_str(),
        os("-p"),
        pk.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "minisign -G: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&pk).unwrap();
    let key = text.lines().nth(1).unwrap().trim().to_string();
    (sk, key)
}

/// `minisign -Vm FILE -x SIG -P KEY`: the check formats.md describes.
pub fn verify(file: &Path, sig: &Path, public_key: &str) -> Output {
    minisign(&[
        os("-V"),
        os("-m"),
        file.as_os_str(),
        os("-x"),
        sig.as_os_str(),
        os("-P"),
        os(public_key),
    ])
}
