//! On-the-spot tests for `configure`: does each thing a person just typed actually work?
//!
//! - a site: its credentials (config.json or wp-config.php) open its database;
//! - a storage: a small object is written, read back, compared and deleted through the same
//!   [`Storage`](crate::storage::Storage) trait the backup uses, and a failure is named by
//!   what failed (DNS, TLS, connection, credentials, bucket, permission);
//! - Cloudflare D1: one `SELECT 1` through its REST API;
//! - SMTP: a test mail through the configured server;
//! - `binlog` (point-in-time recovery): the database server writes a binary log in row format
//!   (`SELECT @@log_bin, @@binlog_format`), else what to add to its config; and the user that
//!   ships it (root through the socket, or `binlog.database`'s) holds what shipping needs
//!   (`RELOAD`, `BINLOG MONITOR` or `REPLICATION CLIENT`, `REPLICATION SLAVE`, in its
//!   `SHOW GRANTS` on `*.*`), else the `GRANT` to run.
//!
//! Every result is one line a person can act on, and none holds a secret.

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::config::{ConfigError, SiteConfig, StorageConfig};
use crate::d1::{D1Client, D1Settings, Limits, Statement};
use crate::report::mail::{self, SmtpSettings};
use crate::storage::{self, Body, StorageError};

/// Why a check failed, in words a person can act on (never a secret). The site, D1 and SMTP
/// variants keep the whole error and show its cause chain.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The entry does not validate as `backup` would load it.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The site's database did not answer (or its credentials could not be found).
    #[error("{0:#}")]
    Site(anyhow::Error),
    #[error(transparent)]
    Storage(#[from] StorageFailure),
    #[error("{0:#}")]
    D1(anyhow::Error),
    #[error("{0:#}")]
    Smtp(anyhow::Error),
    #[error("{0:#}")]
    Binlog(anyhow::Error),
}

/// Check a site's database: Ok(a description of what answered) or why not.
pub fn site(site: &SiteConfig) -> Result<String, CheckError> {
    let resolved =
        crate::site::resolve(site, crate::config::Timeouts::default()).map_err(CheckError::Site)?;
    let url = crate::site::siteurl(&resolved).map_err(CheckError::Site)?;
    Ok(format!(
        "database {} as {} at {} answers{}",
        resolved.db.name,
        resolved.db.user,
        crate::site::describe_host(&resolved.db),
        url.map(|u| format!(" (siteurl {u})")).unwrap_or_default()
    ))
}

/// What went wrong with a storage, as a person would look for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Dns,
    Tls,
    Connection,
    Credentials,
    Bucket,
    Permission,
    Timeout,
    ReadBack,
    Other,
}

impl Failure {
    pub fn label(self) -> &'static str {
        match self {
            Failure::Dns => "DNS: the endpoint's host name does not resolve (check the endpoint)",
            Failure::Tls => {
                "TLS: the secure connection failed (check https:// vs http:// and the certificate)"
            }
            Failure::Connection => {
                "connection: nothing answers at the endpoint (check the endpoint and port)"
            }
            Failure::Credentials => "credentials: the access key or secret key was rejected",
            Failure::Bucket => "bucket: it does not exist (create it or fix the name)",
            Failure::Permission => "permission: the key may not write, read or delete there",
            Failure::Timeout => "timeout: the endpoint did not answer in time",
            Failure::ReadBack => "read back: the object read back differs from what was written",
            Failure::Other => "the storage refused the test",
        }
    }
}

/// Class a storage error by its text (the storage layer's messages, and the network stack's).
pub fn classify(err: &str) -> Failure {
    let e = err.to_ascii_lowercase();
    let has = |s: &str| e.contains(s);
    if has("dns error") || has("failed to lookup") || has("name or service not known") {
        Failure::Dns
    } else if has("certificate") || has("tls") || has("handshake") || has("invalidcontenttype") {
        Failure::Tls
    } else if has("connection refused") || has("cannot reach") || has("connection reset") {
        Failure::Connection
    } else if has("credentials rejected")
        || has("signaturedoesnotmatch")
        || has("invalidaccesskeyid")
    {
        Failure::Credentials
    } else if has("bucket does not exist") || has("nosuchbucket") {
        Failure::Bucket
    } else if has("permission denied") || has("accessdenied") || has("read-only") {
        Failure::Permission
    } else if has("timed out") || has("timeout") {
        Failure::Timeout
    } else {
        Failure::Other
    }
}

/// A storage test that failed: what failed, and the storage's own words.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} [{}]", .failure.label(), .detail)]
pub struct StorageFailure {
    pub failure: Failure,
    pub detail: String,
}

