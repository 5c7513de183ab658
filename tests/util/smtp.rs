//! A real SMTP server for the report tests: aiosmtpd (tests/smtp/smtp_server.py) with AUTH
//! required for one user, storing every accepted message as a file with its envelope beside
//! it. Needs aiosmtpd in tests/smtp/.pylib (scripts/test.sh installs it).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use super::{Server, free_port, port_open, wait_for};

pub const USER: &str = "reports@example.com";
pub const PASSWORD: &str = "smtp-pass-Qx3";

pub struct SmtpServer {
    pub port: u16,
    pub dir: PathBuf,
    _server: Server,
    _tmp: TempDir,
}

/// One message as received: the raw message and its envelope.
#[derive(Debug, Clone)]
pub struct Received {
    pub raw: Vec<u8>,
    pub envelope: Value,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let project = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp");
        let pylib = project.join(".pylib");
        assert!(
            pylib.join("aiosmtpd").is_dir(),
            "aiosmtpd is not installed: run scripts/test.sh (pip install --target tests/smtp/.pylib aiosmtpd)"
        );
        let tmp = tempfile::Builder::new()
            .prefix("wpb-smtp")
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().join("mail");
        std::fs::create_dir(&dir).expect("mail dir");
        let port = free_port();
        let mut cmd = Command::new("python3");
        cmd.arg(project.join("smtp_server.py"))
            .env("PYTHONPATH", &pylib)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("SMTPSIM_PORT", port.to_string())
            .env("SMTPSIM_DIR", &dir)
            .env("SMTPSIM_USER", USER)
            .env("SMTPSIM_PASSWORD", PASSWORD);
        let server = Server::spawn(cmd, &tmp.path().join("smtp.log"));
        wait_for("aiosmtpd", Duration::from_secs(30), &server, || {
            port_open(port)
        });
        SmtpServer {
            port,
            dir,
            _server: server,
            _tmp: tmp,
        }
    }

    /// `.env` lines for wpbackup: this server, plain SMTP with AUTH, the given password.
    pub fn env(&self, password: &str) -> Vec<(&'static str, String)> {
        vec![
            ("SMTP_HOST", "127.0.0.1".to_string()),
            ("SMTP_PORT", self.port.to_string()),
            ("SMTP_TLS", "none".to_string()),
            ("SMTP_USERNAME", USER.to_string()),
            ("SMTP_PASSWORD", password.to_string()),
            (
                "REPORT_FROM",
                "wpbackup <wpbackup@web-01.example.com>".to_string(),
            ),
            ("REPORT_TO", "ops@example.com, boss@example.com".to_string()),
        ]
    }

    /// Messages received so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .expect("read mail dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| Received {
                raw: std::fs::read(p).expect("read message"),
                envelope: serde_json::from_slice(
                    &std::fs::read(p.with_extension("json")).expect("read envelope"),
                )
                .expect("envelope json"),
            })
            .collect()
    }
}

/// A message's subject and its text/plain and text/html bodies, decoded.
pub struct Parsed {
    pub subject: String,
    pub content_type: String,
    pub text: String,
    pub html: String,
}

pub fn parse(raw: &[u8]) -> Parsed {
    let mail = mailparse::parse_mail(raw).expect("parse message");
    use mailparse::MailHeaderMap;
    let subject = mail.headers.get_first_value("Subject").unwrap_or_default();
    let mut text = String::new();
    let mut html = String::new();
    collect(&mail, &mut text, &mut html);
    Parsed {
        subject,
        content_type: mail.ctype.mimetype.clone(),
        text,
        html,
    }
}

fn collect(part: &mailparse::ParsedMail, text: &mut String, html: &mut String) {
    match part.ctype.mimetype.as_str() {
        "text/plain" => text.push_str(&part.get_body().expect("text body")),
        "text/html" => html.push_str(&part.get_body().expect("html body")),
        _ => {
            for sub in &part.subparts {
                collect(sub, text, html);
            }
        }
    }
}
