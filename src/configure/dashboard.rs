//! The fleet dashboard (dashboard/ in wpbackup's source, a Cloudflare Worker over the D1
//! database `sync-d1` fills): the exact commands that deploy it over this server's D1 database,
//! as README's "The fleet at a glance" gives them, with the database and account ids of `.env`
//! filled in; and `dashboard_url` in config.json, which the email report links to.
//!
//! The commands never hold a secret: not CF_API_TOKEN (the dashboard needs none of it:
//! wrangler logs in on its own, and D1's token is not allowed to deploy Workers anyway), and
//! not DASHBOARD_TOKEN, which `wrangler secret put` asks for.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::configure::draft::Draft;

/// Why the commands cannot be printed.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error(
        "the dashboard reads the D1 database sync-d1 pushes to, and D1 is not configured: set it up first (the Cloudflare D1 step, or \"d1\" in the answers file)"
    )]
    NoD1,
    #[error("D1 is configured, but not usable: {0}")]
    D1(String),
    #[error(
        "{var} in .env is {value:?}, which is not a Cloudflare id (letters, digits and '-'): fix it, then print the commands again"
    )]
    BadId { var: &'static str, value: String },
}

/// The deploy commands for the draft's D1 database; `source`: the dashboard/ directory of a
/// copy of wpbackup's source, when one is known.
pub fn deploy_commands(draft: &Draft, source: Option<&Path>) -> Result<String, DashboardError> {
    let d1 = match draft.d1() {
        None => return Err(DashboardError::NoD1),
        Some(Err(e)) => return Err(DashboardError::D1(format!("{e:#}"))),
        Some(Ok(d)) => d,
    };
    let database = plain_id("D1_DATABASE_ID", &d1.database_id)?;
    let account = plain_id("CF_ACCOUNT_ID", &d1.account_id)?;
    let cd = match source {
        Some(dir) => format!("cd {}", shell_quote(&dir.to_string_lossy())),
        None => {
            "cd wpbackup/dashboard        # in a copy of wpbackup's source (where deploy.sh is)"
                .to_string()
        }
    };
    Ok(format!(
        "Deploy the fleet dashboard over D1 database {database}, on a machine with Node.js 20 or later:

  {cd}
  sed -i 's/^database_id = .*/database_id = \"{database}\"/' wrangler.toml
  export CLOUDFLARE_ACCOUNT_ID={account}
  npx wrangler login                        # or CLOUDFLARE_API_TOKEN: a token that may edit Workers
  npx wrangler deploy                       # prints the dashboard's https:// address
  npx wrangler secret put DASHBOARD_TOKEN   # type a long random token (openssl rand -hex 24)

Then open that address with the token, and set it as \"dashboard_url\" in config.json (every
server's): the email report links to the dashboard and to each site needing attention.
"
    ))
}

/// An id as D1 and Cloudflare write them, safe inside the printed commands.
fn plain_id<'a>(var: &'static str, value: &'a str) -> Result<&'a str, DashboardError> {
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(value)
    } else {
        Err(DashboardError::BadId {
            var,
            value: value.to_string(),
        })
    }
}

/// `s` as one shell word.
fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The dashboard/ directory of a copy of wpbackup's source on this machine: the current
/// directory's, or the one this binary was built from (`cargo install --path .`, deploy.sh).
pub fn source_dir() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok();
    let candidates = [
        cwd.as_ref().map(|d| d.join("dashboard")),
        cwd.clone(),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboard")),
    ];
    candidates.into_iter().flatten().find(|d| {
        std::fs::read_to_string(d.join("wrangler.toml"))
            .is_ok_and(|t| t.contains("name = \"wpbackup-dashboard\""))
    })
}

/// config.json's `dashboard_url`, as the draft has it.
pub fn url(draft: &Draft) -> Option<String> {
    draft
        .file
        .rest
        .get("dashboard_url")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Set `dashboard_url` (checked as `backup` will check it); empty removes it.
pub fn set_url(draft: &mut Draft, text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        draft.file.rest.remove("dashboard_url");
        return Ok(());
    }
    let url = crate::config::check_dashboard_url(text)?;
    draft
        .file
        .rest
        .insert("dashboard_url".into(), Value::String(url));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft_with(env: &str) -> Draft {
        Draft {
            env: crate::configure::envfile::EnvFile::parse(env, Path::new(".env")).unwrap(),
            ..Draft::default()
        }
    }

    #[test]
    fn commands_hold_the_ids_and_no_token() {
        let d = draft_with(
            "CF_ACCOUNT_ID=0123abcd\nD1_DATABASE_ID=6f1b5c2e-d1d1-4e4e\nCF_API_TOKEN=tok-SECRET\n",
        );
        let text = deploy_commands(&d, Some(Path::new("/opt/src/it's/dashboard"))).unwrap();
        assert!(
            text.contains("cd '/opt/src/it'\\''s/dashboard'\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "sed -i 's/^database_id = .*/database_id = \"6f1b5c2e-d1d1-4e4e\"/' wrangler.toml"
            ),
            "{text}"
        );
        assert!(text.contains("export CLOUDFLARE_ACCOUNT_ID=0123abcd\n"));
        assert!(!text.contains("SECRET"), "{text}");
        let d = draft_with("CF_ACCOUNT_ID=0123abcd\nD1_DATABASE_ID=x/y\nCF_API_TOKEN=t\n");
        let e = deploy_commands(&d, None).unwrap_err().to_string();
        assert!(e.starts_with("D1_DATABASE_ID in .env is \"x/y\""), "{e}");
        let e = deploy_commands(&draft_with(""), None).unwrap_err();
        assert!(matches!(e, DashboardError::NoD1), "{e}");
    }

    #[test]
    fn the_url_is_checked_and_kept_in_config_json() {
        let mut d = draft_with("");
        assert!(set_url(&mut d, "http://dash.example.com").is_err());
        set_url(&mut d, "https://dash.example.com/").unwrap();
        assert_eq!(url(&d).as_deref(), Some("https://dash.example.com"));
        set_url(&mut d, "").unwrap();
        assert_eq!(url(&d), None);
    }
}
