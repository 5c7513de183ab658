//! Multisite networks (issue 24 item 1), made with WordPress's own functions
//! (`install_network()`, `populate_network()`, `wp_insert_site()`) from the fixture's site, a
//! subdirectory network and a subdomain one, each with a second site holding a post: backed
//! up, cloned to a new address with `restore --to --db-name --url`, and checked as a visitor
//! would: php serves the clone, and each site's front page, a post, the REST API and the feed
//! answer 200 from the clone's own address (the `Host` header sent, no /etc/hosts) with no old
//! address in any body or `Location`; PHP's `unserialize` accepts every serialized cell; the
//! clone's wp-config.php names the new domain and the clone's own user. `drill` boots each
//! site of both networks at its own address. Clones that cannot be made right are refused
//! before anything changes.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::fixture::Fixture;
use crate::restore::backup;
use crate::util::wordpress::serve_dir;

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn php_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Run a php script (its text) with php-cli; its output, asserted to end in "done".
fn php(dir: &Path, name: &str, script: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    let out = Command::new("timeout")
        .args(["120", "php", "-d", "display_errors=stderr"])
        .arg(&path)
        .output()
        .unwrap();
    let text = said(&out);
    assert!(
        out.status.success() && text.lines().any(|l| l == "done"),
        "{name}: {text}"
    );
    text
}

/// The fixture's site turned into a network at `domain` (host:port) with a second site.
struct Network {
    f: Fixture,
    subdomain: bool,
    /// The network's host:port.
    domain: String,
    /// The second site's host:port and path.
    second: (String, String),
    /// Its post's id.
    second_post: u64,
    /// A third site's mapped domain (host:port): neither the network's host nor under it.
    mapped: String,
    _scripts: tempfile::TempDir,
}