/// Write, read back and delete a small object on `cfg`; `tag` makes the key unique.
pub async fn storage(cfg: &StorageConfig, tag: &str) -> Result<(), StorageFailure> {
    let fail = |e: &StorageError| StorageFailure {
        failure: classify(&e.to_string()),
        detail: e.to_string(),
    };
    if let crate::config::StorageKind::Local { path } = &cfg.kind {
        std::fs::create_dir_all(path).map_err(|e| StorageFailure {
            failure: classify(&e.to_string()),
            detail: format!("cannot create {}: {e}", path.display()),
        })?;
    }
    let store = storage::open(cfg).map_err(|e| StorageFailure {
        failure: Failure::Other,
        detail: format!("{e:#}"),
    })?;
    store.check().await.map_err(|e| fail(&e))?;
    let key = format!(
        "wpbackup-configure-test-{tag}-{}.txt",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
    );
    let payload = Bytes::from(format!(
        "wpbackup configure test object for storage {}; safe to delete\n",
        cfg.name
    ));
    let (tx, body) = Body::channel(1);
    let _ = tx.send(Ok(payload.clone())).await;
    drop(tx);
    store.put(&key, body).await.map_err(|e| fail(&e))?;
    let read = async {
        let mut r = store.get(&key).await?;
        let mut back = Vec::new();
        r.read_to_end(&mut back)
            .await
            .map_err(|e| StorageError::Transient(format!("reading the test object: {e}")))?;
        Ok::<_, StorageError>(back)
    }
    .await;
    let deleted = store.delete(&key).await;
    let back = read.map_err(|e| fail(&e))?;
    if back != payload {
        return Err(StorageFailure {
            failure: Failure::ReadBack,
            detail: format!("wrote {} bytes, read {} back", payload.len(), back.len()),
        });
    }
    deleted.map_err(|e| fail(&e))?;
    Ok(())
}

/// Run `SELECT 1` on the D1 database through the same REST client `sync-d1` uses.
pub async fn d1(settings: &D1Settings) -> anyhow::Result<()> {
    let client = D1Client::new(settings, Limits::command())?;
    client
        .query(Statement::new("SELECT 1 AS ok", Vec::new()))
        .await
        .map_err(anyhow::Error::from)?;
    Ok(())
}

/// Send a test mail through the same SMTP code `report` uses; returns the recipients.
pub fn smtp(settings: &SmtpSettings, server_id: &str) -> anyhow::Result<String> {
    let text = format!(
        "This is a test mail from `wpbackup configure` on {server_id}.\nBackup reports will arrive like this one.\n"
    );
    let html = format!("<p>{}</p>", text.trim().replace('\n', "<br>"));
    mail::send(
        settings,
        &format!("[wpbackup] {server_id}: test mail"),
        text,
        html,
    )?;
    Ok(settings
        .to
        .iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join(", "))
}

/// What to add to the database server's config for point-in-time recovery (README's
/// "Point-in-time recovery").
pub const BINLOG_SERVER_CONFIG: &str = "[mysqld]
log_bin          = /var/log/mysql/mariadb-bin
binlog_format    = ROW
server_id        = 1
expire_logs_days = 3";

/// The privileges on `*.*` binary log shipping needs, each with the names that grant it.
const SHIPPING_NEEDS: [(&str, &[&str]); 3] = [
    ("RELOAD", &["RELOAD", "BINLOG ADMIN"]),
    ("BINLOG MONITOR", &["BINLOG MONITOR", "REPLICATION CLIENT"]),
    (
        "REPLICATION SLAVE",
        &["REPLICATION SLAVE", "REPLICATION REPLICA"],
    ),
];

/// Check `binlog`: the server `db` reaches writes a binary log in row format, and `db`'s user
/// may rotate it, list it and read it.
pub fn binlog(db: &crate::config::DatabaseConfig) -> anyhow::Result<String> {
    use crate::dbtools::client;
    let said = client::sql(
        db,
        None,
        "SELECT @@log_bin, @@binlog_format, @@server_id, CURRENT_USER()",
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot ask the database server as {} ({e:#}); binary log shipping logs in as root through the local socket (MYSQL_UNIX_PORT in .env names it) or as binlog.database's user",
            db.user
        )
    })?;
    let row: Vec<&str> = said.lines().next().unwrap_or("").split('\t').collect();
    let [log_bin, format, server_id, user] = row[..] else {
        anyhow::bail!("the database server answered {said:?} to SELECT @@log_bin, @@binlog_format");
    };
    if log_bin != "1" {
        anyhow::bail!(
            "the database server writes no binary log (log_bin is off): add this to its config (/etc/mysql/mariadb.conf.d/50-server.cnf) and restart it, see README's \"Point-in-time recovery\":\n{BINLOG_SERVER_CONFIG}"
        );
    }
    if !format.eq_ignore_ascii_case("ROW") {
        anyhow::bail!(
            "the database server's binary log is in {format} format, and the replay needs ROW: set `binlog_format = ROW` under [mysqld] in its config (/etc/mysql/mariadb.conf.d/50-server.cnf) and restart it"
        );
    }
    let grants = client::sql(db, None, "SHOW GRANTS")
        .map_err(|e| anyhow::anyhow!("cannot read {user}'s privileges (SHOW GRANTS): {e:#}"))?;
    let missing = missing_privileges(&grants);
    if !missing.is_empty() {
        let (name, host) = user.rsplit_once('@').unwrap_or((user, "localhost"));
        anyhow::bail!(
            "{user} may not ship the binary log: it lacks {} on *.*; run GRANT RELOAD, BINLOG MONITOR, REPLICATION SLAVE ON *.* TO '{name}'@'{host}'",
            missing.join(", ")
        );
    }
    Ok(format!(
        "the server writes a binary log in ROW format (server_id {server_id}); {user} may rotate, list and read it (RELOAD, BINLOG MONITOR, REPLICATION SLAVE)"
    ))
}

