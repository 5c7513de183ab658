//! A real WordPress site: Debian's `wordpress` package copied into a standalone directory with
//! its own wp-config.php, installed through `wp_install()` with php-cli, with posts (one with a
//! non-ASCII title), a page, a media file and a comment; servable with `php -S`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tempfile::TempDir;

use super::mariadb::MariaDb;
use super::{Server, free_port, port_open, run_ok, wait_for};

/// The non-ASCII post title every fixture site has.
pub const UNICODE_TITLE: &str = "Grüße aus Köln — 日本語";
/// Where the fixture's media file lives, relative to the site.
pub const MEDIA_PATH: &str = "wp-content/uploads/2026/11/photo.jpg";

pub struct WordPress {
    pub path: PathBuf,
    pub db_name: String,
    pub db_user: String,
    pub db_password: String,
    pub port: u16,
    pub url: String,
    _dir: TempDir,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Deterministic pseudo-random bytes (xorshift), incompressible enough for size tests.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn php_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A copy of Debian's WordPress package at `path` that stands alone, with an uploads folder.
fn copy_wordpress(path: &Path) {
    std::fs::create_dir(path).expect("site dir");
    // -L: Debian links some files elsewhere; the copy must stand alone.
    for entry in std::fs::read_dir("/usr/share/wordpress")
        .expect("Debian's wordpress package is not installed")
    {
        let entry = entry.expect("entry");
        let file_name = entry.file_name();
        if file_name == "wp-config.php" || file_name == ".htaccess" {
            continue;
        }
        run_ok(
            Command::new("cp")
                .arg("-rL")
                .arg(entry.path())
                .arg(path.join(&file_name)),
        );
    }
    let _ = std::fs::remove_dir_all(path.join("wp-content/languages"));
    std::fs::create_dir_all(path.join("wp-content/uploads/2026/11")).expect("uploads");
}

/// wp-config.php for the site's database on `db_port`.
fn wp_config(db_name: &str, db_user: &str, db_password: &str, db_port: u16) -> String {
    format!(
        "<?php\n\
         // ** Database settings ** //\n\
         define( 'DB_NAME', {} );\n\
         define( 'DB_USER', {} );\n\
         define( 'DB_PASSWORD', {} );\n\
         define( 'DB_HOST', '127.0.0.1:{}' );\n\
         define( 'DB_CHARSET', 'utf8mb4' );\n\
         define( 'DB_COLLATE', '' );\n\
         define( 'AUTH_KEY', 'test-auth-key' );\n\
         define( 'SECURE_AUTH_KEY', 'test-secure-auth-key' );\n\
         define( 'LOGGED_IN_KEY', 'test-logged-in-key' );\n\
         define( 'NONCE_KEY', 'test-nonce-key' );\n\
         $table_prefix = 'wp_';\n\
         define( 'WP_DEBUG', false );\n\
         if ( ! defined( 'ABSPATH' ) ) {{\n\tdefine( 'ABSPATH', __DIR__ . '/' );\n}}\n\
         require_once ABSPATH . 'wp-settings.php';\n",
        php_str(db_name),
        php_str(db_user),
        php_str(db_password),
        db_port
    )
}

/// The php-cli script that runs `wp_install()` for the site at `path` served at `url`, and adds
/// the posts (one with a non-ASCII title), the page, the media file's attachment and a comment.
fn install_script(path: &Path, port: u16, url: &str) -> String {
    format!(
        r#"<?php
define('WP_INSTALLING', true);
function wp_new_blog_notification() {{}}
$_SERVER['HTTP_HOST'] = '127.0.0.1:{port}';
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
require_once {abspath} . 'wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
$r = wp_install('Test Site', 'admin', 'admin@example.com', true, '', 'adminpass');
if (is_wp_error($r)) {{ fwrite(STDERR, $r->get_error_message()); exit(1); }}
update_option('siteurl', '{url}');
update_option('home', '{url}');
update_option('wpb_serialized', array('url' => '{url}/landing', 'nested' => array('{url}')));
$titles = array('First post about backups', {unicode}, 'Third post');
$first = 0;
foreach ($titles as $t) {{
    $id = wp_insert_post(array('post_title' => $t, 'post_content' => 'Body of ' . $t . ' <a href="{url}/?p=1">link</a>', 'post_status' => 'publish'));
    if (!$first) $first = $id;
}}
wp_insert_post(array('post_title' => 'About this site', 'post_content' => 'A page.', 'post_status' => 'publish', 'post_type' => 'page'));
$att = wp_insert_attachment(array('post_mime_type' => 'image/jpeg', 'post_title' => 'photo', 'post_status' => 'inherit', 'guid' => '{url}/{media}'), ABSPATH . '{media}', $first);
update_post_meta($att, '_wp_attached_file', '2026/11/photo.jpg');
wp_insert_comment(array('comment_post_ID' => $first, 'comment_content' => 'Nice post', 'comment_author' => 'Reader', 'comment_approved' => 1));
echo "installed\n";
"#,
        abspath = php_str(&format!("{}/", path.display())),
        unicode = php_str(UNICODE_TITLE),
        media = MEDIA_PATH,
    )
}

/// Run the install script with php-cli until it says "installed" (three tries at most).
fn run_install_script(db: &MariaDb, db_name: &str, script_path: &Path) {
    // On a loaded 2-core machine WordPress's first connection sometimes fails ("Error
    // reconnecting to the database"): start over on a clean database, a few times.
    let mut said = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500 * attempt));
            if let Err(e) = db.try_sql(&format!(
                "DROP DATABASE `{db_name}`; CREATE DATABASE `{db_name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
            )) {
                said.push_str(&format!("\n(and the database server is gone: {e})"));
                break;
            }
        }
        // Bounded: WordPress waits on a database server that went away instead of failing.
        let out = Command::new("timeout")
            .args(["60", "php", "-d", "display_errors=stderr"])
            .arg(script_path)
            .output()
            .expect("run php");
        said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() && said.contains("installed") {
            break;
        }
    }
    assert!(
        said.contains("installed"),
        "WordPress install said: {said}\nMariaDB's error log:\n{}",
        db.err_log_tail()
    );
}

