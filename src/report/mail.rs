//! Sending mail over SMTP with lettre: settings from `.env` (`SMTP_HOST`, `SMTP_PORT`,
//! `SMTP_TLS` = `starttls` | `tls` | `none`, `SMTP_USERNAME`, `SMTP_PASSWORD`, `REPORT_FROM`,
//! `REPORT_TO`), one message with a plain-text and an HTML alternative, and errors that say
//! which setting to fix.

use std::time::Duration;

use anyhow::Context as _;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};

use crate::config::{ConfigError, Env};
use crate::secret::Secret;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS (required); port 587 by default.
    StartTls,
    /// TLS from the first byte (SMTPS); port 465 by default.
    Tls,
    /// No encryption (a relay on localhost); port 25 by default.
    None,
}

/// The mode as `SMTP_TLS` spells it in `.env`.
impl std::fmt::Display for TlsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsMode::StartTls => "starttls",
            TlsMode::Tls => "tls",
            TlsMode::None => "none",
        })
    }
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// AUTH (PLAIN or LOGIN) when set.
    pub username: Option<String>,
    pub password: Secret,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
}

/// Whether `.env` sets `SMTP_HOST` (to something other than blanks): mail is meant to be sent.
pub fn smtp_configured(env: &Env) -> bool {
    env.get("SMTP_HOST").is_some_and(|h| !h.trim().is_empty())
}

impl SmtpSettings {
    /// Read the settings; `to` replaces `REPORT_TO` when not empty.
    pub fn from_env(env: &Env, to: &[String]) -> Result<SmtpSettings, ConfigError> {
        let r = Reader {
            env,
            file: env.file_path().display().to_string(),
        };
        let host = r.get("SMTP_HOST").ok_or_else(|| {
            r.err(
                "SMTP_HOST",
                "not set: add SMTP_HOST (and SMTP_PORT, SMTP_TLS, SMTP_USERNAME, SMTP_PASSWORD, REPORT_FROM, REPORT_TO) to send reports".into(),
            )
        })?;
        let tls = r.tls()?;
        let port = r.port(tls)?;
        let (username, password) = r.auth()?;
        if tls == TlsMode::None && username.is_some() && !is_loopback(&host) {
            return Err(r.err(
                "SMTP_TLS",
                format!("none with SMTP_USERNAME would send the password in clear text to {host}: use starttls or tls (none is only allowed to a server on this machine)"),
            ));
        }
        let from = r.from()?;
        let to = r.to(to)?;
        Ok(SmtpSettings {
            host,
            port,
            tls,
            username,
            password,
            from,
            to,
        })
    }
}

/// A host on this machine (`localhost`, 127.0.0.0/8, ::1), where a plain connection is not
/// on any network.
fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Reads the SMTP settings from `.env`; errors name the variable to fix.
struct Reader<'a> {
    env: &'a Env,
    file: String,
}

impl Reader<'_> {
    fn err(&self, key: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            path: key.to_string(),
            message,
        }
    }

    /// Empty values (as .env.example has them) count as unset.
    fn get(&self, k: &str) -> Option<String> {
        self.env.get(k).filter(|v| !v.trim().is_empty())
    }

    fn tls(&self) -> Result<TlsMode, ConfigError> {
        match self
            .get("SMTP_TLS")
            .unwrap_or_else(|| "starttls".into())
            .to_ascii_lowercase()
            .as_str()
        {
            "starttls" => Ok(TlsMode::StartTls),
            "tls" | "ssl" | "smtps" => Ok(TlsMode::Tls),
            "none" | "plain" => Ok(TlsMode::None),
            other => Err(self.err(
                "SMTP_TLS",
                format!("{other:?} is not a TLS mode: use starttls, tls or none"),
            )),
        }
    }

    fn port(&self, tls: TlsMode) -> Result<u16, ConfigError> {
        Ok(match self.get("SMTP_PORT") {
            Some(p) => p.trim().parse::<u16>().map_err(|_| {
                self.err(
                    "SMTP_PORT",
                    format!("{p:?} is not a port number (587 for starttls, 465 for tls)"),
                )
            })?,
            None => match tls {
                TlsMode::StartTls => 587,
                TlsMode::Tls => 465,
                TlsMode::None => 25,
            },
        })
    }

    fn auth(&self) -> Result<(Option<String>, Secret), ConfigError> {
        let username = self.get("SMTP_USERNAME");
        let password = self.env.secret("SMTP_PASSWORD").unwrap_or_default();
        if username.is_some() && password.expose().is_empty() {
            return Err(self.err(
                "SMTP_PASSWORD",
                "not set, but SMTP_USERNAME is: add the password (or remove the username to send without AUTH)".into(),
            ));
        }
        Ok((username, password))
    }

    fn from(&self) -> Result<Mailbox, ConfigError> {
        let from_text = self
            .get("REPORT_FROM")
            .unwrap_or_else(|| format!("wpbackup@{}", crate::config::hostname()));
        from_text.parse().map_err(|e| {
            self.err(
                "REPORT_FROM",
                format!("{from_text:?} is not an email address: {e}"),
            )
        })
    }

    /// `--to` when given, else `REPORT_TO` (comma separated).
    fn to(&self, to: &[String]) -> Result<Vec<Mailbox>, ConfigError> {
        let (to_key, to_list): (&str, Vec<String>) = if to.is_empty() {
            let list = self.get("REPORT_TO").unwrap_or_default();
            (
                "REPORT_TO",
                list.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            )
        } else {
            ("--to", to.to_vec())
        };
        if to_list.is_empty() {
            return Err(self.err(
                "REPORT_TO",
                "not set: add REPORT_TO=you@example.com (comma separated for several), or pass --to".into(),
            ));
        }
        to_list
            .iter()
            .map(|a| {
                a.parse::<Mailbox>()
                    .map_err(|e| self.err(to_key, format!("{a:?} is not an email address: {e}")))
            })
            .collect()
    }
}

