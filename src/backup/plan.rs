//! Which archive a run makes of a site: full, or differential on which base.
//!
//! The policy is config.json `differential` ([`DiffPolicy`]): a full archive every
//! `full_every_days`, a level-1 differential (changes since the full) every
//! `level1_every_days`, level 2 (changes since the newest level 1) on the other runs, so a
//! restore point is at most three archives. A differential needs the site's index
//! ([`super::index`]); one whose changed files would pass `max_share_percent` of the full's
//! bytes goes one level up. Then, storage by storage ([`check_base`]): a differential goes only
//! to the storage that holds its base with the recorded size; any other gets a full archive.
//! Every full made when a differential was due says why in the log.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::archive::DiffBase;
use super::index::{Index, Snapshot, Stat};
use super::walk;
use crate::config::DiffPolicy;
use crate::storage::Storage;

/// The archive a run means to make of a site.
#[derive(Debug, Clone)]
pub enum Plan {
    /// A full archive; `why` is `None` when differentials are off, else the reason.
    Full {
        why: Option<String>,
    },
    Differential(DiffBase),
}

/// What the policy asks for, before the storages are asked whether they hold the base.
pub fn choose(
    policy: Option<&DiffPolicy>,
    index: Option<&Index>,
    now: DateTime<Utc>,
    force_full: bool,
) -> Plan {
    let full = |why: &str| Plan::Full {
        why: Some(why.to_string()),
    };
    let Some(policy) = policy else {
        return Plan::Full { why: None };
    };
    if force_full {
        return full("--full asks for one");
    }
    let Some(base) = index.and_then(|i| i.full.as_ref()) else {
        return full("no index of a full archive of this site in the home directory");
    };
    let days = |t: DateTime<Utc>| (now - t).num_seconds() as f64 / 86_400.0;
    if days(base.created_at) >= f64::from(policy.full_every_days) {
        return full(&format!(
            "the newest full archive is {:.0} days old (differential.full_every_days {})",
            days(base.created_at),
            policy.full_every_days
        ));
    }
    let level1 = index
        .and_then(|i| i.level1.as_ref())
        .filter(|l| l.created_at > base.created_at && policy.level1_every_days > 0)
        .filter(|l| days(l.created_at) < f64::from(policy.level1_every_days));
    match level1 {
        Some(l1) => Plan::Differential(DiffBase {
            level: 2,
            base: Arc::new(l1.clone()),
            full: Some(Arc::new(base.clone())),
        }),
        None => Plan::Differential(DiffBase {
            level: 1,
            base: Arc::new(base.clone()),
            full: None,
        }),
    }
}

/// `plan`, one level up while its changed files pass `max_share_percent` of the full's bytes
/// (measured by a walk that only compares metadata).
pub fn within_share(
    plan: Plan,
    policy: Option<&DiffPolicy>,
    index: Option<&Index>,
    site_path: &Path,
    excluded: &dyn Fn(&Path) -> bool,
) -> Plan {
    let (Plan::Differential(d), Some(policy), Some(full)) =
        (&plan, policy, index.and_then(|i| i.full.as_ref()))
    else {
        return plan;
    };
    let limit = full
        .bytes
        .saturating_mul(u64::from(policy.max_share_percent))
        / 100;
    let changed = changed_bytes(site_path, excluded, &d.base);
    if changed <= limit.max(1) {
        return plan;
    }
    let why = format!(
        "{} of files changed since {}, more than differential.max_share_percent {} of the full archive's {}",
        crate::output::human_bytes(changed),
        d.base.key,
        policy.max_share_percent,
        crate::output::human_bytes(full.bytes)
    );
    if d.level == 2 {
        tracing::info!("a level-1 differential instead of level 2: {why}");
        let up = Plan::Differential(DiffBase {
            level: 1,
            base: Arc::new(full.clone()),
            full: None,
        });
        return within_share(up, Some(policy), index, site_path, excluded);
    }
    Plan::Full { why: Some(why) }
}

