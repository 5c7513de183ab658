//! How to reach a database server: a site's credentials, `DB_HOST` in the forms WordPress
//! accepts, and how long the database tools may wait on a server that does not answer. Both
//! config.json and `wp-config.php` produce these; the database tools consume them.

use std::path::PathBuf;

use crate::secret::Secret;

/// How to reach a site's database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    pub name: String,
    pub user: String,
    pub password: Secret,
    pub host: DbHost,
    pub table_prefix: Option<String>,
    /// How long the database tools may wait on this server.
    pub timeouts: Timeouts,
}

/// Where the database server is, in the forms WordPress's `DB_HOST` accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbHost {
    /// `localhost`: the client's default Unix socket, or the given one (`localhost:/run/x.sock`).
    Socket(Option<PathBuf>),
    /// A TCP host (name, IPv4 or IPv6 without brackets) and optional port.
    Tcp { host: String, port: Option<u16> },
}

/// How long the database tools may wait on a server that does not answer (config.json
/// `database.connect_timeout_secs` and `database.stall_timeout_secs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting and the server's greeting (queries; the dump tool has no such option, so
    /// its stall limit covers it).
    pub connect_secs: u64,
    /// The dump tool is stopped when it has written nothing for this long.
    pub stall_secs: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect_secs: 10,
            stall_secs: 600,
        }
    }
}

/// Why a `DB_HOST` value cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbHostError {
    #[error("empty host")]
    Empty,
    #[error("{0:?} is not a valid port")]
    BadPort(String),
    #[error("{0:?}: missing ']'")]
    MissingBracket(String),
    #[error("{0:?}: unexpected text after ']'")]
    AfterBracket(String),
}

/// Parse a `DB_HOST` value in the forms WordPress's `wpdb::parse_db_host` accepts.
pub fn parse_db_host(s: &str) -> Result<DbHost, DbHostError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(DbHostError::Empty);
    }
    let port = |p: &str| -> Result<u16, DbHostError> {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| DbHostError::BadPort(p.to_string()))
    };
    // [IPv6]:port, [IPv6]:/socket or [IPv6]
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| DbHostError::MissingBracket(s.to_string()))?;
        return match after.strip_prefix(':') {
            None if after.is_empty() => Ok(DbHost::Tcp {
                host: host.to_string(),
                port: None,
            }),
            None => Err(DbHostError::AfterBracket(s.to_string())),
            Some(sock) if sock.starts_with('/') => Ok(DbHost::Socket(Some(PathBuf::from(sock)))),
            Some(p) => Ok(DbHost::Tcp {
                host: host.to_string(),
                port: Some(port(p)?),
            }),
        };
    }
    // A bare IPv6 address (more than one colon) has no port.
    if s.matches(':').count() > 1 && !s.contains('/') {
        return Ok(DbHost::Tcp {
            host: s.to_string(),
            port: None,
        });
    }
    match s.split_once(':') {
        Some((_, sock)) if sock.starts_with('/') => Ok(DbHost::Socket(Some(PathBuf::from(sock)))),
        // PHP's mysqli always uses the Unix socket for "localhost", whatever the port.
        Some(("localhost", p)) => port(p).map(|_| DbHost::Socket(None)),
        Some((host, p)) => Ok(DbHost::Tcp {
            host: host.to_string(),
            port: Some(port(p)?),
        }),
        None if s == "localhost" => Ok(DbHost::Socket(None)),
        None => Ok(DbHost::Tcp {
            host: s.to_string(),
            port: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: Option<u16>) -> DbHost {
        DbHost::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn db_host_forms() {
        assert_eq!(parse_db_host("localhost"), Ok(DbHost::Socket(None)));
        assert_eq!(
            parse_db_host("db.example.com"),
            Ok(tcp("db.example.com", None))
        );
        assert_eq!(
            parse_db_host("10.0.0.5:3306"),
            Ok(tcp("10.0.0.5", Some(3306)))
        );
        assert_eq!(parse_db_host("[::1]"), Ok(tcp("::1", None)));
        assert_eq!(
            parse_db_host("[::1]:/tmp/s.sock"),
            Ok(DbHost::Socket(Some("/tmp/s.sock".into())))
        );
        assert_eq!(
            parse_db_host("db:/var/run/mysqld.sock"),
            Ok(DbHost::Socket(Some("/var/run/mysqld.sock".into())))
        );
        assert!(parse_db_host("").is_err());
        assert!(parse_db_host("h:port").is_err());
        assert!(parse_db_host("[::1").is_err());
    }
}
