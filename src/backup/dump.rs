//! The run's dump of one site: started once on its own thread, beside the file walk, and
//! shared by every upload attempt (the database is dumped once per run, whatever the failover).

use std::sync::{Arc, Mutex};

use crate::config::DatabaseConfig;
use crate::dbtools::{self, Dump};

/// Why the dump is not there; cached, so every attempt sees the same failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DumpError {
    /// The dump tool failed; the whole cause chain is shown.
    #[error("database dump failed: {0:#}")]
    Failed(Arc<anyhow::Error>),
    #[error("database dump thread panicked")]
    Panicked,
    #[error("database dump state lost")]
    Lost,
}

/// The dump of one site, running or done.
pub struct DumpCell {
    state: Mutex<DumpState>,
}

enum DumpState {
    Running(std::thread::JoinHandle<anyhow::Result<Dump>>),
    Done(Result<Arc<Dump>, DumpError>),
    Taken,
}

impl DumpCell {
    /// Start dumping `db` into the temporary directory (within `db.timeouts`), the tables of
    /// `no_rows` without their rows; with `coordinates`, its binary log position recorded.
    pub fn start(db: DatabaseConfig, no_rows: Vec<String>, coordinates: bool) -> DumpCell {
        let handle = std::thread::spawn(move || {
            dbtools::run_dump(&db, &std::env::temp_dir(), &no_rows, coordinates)
        });
        DumpCell {
            state: Mutex::new(DumpState::Running(handle)),
        }
    }

    /// Wait for the dump (the first caller joins the thread; later ones get the cached result).
    pub fn get(&self) -> Result<Arc<Dump>, DumpError> {
        let mut state = self.state.lock().map_err(|_| DumpError::Lost)?;
        if let DumpState::Running(_) = &*state
            && let DumpState::Running(handle) = std::mem::replace(&mut *state, DumpState::Taken)
        {
            let result = match handle.join() {
                Ok(Ok(d)) => Ok(Arc::new(d)),
                Ok(Err(e)) => Err(DumpError::Failed(Arc::new(e))),
                Err(_) => Err(DumpError::Panicked),
            };
            *state = DumpState::Done(result);
        }
        match &*state {
            DumpState::Done(r) => r.clone(),
            _ => Err(DumpError::Lost),
        }
    }
}

impl Drop for DumpCell {
    /// A dump still running when the site is given up (every storage failed before it ended)
    /// is waited for, so its temporary files (the dump, the defaults file with the password)
    /// are removed before the process can exit.
    fn drop(&mut self) {
        if let Ok(state) = self.state.get_mut()
            && let DumpState::Running(handle) = std::mem::replace(state, DumpState::Taken)
        {
            let _ = handle.join();
        }
    }
}
