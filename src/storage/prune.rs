//! Retention on the storages: which archives of a site a policy keeps, and deleting the rest.
//!
//! Keys are counted as restic's `forget` does (see `retention.rs`). Only keys that parse as
//! this server's archives of the site are considered; the newest *good* archive of a site on a
//! storage (one with a recorded sha256 and a signature, which restore would accept) is always kept, whatever
//! the policy says. Each archive is one restore point and is counted once; a kept differential
//! archive keeps its bases (a full, and a level 2's level 1) whatever the policy says, so no
//! restore point is left without its chain. An archive's signature (`KEY.minisig`) goes with
//! it, and an archive without one is not *good*. Every deletion is a `backup_log` row.

use chrono::Utc;
use serde::Serialize;

use super::Storage;
use super::catalog::{self, Listed};
use crate::config::Config;
use crate::logdb::{LogDb, LogEntry, Status};
use crate::retention::{self, Policy};

/// What happens to one archive (or why a storage could not be pruned).
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub site: String,
    pub storage: String,
    pub key: Option<String>,
    pub created_at: Option<String>,
    /// `keep`, `delete` (dry run), `deleted`, `failed`.
    pub action: &'static str,
    pub why: String,
}

/// Prune `sites` on `storages` after a backup run; everything that goes wrong is a warning.
pub fn after_backup(
    rt: &tokio::runtime::Runtime,
    config: &Config,
    db: &LogDb,
    sites: &[&str],
    storages: &[&dyn Storage],
) {
    let Some(policy) = config.retention else {
        return;
    };
    let sites: Vec<String> = sites.iter().map(|s| s.to_string()).collect();
    let run = Run {
        rt,
        config,
        db,
        policy: &policy,
        dry_run: false,
    };
    for item in run.prune(&sites, storages) {
        match item.action {
            "deleted" => tracing::info!(
                site = %item.site,
                storage = %item.storage,
                "pruned {}: {}",
                item.key.unwrap_or_default(),
                item.why
            ),
            "failed" => tracing::warn!(
                site = %item.site,
                storage = %item.storage,
                "prune: {}",
                item.why
            ),
            _ => {}
        }
    }
}

/// One pruning pass: where, by which policy, and whether to delete for real.
pub struct Run<'a> {
    pub rt: &'a tokio::runtime::Runtime,
    pub config: &'a Config,
    pub db: &'a LogDb,
    pub policy: &'a Policy,
    /// Only say what would be deleted.
    pub dry_run: bool,
}

