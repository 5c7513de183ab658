//! The soak's tally (issue 15 item 3) and the table it prints and appends to RELIABILITY.md.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::faults::Fault;

#[derive(Default)]
pub struct Stats {
    pub runs: usize,
    pub clean_runs: usize,
    pub faults: BTreeMap<Fault, usize>,
    pub archives_verified: usize,
    pub restores_checked: usize,
    pub killed_leftovers: usize,
    pub uploads_left_by_faults: usize,
    /// Faulted runs still going when their fault struck (or broken before they began).
    pub struck: usize,
    /// The results (backup_log status) of the sites in faulted runs.
    pub results: BTreeMap<String, usize>,
    /// Archives of faulted runs by the storage that took them.
    pub landed: BTreeMap<String, usize>,
    pub clean_time: Duration,
    pub d1_rows: i64,
    /// Archives seen changed after they were recorded (reported once each).
    pub changed: std::collections::BTreeSet<String>,
    pub broken: Vec<String>,
}

impl Stats {
    pub fn mean_clean_run(&self) -> Duration {
        self.clean_time / (self.clean_runs.max(1) as u32)
    }
}

pub fn table(stats: &Stats, seed: u64, took: Duration) -> String {
    let mut t = String::new();
    t.push_str(&format!(
        "## {}: seed {seed}, {} runs in {:.0} min\n\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        stats.runs,
        took.as_secs_f64() / 60.0
    ));
    t.push_str("| | |\n|---|---|\n");
    t.push_str(&format!(
        "| faulted runs (3 sites each) | {} |\n",
        stats.runs
    ));
    t.push_str(&format!(
        "| clean runs after a fault | {} (mean {:.1} s) |\n",
        stats.clean_runs,
        stats.mean_clean_run().as_secs_f64()
    ));
    t.push_str(&format!(
        "| faults that struck while the run was going | {} |\n",
        stats.struck
    ));
    let list = |m: &BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    t.push_str(&format!(
        "| site results in faulted runs | {} |\n",
        list(&stats.results)
    ));
    t.push_str(&format!(
        "| archives of faulted runs, by storage and kind | {} |\n",
        list(&stats.landed)
    ));
    for (fault, n) in &stats.faults {
        t.push_str(&format!("| fault: {} | {n} |\n", fault.name()));
    }
    t.push_str(&format!(
        "| archives verified (sha256, size, `wpbackup verify`) | {} |\n",
        stats.archives_verified
    ));
    t.push_str(&format!(
        "| restores checked (`wpbackup drill`, per site) | {} |\n",
        stats.restores_checked
    ));
    t.push_str(&format!(
        "| files left by SIGKILLed runs (expected, removed) | {} |\n",
        stats.killed_leftovers
    ));
    t.push_str(&format!(
        "| uploads left open on a killed/stalled server (expected) | {} |\n",
        stats.uploads_left_by_faults
    ));
    t.push_str(&format!(
        "| backup_log rows in D1 at the end (all of backups.db) | {} |\n",
        stats.d1_rows
    ));
    t.push_str(&format!(
        "| **invariants broken** | **{}** |\n",
        stats.broken.len()
    ));
    t.push_str(&format!(
        "| seed | {seed} |\n| duration | {:.0} s |\n\n",
        took.as_secs_f64()
    ));
    for b in &stats.broken {
        t.push_str(&format!("- broken: {b}\n"));
    }
    if !stats.broken.is_empty() {
        t.push('\n');
    }
    t
}
