//! WordPress booted from the restored files against the scratch database: `php` (php-cli
//! with php-mysql) runs a small script that loads the restored `wp-load.php` and prints the
//! site's `home` option and its count of published posts as JSON, which must equal what the
//! backup recorded in manifest.json.
//!
//! Only the scratch copy is touched: its `wp-config.php` (or the archived
//! `parent/wp-config.php`, put above it) is pointed at the scratch database and the scratch
//! directory, as a restore with `--to --db-name` rewrites a clone's; an object cache drop-in
//! (`wp-content/object-cache.php`, which may reach the live site's cache server) is set aside;
//! the script turns off cron, page caching and every HTTP request WordPress would make, and
//! php may not send mail. php connects as the scratch database's own throwaway user
//! ([`super::database::Login`]), whose credentials the boot script defines ahead of
//! `wp-config.php`: never drill.database's, root's or the site's own. As root, php runs as a
//! fresh uid of the drill's own, confined ([`super::sandbox`]): never root, the site owner's or
//! another site's uid, without the network (the scratch database through a unix socket, the
//! server's or the drill's [`super::relay`]), and everything it started is killed when the
//! check ends.
//!
//! A restored `wp-config.php` that is a symlink (a deploy tool's `shared/wp-config.php`) is
//! read through only when what it reaches is a regular file of the live site's owner (not
//! root's, not another user's): a link to another site's `wp-config.php` never hands that
//! site's password to the drill's php. The scratch copy then holds the file itself.
//!
//! Before php, the credentials in the restored `wp-config.php` are tried with the database
//! client, so a password that no longer works is named as such, with the server's answer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use super::child::{self, Input};
use super::database::Login;
use super::relay::Relay;
use super::sandbox::Sandbox;
use crate::clone::multisite::Place;
use crate::config::{DatabaseConfig, DbHost};
use crate::manifest::Manifest;
use crate::reader::unpack::ParentConfig;
use crate::restore::wp_config;
use crate::site::wpconfig;

/// What the boot needs to know.
pub struct Boot<'a> {
    /// The restored site (`.../files`).
    pub files: &'a Path,
    /// The scratch directory holding it (made traversable for php's user).
    pub scratch: &'a Path,
    /// The live site's path, replaced by `files` in the restored wp-config.php.
    pub site_path: &'a Path,
    pub db_name: &'a str,
    /// config.json's `drill.database`: the scratch database is there.
    pub server: Option<&'a DatabaseConfig>,
    /// The scratch database's own user: WordPress connects as it.
    pub login: &'a Login,
    /// The archive's `parent/wp-config.php`, when it has one.
    pub parent_config: Option<&'a ParentConfig>,
    /// php is stopped after this long.
    pub limit: Duration,
    /// A multisite network's sites (`{prefix}blogs` rows): each is booted at its own address.
    pub network: Option<&'a [Place]>,
}

/// At most this many sites of a network are booted (each is a php run).
const MAX_SITES: usize = 10;

/// Where a boot asks WordPress for a site: `HTTP_HOST`, `REQUEST_URI`, and the site's table
/// prefix (`wp_` for the main site, `wp_2_` for site 2).
struct Visit {
    host: String,
    uri: String,
    prefix: Option<String>,
}

/// What WordPress answered.
#[derive(Debug, Deserialize)]
struct Answer {
    home: Option<String>,
    published_posts: Option<u64>,
    wordpress: Option<String>,
    /// Set when WordPress stopped before answering: what it printed.
    error: Option<String>,
    php_error: Option<String>,
}

/// What the boot showed.
#[derive(Debug, Default)]
pub struct Booted {
    pub proven: Vec<String>,
    pub failed: Vec<String>,
    pub notes: Vec<String>,
}

