//! The run's time: the second that names a backup run's archives, unique per home.
//!
//! Object keys name the run's time to the second, so two runs in the same second would give
//! their archives the same key and the second would overwrite the first (found by the soak: a
//! clean run right after a fault replaced the faulted run's archive, whose backups.db row then
//! named an object of another size and sha256). Runs of a home are one at a time (the run
//! lock), and each records its time in `<home>/last-run` while it holds the lock: a run waits
//! for the next whole second only when the one before it started in this same second (or
//! when that record is missing or unreadable), not on every run as it did before.
//!
//! `WPBACKUP_NOW` (RFC 3339) replaces the clock, with no wait and no record: tests and
//! benchmarks simulate nights with it (formats.md "Environment").

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

/// The file in wpbackup's home that holds the previous run's time (RFC 3339, one line).
pub const LAST_RUN_FILE: &str = "last-run";

/// The time of a run that has just taken `home`'s run lock: now, or the start of the next
/// whole second when the previous run of this home started in this second (or is unknown).
/// Records it as the previous run's time for the next one; a record that cannot be written is
/// a warning (the next run then waits, which is safe).
pub fn run_time(home: &Path) -> DateTime<Utc> {
    if let Some(t) = std::env::var("WPBACKUP_NOW")
        .ok()
        .and_then(|v| DateTime::parse_from_rfc3339(v.trim()).ok())
    {
        return t.with_timezone(&Utc);
    }
    let previous = std::fs::read_to_string(home.join(LAST_RUN_FILE))
        .ok()
        .and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok())
        .map(|t| t.with_timezone(&Utc));
    let now = Utc::now();
    let wait = wait_before(now, previous);
    if !wait.is_zero() {
        std::thread::sleep(wait);
    }
    let at = if wait.is_zero() {
        now
    } else {
        Utc::now().max(now + chrono::Duration::from_std(wait).unwrap_or_default())
    };
    if let Err(e) = record(home, at) {
        tracing::warn!(
            "cannot record this run's time in {}: {e}; the next run waits for a new second",
            home.join(LAST_RUN_FILE).display()
        );
    }
    at
}

/// How long a run starting at `now` waits so that its second differs from the `previous`
/// run's: until the next whole second when that run started in this second or later (a clock
/// set back: waiting for it to catch up could take hours, so only to the next second) or when
/// it is unknown, else not at all.
pub fn wait_before(now: DateTime<Utc>, previous: Option<DateTime<Utc>>) -> Duration {
    let to_next_second = || {
        let into = Duration::from_nanos(u64::from(now.timestamp_subsec_nanos()));
        Duration::from_secs(1).saturating_sub(into)
    };
    match previous {
        Some(p) if p.timestamp() < now.timestamp() => Duration::ZERO,
        _ => to_next_second(),
    }
}

/// Write `at` to `home`'s [`LAST_RUN_FILE`] atomically (a temporary file, synced, renamed).
fn record(home: &Path, at: DateTime<Utc>) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut tmp = tempfile::NamedTempFile::new_in(home)?;
    writeln!(tmp, "{}", at.to_rfc3339_opts(SecondsFormat::Nanos, true))?;
    tmp.as_file().sync_all()?;
    tmp.persist(home.join(LAST_RUN_FILE)).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_run_waits_only_when_the_previous_one_started_in_its_second_or_is_unknown() {
        let now = at("2026-12-04T03:00:07.250Z");
        assert_eq!(
            wait_before(now, Some(at("2026-12-04T03:00:06.999Z"))),
            Duration::ZERO
        );
        assert_eq!(
            wait_before(now, Some(at("2026-12-03T03:00:07Z"))),
            Duration::ZERO
        );
        let rest = Duration::from_millis(750);
        assert_eq!(wait_before(now, Some(at("2026-12-04T03:00:07.100Z"))), rest);
        assert_eq!(wait_before(now, None), rest);
        // A clock set back an hour: only to the next second, never the hour.
        assert_eq!(wait_before(now, Some(at("2026-12-04T04:00:07Z"))), rest);
    }

    #[test]
    fn runs_of_one_home_one_after_another_get_different_seconds() {
        let home = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        for _ in 0..3 {
            let t = run_time(home.path());
            let recorded = std::fs::read_to_string(home.path().join(LAST_RUN_FILE)).unwrap();
            assert_eq!(at(recorded.trim()), t);
            seen.push(t.timestamp());
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    }
}
