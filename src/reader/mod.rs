//! The archive's reading side, the counterpart of `backup/archive.rs` and `backup/frames.rs`:
//! an archive downloaded from the first storage with an intact copy while its sha256 is
//! computed ([`fetch`]), read by our own extractor ([`unpack`]: paths kept inside their
//! directory, the manifest checked against what was read, a differential's chain), unpacked
//! into a private staging directory beside its target, reached by handle ([`stage`],
//! [`handles`]), listed ([`browse`], `ls`) and checked
//! where it is stored ([`verify`]). Restore, drill, `ls`, `verify` and `restore --only` all read
//! archives through here; none of it changes anything live.

pub mod browse;
pub mod fetch;
pub mod handles;
pub mod stage;
pub mod unpack;
pub mod verify;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// `m` locked, even when a thread that held it panicked: what the extractor shares between
/// threads (the chain of a differential, what `--only` found) is plain data that a panic
/// cannot leave half-changed in a way the checks after it would miss.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
