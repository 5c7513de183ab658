//! Where the fleet's D1 database is (`.env`: `CF_ACCOUNT_ID`, `CF_API_TOKEN`,
//! `D1_DATABASE_ID`, `D1_API_BASE`, `D1_TIMEOUT_SECS`) and how long D1 may take.

use std::time::Duration;

use crate::config::Env;
use crate::secret::Secret;

/// Cloudflare's API, unless `D1_API_BASE` says otherwise (tests point it at a simulator).
pub const DEFAULT_API_BASE: &str = "https://api.cloudflare.com/client/v4";

/// Where the fleet's D1 database is, from `.env`.
#[derive(Debug, Clone)]
pub struct D1Settings {
    pub api_base: String,
    pub account_id: String,
    pub database_id: String,
    pub token: Secret,
    /// `D1_TIMEOUT_SECS`: how long one call may take at the end of a backup.
    pub backup_timeout: Duration,
}

impl D1Settings {
    /// `None` when D1 is not configured at all (none of the three variables set); an error
    /// naming what is missing when it is half configured.
    pub fn from_env(env: &Env) -> anyhow::Result<Option<D1Settings>> {
        // Empty values (as .env.example has them) count as unset.
        let get = |k: &str| env.get(k).filter(|v| !v.trim().is_empty());
        let account = get("CF_ACCOUNT_ID");
        let database = get("D1_DATABASE_ID");
        let token = get("CF_API_TOKEN").map(Secret::new);
        if account.is_none() && database.is_none() && token.is_none() {
            return Ok(None);
        }
        let missing: Vec<&str> = [
            ("CF_ACCOUNT_ID", account.is_none()),
            ("CF_API_TOKEN", token.is_none()),
            ("D1_DATABASE_ID", database.is_none()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(n, _)| *n)
        .collect();
        let (Some(account_id), Some(database_id), Some(token)) = (account, database, token) else {
            anyhow::bail!(
                "D1 is half configured: {} not set in the environment or in {} (set CF_ACCOUNT_ID, CF_API_TOKEN and D1_DATABASE_ID, or none of them)",
                missing.join(", "),
                env.file_path().display()
            );
        };
        let api_base = get("D1_API_BASE")
            .unwrap_or_else(|| DEFAULT_API_BASE.to_string())
            .trim_end_matches('/')
            .to_string();
        // The token travels in a header: plain http only to this machine (a local simulator).
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|p| {
                api_base
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
            });
        if !(api_base.starts_with("https://") || loopback) {
            anyhow::bail!(
                "D1_API_BASE={api_base}: must start with https:// (plain http only to 127.0.0.1 or localhost)"
            );
        }
        let backup_timeout = match get("D1_TIMEOUT_SECS") {
            None => Duration::from_secs(15),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if (1..=30).contains(&n) => Duration::from_secs(n),
                _ => anyhow::bail!(
                    "D1_TIMEOUT_SECS={v}: must be a number of seconds from 1 to 30 (D1 stops a query after 30 s)"
                ),
            },
        };
        Ok(Some(D1Settings {
            backup_timeout,
            api_base,
            account_id,
            database_id,
            token,
        }))
    }

    pub fn query_url(&self) -> String {
        format!(
            "{}/accounts/{}/d1/database/{}/query",
            self.api_base, self.account_id, self.database_id
        )
    }
}

/// How long D1 may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connect_timeout: Duration,
    /// One HTTP call (D1 itself stops a query after 30 s).
    pub request_timeout: Duration,
    /// Attempts per call for transient failures (connection errors, 5xx); a 429 is never retried.
    pub attempts: u32,
    /// All calls together: past it, no new call starts.
    pub deadline: Duration,
}

impl Limits {
    /// `wpbackup sync-d1` on its own: patient.
    pub fn command() -> Limits {
        Limits {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            attempts: 3,
            deadline: Duration::from_secs(600),
        }
    }

    /// At the end of `backup`: short, so that D1 never holds a backup up for long. One call
    /// may take `timeout` (`D1_TIMEOUT_SECS`, default 15 s), everything together three times
    /// that.
    pub fn after_backup(timeout: Duration) -> Limits {
        Limits {
            connect_timeout: timeout.min(Duration::from_secs(5)),
            request_timeout: timeout,
            attempts: 2,
            deadline: timeout * 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_pairs(vars)
    }

    #[test]
    fn settings_from_env() {
        assert!(D1Settings::from_env(&env(&[])).unwrap().is_none());
        let empty = env(&[
            ("CF_ACCOUNT_ID", ""),
            ("CF_API_TOKEN", ""),
            ("D1_DATABASE_ID", ""),
        ]);
        assert!(
            D1Settings::from_env(&empty).unwrap().is_none(),
            "as in .env.example"
        );
        let err = D1Settings::from_env(&env(&[("CF_ACCOUNT_ID", "a")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CF_API_TOKEN, D1_DATABASE_ID not set"),
            "{err}"
        );
        let s = D1Settings::from_env(&env(&[
            ("CF_ACCOUNT_ID", "acc"),
            ("D1_DATABASE_ID", "db"),
            ("CF_API_TOKEN", "tok"),
            ("D1_API_BASE", "http://127.0.0.1:1/client/v4/"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            s.query_url(),
            "http://127.0.0.1:1/client/v4/accounts/acc/d1/database/db/query"
        );
        assert!(!format!("{s:?}").contains("tok\""));
        assert_eq!(s.backup_timeout, Duration::from_secs(15));
        for (base, ok) in [
            ("http://example.com/client/v4", false),
            ("http://127.0.0.1.example.com/v4", false),
            ("http://localhost:8787/client/v4", true),
            ("https://api.cloudflare.com/client/v4", true),
        ] {
            let r = D1Settings::from_env(&env(&[
                ("CF_ACCOUNT_ID", "acc"),
                ("D1_DATABASE_ID", "db"),
                ("CF_API_TOKEN", "tok"),
                ("D1_API_BASE", base),
            ]));
            assert_eq!(r.is_ok(), ok, "{base}");
        }
        let err = D1Settings::from_env(&env(&[
            ("CF_ACCOUNT_ID", "acc"),
            ("D1_DATABASE_ID", "db"),
            ("CF_API_TOKEN", "tok"),
            ("D1_TIMEOUT_SECS", "90"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("D1_TIMEOUT_SECS=90: must be a number of seconds from 1 to 30"),
            "{err}"
        );
    }
}
