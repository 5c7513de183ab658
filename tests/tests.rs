//! All integration tests, built as one binary with one shared harness of real servers.

mod util;

mod backup;
mod configure;
mod deploy;
mod dotenv;
mod encryption;
mod failover;
mod faults;
mod fixture;
mod harness;
mod healthchecks;
mod layout;
mod leftovers;
mod prune;
mod quickstart;
mod refusals;
mod report;
mod restore;
mod security;
mod status;
mod storage_suite;
mod sync_d1;
