//! All integration tests, built as one binary with one shared harness of real servers.

mod util;

mod backup;
mod configure;
mod deploy;
mod fixture;
mod harness;
mod prune;
mod report;
mod restore;
mod sync_d1;