/// Bytes of the regular files under `root` whose metadata differs from `base`'s (new ones
/// included), the walk joined against the base's tree as both go (memory does not grow with
/// the site). A walk that fails counts as everything changed.
fn changed_bytes(root: &Path, excluded: &dyn Fn(&Path) -> bool, base: &Snapshot) -> u64 {
    let mut cursor = match base.cursor() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("{e:#}");
            return u64::MAX;
        }
    };
    let mut changed = 0u64;
    let walked = walk::walk(root, excluded, &mut |entry| {
        if let Ok(walk::Entry::File { rel, handle }) = entry
            && let Ok(meta) = handle.metadata()
        {
            let was = match rel.to_str() {
                Some(p) => cursor.seek(p, &mut |_, _| Ok(()))?,
                None => None,
            };
            if was != Some(Stat::of('f', &meta)) {
                changed += meta.len();
            }
        }
        Ok(())
    });
    match walked {
        Ok(()) => changed,
        Err(_) => u64::MAX,
    }
}

/// Whether `st` may take the differential `d`: it holds its base, and a level 2's full too.
pub async fn check_chain(st: &dyn Storage, d: &DiffBase) -> Result<(), String> {
    check_base(st, &d.base).await?;
    match &d.full {
        Some(full) => check_base(st, full).await,
        None => Ok(()),
    }
}

/// Whether `st` holds `base`: it is the storage that took it, and it is there with the size
/// recorded (and the sha256, when the storage keeps one).
async fn check_base(st: &dyn Storage, base: &Snapshot) -> Result<(), String> {
    if st.name() != base.storage {
        return Err(format!(
            "the base {} is on storage {}, not on {}",
            base.key,
            base.storage,
            st.name()
        ));
    }
    match st.head(&base.key).await {
        Err(e) => Err(format!("its base {} cannot be found there: {e}", base.key)),
        Ok(info) if info.size != base.size => Err(format!(
            "its base {} is {} bytes there, not the {} recorded",
            base.key, info.size, base.size
        )),
        Ok(info) if info.sha256.as_ref().is_some_and(|s| *s != base.sha256) => Err(format!(
            "its base {} there has another sha256 than the one recorded",
            base.key
        )),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(level: u8, created_at: DateTime<Utc>) -> Snapshot {
        Snapshot {
            key: format!("s/a/a_{level}.tar.zst"),
            storage: "primary".into(),
            sha256: "00".repeat(32),
            size: 1,
            created_at,
            level,
            bytes: 100,
            tree: String::new(),
            tree_sha256: String::new(),
            paths: 0,
            dir: Default::default(),
        }
    }

    fn level_of(p: &Plan) -> u8 {
        match p {
            Plan::Full { .. } => 0,
            Plan::Differential(d) => d.level,
        }
    }

    #[test]
    fn the_schedule_gives_fulls_level_ones_and_level_twos() {
        let policy = DiffPolicy::default();
        let t0 = Utc::now() - chrono::Duration::days(10);
        let day = |n: i64| t0 + chrono::Duration::days(n);
        let mut index = Index {
            format: 1,
            full: Some(snap(0, t0)),
            level1: None,
        };
        assert_eq!(level_of(&choose(None, Some(&index), day(1), false)), 0);
        assert_eq!(level_of(&choose(Some(&policy), None, day(1), false)), 0);
        assert_eq!(
            level_of(&choose(Some(&policy), Some(&index), day(1), true)),
            0
        );
        assert_eq!(
            level_of(&choose(Some(&policy), Some(&index), day(1), false)),
            1
        );
        index.level1 = Some(snap(1, day(1)));
        assert_eq!(
            level_of(&choose(Some(&policy), Some(&index), day(2), false)),
            2
        );
        assert_eq!(
            level_of(&choose(Some(&policy), Some(&index), day(8), false)),
            1
        );
        assert_eq!(
            level_of(&choose(Some(&policy), Some(&index), day(30), false)),
            0
        );
        // A level 1 older than the full is not a base.
        index.level1 = Some(snap(1, day(-1)));
        assert_eq!(
            level_of(&choose(Some(&policy), Some(&index), day(2), false)),
            1
        );
        let two_levels = DiffPolicy {
            level1_every_days: 0,
            ..policy
        };
        index.level1 = Some(snap(1, day(1)));
        assert_eq!(
            level_of(&choose(Some(&two_levels), Some(&index), day(2), false)),
            1
        );
    }
}