/// Boot the restored WordPress and compare its answer with `m`: a single site once, a
/// network's sites each at its own address (its domain and path).
pub fn check(b: &Boot, m: &Manifest) -> Booted {
    let mut out = Booted::default();
    let visits: Vec<Visit> = match b.network {
        Some(sites) => {
            if sites.len() > MAX_SITES {
                out.notes.push(format!(
                    "a multisite network of {} sites: the first {MAX_SITES} were booted",
                    sites.len()
                ));
            }
            sites
                .iter()
                .take(MAX_SITES)
                .map(|s| Visit {
                    host: s.domain.clone(),
                    uri: s.path.clone(),
                    prefix: Some(if s.id == 1 {
                        m.table_prefix.clone()
                    } else {
                        format!("{}{}_", m.table_prefix, s.id)
                    }),
                })
                .collect()
        }
        None => vec![Visit {
            host: "localhost".into(),
            uri: "/".into(),
            prefix: None,
        }],
    };
    match boot(b, &visits, &mut out) {
        Ok(answers) => {
            for (visit, answer) in visits.iter().zip(answers) {
                let at = match &visit.prefix {
                    Some(_) => format!("site {}{}: ", visit.host, visit.uri),
                    None => String::new(),
                };
                match answer {
                    Ok(a) => {
                        let want = expected(m, visit.prefix.as_deref());
                        let mut site = Booted::default();
                        compare(&a, &want, &mut site);
                        out.proven
                            .extend(site.proven.into_iter().map(|s| format!("{at}{s}")));
                        out.failed
                            .extend(site.failed.into_iter().map(|s| format!("{at}{s}")));
                        out.notes
                            .extend(site.notes.into_iter().map(|s| format!("{at}{s}")));
                    }
                    Err(e) => out.failed.push(format!("{at}{e:#}")),
                }
            }
        }
        Err(e) => out.failed.push(format!("{e:#}")),
    }
    out
}

/// What the backup recorded of the site with table prefix `prefix` (the main site's when
/// `None` or the manifest's own prefix).
fn expected(m: &Manifest, prefix: Option<&str>) -> Expected {
    match prefix {
        Some(p) if p != m.table_prefix => match m.network_sites.get(p) {
            Some(f) => Expected {
                home: f.home.clone(),
                published_posts: Some(f.published_posts),
                recorded: true,
            },
            None => Expected {
                home: None,
                published_posts: None,
                recorded: false,
            },
        },
        _ => Expected {
            home: m.home.clone(),
            published_posts: m.published_posts,
            recorded: true,
        },
    }
}

/// A site's `home` and published posts as the backup recorded them.
struct Expected {
    home: Option<String>,
    published_posts: Option<u64>,
    /// The manifest has facts of this site at all (archives before networks were recorded).
    recorded: bool,
}

/// The restored wp-config.php pointed at the scratch database, the drop-ins set aside, and
/// WordPress's answer at each visit.
fn boot(
    b: &Boot,
    visits: &[Visit],
    out: &mut Booted,
) -> anyhow::Result<Vec<anyhow::Result<Answer>>> {
    let wp = wp_config(b)?;
    let pairs = [(
        b.site_path.display().to_string(),
        b.files.display().to_string(),
    )];
    wp_config::rewrite_wp_config_file(
        &wp,
        wp_config::Point {
            db_name: Some(b.db_name),
            user: None,
            network: None,
        },
        &pairs,
    )
    .context("cannot point the restored wp-config.php at the scratch database")?;
    if b.server.is_none() {
        try_credentials(&wp, b.db_name, out)?;
    }
    let cache = b.files.join("wp-content/object-cache.php");
    if cache.symlink_metadata().is_ok() {
        std::fs::rename(&cache, cache.with_extension("php.wpbackup-drill"))
            .context("cannot set wp-content/object-cache.php aside")?;
        out.notes.push(
            "wp-content/object-cache.php was set aside (it may reach the live site's cache server): WordPress booted without its object cache".into(),
        );
    }
    let sandbox = Sandbox::new()?;
    sandbox.ensure_possible()?;
    // php's network namespace is empty: a TCP server is reached through the relay.
    let relay = match (&b.login.host, sandbox.uid) {
        (DbHost::Tcp { host, port }, Some(_)) => {
            Some(Relay::start(b.scratch, host, port.unwrap_or(3306))?)
        }
        _ => None,
    };
    let host = match &relay {
        Some(r) => DbHost::Socket(Some(r.path().to_path_buf())),
        None => b.login.host.clone(),
    };
    let mut scripts = Vec::new();
    for (i, visit) in visits.iter().enumerate() {
        scripts.push(write_script(b, &host, visit, i)?);
    }
    // The scratch copy is throwaway: php's uid gets all of it (the scratch directory stays
    // 0700, so nobody else gets in).
    sandbox.hand_over(b.scratch)?;
    let answers = scripts
        .iter()
        .map(|script| {
            let answer = run_php(script, &sandbox, b.limit);
            sandbox.kill_all();
            answer
        })
        .collect();
    drop(relay);
    if let Some(uid) = sandbox.uid {
        out.proven.push(format!(
            "php ran as uid {uid}, a fresh one, without the network but the scratch database ({}), as that database's throwaway user",
            match &b.login.host {
                DbHost::Tcp { host, port } => format!(
                    "{host}{}, relayed",
                    port.map(|p| format!(":{p}")).unwrap_or_default()
                ),
                DbHost::Socket(Some(p)) => format!("its socket {}", p.display()),
                DbHost::Socket(None) => "the default socket".into(),
            }
        ));
    }
    Ok(answers)
}

