//! Secrets: a string that never prints.
//!
//! Passwords and keys travel through the program as [`Secret`], whose `Debug` and `Display`
//! print `**redacted**`, so a secret cannot reach a log line, an error message or a report by
//! accident. The value is read only where it is handed to the thing that needs it (a 0600
//! defaults file, the S3 signer, the SMTP login).

use std::fmt;

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Call only where it is handed to its consumer.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**redacted**")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**redacted**")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "**redacted** **redacted**");
        assert_eq!(s.expose(), "hunter2");
    }
}
