//! The restored `wp-config.php`: which credentials reach the database of a restore
//! ([`credentials`]: config.json, the live site's wp-config.php, or the archive's), and its
//! rewrite to point at another database, user, directory or address
//! ([`rewrite_wp_config_file`]: never through a symlink; comments keep the old values).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::config::{DatabaseConfig, SiteConfig, Timeouts};
use crate::secret::Secret;
use crate::site::wpconfig;

/// Where [`credentials`] found them when they come from the live site's `wp-config.php`.
pub const LIVE_WP_CONFIG: &str = "the site's wp-config.php";

/// Where the database credentials of a restore come from.
pub fn credentials(
    site: &SiteConfig,
    archived_wp_config: Option<&[u8]>,
    timeouts: Timeouts,
) -> anyhow::Result<(DatabaseConfig, &'static str)> {
    let from_wp = |w: wpconfig::WpConfig| DatabaseConfig {
        name: w.db_name,
        user: w.db_user,
        password: w.db_password,
        host: w.db_host,
        table_prefix: Some(w.table_prefix),
        timeouts,
    };
    if let Some(db) = &site.database {
        return Ok((db.clone(), "config.json"));
    }
    let live = match wpconfig::read(&site.path) {
        Ok(w) => return Ok((from_wp(w), LIVE_WP_CONFIG)),
        Err(e) => e,
    };
    let Some(bytes) = archived_wp_config else {
        bail!(
            "cannot find the database credentials: {live}; the archive holds no wp-config.php either"
        );
    };
    let w = wpconfig::parse_named(
        &String::from_utf8_lossy(bytes),
        "wp-config.php in the archive",
    )
    .context("cannot read the database credentials")?;
    Ok((from_wp(w), "the archive's wp-config.php"))
}

/// What a restored `wp-config.php` is pointed at besides the rewritten addresses and directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct Point<'a> {
    /// Every `DB_NAME` definition set to this database.
    pub db_name: Option<&'a str>,
    /// Every `DB_USER` and `DB_PASSWORD` definition set to this user and password (a clone's
    /// own user: the password is written here and nowhere else).
    pub user: Option<(&'a str, &'a Secret)>,
    /// A network's `DOMAIN_CURRENT_SITE` and `PATH_CURRENT_SITE` definitions set to these
    /// (where wp-config.php defines them).
    pub network: Option<(&'a str, &'a str)>,
}

/// Rewrite the restored `wp-config.php` at `wp` ([`rewrite_wp_config_to`]), never through a
/// symlink: the archive keeps links as they were, and a deploy tool's layout
/// (`wp-config.php -> /var/www/app/shared/wp-config.php`) links to the live site's own file.
/// A link is replaced, in the restored tree only, by a regular file holding the rewritten
/// content, with the mode (and, as root, the owner) of the file it pointed to; what it pointed
/// to is only read. Nothing is written when the content does not change. Returns the link's
/// target when a link was replaced.
pub fn rewrite_wp_config_file(
    wp: &Path,
    point: Point,
    replacements: &[(String, String)],
) -> anyhow::Result<Option<PathBuf>> {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    let link = match wp.symlink_metadata() {
        Ok(m) if m.file_type().is_symlink() => Some(
            std::fs::read_link(wp)
                .with_context(|| format!("cannot read the link {}", wp.display()))?,
        ),
        _ => None,
    };
    let text =
        std::fs::read_to_string(wp).with_context(|| format!("cannot read {}", wp.display()))?;
    let new = rewrite_wp_config_to(&text, point, replacements)?;
    if new == text {
        return Ok(None);
    }
    // Followed: the mode and owner of the file the web server reads today.
    let meta = std::fs::metadata(wp).with_context(|| format!("cannot read {}", wp.display()))?;
    let dir = wp.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".wp-config.php.wpbackup-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let cannot = || format!("cannot write {}", wp.display());
    tmp.write_all(new.as_bytes()).with_context(cannot)?;
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid()))
            .with_context(cannot)?;
    }
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(cannot)?;
    // The rename replaces the link itself, never what it points to.
    tmp.persist(wp).map_err(|e| e.error).with_context(cannot)?;
    if let Some(target) = &link {
        tracing::warn!(
            "{} was a symlink to {}: it is now a regular file with the rewritten content ({} is unchanged)",
            wp.display(),
            target.display(),
            target.display()
        );
    }
    Ok(link)
}

