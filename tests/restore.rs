//! The worst day, end to end with real servers: a site backed up, destroyed and restored is
//! served again with its posts, page and media byte for byte; a clone restored elsewhere with a
//! new address serves links to that address while the original stays untouched (also when its
//! `wp-config.php` is a symlink to a file outside the site, which is never written); with
//! backups.db gone, `list` still finds every archive and `restore` still works from config.json
//! and the credentials; a damaged or truncated archive fails `verify` and `restore` refuses it,
//! changing nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use crate::fixture::{self, BUCKET, Fixture};
use crate::util::wordpress::{MEDIA_PATH, UNICODE_TITLE, http_get, serve_dir};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The site's tree as the archive keeps it (the fixture config's excludes left out).
fn site_tree(path: &Path) -> Vec<(String, String)> {
    fixture::tree(path, &|rel| {
        rel == "wp-content/cache" || rel.starts_with("wp-content/cache/") || rel.ends_with(".log")
    })
}

/// Back up the fixture's site and return the key stored on the primary.
pub(crate) fn backup(f: &Fixture) -> String {
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stored = fixture::stored(&f.primary);
    assert_eq!(stored.len(), 1, "{stored:?}");
    stored[0].0.clone()
}

pub(crate) fn option(f: &Fixture, db: &str, name: &str) -> String {
    f.db.sql_db(
        db,
        &format!("SELECT option_value FROM wp_options WHERE option_name = '{name}'"),
    )
    .trim_end()
    .to_string()
}

/// Siblings of `path` that a restore leaves or would leave (`.restoring-`, `.before-restore-`,
/// temporary downloads).
pub(crate) fn restore_leftovers(path: &Path) -> Vec<String> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| *n != name)
        .collect()
}

