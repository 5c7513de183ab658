//! The prompts every wizard step uses: text with a default, masked secrets, name checks, and
//! Esc or Ctrl-C turned into [`Cancelled`].

use inquire::error::InquireError;
use inquire::validator::Validation;
use inquire::{Password, PasswordDisplayMode, Text};

/// The person pressed Esc or Ctrl-C.
#[derive(Debug, thiserror::Error)]
#[error("configure cancelled: nothing was written")]
pub struct Cancelled;

/// A prompt's answer; Esc or Ctrl-C becomes [`Cancelled`].
pub fn ask<T>(r: Result<T, InquireError>) -> anyhow::Result<T> {
    match r {
        Ok(v) => Ok(v),
        Err(InquireError::OperationCanceled | InquireError::OperationInterrupted) => {
            Err(Cancelled.into())
        }
        Err(e) => Err(anyhow::Error::new(e).context("the terminal prompt failed")),
    }
}

/// What an inquire validator returns.
pub type Check = Result<Validation, inquire::CustomUserError>;

/// A name usable in object keys and file names.
pub fn safe_name(s: &str) -> Check {
    Ok(if crate::config::is_safe_name(s) {
        Validation::Valid
    } else {
        Validation::Invalid("use letters, digits, '.', '-' and '_' only".into())
    })
}

/// Anything but blank.
pub fn not_empty(s: &str) -> Check {
    Ok(if s.trim().is_empty() {
        Validation::Invalid("this is needed".into())
    } else {
        Validation::Valid
    })
}

/// A needed text answer, trimmed, with `default` and a help line when given.
pub fn text(msg: &str, default: &str, help: &str) -> anyhow::Result<String> {
    let mut t = Text::new(msg).with_validator(not_empty);
    if !default.is_empty() {
        t = t.with_default(default);
    }
    if !help.is_empty() {
        t = t.with_help_message(help);
    }
    Ok(ask(t.prompt())?.trim().to_string())
}

/// A secret: typed masked; empty keeps `current` when there is one.
pub fn secret(msg: &str, has_current: bool) -> anyhow::Result<Option<String>> {
    let help = if has_current {
        "typed characters are masked; Enter alone keeps the current one"
    } else {
        "typed characters are masked"
    };
    let mut p = Password::new(msg)
        .without_confirmation()
        .with_display_mode(PasswordDisplayMode::Masked)
        .with_help_message(help);
    if !has_current {
        p = p.with_validator(not_empty);
    }
    let v = ask(p.prompt())?;
    Ok((!v.is_empty()).then_some(v))
}
