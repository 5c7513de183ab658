//! What a person watching a backup on a terminal sees of one site: the phase (`files` while
//! the site is read, `dump` while the database dump is waited for and added, `upload` once the
//! archive is made and the storage still has bytes to store, `completing` while the storage
//! finishes the object), the bytes read from disk, the bytes the storage has stored and the
//! upload rate, on the site's progress bar.
//!
//! A phase change redraws the bar at once (so no phase goes unseen, however short) and is a
//! debug log line; the counters are redrawn by the upload's ticker. Off a terminal the bar is
//! hidden and the default log is unchanged.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

use indicatif::ProgressBar;

use crate::output;
use crate::storage::UploadProgress;

/// Where one upload attempt is, in the order it goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// The site's files are read and compressed (the dump runs meanwhile).
    Files,
    /// The files are in: the database dump is waited for and added.
    Dump,
    /// The archive is made: the storage is still storing its last bytes.
    Upload,
    /// Every byte is stored: the storage is finishing the object.
    Completing,
}

impl Phase {
    const ALL: [Phase; 4] = [Phase::Files, Phase::Dump, Phase::Upload, Phase::Completing];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Files => "files",
            Phase::Dump => "dump",
            Phase::Upload => "upload",
            Phase::Completing => "completing",
        }
    }
}

/// One upload attempt's counters, and the bar that shows them.
pub struct Progress {
    /// Regular files archived so far.
    pub files: AtomicU64,
    /// Bytes of those files read from disk.
    pub bytes_read: AtomicU64,
    /// Bytes the storage has stored.
    stored: AtomicU64,
    phase: AtomicU8,
    started: Instant,
    site: String,
    storage: String,
    bar: ProgressBar,
}

impl Default for Progress {
    /// Counters nobody sees.
    fn default() -> Self {
        Progress::new("", "", ProgressBar::hidden())
    }
}

impl Progress {
    /// An attempt of `site` on `storage`, starting with its files.
    pub fn new(site: &str, storage: &str, bar: ProgressBar) -> Progress {
        Progress {
            files: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            phase: AtomicU8::new(Phase::Files as u8),
            started: Instant::now(),
            site: site.to_string(),
            storage: storage.to_string(),
            bar,
        }
    }

    pub fn phase(&self) -> Phase {
        let v = self.phase.load(Ordering::Acquire) as usize;
        Phase::ALL[v.min(Phase::ALL.len() - 1)]
    }

    /// Move on to `phase` (never back): the bar is redrawn now and the change logged.
    pub fn enter(&self, phase: Phase) {
        let before = self.phase.fetch_max(phase as u8, Ordering::AcqRel);
        if before < phase as u8 {
            tracing::debug!(
                site = %self.site,
                storage = %self.storage,
                phase = phase.as_str(),
                "backup phase"
            );
            self.redraw();
        }
    }

    /// Show the counters as they are now.
    pub fn redraw(&self) {
        if !self.bar.is_hidden() {
            self.bar.set_message(self.line());
        }
    }

    /// The bar's text: `upload → primary: 1204 files, 52.3 MiB read, 40.0 MiB uploaded,
    /// 6.1 MiB/s`.
    pub fn line(&self) -> String {
        line(
            self.phase(),
            &self.storage,
            [
                self.files.load(Ordering::Relaxed),
                self.bytes_read.load(Ordering::Relaxed),
                self.stored.load(Ordering::Relaxed),
            ],
            self.started.elapsed().as_secs_f64(),
        )
    }
}

/// The bar's text from its numbers: `[files, bytes read, bytes stored]` after `secs` seconds.
fn line(phase: Phase, storage: &str, [files, read, stored]: [u64; 3], secs: f64) -> String {
    let rate = if secs > 0.0 {
        (stored as f64 / secs) as u64
    } else {
        0
    };
    format!(
        "{} → {storage}: {files} files, {} read, {} uploaded, {}/s",
        phase.as_str(),
        output::human_bytes(read),
        output::human_bytes(stored),
        output::human_bytes(rate)
    )
}

impl UploadProgress for Progress {
    fn stored(&self, bytes: u64) {
        self.stored.fetch_add(bytes, Ordering::Relaxed);
    }

    fn completing(&self) {
        self.enter(Phase::Completing);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_the_phase_what_was_read_and_stored_and_the_rate() {
        let mib = 1024 * 1024;
        assert_eq!(
            line(Phase::Upload, "primary", [1204, 52 * mib, 40 * mib], 4.0),
            "upload → primary: 1204 files, 52.0 MiB read, 40.0 MiB uploaded, 10.0 MiB/s"
        );
        assert_eq!(
            line(Phase::Files, "disk", [0, 0, 0], 0.0),
            "files → disk: 0 files, 0 B read, 0 B uploaded, 0 B/s"
        );
    }

    #[test]
    fn phases_only_move_forward() {
        let p = Progress::default();
        assert_eq!(p.phase(), Phase::Files);
        p.enter(Phase::Upload);
        p.enter(Phase::Dump);
        assert_eq!(p.phase(), Phase::Upload);
        p.completing();
        assert_eq!(p.phase(), Phase::Completing);
    }
}
