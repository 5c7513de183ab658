//! wpbackup's modules, as a library: the binary (`main.rs`) is built on it, and so are the
//! integration tests that must call a module directly rather than through the command line
//! (the storage suite runs the [`storage::Storage`] trait itself against every backend; the
//! point-in-time tests run [`binlog::replay`] on a real binary log).
//! The layers and what each module owns are in docs/architecture.md.

mod app;
mod backup;
pub mod binlog;
pub mod cli;
mod clone;
pub mod commands;
pub mod config;
mod configure;
mod crypt;
mod d1;
mod dbtools;
mod drill;
mod error;
mod interrupt;
mod lock;
mod logdb;
mod manifest;
pub mod output;
mod reader;
mod report;
mod restore;
mod retention;
pub mod secret;
mod serialized;
mod sign;
mod site;
pub mod storage;