fn network(name: &str, subdomain: bool) -> Network {
    let f = Fixture::new(name);
    let port = f.site.port;
    // A subdomain network needs a name with subdomains: `net.local` is as long as
    // `127.0.0.1`, so the serialized values the fixture holds stay valid when it replaces it.
    let domain = if subdomain {
        format!("net.local:{port}")
    } else {
        format!("127.0.0.1:{port}")
    };
    let second = if subdomain {
        (format!("second.net.local:{port}"), "/".to_string())
    } else {
        (domain.clone(), "/second/".to_string())
    };
    let mapped = format!("shop.mapped.test:{port}");
    let scripts = tempfile::tempdir().unwrap();
    let wp = f.site.path.join("wp-config.php");
    let load = php_str(&format!("{}/wp-load.php", f.site.path.display()));
    let head = |host: &str, uri: &str| {
        format!(
            "<?php\n$_SERVER['HTTP_HOST'] = {};\n$_SERVER['REQUEST_URI'] = {};\n$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';\n$_SERVER['REMOTE_ADDR'] = '127.0.0.1';\ndefine('WP_HTTP_BLOCK_EXTERNAL', true);\nfunction wp_new_blog_notification() {{}}\n",
            php_str(host),
            php_str(uri)
        )
    };
    if subdomain {
        for table in ["wp_options", "wp_posts", "wp_postmeta", "wp_comments"] {
            let columns: &[&str] = match table {
                "wp_options" => &["option_value"],
                "wp_posts" => &["post_content", "guid"],
                "wp_postmeta" => &["meta_value"],
                _ => &["comment_author_url", "comment_content"],
            };
            for c in columns {
                f.db.sql_db(
                    &f.site.db_name,
                    &format!(
                        "UPDATE {table} SET {c} = REPLACE({c}, '127.0.0.1:{port}', '{domain}')"
                    ),
                );
            }
        }
    }
    // 1. The network's tables, as Tools > Network Setup makes them.
    let text = std::fs::read_to_string(&wp).unwrap();
    let text = text.replace(
        "if ( ! defined( 'ABSPATH' ) )",
        "define( 'WP_ALLOW_MULTISITE', true );\nif ( ! defined( 'ABSPATH' ) )",
    );
    std::fs::write(&wp, &text).unwrap();
    php(
        scripts.path(),
        "network.php",
        &format!(
            "{}define('WP_INSTALLING_NETWORK', true);\nrequire {load};\nrequire_once ABSPATH . 'wp-admin/includes/upgrade.php';\nrequire_once ABSPATH . 'wp-admin/includes/network.php';\nglobal $wpdb;\nforeach ($wpdb->tables('ms_global') as $table => $prefixed) {{ $wpdb->$table = $prefixed; }}\ninstall_network();\n$r = populate_network(1, {d}, 'admin@example.com', 'Test Network', '/', {sub});\nif (is_wp_error($r) && $r->get_error_code() !== 'no_wildcard_dns') {{ fwrite(STDERR, $r->get_error_message()); exit(1); }}\necho \"done\\n\";\n",
            head(&domain, "/"),
            d = php_str(&domain),
            sub = if subdomain { "true" } else { "false" },
        ),
    );
    // WordPress strips the port from a network's domain: written back.
    f.db.sql_db(
        &f.site.db_name,
        &format!(
            "UPDATE wp_site SET domain = '{domain}'; UPDATE wp_blogs SET domain = '{domain}' WHERE blog_id = 1;
             UPDATE wp_sitemeta SET meta_value = 'http://{domain}/' WHERE meta_key = 'siteurl';"
        ),
    );
    // 2. wp-config.php as the Network Setup screen says.
    let text = text.replace(
        "if ( ! defined( 'ABSPATH' ) )",
        &format!(
            "define( 'MULTISITE', true );\ndefine( 'SUBDOMAIN_INSTALL', {} );\ndefine( 'DOMAIN_CURRENT_SITE', '{domain}' );\ndefine( 'PATH_CURRENT_SITE', '/' );\ndefine( 'SITE_ID_CURRENT_SITE', 1 );\ndefine( 'BLOG_ID_CURRENT_SITE', 1 );\nif ( ! defined( 'ABSPATH' ) )",
            if subdomain { "true" } else { "false" }
        ),
    );
    std::fs::write(&wp, &text).unwrap();
    // 3. The second site, with a post linking to itself and to the main site, and a
    // serialized option holding its address.
    let (host2, path2) = &second;
    let url2 = format!("http://{host2}{}", path2.trim_end_matches('/'));
    let out = php(
        scripts.path(),
        "second.php",
        &format!(
            "{}require {load};\n$id = wp_insert_site(array('domain' => {h}, 'path' => {p}, 'title' => 'Second Site', 'user_id' => 1));\nif (is_wp_error($id)) {{ fwrite(STDERR, $id->get_error_message()); exit(1); }}\nglobal $wpdb;\n$wpdb->update($wpdb->blogs, array('domain' => {h}), array('blog_id' => $id));\nswitch_to_blog($id);\nupdate_option('home', {u});\nupdate_option('siteurl', {u});\nupdate_option('wpb_serialized', array('url' => {u} . '/landing', 'main' => 'http://{domain}/'));\n$post = wp_insert_post(array('post_title' => 'Post on the second site', 'post_content' => 'See <a href=\"' . {u} . '/?p=1\">this</a> and <a href=\"http://{domain}/\">the main site</a>.', 'post_status' => 'publish'));\nrestore_current_blog();\n$shop = wp_insert_site(array('domain' => 'shop.mapped.test', 'path' => '/', 'title' => 'Shop', 'user_id' => 1));\nif (is_wp_error($shop)) {{ fwrite(STDERR, $shop->get_error_message()); exit(1); }}\n$wpdb->update($wpdb->blogs, array('domain' => {m}), array('blog_id' => $shop));\nswitch_to_blog($shop);\nupdate_option('home', 'http://' . {m});\nupdate_option('siteurl', 'http://' . {m});\nrestore_current_blog();\necho \"post $post\\n\";\necho \"done\\n\";\n",
            head(&domain, "/"),
            h = php_str(host2),
            p = php_str(path2),
            u = php_str(&url2),
            m = php_str(&mapped),
        ),
    );
    let second_post = out
        .lines()
        .find_map(|l| l.strip_prefix("post "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    Network {
        f,
        subdomain,
        domain,
        second,
        second_post,
        mapped,
        _scripts: scripts,
    }
}

/// GET `path` from 127.0.0.1:`port` with `Host: host`: status, head and body.
fn get(port: u16, host: &str, path: &str) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// `body` without the posts' guids the REST API (`"guid":{"rendered":"..."}`) and the feed
/// (`<guid ...>...</guid>`) show.
fn without_guids(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let json = rest.find("\"guid\":{\"rendered\":\"");
        let xml = rest.find("<guid");
        let (at, end) = match (json, xml) {
            (Some(j), x) if x.is_none_or(|x| j < x) => (j, "\"}"),
            (_, Some(x)) => (x, "</guid>"),
            _ => break,
        };
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match rest.find(end) {
            Some(e) => rest = &rest[e + end.len()..],
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// Every cell of `db` that looks PHP-serialized, given to PHP's `unserialize`: the ones it
/// refuses.
fn unserializable(f: &Fixture, db: &str) -> (usize, Vec<String>) {
    let columns = f.db.sql(&format!(
        "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{db}' AND DATA_TYPE IN ('char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext')"
    ));
    let mut cells = String::new();
    for line in columns.lines() {
        let Some((table, column)) = line.split_once('\t') else {
            continue;
        };
        cells.push_str(&f.db.sql_db(
            db,
            &format!(
                "SELECT HEX(`{column}`) FROM `{table}` WHERE `{column}` REGEXP '^(a|O|s|i|b|d):[0-9]*[:;{{]'"
            ),
        ));
    }
    let mut child = Command::new("php")
        .args(["-r", "$n = 0; while (($l = fgets(STDIN)) !== false) { $v = hex2bin(trim($l)); if ($v === '' || $v === false) continue; $n++; if ($v !== 'b:0;' && @unserialize($v) === false) echo 'BAD ', $v, \"\\n\"; } echo \"checked $n\\n\";"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cells.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let checked = text
        .lines()
        .find_map(|l| l.strip_prefix("checked "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let bad = text
        .lines()
        .filter(|l| l.starts_with("BAD "))
        .map(str::to_string)
        .collect();
    (checked, bad)
}

/// The value of `define( 'NAME', '...' )` in wp-config.php text.
fn defined(wp_config: &str, name: &str) -> String {
    let at = wp_config
        .find(&format!("define( '{name}', "))
        .unwrap_or_else(|| panic!("{name} in {wp_config}"));
    let rest = &wp_config[at + name.len() + 12..];
    let start = rest.find('\'').unwrap() + 1;
    let end = start + rest[start..].find('\'').unwrap();
    rest[start..end].to_string()
}

/// `drill` passes on the network, booting each site at its own address.
fn assert_drill_passes(n: &Network) {
    let tmp = tempfile::Builder::new()
        .prefix("wpb-drill")
        .tempdir()
        .unwrap();
    let out =
        n.f.cmd(&["drill"])
            .env("MYSQL_UNIX_PORT", &n.f.db.socket)
            .env("TMPDIR", tmp.path())
            .output()
            .unwrap();
    let text = said(&out);
    eprintln!("drill -> {:?}\n{text}", out.status);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("PASSED"), "{text}");
    let (host2, path2) = &n.second;
    let posts = n.f.db.sql_db(
        &n.f.site.db_name,
        "SELECT COUNT(*) FROM wp_2_posts WHERE post_type = 'post' AND post_status = 'publish'",
    );
    for want in [
        format!("site {}/: WordPress", n.domain),
        format!("site {host2}{path2}: WordPress"),
        format!(
            "home http://{host2}{}, {} published posts",
            path2.trim_end_matches('/'),
            posts.trim()
        ),
    ] {
        assert!(text.contains(&want), "{want:?} not in:\n{text}");
    }
}

/// Clone the network to `http://HOST:PORT2` and check it as a visitor would; with `map`, its
/// mapped domain moves to `MAP:PORT2` (`--map`), else it stays.
fn clone_and_visit(n: &Network, new_host: &str, map: Option<&str>) {
    let f = &n.f;
    let dir = tempfile::Builder::new()
        .prefix("wpb-clone")
        .tempdir()
        .unwrap();
    let path = dir.path().join("staging");
    let port = crate::util::free_port();
    let new_domain = format!("{new_host}:{port}");
    let url = format!("http://{new_domain}");
    let db = format!("{}_ms", f.site.db_name);
    let new_mapped = map.map(|m| format!("{m}:{port}"));
    let map_args: Vec<String> = match &new_mapped {
        Some(m) => vec!["--map".into(), format!("{}={m}", n.mapped)],
        None => Vec::new(),
    };

    // The dry run names the network's sites and where they go.
    let out = f
        .cmd(&["restore", "--site", "blog", "--dry-run", "--to"])
        .arg(&path)
        .args(["--db-name", &db, "--url", &url])
        .args(&map_args)
        .env("MYSQL_UNIX_PORT", &f.db.socket)
        .output()
        .unwrap();
    let text = said(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let (host2, path2) = &n.second;
    let new2 = if n.subdomain {
        format!("second.{new_domain}/")
    } else {
        format!("{new_domain}/second/")
    };
    let kind = if n.subdomain {
        "subdomain"
    } else {
        "subdirectory"
    };
    for want in [
        format!("a {kind} multisite network"),
        format!("{host2}{path2} -> {new2}"),
        format!("DOMAIN_CURRENT_SITE {new_domain} "),
        format!(
            "{}/ -> {}/",
            n.mapped,
            new_mapped.as_deref().unwrap_or(&n.mapped)
        ),
    ] {
        assert!(text.contains(&want), "{want:?} not in:\n{text}");
    }
    assert!(!path.exists());

    let out = f
        .cmd(&["restore", "--site", "blog", "--to"])
        .arg(&path)
        .args(["--db-name", &db, "--url", &url])
        .args(&map_args)
        .env("MYSQL_UNIX_PORT", &f.db.socket)
        .output()
        .unwrap();
    let text = said(&out);
    eprintln!("restore -> {:?}\n{text}", out.status);
    assert_eq!(out.status.code(), Some(0), "{text}");

    // wp-config.php: the new domain and the clone's own user.
    let wp_config = std::fs::read_to_string(path.join("wp-config.php")).unwrap();
    assert_eq!(defined(&wp_config, "DOMAIN_CURRENT_SITE"), new_domain);
    assert_eq!(defined(&wp_config, "PATH_CURRENT_SITE"), "/");
    assert_eq!(defined(&wp_config, "DB_NAME"), db);
    assert_ne!(defined(&wp_config, "DB_USER"), f.site.db_user);
    // The network's own columns.
    assert_eq!(
        f.db.sql_db(&db, "SELECT domain, path FROM wp_site"),
        format!("{new_domain}\t/\n")
    );
    let (new_host2, new_path2) = new2.split_once('/').unwrap();
    assert_eq!(
        f.db.sql_db(&db, "SELECT domain, path FROM wp_blogs ORDER BY blog_id"),
        format!(
            "{new_domain}\t/\n{new_host2}\t/{new_path2}\n{}\t/\n",
            new_mapped.as_deref().unwrap_or(&n.mapped)
        )
    );
    // The mapped site's own address: moved by --map, else kept.
    let mapped_home = f.db.sql_db(
        &db,
        "SELECT option_value FROM wp_3_options WHERE option_name = 'home'",
    );
    assert_eq!(
        mapped_home.trim(),
        format!("http://{}", new_mapped.as_deref().unwrap_or(&n.mapped))
    );
    // Nothing of the old address in the clone's database (posts' guids aside: they are
    // identities, never rewritten).
    let old = &n.domain;
    let left = f.db.sql_db(
        &db,
        &format!(
            "SELECT CONCAT('wp_options ', option_name) FROM wp_options WHERE option_value LIKE '%{old}%'
             UNION ALL SELECT CONCAT('wp_2_options ', option_name) FROM wp_2_options WHERE option_value LIKE '%{old}%'
             UNION ALL SELECT CONCAT('wp_sitemeta ', meta_key) FROM wp_sitemeta WHERE meta_value LIKE '%{old}%'
             UNION ALL SELECT CONCAT('wp_2_posts ', ID) FROM wp_2_posts WHERE post_content LIKE '%{old}%'
             UNION ALL SELECT CONCAT('wp_posts ', ID) FROM wp_posts WHERE post_content LIKE '%{old}%'"
        ),
    );
    assert_eq!(left, "", "the old address is left in the clone's database");
    let (checked, bad) = unserializable(f, &db);
    assert!(checked > 5, "only {checked} serialized cells");
    assert!(bad.is_empty(), "PHP cannot unserialize: {bad:?}");
    // Uploads of site 2 live under uploads/sites/2, named by number: nothing to rename.

    // A visitor at the clone's address.
    let _php = serve_dir(&path, port);
    let first_post =
        f.db.sql_db(
            &db,
            "SELECT ID FROM wp_posts WHERE post_title = 'First post about backups'",
        )
        .trim()
        .to_string();
    let mut sites = vec![
        (
            new_domain.clone(),
            "/".to_string(),
            first_post,
            "First post about backups",
        ),
        (
            new_host2.to_string(),
            format!("/{new_path2}"),
            n.second_post.to_string(),
            "Post on the second site",
        ),
    ];
    if let Some(m) = &new_mapped {
        sites.push((m.clone(), "/".into(), "1".into(), "Hello world!"));
    }
    for (host, base, post, title) in &sites {
        for (what, p) in [
            ("front page", base.clone()),
            ("a post", format!("{base}?p={post}")),
            ("the REST API", format!("{base}?rest_route=/wp/v2/posts")),
            ("the feed", format!("{base}?feed=rss2")),
        ] {
            // A redirect stays at the clone (the main site's pretty permalinks): followed.
            let (mut status, mut head, mut body) = get(port, host, &p);
            for _ in 0..3 {
                if !(300..400).contains(&status) {
                    break;
                }
                let to = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Location: "))
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                let own = format!("http://{host}/");
                let Some(rest) = to.strip_prefix(&own[..own.len() - 1]) else {
                    panic!("{what} of {host}{p} sends the visitor away:\n{head}");
                };
                (status, head, body) = get(port, host, rest);
            }
            assert_eq!(status, 200, "{what} of {host}{p}: {head}\n{body}");
            // Posts' guids are identities, never links, and never rewritten (formats.md):
            // the REST API and the feed show them as they are.
            let body = without_guids(&body);
            for o in [old.clone(), old.replace(':', "%3A")] {
                assert!(
                    !head.contains(&o) && !body.contains(&o),
                    "{what} of {host}{p} holds the old address {o}:\n{head}\n{body}"
                );
            }
            if what != "front page" {
                assert!(
                    body.contains(title) || body.contains(&title.replace(' ', "\\u00a0")),
                    "{what} of {host}{p} lacks {title:?}:\n{body}"
                );
            }
        }
    }
}

#[test]
fn a_subdirectory_network_clones_to_a_new_address_and_drills() {
    let n = network("ms-dir", false);
    backup(&n.f);
    assert_drill_passes(&n);
    clone_and_visit(&n, "127.0.0.1", None);
}

#[test]
fn a_subdomain_network_clones_to_a_new_base_domain_and_drills() {
    let n = network("ms-sub", true);
    backup(&n.f);
    assert_drill_passes(&n);
    clone_and_visit(&n, "stg.local", Some("shop.stg.test"));

    // Clones that cannot be made right are refused before anything changes.
    let f = &n.f;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x");
    let db = format!("{}_no", f.site.db_name);
    for (url, map, why) in [
        ("http://stg.local:8080/sub", None, "without a path"),
        ("http://127.0.0.1:8080", None, "no subdomains"),
        ("http://localhost:8080", None, "no subdomains"),
        (
            "http://stg.local:8080",
            Some("shop.example=shop.stg.local"),
            "not a domain of this network",
        ),
    ] {
        let mut cmd = f.cmd(&["restore", "--site", "blog", "--to"]);
        cmd.arg(&path)
            .args(["--db-name", &db, "--url", url])
            .env("MYSQL_UNIX_PORT", &f.db.socket);
        if let Some(m) = map {
            cmd.args(["--map", m]);
        }
        let out = cmd.output().unwrap();
        let text = said(&out);
        assert_eq!(out.status.code(), Some(2), "{url} {map:?}: {text}");
        assert!(
            text.contains(why) && text.contains("nothing was changed"),
            "{url}: {text}"
        );
        assert!(!path.exists(), "{url}");
        let dbs = f.db.sql(&format!("SHOW DATABASES LIKE '{db}'"));
        assert_eq!(dbs.trim(), "", "{url}");
    }
}