/// A PHP single-quoted string literal.
fn php_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// [`rewrite_wp_config_to`] with only the database named.
pub fn rewrite_wp_config(
    text: &str,
    db_name: Option<&str>,
    replacements: &[(String, String)],
) -> anyhow::Result<String> {
    let point = Point {
        db_name,
        user: None,
        network: None,
    };
    rewrite_wp_config_to(text, point, replacements)
}

/// Point a restored wp-config.php at `point`'s database (every `DB_NAME` definition) and user
/// (every `DB_USER` and `DB_PASSWORD`), and apply the plain `replacements` (old directory and
/// address to new ones), in live code only: comments (`//`, `#`, `/* */`, found by the PHP
/// lexer of [`wpconfig::comments`]) keep the old values, as a person left them (a
/// commented-out `define('DB_NAME', 'old')` stays a note of the old).
pub fn rewrite_wp_config_to(
    text: &str,
    point: Point,
    replacements: &[(String, String)],
) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut defines: Vec<(&str, &str)> = Vec::new();
    if let Some(name) = point.db_name {
        defines.push(("DB_NAME", name));
    }
    if let Some((user, password)) = point.user {
        defines.push(("DB_USER", user));
        defines.push(("DB_PASSWORD", password.expose()));
    }
    // Required above; a network's own constants only where the file has them.
    let required = defines.len();
    if let Some((domain, path)) = point.network {
        defines.push(("DOMAIN_CURRENT_SITE", domain));
        defines.push(("PATH_CURRENT_SITE", path));
    }
    let mut found = vec![0; defines.len()];
    let mut at = 0;
    let end = text.len()..text.len();
    for comment in wpconfig::comments(text).into_iter().chain([end]) {
        let mut code = text[at..comment.start].to_string();
        for ((constant, value), found) in defines.iter().zip(found.iter_mut()) {
            let (named, n) = point_define(&code, constant, value);
            code = named;
            *found += n;
        }
        // All at once, as the database is rewritten: a replaced address is not read again,
        // and a longer host or name the old one merely starts is left alone.
        let pairs: Vec<(&[u8], &[u8])> = replacements
            .iter()
            .filter(|(from, to)| !from.is_empty() && from != to)
            .map(|(from, to)| (from.as_bytes(), to.as_bytes()))
            .collect();
        if !pairs.is_empty() {
            code = String::from_utf8(crate::serialized::plain_replace(code.as_bytes(), &pairs))
                .context("wp-config.php: the rewrite split a character")?;
        }
        out.push_str(&code);
        out.push_str(&text[comment.clone()]);
        at = comment.end;
    }
    for ((constant, _), found) in defines.iter().zip(found).take(required) {
        if found == 0 {
            bail!("wp-config.php: {constant} is not defined as a plain string");
        }
    }
    Ok(out)
}