impl WordPress {
    pub fn install(db: &MariaDb, name: &str) -> WordPress {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!(
            "{}_{}_{n}",
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id()
        );
        let db_name = format!("wp_{id}");
        let db_user = format!("u{n}_{}", std::process::id());
        let db_password = format!("pw#'\"x{n}$Y{}", std::process::id());
        db.create_db_user(&db_name, &db_user, &db_password);

        let dir = tempfile::Builder::new()
            .prefix("wpb-site")
            .tempdir()
            .expect("tempdir");
        let path = dir.path().join(name);
        copy_wordpress(&path);

        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let config = wp_config(&db_name, &db_user, &db_password, db.port);
        std::fs::write(path.join("wp-config.php"), config).expect("wp-config.php");
        std::fs::write(path.join(MEDIA_PATH), noise(42, 200_000)).expect("media file");

        let script_path = dir.path().join("install.php");
        std::fs::write(&script_path, install_script(&path, port, &url)).expect("install script");
        run_install_script(db, &db_name, &script_path);
        let _ = std::fs::remove_file(&script_path);
        WordPress {
            path,
            db_name,
            db_user,
            db_password,
            port,
            url,
            _dir: dir,
        }
    }

    /// Serve the site with `php -S` on its own port (the address it was installed with).
    pub fn serve(&self) -> Server {
        serve_dir(&self.path, self.port)
    }

    /// Titles of published posts, from the database.
    pub fn post_titles(&self, db: &MariaDb) -> Vec<String> {
        db.sql_db(&self.db_name, "SELECT post_title FROM wp_posts WHERE post_status='publish' AND post_type='post' ORDER BY ID")
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Add `bytes` of incompressible files under wp-content/uploads/big/ (files of 1-4 MiB).
    pub fn grow(&self, bytes: u64) {
        let dir = self.path.join("wp-content/uploads/big");
        std::fs::create_dir_all(&dir).expect("big dir");
        let existing = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) as u64;
        let mut left = bytes;
        let mut i = existing;
        while left > 0 {
            let size = (1 + (i % 4)) * 1024 * 1024;
            let size = size.min(left);
            let mut f =
                std::fs::File::create(dir.join(format!("media-{i:05}.bin"))).expect("create");
            f.write_all(&noise(i + 7, size as usize)).expect("write");
            left -= size;
            i += 1;
        }
    }
}

/// Serve `dir` with `php -S 127.0.0.1:port`.
pub fn serve_dir(dir: &Path, port: u16) -> Server {
    let mut cmd = Command::new("php");
    cmd.args(["-S", &format!("127.0.0.1:{port}"), "-t"])
        .arg(dir)
        .env("PHP_CLI_SERVER_WORKERS", "2");
    let log = std::env::temp_dir().join(format!("wpb-php-{port}.log"));
    let server = Server::spawn(cmd, &log);
    wait_for("php -S", Duration::from_secs(20), &server, || {
        port_open(port)
    });
    server
}

/// GET `url` over plain HTTP/1.0: (status, body). No redirects followed. The request goes out
/// in one write.
pub fn http_get(url: &str) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    // One write: php's built-in server rejects a request that arrives in pieces as
    // "Malformed HTTP request" and closes the connection (a broken pipe here).
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).expect("send");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("http header end");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, buf[split + 4..].to_vec())
}
