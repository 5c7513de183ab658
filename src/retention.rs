//! The retention policy: which archives of one site on one storage to keep.
//!
//! The counting is restic's `forget` policy, so that people who know it can predict it:
//! archives sorted newest first; `keep_last` keeps the newest n; `keep_daily` keeps the newest
//! archive of each of the last n days that have archives, and likewise per ISO week, month and
//! year (UTC, the time in the archive's key); a rule that still has counts left when it reaches
//! the oldest archive keeps that one too (the longest history the counts allow). An archive is
//! kept when any rule keeps it. Archives this module never sees (other servers' and sites')
//! are never touched; the caller adds the one guard that is not restic's: the newest good
//! archive of a site is always kept.

use chrono::{DateTime, Datelike, Utc};

/// `retention` in config.json. Zero (or absent) disables a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Policy {
    pub keep_last: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    pub keep_yearly: u32,
}

impl Policy {
    /// True when no rule would keep anything.
    pub fn is_empty(&self) -> bool {
        self.rules().iter().all(|(n, _, _)| *n == 0)
    }

    fn rules(&self) -> [(u32, Bucket, &'static str); 5] {
        [
            (self.keep_last, Bucket::Each, "last"),
            (self.keep_daily, Bucket::Day, "daily"),
            (self.keep_weekly, Bucket::Week, "weekly"),
            (self.keep_monthly, Bucket::Month, "monthly"),
            (self.keep_yearly, Bucket::Year, "yearly"),
        ]
    }

    /// `keep_last 3, keep_daily 7` (the rules that are set).
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .rules()
            .iter()
            .filter(|(n, _, _)| *n > 0)
            .map(|(n, _, name)| format!("keep_{name} {n}"))
            .collect();
        parts.join(", ")
    }
}

#[derive(Debug, Clone, Copy)]
enum Bucket {
    Each,
    Day,
    Week,
    Month,
    Year,
}

impl Bucket {
    fn of(self, t: DateTime<Utc>, nr: usize) -> i64 {
        match self {
            Bucket::Each => nr as i64,
            Bucket::Day => t.year() as i64 * 10_000 + t.month() as i64 * 100 + t.day() as i64,
            Bucket::Week => {
                let w = t.iso_week();
                w.year() as i64 * 100 + w.week() as i64
            }
            Bucket::Month => t.year() as i64 * 100 + t.month() as i64,
            Bucket::Year => t.year() as i64,
        }
    }
}

/// For each of `times` (any order), whether the policy keeps it and why (`daily`,
/// `oldest monthly`, ...); an empty reason list means "delete".
pub fn apply(times: &[DateTime<Utc>], policy: &Policy) -> Vec<Vec<String>> {
    let mut order: Vec<usize> = (0..times.len()).collect();
    // Newest first; ties keep their input order.
    order.sort_by(|a, b| times[*b].cmp(&times[*a]));
    let mut counts: Vec<(u32, Bucket, &str, Option<i64>)> = policy
        .rules()
        .iter()
        .map(|(n, b, name)| (*n, *b, *name, None))
        .collect();
    let mut reasons = vec![Vec::new(); times.len()];
    for (nr, &i) in order.iter().enumerate() {
        let oldest = nr + 1 == order.len();
        for (left, bucket, name, last) in counts.iter_mut() {
            if *left == 0 {
                continue;
            }
            let val = bucket.of(times[i], nr);
            if Some(val) != *last || oldest {
                let reason = if Some(val) == *last {
                    format!("oldest {name}")
                } else {
                    (*name).to_string()
                };
                reasons[i].push(reason);
                *last = Some(val);
                *left -= 1;
            }
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: &str) -> DateTime<Utc> {
        let d = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        Utc.from_utc_datetime(&d)
    }

    fn policy(last: u32, daily: u32, weekly: u32, monthly: u32, yearly: u32) -> Policy {
        Policy {
            keep_last: last,
            keep_daily: daily,
            keep_weekly: weekly,
            keep_monthly: monthly,
            keep_yearly: yearly,
        }
    }

    #[test]
    fn table() {
        // Archives on these dates (oldest first in the list, as an unsorted listing might give).
        let times = [
            "2025-06-15 03:00", // 0
            "2025-12-31 03:00", // 1
            "2026-01-31 03:00", // 2
            "2026-02-28 03:00", // 3
            "2026-03-01 03:00", // 4  Sunday, ISO week 9
            "2026-03-02 03:00", // 5  Monday, ISO week 10
            "2026-03-08 03:00", // 6  Sunday, week 10
            "2026-03-09 03:00", // 7  Monday, week 11
            "2026-03-09 15:00", // 8  same day
            "2026-03-10 03:00", // 9
        ];
        let times: Vec<_> = times.iter().map(|s| t(s)).collect();
        let cases: Vec<(&str, Policy, Vec<usize>)> = vec![
            ("last 3", policy(3, 0, 0, 0, 0), vec![7, 8, 9]),
            // One per day, newest of the day (8 wins over 7).
            ("daily 3", policy(0, 3, 0, 0, 0), vec![6, 8, 9]),
            // Weeks 11, 10, 9: the newest archive of each week.
            ("weekly 3", policy(0, 0, 3, 0, 0), vec![4, 6, 9]),
            // Months 2026-03, 02, 01, 2025-12.
            ("monthly 4", policy(0, 0, 0, 4, 0), vec![1, 2, 3, 9]),
            // Counts left at the oldest archive keep it ("oldest yearly").
            ("yearly 5", policy(0, 0, 0, 0, 5), vec![0, 1, 9]),
            // A count larger than the history keeps the oldest too.
            ("monthly 12", policy(0, 0, 0, 12, 0), vec![0, 1, 2, 3, 9]),
            // Rules combine: kept if any rule keeps it.
            ("last 1 + monthly 2", policy(1, 0, 0, 2, 0), vec![3, 9]),
            ("daily 2 + yearly 1", policy(0, 2, 0, 0, 1), vec![8, 9]),
            ("nothing set", policy(0, 0, 0, 0, 0), vec![]),
        ];
        for (name, p, want) in cases {
            let reasons = apply(&times, &p);
            let kept: Vec<usize> = (0..times.len())
                .filter(|i| !reasons[*i].is_empty())
                .collect();
            assert_eq!(kept, want, "{name}: reasons {reasons:?}");
        }
    }

    #[test]
    fn reasons_name_the_rules() {
        let times = vec![t("2026-03-10 03:00"), t("2026-03-09 03:00")];
        let r = apply(&times, &policy(1, 0, 0, 3, 0));
        assert_eq!(r[0], vec!["last".to_string(), "monthly".to_string()]);
        assert_eq!(r[1], vec!["oldest monthly".to_string()]);
        assert_eq!(
            policy(1, 0, 0, 3, 0).describe(),
            "keep_last 1, keep_monthly 3"
        );
        assert!(policy(0, 0, 0, 0, 0).is_empty());
    }

    #[test]
    fn empty_and_single() {
        assert!(apply(&[], &policy(1, 1, 1, 1, 1)).is_empty());
        let r = apply(&[t("2026-01-01 00:00")], &policy(0, 1, 0, 0, 0));
        assert_eq!(r, vec![vec!["daily".to_string()]]);
    }
}