/// `code` with the value of every definition of `constant` (`'DB_NAME', '...'` or
/// `DB_NAME = '...'`) replaced by `name`, and how many there were.
fn point_define(code: &str, constant: &str, name: &str) -> (String, usize) {
    let mut result = String::with_capacity(code.len());
    let mut rest = code;
    let mut found = 0;
    while let Some(i) = rest.find(constant) {
        let (before, after) = rest.split_at(i + constant.len());
        result.push_str(before);
        rest = after;
        let prev = before[..i].chars().next_back();
        if prev.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        // `'DB_NAME', '...'` or `DB_NAME = '...'`: find the value literal.
        let t = rest.trim_start_matches(['\'', '"']);
        let t2 = t.trim_start();
        let Some(t3) = t2.strip_prefix([',', '=']) else {
            continue;
        };
        let t4 = t3.trim_start();
        let Some(quote) = t4.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            continue;
        };
        let body = &t4[1..];
        let mut end = None;
        let mut escaped = false;
        for (j, c) in body.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == quote {
                end = Some(j);
                break;
            }
        }
        let Some(end) = end else { continue };
        let literal_start = rest.len() - t4.len();
        result.push_str(&rest[..literal_start]);
        result.push_str(&php_str(name));
        rest = &body[end + 1..];
        found += 1;
    }
    result.push_str(rest);
    (result, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wp_config_points_at_the_new_database() {
        let src = "<?php\n// DB_NAME is below\ndefine( 'DB_NAME', 'wp_old' );\ndefine(\"DB_NAME_X\", 'no');\ndefine('DB_USER', 'u');\nconst DB_NAME = \"it\\\"s\";\ndefine('WP_CONTENT_DIR', '/var/www/old/wp-content');\n";
        let out = rewrite_wp_config(
            src,
            Some("wp_new's"),
            &[("/var/www/old".into(), "/srv/clone".into())],
        )
        .unwrap();
        assert_eq!(
            out,
            "<?php\n// DB_NAME is below\ndefine( 'DB_NAME', 'wp_new\\'s' );\ndefine(\"DB_NAME_X\", 'no');\ndefine('DB_USER', 'u');\nconst DB_NAME = 'wp_new\\'s';\ndefine('WP_CONTENT_DIR', '/srv/clone/wp-content');\n"
        );
        assert!(rewrite_wp_config("<?php\n", Some("x"), &[]).is_err());
        assert_eq!(
            rewrite_wp_config("a b a", None, &[("a".into(), "c".into())]).unwrap(),
            "c b c"
        );
    }

    #[test]
    fn a_clone_names_its_own_user_and_password() {
        let src = "<?php
// define('DB_USER', 'prod_user'); define('DB_PASSWORD', 'prod-pw');
define( 'DB_NAME', 'wp_live' );
define( 'DB_USER', 'prod_user' );
define( 'DB_PASSWORD', 'prod-pw' );
define( 'DB_USER_X', 'other' );
";
        let password = Secret::new("n3w'pw\\");
        let point = Point {
            db_name: Some("wp_stg"),
            user: Some(("wp_stg", &password)),
            network: None,
        };
        let out = rewrite_wp_config_to(src, point, &[]).unwrap();
        assert_eq!(
            out,
            "<?php
// define('DB_USER', 'prod_user'); define('DB_PASSWORD', 'prod-pw');
define( 'DB_NAME', 'wp_stg' );
define( 'DB_USER', 'wp_stg' );
define( 'DB_PASSWORD', 'n3w\\'pw\\\\' );
define( 'DB_USER_X', 'other' );
"
        );
        // A password PHP computes cannot be pointed at: refused, named, never guessed.
        let computed = "<?php define('DB_NAME', 'a'); define('DB_USER', 'u'); define('DB_PASSWORD', getenv('PW'));";
        let e = rewrite_wp_config_to(computed, point, &[]).unwrap_err();
        assert!(e.to_string().contains("DB_PASSWORD"), "{e}");
    }

    #[test]
    fn a_network_clone_names_its_new_domain_and_path() {
        let src = "<?php
define( 'DB_NAME', 'wp_live' );
define( 'MULTISITE', true );
// define( 'DOMAIN_CURRENT_SITE', 'old.example' );
define( 'DOMAIN_CURRENT_SITE', 'old.example' );
define( 'PATH_CURRENT_SITE', '/' );
define( 'DOMAIN_CURRENT_SITE_X', 'old.example' );
";
        let point = Point {
            db_name: Some("wp_stg"),
            user: None,
            network: Some(("new.example:8080", "/stg/")),
        };
        let out = rewrite_wp_config_to(src, point, &[]).unwrap();
        assert_eq!(
            out,
            "<?php
define( 'DB_NAME', 'wp_stg' );
define( 'MULTISITE', true );
// define( 'DOMAIN_CURRENT_SITE', 'old.example' );
define( 'DOMAIN_CURRENT_SITE', 'new.example:8080' );
define( 'PATH_CURRENT_SITE', '/stg/' );
define( 'DOMAIN_CURRENT_SITE_X', 'old.example' );
"
        );
        // A network without the constants (its address in wp_site only) is rewritten too.
        let plain = "<?php define('DB_NAME', 'a');";
        assert!(rewrite_wp_config_to(plain, point, &[]).is_ok());
    }

    #[test]
    fn commented_out_lines_keep_the_old_values() {
        let src = "<?php
// define('DB_NAME', 'wp_old');
# define( 'DB_NAME', 'wp_older' ); moved from /var/www/old
/* Until 2024 at http://old.example:
define('DB_NAME', 'wp_oldest');
define('WP_HOME', 'http://old.example'); */
define('DB_NAME', 'wp_old'); // was 'DB_NAME', 'wp_old' at http://old.example
define('WP_HOME', 'http://old.example');
define('WP_CONTENT_DIR', '/var/www/old/wp-content'); # not /var/www/old/x
$a = 'http://old.example // in a string'; $b = \"# /var/www/old\";
";
        let out = rewrite_wp_config(
            src,
            Some("wp_clone"),
            &[
                ("/var/www/old".into(), "/srv/clone".into()),
                ("http://old.example".into(), "https://clone.example".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            "<?php
// define('DB_NAME', 'wp_old');
# define( 'DB_NAME', 'wp_older' ); moved from /var/www/old
/* Until 2024 at http://old.example:
define('DB_NAME', 'wp_oldest');
define('WP_HOME', 'http://old.example'); */
define('DB_NAME', 'wp_clone'); // was 'DB_NAME', 'wp_old' at http://old.example
define('WP_HOME', 'https://clone.example');
define('WP_CONTENT_DIR', '/srv/clone/wp-content'); # not /var/www/old/x
$a = 'https://clone.example // in a string'; $b = \"# /srv/clone\";
"
        );
        // Only a commented-out definition: the live file defines none.
        let e = rewrite_wp_config("<?php\n// define('DB_NAME', 'a');\n", Some("b"), &[]);
        assert!(e.is_err(), "{e:?}");
    }

    #[test]
    fn a_symlinked_wp_config_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared-wp-config.php");
        let text = "<?php\ndefine('DB_NAME', 'wp_live');\n";
        std::fs::write(&shared, text).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
        let files = dir.path().join("files");
        std::fs::create_dir(&files).unwrap();
        let wp = files.join("wp-config.php");
        std::os::unix::fs::symlink(&shared, &wp).unwrap();

        let point = |db| Point {
            db_name: Some(db),
            user: None,
            network: None,
        };
        let was = rewrite_wp_config_file(&wp, point("wp_stg"), &[]).unwrap();
        assert_eq!(was.as_deref(), Some(shared.as_path()));
        assert_eq!(std::fs::read_to_string(&shared).unwrap(), text);
        let meta = wp.symlink_metadata().unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert!(std::fs::read_to_string(&wp).unwrap().contains("'wp_stg'"));
        // A regular file is rewritten in place; an unchanged one is not written.
        assert_eq!(
            rewrite_wp_config_file(&wp, point("wp_2"), &[]).unwrap(),
            None
        );
        assert!(std::fs::read_to_string(&wp).unwrap().contains("'wp_2'"));
        assert_eq!(std::fs::read_dir(&files).unwrap().count(), 1);
    }
}
