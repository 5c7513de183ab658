//! All integration tests, built as one binary with one shared harness of real servers.

mod util;

mod backup;
mod configure;
mod dashboard;
mod deploy;
mod differential;
mod dotenv;
mod drill;
mod encryption;
mod failover;
mod faults;
mod fixture;
mod harness;
mod healthchecks;
mod hooks;
mod layout;
mod leftovers;
mod list;
mod ls;
mod parent_config;
mod progress;
mod prune;
mod quickstart;
mod real_server;
mod refusals;
mod report;
mod restore;
mod restore_copies;
mod restore_only;
mod rollback;
mod security;
mod status;
mod storage_suite;
mod sync_d1;
mod worst_day;
