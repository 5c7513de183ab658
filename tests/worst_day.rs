//! README's worst day, run as it is written: a new server with nothing but the bucket (no
//! config.json, `.env` or backups.db, no site directory, database or database user) follows
//! the blocks of "The server is gone: from the bucket alone" and serves the site's posts again.
//!
//! The blocks are taken from README.md (those after a `<!-- worst-day step -->` mark), and
//! only README's own example values are replaced by this test's (paths, endpoint, keys, names):
//! a change to the section that breaks the steps breaks this test.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::fixture::{Fixture, PRIMARY_KEY, PRIMARY_SECRET};
use crate::util::wordpress::http_get;

const SECTION: &str = "### The server is gone: from the bucket alone";
const MARK: &str = "<!-- worst-day step -->";

/// The marked `sh` blocks of README's worst-day section, in order.
fn readme_steps() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split(SECTION)
        .nth(1)
        .and_then(|rest| rest.split("\n### ").next())
        .expect("README's worst-day section");
    section
        .split(MARK)
        .skip(1)
        .map(|after| {
            after
                .split_once("```sh\n")
                .and_then(|(_, code)| code.split_once("```"))
                .map(|(code, _)| code.to_string())
                .expect("a ```sh block after each worst-day mark")
        })
        .collect()
}

/// `text` with README's example value `from` replaced by `to`; the example must be there (a
/// README that no longer names it would otherwise pass unnoticed).
fn put_in(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "README's worst-day steps no longer hold {from:?}"
    );
    text.replace(from, to)
}

#[test]
fn a_new_server_with_only_the_bucket_follows_the_readme_and_serves_the_site_again() {
    let f = Fixture::new("worstday");
    let posts = f.site.post_titles(&f.db);
    assert!(!posts.is_empty());
    let out = f.run(&["backup"]);
    assert_eq!(out.status.code(), Some(0));

    // The old server is gone: its home, the site's files, its database and its user.
    std::fs::remove_dir_all(&f.site.path).expect("remove the site");
    let (db, user) = (&f.site.db_name, &f.site.db_user);
    f.db.sql(&format!(
        "DROP DATABASE `{db}`; DROP USER '{user}'@'%'; DROP USER '{user}'@'localhost'"
    ));
    let new = tempfile::Builder::new()
        .prefix("wpb-newserver")
        .tempdir()
        .expect("tempdir");
    let home = new.path().join("wordpress-backup");
    let old_config = new.path().join("old-config");

    let steps = readme_steps();
    assert_eq!(steps.len(), 5, "{steps:#?}");
    let script = steps.join("\n");
    // README's paths and names, then its storage, then its database user.
    let script = put_in(&script, "/opt/wordpress-backup", &home.to_string_lossy());
    let script = put_in(
        &script,
        "/var/www/example.com",
        &f.site.path.to_string_lossy(),
    );
    let script = put_in(&script, "/root/old-config", &old_config.to_string_lossy());
    let script = put_in(&script, "example.com", "blog");
    let script = put_in(&script, "\"web-01\"", "\"test-server\"");
    let script = put_in(
        &script,
        "https://s3.us-west-1.idrivee2.com",
        &f.primary.endpoint,
    );
    let script = put_in(&script, "us-west-1", "us-east-1");
    // The old server's public key, as its owner kept it (its config.json's trusted_keys).
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.home().join("config.json")).unwrap()).unwrap();
    let public = config["trusted_keys"][0]
        .as_str()
        .expect("the old server's key");
    let script = put_in(
        &script,
        "RWQSSJqpzFnzuiQZqXe5BwwaUnGYdPk1CG5HUdDa+E2RiT5zrNdCkKVp",
        public,
    );
    let script = put_in(&script, "YOUR-ACCESS-KEY", PRIMARY_KEY);
    let script = put_in(&script, "YOUR-SECRET-KEY", PRIMARY_SECRET);
    let script = put_in(&script, "'wp_example'@", &format!("'{user}'@"));
    let script = put_in(&script, "wp_example.*", &format!("`{db}`.*"));
    // The password as step 4 shows it (a PHP single-quoted string), copied into the SQL as
    // step 5 says.
    let php_password = format!(
        "'{}'",
        f.site
            .db_password
            .replace('\\', "\\\\")
            .replace('\'', "\\'")
    );
    let script = put_in(&script, "'password-as-step-4-shows-it'", &php_password);

    // `wpbackup` and `mariadb` as a new server has them: the binary under test, and the
    // client as root through the server's socket.
    let socket = f.db.socket.display();
    let prelude = format!(
        "set -euo pipefail\n\
         wpbackup() {{ command '{bin}' \"$@\"; }}\n\
         mariadb() {{ command mariadb --no-defaults --socket='{socket}' -uroot \"$@\"; }}\n\
         export MYSQL_UNIX_PORT='{socket}'\n",
        bin = crate::util::bin().display(),
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .current_dir(new.path())
        .env("WPBACKUP_HOME", &home)
        .env_remove("RUST_LOG")
        .env_remove("SERVER_ID")
        .output()
        .expect("run bash");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the worst-day steps failed\n--- script\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );

    // Step 2 left the keys private; step 3 listed the archive; step 4 showed the password.
    let env_mode = std::fs::metadata(home.join(".env"))
        .expect(".env")
        .permissions();
    assert_eq!(env_mode.mode() & 0o777, 0o600);
    assert!(stdout.contains("blog_"), "list showed no archive: {stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("DB_PASSWORD") && l.contains(&php_password)),
        "step 4 did not show the password: {stdout}"
    );

    // The site is back: its posts in the database, and served by WordPress.
    assert_eq!(f.site.post_titles(&f.db), posts);
    let _php = f.site.serve();
    let (status, body) = http_get(&format!("{}/", f.site.url));
    let html = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(&posts[0]), "{html}");
}