/// The restored site's wp-config.php: its own, else the archived parent one put above it.
fn wp_config(b: &Boot) -> anyhow::Result<PathBuf> {
    let own = b.files.join("wp-config.php");
    match own.symlink_metadata() {
        Ok(m) if m.file_type().is_symlink() => {
            own_link(b, &own)?;
            return Ok(own);
        }
        Ok(_) => return Ok(own),
        Err(_) => {}
    }
    let Some(p) = b.parent_config else {
        bail!(
            "the archive holds no wp-config.php (neither files/wp-config.php nor parent/wp-config.php): WordPress cannot start from it; a restore of it needs one written by hand (database name, user, password, host and keys)"
        );
    };
    let above = b.files.parent().unwrap_or(b.scratch).join("wp-config.php");
    std::fs::write(&above, &p.data).with_context(|| format!("cannot write {}", above.display()))?;
    // Its owner is php's uid, given with the rest of the scratch copy.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&above, std::fs::Permissions::from_mode(p.mode & 0o7777))
        .with_context(|| format!("cannot set the mode of {}", above.display()))?;
    Ok(above)
}

/// Replace the restored `wp-config.php` link `own` by the file it reaches, when that is a
/// regular file of the live site's owner; else refuse, naming the link.
fn own_link(b: &Boot, own: &Path) -> anyhow::Result<()> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let target = std::fs::read_link(own).unwrap_or_default();
    let owner = std::fs::metadata(b.site_path).map(|m| m.uid()).ok();
    let refuse = |why: &str| {
        anyhow::anyhow!(
            "the archive's wp-config.php is a symlink to {} ({why}): the drill reads no credentials through it, they may be another site's; WordPress was not booted",
            target.display()
        )
    };
    // Opened as it is now (no fifo blocks us), then judged by what was opened.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(own)
        .map_err(|e| refuse(&format!("it reaches nothing readable: {e}")))?;
    let m = file.metadata().map_err(|e| refuse(&e.to_string()))?;
    if !m.is_file() {
        return Err(refuse("not a regular file"));
    }
    match owner {
        Some(uid) if uid != 0 && m.uid() == uid => {}
        Some(uid) if uid != 0 => {
            return Err(refuse(&format!(
                "a file of uid {}, not of the site's owner (uid {uid})",
                m.uid()
            )));
        }
        _ => {
            return Err(refuse(
                "the live site belongs to root or is gone, so no owner can vouch for the file",
            ));
        }
    }
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| refuse(&e.to_string()))?;
    std::fs::remove_file(own).with_context(|| format!("cannot replace {}", own.display()))?;
    std::fs::write(own, &data).with_context(|| format!("cannot write {}", own.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(own, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot set the mode of {}", own.display()))?;
    Ok(())
}

/// Connect as the restored wp-config.php says WordPress will; a failure names the cause.
fn try_credentials(wp: &Path, db_name: &str, out: &mut Booted) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(wp).with_context(|| format!("cannot read {}", wp.display()))?;
    let parsed = match wpconfig::parse_named(&text, "the restored wp-config.php") {
        Ok(w) => w,
        Err(e) => {
            out.notes.push(format!(
                "the credentials in wp-config.php could not be read ahead ({e}): php tried them"
            ));
            return Ok(());
        }
    };
    let creds = DatabaseConfig {
        name: db_name.to_string(),
        user: parsed.db_user.clone(),
        password: parsed.db_password,
        host: parsed.db_host,
        table_prefix: None,
        timeouts: Default::default(),
    };
    // No database named: the site's user is given no access to the scratch one.
    crate::dbtools::client::sql(&creds, None, "SELECT 1").map_err(|e| {
        anyhow::anyhow!(
            "WordPress could not connect to the database with the credentials in the archive's wp-config.php (user {}): {e:#}; a restore of this archive needs DB_USER and DB_PASSWORD in wp-config.php set to an account that works (or that account's password set back)",
            parsed.db_user
        )
    })?;
    Ok(())
}

/// A PHP single-quoted string.
fn php_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The boot script of visit number `n`, written into the scratch directory.
fn write_script(b: &Boot, host: &DbHost, visit: &Visit, n: usize) -> anyhow::Result<PathBuf> {
    let mut defines = String::new();
    let host = match host {
        DbHost::Tcp { host, port } => match port {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        },
        DbHost::Socket(Some(p)) => format!("localhost:{}", p.display()),
        DbHost::Socket(None) => "localhost".into(),
    };
    for (k, v) in [
        ("DB_HOST", host.as_str()),
        ("DB_USER", &b.login.user),
        ("DB_PASSWORD", b.login.password.expose()),
    ] {
        defines.push_str(&format!("define('{k}', {});\n", php_str(v)));
    }
    let script = BOOT_SCRIPT
        .replace("/*DEFINES*/\n", &defines)
        .replace("/*SITE*/", &php_str(&b.files.display().to_string()))
        .replace("/*HOST*/", &php_str(&visit.host))
        .replace("/*URI*/", &php_str(&visit.uri));
    let path = b.scratch.join(match n {
        0 => "wpbackup-drill-boot.php".to_string(),
        n => format!("wpbackup-drill-boot-{n}.php"),
    });
    std::fs::write(&path, script).with_context(|| format!("cannot write {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(path)
}

/// What the script prints its JSON after.
const MARK: &str = "WPBACKUP-DRILL ";

/// Loads the site and prints one line `WPBACKUP-DRILL {json}`, also when WordPress dies
/// (a database it cannot reach, a fatal error): then with what it printed.
const BOOT_SCRIPT: &str = r#"<?php
// wpbackup drill: boot the restored WordPress against the scratch database.
/*DEFINES*/
define('WP_USE_THEMES', false);
define('DISABLE_WP_CRON', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('WP_CACHE', false);
$_SERVER['HTTP_HOST'] = /*HOST*/;
$_SERVER['SERVER_NAME'] = /*HOST*/;
$_SERVER['REQUEST_URI'] = /*URI*/;
$_SERVER['REQUEST_METHOD'] = 'GET';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
$GLOBALS['wpbackup_drill_done'] = false;
register_shutdown_function(function () {
    if ($GLOBALS['wpbackup_drill_done']) { return; }
    $said = '';
    while (ob_get_level() > 0) { $said = ob_get_clean() . $said; }
    $e = error_get_last();
    $said = trim(preg_replace('/\s+/', ' ', strip_tags((string) $said)));
    echo "\nWPBACKUP-DRILL " . json_encode(array('error' => substr($said, 0, 2000), 'php_error' => $e ? $e['message'] : null)) . "\n";
});
ob_start();
require /*SITE*/ . '/wp-load.php';
$home = get_option('home');
$counts = wp_count_posts('post');
while (ob_get_level() > 0) { ob_end_clean(); }
$GLOBALS['wpbackup_drill_done'] = true;
echo "\nWPBACKUP-DRILL " . json_encode(array('home' => $home, 'published_posts' => (int) $counts->publish, 'wordpress' => $GLOBALS['wp_version'])) . "\n";
"#;

/// Run the script with php-cli; WordPress's answer.
fn run_php(script: &Path, sandbox: &Sandbox, limit: Duration) -> anyhow::Result<Answer> {
    let php = crate::dbtools::find_tool(&["php"])
        .context("cannot boot WordPress: install php-cli and php-mysql")?;
    let mut cmd = crate::dbtools::command(&php);
    cmd.args([
        "-d",
        "display_errors=stderr",
        "-d",
        "pcre.jit=0",
        "-d",
        "sendmail_path=/bin/false",
    ])
    .arg(script);
    sandbox.confine(&mut cmd);
    let out = child::run(cmd, "php", Input::None, limit)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(json) = stdout.lines().rev().find_map(|l| l.strip_prefix(MARK)) else {
        bail!(
            "php did not run the boot script ({}): {}",
            out.status,
            child::tail(&out.stderr)
        );
    };
    let answer: Answer = serde_json::from_str(json).context("cannot read WordPress's answer")?;
    if answer.error.is_some() || answer.php_error.is_some() {
        bail!("{}", failure_words(&answer, &out.stderr));
    }
    Ok(answer)
}

/// Why WordPress stopped, in words.
fn failure_words(a: &Answer, stderr: &[u8]) -> String {
    let said = a.error.clone().unwrap_or_default();
    let php = a.php_error.clone().unwrap_or_default();
    if said.contains("Error establishing a database connection") {
        return format!(
            "WordPress could not connect to the database with the credentials in the archive's wp-config.php ({said})"
        );
    }
    let mut parts: Vec<String> = [said, php].into_iter().filter(|s| !s.is_empty()).collect();
    if parts.is_empty() {
        parts.push(child::tail(stderr));
    }
    format!(
        "WordPress did not start from the restored files: {}",
        parts.join("; ")
    )
}

/// WordPress's answer against what the backup recorded.
fn compare(a: &Answer, m: &Expected, out: &mut Booted) {
    if !m.recorded {
        out.notes.push(
            "the archive records nothing of this site of the network (made before wpbackup recorded each site): WordPress booted, its answer not compared".into(),
        );
        out.proven.push(format!(
            "WordPress {} booted: home {}, {} published posts",
            a.wordpress.as_deref().unwrap_or("?"),
            a.home.as_deref().unwrap_or("(none)"),
            a.published_posts.unwrap_or(0)
        ));
        return;
    }
    let version = a.wordpress.as_deref().unwrap_or("?");
    let trim = |s: &str| s.trim_end_matches('/').to_string();
    match (&m.home, &a.home) {
        (Some(want), Some(got)) if trim(want) == trim(got) => {}
        (Some(want), got) => out.failed.push(format!(
            "WordPress answered home {:?}, the backup recorded {want:?}",
            got.as_deref().unwrap_or("(none)")
        )),
        (None, _) => out.notes.push(
            "the archive records no home option (made before wpbackup recorded it): not compared"
                .into(),
        ),
    }
    match (m.published_posts, a.published_posts) {
        (Some(want), Some(got)) if want == got => {}
        (Some(want), got) => out.failed.push(format!(
            "WordPress counts {} published posts, the backup recorded {want}",
            got.map(|n| n.to_string()).unwrap_or_else(|| "no".into())
        )),
        (None, _) => out
            .notes
            .push("the archive records no count of published posts: not compared".into()),
    }
    out.proven.push(format!(
        "WordPress {version} booted: home {}, {} published posts",
        a.home.as_deref().unwrap_or("(none)"),
        a.published_posts.unwrap_or(0)
    ));
}