/// The shipping privileges `SHOW GRANTS`'s lines do not give on `*.*`.
fn missing_privileges(grants: &str) -> Vec<&'static str> {
    let mut held: Vec<String> = Vec::new();
    for line in grants.lines() {
        let Some(rest) = line.strip_prefix("GRANT ") else {
            continue;
        };
        let Some((privs, _)) = rest.split_once(" ON *.* TO ") else {
            continue;
        };
        held.extend(privs.split(',').map(|p| p.trim().to_ascii_uppercase()));
    }
    if held.iter().any(|p| p == "ALL PRIVILEGES" || p == "ALL") {
        return Vec::new();
    }
    SHIPPING_NEEDS
        .iter()
        .filter(|(_, any)| !any.iter().any(|a| held.iter().any(|h| h == a)))
        .map(|(name, _)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_named_by_what_failed() {
        let cases = [
            (
                "storage x: check: cannot reach the endpoint: dispatch failure: io error: error trying to connect: dns error: failed to lookup address information",
                Failure::Dns,
            ),
            (
                "cannot reach the endpoint: error trying to connect: invalid peer certificate: UnknownIssuer",
                Failure::Tls,
            ),
            (
                "cannot reach the endpoint: tcp connect error: Connection refused (os error 111)",
                Failure::Connection,
            ),
            (
                "storage x: check: credentials rejected (SignatureDoesNotMatch): check the access key",
                Failure::Credentials,
            ),
            (
                "storage x: the bucket does not exist: create it",
                Failure::Bucket,
            ),
            (
                "storage l: cannot create /x: Permission denied (os error 13)",
                Failure::Permission,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(classify(text), want, "{text}");
        }
    }

    #[test]
    fn the_shipping_privileges_are_read_from_show_grants() {
        let root = "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION\nGRANT PROXY ON ``@`%` TO `root`@`localhost` WITH GRANT OPTION\n";
        assert!(missing_privileges(root).is_empty());
        let shipper = "GRANT RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `s`@`localhost`\n";
        assert!(missing_privileges(shipper).is_empty());
        let old_names = "GRANT RELOAD, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `s`@`%`\n";
        assert!(missing_privileges(old_names).is_empty());
        // Rights on a database are not rights on the server.
        let site = "GRANT USAGE ON *.* TO `wp`@`localhost` IDENTIFIED BY PASSWORD '*X'\nGRANT ALL PRIVILEGES ON `wp`.* TO `wp`@`localhost`\n";
        assert_eq!(
            missing_privileges(site),
            ["RELOAD", "BINLOG MONITOR", "REPLICATION SLAVE"]
        );
        assert_eq!(
            missing_privileges("GRANT RELOAD ON *.* TO `s`@`localhost`\n"),
            ["BINLOG MONITOR", "REPLICATION SLAVE"]
        );
    }

    #[test]
    fn a_failed_check_shows_its_whole_cause_chain() {
        let e = CheckError::D1(
            anyhow::anyhow!("connection refused").context("cannot reach the D1 API"),
        );
        assert_eq!(e.to_string(), "cannot reach the D1 API: connection refused");
    }

    #[tokio::test]
    async fn a_local_storage_is_written_read_and_cleaned() {
        let d = tempfile::tempdir().unwrap();
        let cfg = StorageConfig {
            name: "disk".into(),
            priority: 1,
            kind: crate::config::StorageKind::Local {
                path: d.path().join("archives"),
            },
        };
        storage(&cfg, "t").await.unwrap();
        let left: Vec<_> = std::fs::read_dir(d.path().join("archives"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "test object left behind: {left:?}");
    }
}