impl Run<'_> {
    /// Apply the policy to each site on each storage; delete unless `dry_run`.
    pub fn prune(&self, sites: &[String], storages: &[&dyn Storage]) -> Vec<Item> {
        let mut items = Vec::new();
        for site in sites {
            for st in storages {
                self.prune_one(site, *st, &mut items);
            }
        }
        items
    }

    fn prune_one(&self, site: &str, st: &dyn Storage, items: &mut Vec<Item>) {
        let prefix = catalog::prefix(&self.config.server_id, Some(site));
        let archives = match self.rt.block_on(catalog::list(st, &prefix)) {
            Ok(a) => a,
            Err(e) => {
                items.push(item(site, st, None, "failed", format!("cannot list: {e}")));
                return;
            }
        };
        let times: Vec<_> = archives.iter().map(|a| a.name.created_at).collect();
        let mut reasons = retention::apply(&times, self.policy);
        // Never delete the newest archive restore would accept (newest first).
        if let Some(i) = archives.iter().position(|a| self.is_good(st, a))
            && reasons[i].is_empty()
        {
            reasons[i].push("newest good archive".into());
        }
        keep_bases(&archives, &mut reasons);
        for (a, why) in archives.iter().zip(reasons) {
            let at = a
                .name
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let (action, why) = if !why.is_empty() {
                ("keep", why.join(", "))
            } else if self.dry_run {
                ("delete", self.policy.describe())
            } else {
                self.delete(site, st, &a.info.key)
            };
            let mut it = item(site, st, Some(&a.info.key), action, why);
            it.created_at = Some(at);
            items.push(it);
        }
    }

    /// A non-empty archive with a recorded sha256 (in backups.db or on the object) and a
    /// signature beside it (`KEY.minisig`: readers refuse an archive without one).
    fn is_good(&self, st: &dyn Storage, a: &Listed) -> bool {
        let signed = self
            .rt
            .block_on(st.head(&crate::sign::signature_key(&a.info.key)))
            .is_ok();
        if !signed {
            return false;
        }
        let recorded = self
            .db
            .archive_sha256(&a.info.key, st.name())
            .ok()
            .flatten()
            .is_some();
        a.info.size > 0
            && (recorded
                || self
                    .rt
                    .block_on(st.head(&a.info.key))
                    .is_ok_and(|h| h.sha256.is_some()))
    }

    /// Delete one archive (and its signature) and log it; the action and the details.
    fn delete(&self, site: &str, st: &dyn Storage, key: &str) -> (&'static str, String) {
        let deleted = self.rt.block_on(async {
            st.delete(key).await?;
            st.delete(&crate::sign::signature_key(key)).await
        });
        let (action, status, details) = match deleted {
            Ok(()) => (
                "deleted",
                Status::Success,
                format!(
                    "deleted {key} from {} by retention ({})",
                    st.name(),
                    self.policy.describe()
                ),
            ),
            Err(e) => (
                "failed",
                Status::Error,
                format!("cannot delete {key} from {}: {e}", st.name()),
            ),
        };
        let logged = self.db.log(&LogEntry {
            timestamp: Utc::now(),
            status,
            details: &details,
            site_name: site,
            server_id: &self.config.server_id,
            action: "prune",
            storage_name: Some(st.name()),
            archive_key: Some(key),
            duration_secs: None,
        });
        if let Err(e) = logged {
            tracing::error!("cannot record the deletion in backups.db: {e:#}");
        }
        (action, details)
    }
}

/// Keep every base a kept differential archive needs (its full, and a level 2's level 1), so
/// that no restore point loses its chain. `archives` are newest first and a base is older than
/// what builds on it, so one pass reaches whole chains.
fn keep_bases(archives: &[Listed], reasons: &mut [Vec<String>]) {
    for i in 0..archives.len() {
        let (Some(base), false) = (archives[i].name.base, reasons[i].is_empty()) else {
            continue;
        };
        let Some(j) = archives.iter().position(|b| b.name.created_at == base) else {
            continue;
        };
        let name = archives[i].info.key.rsplit('/').next().unwrap_or_default();
        if j > i && reasons[j].is_empty() {
            reasons[j].push(format!("base of {name}"));
        }
    }
}

fn item(
    site: &str,
    st: &dyn Storage,
    key: Option<&str>,
    action: &'static str,
    why: String,
) -> Item {
    Item {
        site: site.to_string(),
        storage: st.name().to_string(),
        key: key.map(str::to_string),
        created_at: None,
        action,
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::catalog::tests::listed;

    #[test]
    fn a_kept_differential_keeps_its_whole_chain_and_nothing_else() {
        // Newest first: level 2 on level 1 on a full; an older full; a level 1 on that one.
        let archives = [
            listed("s/a/a_20261110T000000Z.diff-20261108T000000Z.tar.zst"),
            listed("s/a/a_20261109T000000Z.diff-20261101T000000Z.tar.zst"),
            listed("s/a/a_20261108T000000Z.diff-20261101T000000Z.tar.zst"),
            listed("s/a/a_20261101T000000Z.tar.zst"),
            listed("s/a/a_20261020T000000Z.diff-20261001T000000Z.tar.zst"),
            listed("s/a/a_20261001T000000Z.tar.zst"),
        ];
        let mut reasons = vec![
            vec!["last".to_string()],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        ];
        keep_bases(&archives, &mut reasons);
        let kept: Vec<bool> = reasons.iter().map(|r| !r.is_empty()).collect();
        assert_eq!(kept, [true, false, true, true, false, false]);
        assert_eq!(
            reasons[2],
            ["base of a_20261110T000000Z.diff-20261108T000000Z.tar.zst"]
        );
    }
}