#[test]
fn round_trip_restores_a_destroyed_site_that_serves_again() {
    let f = Fixture::new("restore-rt");
    let key = backup(&f);
    let tree = site_tree(&f.site.path);
    let titles = f.site.post_titles(&f.db);
    let media = std::fs::read(f.site.path.join(MEDIA_PATH)).unwrap();
    let page_id =
        f.db.sql_db(
            &f.site.db_name,
            "SELECT ID FROM wp_posts WHERE post_type = 'page' AND post_title = 'About this site'",
        )
        .trim()
        .to_string();

    // A bad change on the live site: restoring over it moves the directory aside (kept) and
    // saves the database's content before replacing it.
    std::fs::write(f.site.path.join("hacked.php"), "<?php // bad").unwrap();
    f.db.sql_db(
        &f.site.db_name,
        "UPDATE wp_options SET option_value = 'Hacked' WHERE option_name = 'blogname'",
    );
    let out = f.run(&["restore", "--site", "blog", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(site_tree(&f.site.path), tree);
    assert_eq!(option(&f, &f.site.db_name, "blogname"), "Test Site");
    let aside = restore_leftovers(&f.site.path);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].contains(".before-restore-"), "{aside:?}");
    let aside = f.site.path.parent().unwrap().join(&aside[0]);
    assert!(aside.join("hacked.php").exists());
    let saved: Vec<_> = std::fs::read_dir(f.home().join("before-restore"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&saved[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the saved database must be private");
    let sql = std::process::Command::new("zstd")
        .args(["-dc"])
        .arg(&saved[0])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&sql.stdout).contains("'Hacked'"));
    std::fs::remove_dir_all(&aside).unwrap();

    // The worst day: the directory and the database are gone.
    std::fs::remove_dir_all(&f.site.path).unwrap();
    f.db.sql(&format!("DROP DATABASE `{}`", f.site.db_name));

    // Nothing live is replaced, so no confirmation is needed.
    let out = f.run(&["restore", "--site", "blog"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(said.contains(&key) && said.contains("took"), "{said}");

    assert_eq!(site_tree(&f.site.path), tree, "restored files differ");
    assert_eq!(f.site.post_titles(&f.db), titles);
    assert!(titles.iter().any(|t| t == UNICODE_TITLE));
    assert!(restore_leftovers(&f.site.path).is_empty());

    let _php = f.site.serve();
    let (status, body) = http_get(&format!("{}/", f.site.url));
    let html = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("First post about backups") && html.contains("Third post"));
    let (status, body) = http_get(&format!("{}/?page_id={page_id}", f.site.url));
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("A page."));
    let (status, body) = http_get(&format!("{}/{MEDIA_PATH}", f.site.url));
    assert_eq!(status, 200);
    assert!(body == media, "the media file differs after the restore");

    let rows = f.rows();
    let row = rows.last().unwrap();
    assert_eq!(row.status, "SUCCESS", "{row:?}");
    assert_eq!(row.archive_key.as_deref(), Some(key.as_str()));
    assert_eq!(row.storage_name.as_deref(), Some("primary"));
}

/// A free port with four digits, so that the clone's address is shorter than the original's
/// (five digits) and every PHP-serialized length holding it must change.
fn four_digit_port() -> u16 {
    let start = 3000 + (std::process::id() % 6000) as u16;
    (start..10_000)
        .chain(3000..start)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free four-digit port")
}

/// What PHP's `code` prints with `input` on its stdin.
fn php(code: &str, input: &str) -> String {
    let out = std::process::Command::new("php")
        .args(["-r", code])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    stdout(&out)
}

/// `value` unserialized by PHP itself, as JSON (`BROKEN` when it does not unserialize).
fn unserialized_json(value: &str) -> String {
    php(
        "$v = unserialize(stream_get_contents(STDIN)); echo $v === false ? 'BROKEN' : json_encode($v, JSON_UNESCAPED_SLASHES);",
        value,
    )
}

/// A clone of the fixture's site made with `restore --to --db-name --url`, asserted to succeed.
/// The site's user may not create databases: root through the test server's socket does.
struct Clone {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    db: String,
    port: u16,
    url: String,
    out: Output,
}

fn clone_site(f: &Fixture, db_suffix: &str) -> Clone {
    clone_site_at(f, db_suffix, four_digit_port())
}

/// [`clone_site`] to the address on `port`.
fn clone_site_at(f: &Fixture, db_suffix: &str, port: u16) -> Clone {
    let url = format!("http://127.0.0.1:{port}");
    let dir = tempfile::Builder::new()
        .prefix("wpb-clone")
        .tempdir()
        .unwrap();
    let path = dir.path().join("staging");
    let db = format!("{}_{db_suffix}", f.site.db_name);
    let out = f
        .cmd(&["restore", "--site", "blog", "--to"])
        .arg(&path)
        .args(["--db-name", &db, "--url", &url])
        .env("MYSQL_UNIX_PORT", &f.db.socket)
        .output()
        .unwrap();
    eprintln!(
        "restore -> {:?}\n{}{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    Clone {
        _dir: dir,
        path,
        db,
        port,
        url,
        out,
    }
}

#[test]
fn clone_to_another_directory_database_and_address() {
    let f = Fixture::new("restore-clone");
    let builder_post = seed_page_builder_forms(&f);
    let forms_post = seed_address_forms(&f);
    let port = four_digit_port();
    let clash = seed_url_keys(&f, &format!("http://127.0.0.1:{port}"));
    let commented = comment_out_old_settings(&f);
    backup(&f);
    let tree = site_tree(&f.site.path);
    let original_option = option(&f, &f.site.db_name, "wpb_serialized");
    assert!(original_option.contains(&f.site.url));

    let c = clone_site_at(&f, "staging", port);
    let (clone, clone_db, new_url) = (c.path.clone(), c.db.clone(), c.url.clone());

    let wp_config = std::fs::read_to_string(clone.join("wp-config.php")).unwrap();
    assert!(wp_config.contains(&format!("'{clone_db}'")), "{wp_config}");
    assert!(wp_config.contains(&commented), "{wp_config}");
    assert_url_keys_moved(&f, &c, &clash);
    assert_eq!(option(&f, &clone_db, "siteurl"), new_url);
    assert_eq!(option(&f, &clone_db, "home"), new_url);

    // The serialized option holding the address still unserializes, with the new address in it.
    let value = option(&f, &clone_db, "wpb_serialized");
    let decoded = unserialized_json(&value);
    assert_eq!(
        decoded,
        format!(r#"{{"url":"{new_url}/landing","nested":["{new_url}"]}}"#),
        "serialized value: {value}"
    );

    // The clone serves pages whose links point at the new address only.
    let _php = serve_dir(&clone, port);
    let (status, body) = http_get(&format!("{new_url}/"));
    let html = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("First post about backups"), "{html}");
    assert!(html.contains(&format!("{new_url}/?p=")), "{html}");
    assert!(
        !html.contains(&f.site.url),
        "the clone links to the original:\n{html}"
    );
    let (status, _) = http_get(&format!("{new_url}/{MEDIA_PATH}"));
    assert_eq!(status, 200);

    assert_page_builder_forms_moved(&f, &clone_db, &builder_post, &new_url);
    assert_address_forms_moved(&f, &clone_db, &forms_post, &new_url);
    // The original is untouched.
    assert_eq!(site_tree(&f.site.path), tree);
    assert_eq!(option(&f, &f.site.db_name, "siteurl"), f.site.url);
    assert_eq!(
        option(&f, &f.site.db_name, "wpb_serialized"),
        original_option
    );
    assert!(restore_leftovers(&f.site.path).is_empty());
    assert_eq!(restore_leftovers(&clone), Vec::<String>::new());
}

/// Options keyed by the site's address (issue 16, item 5): one whose keys the clone must
/// rewrite, and one where the rewrite would make two keys equal (the clone's address, on
/// `new_url`, is already a key): PHP would keep only one entry, so it must be left unchanged
/// and named. Returns the second one as stored.
fn seed_url_keys(f: &Fixture, new_url: &str) -> String {
    let old = &f.site.url;
    let keyed = format!(
        "a:2:{{{}{}{}a:1:{{{}i:1;}}}}",
        ser(&format!("{old}/landing")),
        ser("first"),
        ser(old),
        ser(&format!("{old}/x"))
    );
    let clash = format!(
        "a:2:{{{}i:1;{}i:2;}}",
        ser(&format!("{old}/a")),
        ser(&format!("{new_url}/a"))
    );
    f.db.sql_db(
        &f.site.db_name,
        &format!(
            "INSERT INTO wp_options (option_name, option_value, autoload) VALUES
             ('wpb_url_keys', '{keyed}', 'no'), ('wpb_key_clash', '{clash}', 'no')"
        ),
    );
    clash
}

/// In the clone, PHP unserializes the keyed option with the new address in its keys; the one
/// whose keys would collide is as it was, and the restore said so.
fn assert_url_keys_moved(f: &Fixture, c: &Clone, clash: &str) {
    let new_url = &c.url;
    let value = option(f, &c.db, "wpb_url_keys");
    assert_eq!(
        unserialized_json(&value),
        format!(r#"{{"{new_url}/landing":"first","{new_url}":{{"{new_url}/x":1}}}}"#),
        "serialized value: {value}"
    );
    assert_eq!(option(f, &c.db, "wpb_key_clash"), clash);
    let said = format!("{}{}", stdout(&c.out), stderr(&c.out));
    assert!(
        said.contains("wp_options, column option_value")
            && said.contains(&format!("would both become \"{new_url}/a\""))
            && said.contains("1 left unchanged"),
        "{said}"
    );
}

/// A commented-out line of the site's wp-config.php naming its old database, directory and
/// address, as people leave them: a clone keeps it as it is. Returns the line.
fn comment_out_old_settings(f: &Fixture) -> String {
    let wp = f.site.path.join("wp-config.php");
    let line = format!(
        "// define( 'DB_NAME', '{}' ); # was at {} on {}",
        f.site.db_name,
        f.site.path.display(),
        f.site.url
    );
    let text = std::fs::read_to_string(&wp).unwrap();
    std::fs::write(
        &wp,
        text.replacen("<?php\n", &format!("<?php\n{line}\n"), 1),
    )
    .unwrap();
    line
}

/// A post as page builders store addresses (issue 16, item 5): a Gutenberg block whose JSON
/// escapes the slashes, and a URL-encoded link. Returns its ID.
fn seed_page_builder_forms(f: &Fixture) -> String {
    let json = f.site.url.replace('/', "\\\\/");
    let encoded = f.site.url.replace(':', "%3A").replace('/', "%2F");
    let content = format!(
        "<!-- wp:image {{\\\"url\\\":\\\"{json}\\\\/a.jpg\\\"}} --><a href=\\\"/share?u={encoded}%2Fpage\\\">share</a>"
    );
    f.db.sql_db(
        &f.site.db_name,
        &format!(
            "INSERT INTO wp_posts (post_title, post_content, post_status, post_type, guid, post_excerpt, to_ping, pinged, post_content_filtered) \
             VALUES ('Builder', '{content}', 'publish', 'post', '{}/?p=builder', '', '', '', ''); SELECT LAST_INSERT_ID();",
            f.site.url
        ),
    )
    .trim()
    .to_string()
}

/// In the clone, the block's JSON decodes (PHP's json_decode) to the new address, the
/// URL-encoded link names it, no form of the old address is left, and the guid is kept.
fn assert_page_builder_forms_moved(f: &Fixture, db: &str, id: &str, new_url: &str) {
    // As stored (the client's batch output would escape the backslashes).
    let post = |col: &str| {
        let hex = f.db.sql_db(
            db,
            &format!("SELECT HEX({col}) FROM wp_posts WHERE ID = {id}"),
        );
        String::from_utf8(hex::decode(hex.trim()).unwrap()).unwrap()
    };
    let content = post("post_content");
    let old_json = f.site.url.replace('/', "\\/");
    let old_encoded = f.site.url.replace(':', "%3A").replace('/', "%2F");
    assert!(
        !content.contains(&old_json) && !content.contains(&old_encoded),
        "{content}"
    );
    let new_encoded = new_url.replace(':', "%3A").replace('/', "%2F");
    assert!(
        content.contains(&format!("u={new_encoded}%2Fpage")),
        "{content}"
    );
    let attrs = content
        .split("wp:image ")
        .nth(1)
        .and_then(|r| r.split(" -->").next())
        .unwrap_or_default()
        .to_string();
    let url = php("echo json_decode(stream_get_contents(STDIN))->url;", &attrs);
    assert_eq!(url, format!("{new_url}/a.jpg"), "{attrs}");
    assert_eq!(post("guid"), format!("{}/?p=builder", f.site.url));
}

/// The site's address in the other forms a post holds it (issue 24 item 2), each ending in a
/// path: `https://` for a site on `http://`, scheme-relative, and the same two JSON-escaped
/// and URL-encoded; and three lookalikes that must stay: a longer host, another port and a
/// longer port.
fn address_forms(url: &str) -> (String, Vec<String>) {
    let https = url.replacen("http://", "https://", 1);
    let relative = url.replacen("http:", "", 1);
    let json = |s: &str| s.replace('/', "\\/");
    let encoded = |s: &str| s.replace(':', "%3A").replace('/', "%2F");
    let forms = vec![
        format!("{https}/s.jpg"),
        format!("{relative}/r.css"),
        format!("{}\\/j", json(&https)),
        format!("{}\\/k", json(&relative)),
        format!("{}%2Fq", encoded(&https)),
        format!("{}%2Fe", encoded(&relative)),
    ];
    let lookalikes = format!("{url}.evil.example/x {url}0/y {https}9/z");
    (lookalikes, forms)
}

fn seed_address_forms(f: &Fixture) -> String {
    let (lookalikes, forms) = address_forms(&f.site.url);
    let content = format!("{} | {lookalikes}", forms.join(" "));
    f.db.sql_db(
        &f.site.db_name,
        &format!(
            "INSERT INTO wp_posts (post_title, post_content, post_status, post_type, guid, post_excerpt, to_ping, pinged, post_content_filtered) \
             VALUES ('Forms', '{}', 'draft', 'post', '{}/?p=forms', '', '', '', ''); SELECT LAST_INSERT_ID();",
            content.replace('\\', "\\\\"),
            f.site.url
        ),
    )
    .trim()
    .to_string()
}

/// In the clone, each form names the new address in the same form, and the lookalikes are as
/// they were: exactly.
fn assert_address_forms_moved(f: &Fixture, db: &str, id: &str, new_url: &str) {
    let hex = f.db.sql_db(
        db,
        &format!("SELECT HEX(post_content) FROM wp_posts WHERE ID = {id}"),
    );
    let content = String::from_utf8(hex::decode(hex.trim()).unwrap()).unwrap();
    let (lookalikes, _) = address_forms(&f.site.url);
    let relative = new_url.replacen("http:", "", 1);
    let json = |s: &str| s.replace('/', "\\/");
    let encoded = |s: &str| s.replace(':', "%3A").replace('/', "%2F");
    let want = [
        format!("{new_url}/s.jpg"),
        format!("{relative}/r.css"),
        format!("{}\\/j", json(new_url)),
        format!("{}\\/k", json(&relative)),
        format!("{}%2Fq", encoded(new_url)),
        format!("{}%2Fe", encoded(&relative)),
    ];
    assert_eq!(content, format!("{} | {lookalikes}", want.join(" ")));
}

/// `s:N:"text";` with N in bytes.
fn ser(text: &str) -> String {
    format!("s:{}:\"{text}\";", text.len())
}

#[test]
fn a_clone_rewrites_every_row_of_a_table_read_in_batches() {
    let f = Fixture::new("restore-batches");
    // More rows holding the address than one batch reads (1000), with multibyte text.
    let rows = 2345;
    let value = |url: &str, i: usize| ser(&format!("{url}/ü/{i}"));
    f.db.sql_db(
        &f.site.db_name,
        &format!(
            "SET NAMES utf8mb4;
             INSERT INTO wp_postmeta (post_id, meta_key, meta_value)
             SELECT 1, 'wpb_batch', CONCAT('s:', LENGTH(v), ':\"', v, '\";')
             FROM (SELECT CONCAT('{}/ü/', seq) AS v FROM seq_0_to_{}) t;",
            f.site.url,
            rows - 1
        ),
    );
    let stored = f.db.sql_db(
        &f.site.db_name,
        "SET NAMES utf8mb4; SELECT meta_value FROM wp_postmeta WHERE meta_key = 'wpb_batch' ORDER BY meta_id",
    );
    let want_before: Vec<String> = (0..rows).map(|i| value(&f.site.url, i)).collect();
    assert_eq!(stored.lines().collect::<Vec<_>>(), want_before);
    backup(&f);

    let c = clone_site(&f, "batches");
    let (clone_db, new_url) = (c.db.clone(), c.url.clone());

    let got = f.db.sql_db(
        &clone_db,
        "SET NAMES utf8mb4; SELECT meta_value FROM wp_postmeta WHERE meta_key = 'wpb_batch' ORDER BY meta_id",
    );
    let want: Vec<String> = (0..rows).map(|i| value(&new_url, i)).collect();
    assert_eq!(got.lines().collect::<Vec<_>>(), want);
}

#[test]
fn disaster_without_backups_db_lists_and_restores_from_the_buckets() {
    let mut f = Fixture::new("restore-disaster");
    let key = backup(&f);
    let out = f.run(&["backup", "--storage", "secondary"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let tree = site_tree(&f.site.path);
    let titles = f.site.post_titles(&f.db);

    // The server is lost: a new one has only config.json and .env.
    for name in ["backups.db", "backups.db-wal", "backups.db-shm"] {
        let _ = std::fs::remove_file(f.home().join(name));
    }
    std::fs::remove_dir_all(&f.site.path).unwrap();
    f.db.sql(&format!("DROP DATABASE `{}`", f.site.db_name));

    let out = f.run(&["--json", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !f.home().join("backups.db").exists(),
        "list must not create backups.db"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let archives = doc["archives"].as_array().unwrap();
    let mut seen: Vec<(String, String)> = archives
        .iter()
        .map(|a| {
            assert_eq!(a["in_backups_db"], false);
            assert_eq!(a["site"], "blog");
            (
                a["storage"].as_str().unwrap().to_string(),
                a["key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    let mut want: Vec<(String, String)> = fixture::stored(&f.primary)
        .into_iter()
        .map(|(k, _)| ("primary".to_string(), k))
        .chain(
            fixture::stored(&f.secondary)
                .into_iter()
                .map(|(k, _)| ("secondary".to_string(), k)),
        )
        .collect();
    want.sort();
    assert_eq!(seen, want);
    assert!(seen.iter().any(|(_, k)| *k == key));

    // And the primary is down too: the restore comes from the secondary, checked against the
    // sha256 in the object's metadata.
    f.primary.kill();
    let out = f.run(&["restore", "--site", "blog", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(site_tree(&f.site.path), tree);
    assert_eq!(f.site.post_titles(&f.db), titles);
    let rows = f.rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status, "SUCCESS");
    assert_eq!(rows[0].storage_name.as_deref(), Some("secondary"));
    assert!(rows[0].details.contains("object metadata"), "{:?}", rows[0]);
}

#[test]
fn damaged_or_truncated_archive_fails_verify_and_restore_changes_nothing() {
    let f = Fixture::new("restore-tamper");
    let key = backup(&f);
    let object = f.primary.object_path(BUCKET, &key);
    let good = std::fs::read(&object).unwrap();

    let out = f.run(&["verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("OK"), "{}", stdout(&out));

    // The live site changes after the backup: a restore would undo this.
    std::fs::write(f.site.path.join("after-backup.txt"), "new").unwrap();
    f.db.sql_db(
        &f.site.db_name,
        "UPDATE wp_options SET option_value = 'Changed after backup' WHERE option_name = 'blogname'",
    );
    let tree = site_tree(&f.site.path);
    let unchanged = |f: &Fixture| {
        assert_eq!(site_tree(&f.site.path), tree, "the site directory changed");
        assert_eq!(
            option(f, &f.site.db_name, "blogname"),
            "Changed after backup",
            "the database changed"
        );
        assert!(
            restore_leftovers(&f.site.path).is_empty(),
            "{:?}",
            restore_leftovers(&f.site.path)
        );
    };

    // Not on a terminal and no --yes: refused before anything happens.
    let out = f.run(&["restore", "--site", "blog"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    unchanged(&f);

    let mut damaged = good.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x01;
    let truncated = good[..good.len() / 2].to_vec();
    for (what, bytes) in [("one byte changed", damaged), ("truncated", truncated)] {
        std::fs::write(&object, &bytes).unwrap();

        let out = f.run(&["verify"]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stdout(&out));
        assert!(
            stdout(&out).contains("sha256 mismatch"),
            "{what}: {}",
            stdout(&out)
        );
        let row = f.rows().pop().unwrap();
        assert_eq!(row.status, "ERROR", "{what}: {row:?}");
        assert_eq!(row.archive_key.as_deref(), Some(key.as_str()));

        let out = f.run(&["restore", "--site", "blog", "--yes"]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("refusing") && err.contains("sha256"),
            "{what}: {err}"
        );
        unchanged(&f);
        let row = f.rows().pop().unwrap();
        assert_eq!(row.status, "ERROR", "{what}: {row:?}");
    }
}

/// Issue 12, item 2: a site path written with a trailing slash. The staging directory and the
/// copy of the live site must be siblings of the site (not inside it), and the swap must
/// succeed: it used to fail with EINVAL after the database had already been replaced.
#[test]
fn a_site_path_with_a_trailing_slash_restores_in_place() {
    let f = Fixture::new("restore-slash");
    let mut config = f.default_config();
    config["sites"][0]["path"] = format!("{}/", f.site.path.display()).into();
    f.write_config(config);
    backup(&f);
    std::fs::write(f.site.path.join("hacked.php"), "<?php // bad").unwrap();
    let out = f.run(&["restore", "--site", "blog", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!f.site.path.join("hacked.php").exists());
    let inside: Vec<String> = std::fs::read_dir(&f.site.path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("restoring") || n.contains("before-restore"))
        .collect();
    assert!(inside.is_empty(), "{inside:?}");
    let left = restore_leftovers(&f.site.path);
    let aside: Vec<&String> = left
        .iter()
        .filter(|n| n.contains(".before-restore-"))
        .collect();
    assert_eq!(
        aside.len(),
        1,
        "the live copy is kept beside the site: {left:?}"
    );
    // ... and its old PHP is private, not left for the web server (item 8).
    let mode = std::fs::metadata(f.site.path.parent().unwrap().join(aside[0]))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(f.site.post_titles(&f.db).iter().any(|t| t == UNICODE_TITLE));
}

/// Issue 12, item 4: someone with write access to the bucket replaces an archive with one
/// whose dump runs a shell command (`\!`) and fixes its sha256 (on S3 it is metadata they can
/// set). The restore refuses it with exit status 2, naming the statement and its line, before
/// anything live changes; the command never runs.
#[test]
fn a_dump_with_client_commands_is_refused_before_anything_changes() {
    let f = Fixture::new("restore-tamper");
    let store = tempfile::tempdir().unwrap();
    let mut config = f.default_config();
    config["storage"] = serde_json::json!([
        { "name": "disk", "type": "local", "priority": 1, "path": store.path() }
    ]);
    f.write_config(config);
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let marker = store.path().join("pwned");
    tamper(
        f.home(),
        store.path(),
        &format!("\\! touch {}", marker.display()),
    );
    // On a new server there is no backups.db to tell that the sha256 was changed.
    std::fs::remove_file(f.home().join("backups.db")).unwrap();

    std::fs::write(f.site.path.join("live.txt"), "live").unwrap();
    f.db.sql_db(
        &f.site.db_name,
        "UPDATE wp_options SET option_value = 'Live' WHERE option_name = 'blogname'",
    );
    let out = f.run(&["restore", "--site", "blog", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("database.sql statement 1 (line 2): a client command"),
        "{}",
        stderr(&out)
    );
    assert!(!marker.exists(), "the dump's shell command ran");
    assert_eq!(option(&f, &f.site.db_name, "blogname"), "Live");
    assert!(f.site.path.join("live.txt").exists());
    assert!(restore_leftovers(&f.site.path).is_empty());
}

/// Rewrite the one archive under `store` as an attacker would, with plain tar: `line` goes
/// into database.sql after its first line, manifest.json and the sha256 file follow; signed
/// again with the key in `home` (an attacker holding it, or the server signing a bad dump),
/// so that what the dump check refuses is tested behind the signature check.
fn tamper(home: &Path, store: &Path, line: &str) {
    use sha2::{Digest, Sha256};
    let dir = store.join("test-server/blog");
    let archive = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.zst"))
        .expect("an archive");
    let work = tempfile::tempdir().unwrap();
    let tar = |args: &[&str]| {
        let out = std::process::Command::new("tar")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let w = work.path().to_string_lossy().into_owned();
    tar(&["--zstd", "-xf", &archive.to_string_lossy(), "-C", &w]);
    let sql_path = work.path().join("database.sql");
    let sql = std::fs::read_to_string(&sql_path).unwrap();
    let (first, rest) = sql.split_once('\n').unwrap();
    let sql = format!("{first}\n{line}\n{rest}");
    std::fs::write(&sql_path, &sql).unwrap();
    let manifest_path = work.path().join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["database_sha256"] = hex::encode(Sha256::digest(sql.as_bytes())).into();
    manifest["database_bytes"] = sql.len().into();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let a = archive.to_string_lossy().into_owned();
    tar(&[
        "--zstd",
        "-cf",
        &a,
        "-C",
        &w,
        "files",
        "database.sql",
        "manifest.json",
    ]);
    let name = archive.file_name().unwrap().to_string_lossy().into_owned();
    let sum = hex::encode(Sha256::digest(std::fs::read(&archive).unwrap()));
    std::fs::write(
        dir.join(format!("{name}.sha256")),
        format!("{sum}  {name}\n"),
    )
    .unwrap();
    let sig = dir.join(format!("{name}.minisig"));
    let key = format!("test-server/blog/{name}");
    crate::util::minisign::sign(&home.join("signing.key"), &archive, &key, &sig);
}

/// Issue 12, item 1: a Capistrano/Deployer layout links `wp-config.php` to a shared file
/// outside the site. A clone to another directory, database and address must not write
/// through that link (it would point production at the staging database): the shared file
/// stays byte for byte as it was, and the clone gets a regular `wp-config.php` of its own,
/// pointing at the clone's database, and serves from it.
#[test]
fn a_clone_never_writes_through_a_symlinked_wp_config() {
    let f = Fixture::new("restore-link");
    let shared = tempfile::Builder::new()
        .prefix("wpb-shared")
        .tempdir()
        .unwrap();
    let outside = shared.path().join("wp-config.php");
    let live = f.site.path.join("wp-config.php");
    std::fs::rename(&live, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &live).unwrap();
    let before = std::fs::read(&outside).unwrap();
    backup(&f);

    let c = clone_site(&f, "stg");
    let (clone, clone_db, new_url, port) = (c.path.clone(), c.db.clone(), c.url.clone(), c.port);
    let out = &c.out;

    assert_eq!(
        std::fs::read(&outside).unwrap(),
        before,
        "the live site's shared wp-config.php was changed by the clone"
    );
    assert!(
        std::fs::symlink_metadata(&live)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let wp = clone.join("wp-config.php");
    assert!(
        std::fs::symlink_metadata(&wp)
            .unwrap()
            .file_type()
            .is_file(),
        "the clone's wp-config.php is still a link"
    );
    let text = std::fs::read_to_string(&wp).unwrap();
    assert!(text.contains(&format!("'{clone_db}'")), "{text}");
    let said = format!("{}{}", stdout(out), stderr(out));
    assert!(
        said.contains(&format!("was a symlink to {}", outside.display())),
        "{said}"
    );

    // The clone runs on its own database: its pages link to its own address.
    let _php = serve_dir(&clone, port);
    let (status, body) = http_get(&format!("{new_url}/"));
    let html = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&format!("{new_url}/?p=")), "{html}");
    assert_eq!(option(&f, &f.site.db_name, "siteurl"), f.site.url);
}

/// Issue 12, item 7: the live wp-config.php (writable by the site) is changed to name another
/// tenant's database. A restore, running as root, must not replace that database because the
/// file says so: it names both databases and asks for --db-name, and changes nothing.
#[test]
fn a_live_wp_config_naming_another_database_is_not_trusted() {
    let f = Fixture::new("restore-tenant");
    backup(&f);
    f.db.sql("CREATE DATABASE tenant2; CREATE TABLE tenant2.orders (id int); INSERT INTO tenant2.orders VALUES (42);");
    f.db.sql(&format!(
        "GRANT ALL ON tenant2.* TO '{u}'@'%'; GRANT ALL ON tenant2.* TO '{u}'@'localhost';",
        u = f.site.db_user
    ));
    let wp_config = f.site.path.join("wp-config.php");
    let text = std::fs::read_to_string(&wp_config).unwrap();
    let needle = format!("'{}'", f.site.db_name);
    assert!(text.contains(&needle), "{text}");
    std::fs::write(&wp_config, text.replacen(&needle, "'tenant2'", 1)).unwrap();

    let out = f.run(&["restore", "--site", "blog", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("names database tenant2")
            && err.contains(&format!("--db-name {}", f.site.db_name)),
        "{err}"
    );
    assert_eq!(f.db.sql("SELECT id FROM tenant2.orders").trim(), "42");
    assert!(restore_leftovers(&f.site.path).is_empty());
}

/// Run SQL as `user` with `password` over TCP (the password in the client's environment).
pub(crate) fn sql_as(f: &Fixture, user: &str, password: &str, sql: &str) -> String {
    let out = std::process::Command::new("mariadb")
        .arg("--no-defaults")
        .args(["-h", "127.0.0.1", "-P", &f.db.port.to_string(), "-u", user])
        .args(["-N", "-B", "-e", sql])
        .env("MYSQL_PWD", password)
        .output()
        .unwrap();
    assert!(out.status.success(), "{sql}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A trigger and a view in the site's database defined by `root@localhost` (as a plugin an
/// administrator installed makes them): the trigger marks each new `wp_postmeta` value with
/// the user it runs as, the view answers with the user it runs as.
pub(crate) fn add_root_defined_objects(f: &Fixture) {
    f.db.sql_db(
        &f.site.db_name,
        "CREATE DEFINER='root'@'localhost' TRIGGER wpb_mark BEFORE INSERT ON wp_postmeta FOR EACH ROW SET NEW.meta_value = CONCAT(NEW.meta_value, ' seen by ', CURRENT_USER());
         CREATE DEFINER='root'@'localhost' SQL SECURITY DEFINER VIEW wpb_who AS SELECT CURRENT_USER() AS who;",
    );
}

/// The definers of the trigger and the view [`add_root_defined_objects`] made, in `db`.
pub(crate) fn definers(f: &Fixture, db: &str) -> (String, String) {
    let one = |q: String| f.db.sql(&q).trim().to_string();
    (
        one(format!(
            "SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{db}' AND TRIGGER_NAME = 'wpb_mark'"
        )),
        one(format!(
            "SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 'wpb_who'"
        )),
    )
}

/// Run `run` with the server's general log on: the users (`priv_user[user] @ host [ip]`)
/// that sent the dump's `INSERT INTO wp_posts` statements meanwhile.
pub(crate) fn importers_of<T>(f: &Fixture, run: impl FnOnce() -> T) -> (T, Vec<String>) {
    f.db.sql(
        "SET GLOBAL log_output = 'TABLE'; TRUNCATE mysql.general_log; SET GLOBAL general_log = 1;",
    );
    let out = run();
    f.db.sql("SET GLOBAL general_log = 0;");
    let users = f.db.sql(
        "SELECT DISTINCT user_host FROM mysql.general_log WHERE command_type = 'Query' AND argument LIKE 'INSERT INTO `wp\\_posts`%'",
    );
    (out, users.lines().map(String::from).collect())
}

/// Issue 23 item 3: config.json's `database` names an administrator, and the site's database
/// holds a trigger and a view defined by root. The in-place restore imports the archive's SQL
/// as the site's own user (the server's log says who sent the dump's rows), so the trigger and
/// the view are the site user's and run as it, and still work. Into another database the
/// site's user cannot reach, a throwaway user imports, is dropped afterwards, and what it
/// defined is named in a warning.
#[test]
fn a_restore_imports_as_a_user_limited_to_the_database_and_nothing_runs_as_root() {
    let f = Fixture::new("restore-least");
    let (db, user, password) = (&f.site.db_name, &f.site.db_user, &f.site.db_password);
    add_root_defined_objects(&f);
    f.db.sql(
        "CREATE USER 'dbadmin'@'%' IDENTIFIED BY 'adm-pw-3'; CREATE USER 'dbadmin'@'localhost' IDENTIFIED BY 'adm-pw-3';
         GRANT ALL ON *.* TO 'dbadmin'@'%' WITH GRANT OPTION; GRANT ALL ON *.* TO 'dbadmin'@'localhost' WITH GRANT OPTION;",
    );
    let mut config = f.default_config();
    config["sites"][0]["database"] = serde_json::json!({
        "name": db, "user": "dbadmin", "password_env": "ADMIN_DB_PASSWORD",
        "host": format!("127.0.0.1:{}", f.db.port),
    });
    f.write_config(config);
    f.write_env(&[("ADMIN_DB_PASSWORD", "adm-pw-3")]);
    backup(&f);

    let (out, importers) = importers_of(&f, || f.run(&["restore", "--site", "blog", "--yes"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!importers.is_empty());
    for who in &importers {
        assert!(who.starts_with(&format!("{user}[")), "imported by {who}");
    }
    assert!(
        stdout(&out).contains(&format!("imported as the site's own user {user}")),
        "{}",
        stdout(&out)
    );
    let (trigger, view) = definers(&f, db);
    assert!(trigger.starts_with(&format!("{user}@")), "{trigger}");
    assert!(view.starts_with(&format!("{user}@")), "{view}");
    let marked = sql_as(
        &f,
        user,
        password,
        &format!(
            "INSERT INTO `{db}`.wp_postmeta (post_id, meta_key, meta_value) VALUES (1, 'wpb_probe', 'x');
             SELECT meta_value FROM `{db}`.wp_postmeta WHERE meta_key = 'wpb_probe';
             SELECT who FROM `{db}`.wpb_who;"
        ),
    );
    let lines: Vec<&str> = marked.lines().collect();
    assert!(
        lines[0].starts_with(&format!("x seen by {user}@")),
        "{marked}"
    );
    assert!(lines[1].starts_with(&format!("{user}@")), "{marked}");
    assert!(!marked.contains("root"), "{marked}");

    // Into a database the site's user cannot reach: a throwaway user, gone afterwards.
    let copy = format!("{db}_copy");
    let (out, importers) = importers_of(&f, || {
        f.run(&[
            "restore",
            "--site",
            "blog",
            "--db-only",
            "--db-name",
            &copy,
            "--yes",
        ])
    });
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!importers.is_empty());
    for who in &importers {
        assert!(who.starts_with("wpbrestore_"), "imported by {who}");
    }
    let left =
        f.db.sql("SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'wpbrestore%'");
    assert_eq!(left.trim(), "0", "the throwaway user is left");
    let (trigger, _) = definers(&f, &copy);
    assert!(trigger.starts_with("wpbrestore_"), "{trigger}");
    assert!(
        stderr(&out).contains("trigger wpb_mark") && stderr(&out).contains("throwaway"),
        "{}",
        stderr(&out)
    );
}
