//! Errors that callers match on across the program and that no single module owns.
//! (Each module keeps its own: `config::ConfigError`, `lock::LockedError`,
//! `storage::StorageError`, `d1::D1Error`, ...)

/// Bad usage that clap cannot catch (an unknown site name, say): exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