/// Send one message with a plain-text and an HTML alternative.
pub fn send(s: &SmtpSettings, subject: &str, text: String, html: String) -> anyhow::Result<()> {
    let mut builder = Message::builder().from(s.from.clone()).subject(subject);
    for to in &s.to {
        builder = builder.to(to.clone());
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(text, html))
        .context("cannot build the report message")?;
    let server = format!("{}:{}", s.host, s.port);
    let setup = || format!("SMTP server {server}: cannot set up TLS");
    let mut transport = match s.tls {
        TlsMode::StartTls => SmtpTransport::starttls_relay(&s.host).with_context(setup)?,
        TlsMode::Tls => SmtpTransport::relay(&s.host).with_context(setup)?,
        TlsMode::None => SmtpTransport::builder_dangerous(&s.host),
    }
    .port(s.port)
    .timeout(Some(Duration::from_secs(30)));
    if let Some(user) = &s.username {
        transport = transport.credentials(Credentials::new(
            user.clone(),
            s.password.expose().to_string(),
        ));
    }
    let transport = transport.build();
    transport.send(&message).map_err(|cause| {
        let code = cause.status().map(|c| c.to_string()).unwrap_or_default();
        match &s.username {
            Some(user) if matches!(code.as_str(), "535" | "534" | "530" | "454") => {
                SendError::Login {
                    server,
                    user: user.clone(),
                    cause,
                }
            }
            _ if cause.is_permanent() => SendError::Refused { server, cause },
            _ => SendError::Unreachable { server, cause },
        }
    })?;
    Ok(())
}

/// Why the SMTP server did not take the message (the cause is part of each message).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(
        "SMTP server {server} refused the login of {user:?} ({cause}): check SMTP_USERNAME and SMTP_PASSWORD"
    )]
    Login {
        server: String,
        user: String,
        cause: lettre::transport::smtp::Error,
    },
    #[error(
        "SMTP server {server} refused the message ({cause}): check REPORT_FROM, REPORT_TO and the server's rules"
    )]
    Refused {
        server: String,
        cause: lettre::transport::smtp::Error,
    },
    #[error(
        "cannot send mail through SMTP server {server}: {cause} (check SMTP_HOST, SMTP_PORT and SMTP_TLS)"
    )]
    Unreachable {
        server: String,
        cause: lettre::transport::smtp::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    fn env(vars: &[(&str, &str)]) -> Env {
        Env::from_pairs(vars)
    }

    #[test]
    fn no_password_in_clear_text_over_a_network() {
        let with = |host: &str| {
            SmtpSettings::from_env(
                &env(&[
                    ("SMTP_HOST", host),
                    ("SMTP_TLS", "none"),
                    ("SMTP_USERNAME", "reports"),
                    ("SMTP_PASSWORD", "sekrit"),
                    ("REPORT_TO", "a@example.com"),
                ]),
                &[],
            )
        };
        let e = with("mail.example.com").unwrap_err();
        assert_eq!(e.path, "SMTP_TLS");
        assert!(e.to_string().contains("clear text") && !e.to_string().contains("sekrit"));
        for local in ["localhost", "127.0.0.1", "::1", "[::1]"] {
            assert!(with(local).is_ok(), "{local}");
        }
        // Without a username nothing secret is sent: a plain relay stays allowed.
        let plain = SmtpSettings::from_env(
            &env(&[
                ("SMTP_HOST", "relay.example.com"),
                ("SMTP_TLS", "none"),
                ("REPORT_TO", "a@example.com"),
            ]),
            &[],
        );
        assert!(plain.is_ok());
    }

    #[test]
    fn settings() {
        let e = SmtpSettings::from_env(&env(&[]), &[]).unwrap_err();
        assert_eq!(e.path, "SMTP_HOST");
        let e = SmtpSettings::from_env(&env(&[("SMTP_HOST", ""), ("REPORT_TO", "a@b.c")]), &[])
            .unwrap_err();
        assert_eq!(e.path, "SMTP_HOST", "empty, as in .env.example");
        let s = SmtpSettings::from_env(
            &env(&[
                ("SMTP_HOST", "mail.example.com"),
                ("SMTP_TLS", "tls"),
                ("REPORT_FROM", "wpbackup@example.com"),
                ("REPORT_TO", "a@example.com, b@example.com"),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!((s.port, s.tls, s.to.len()), (465, TlsMode::Tls, 2));
        let e = SmtpSettings::from_env(
            &env(&[
                ("SMTP_HOST", "h"),
                ("SMTP_TLS", "yes"),
                ("REPORT_TO", "a@b.c"),
            ]),
            &[],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("SMTP_TLS: \"yes\" is not a TLS mode"),
            "{e}"
        );
        let e = SmtpSettings::from_env(
            &env(&[
                ("SMTP_HOST", "h"),
                ("SMTP_USERNAME", "u"),
                ("REPORT_TO", "a@b.c"),
            ]),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.path, "SMTP_PASSWORD");
        let e = SmtpSettings::from_env(&env(&[("SMTP_HOST", "h")]), &["not an address".into()])
            .unwrap_err();
        assert!(e.to_string().contains("--to: \"not an address\""), "{e}");
    }
}
