//! The URL rewrite's memory at scale (issue 12 item 5): `restore --to --db-name --url` of a
//! site whose `wp_posts` holds N rows that each name the old address, side by side with the
//! same restore without `--url` (the import alone), for each N asked.
//!
//! ```sh
//! scripts/bench.sh --rewrite-rows 100000,1000000
//! ```
//!
//! Peak RSS is the whole process group's (wpbackup and its `mariadb` clients), as in the
//! pipeline benchmark; the MariaDB server's own memory is not counted for either way. The
//! rewrite streams in bounded batches, so its peak should not grow with N.

use std::path::Path;
use std::process::Command;

use super::util::mariadb::MariaDb;
use super::util::wordpress::WordPress;
use super::{Sample, measure, mib};

/// One N: its dump size and the two ways' samples.
struct Measured {
    rows: u64,
    dump_bytes: u64,
    import_only: Sample,
    with_url: Sample,
    rewritten: u64,
}

/// Run the measurement for every N in `rows` and return the markdown table.
pub fn run(rows: &[u64]) -> String {
    let results: Vec<Measured> = rows.iter().map(|n| measure_rows(*n)).collect();
    let mut md = String::from(
        "### The URL rewrite's memory: `restore --to --db-name --url` against the same restore without `--url`\n\n\
         Each added row of `wp_posts` names the old address three times (two links in `post_content`, and `guid`, which is kept as WordPress recommends). Peak RSS is the whole process group (wpbackup and its `mariadb` clients), sampled every 20 ms; the server's memory is not counted.\n\n\
         | rows in wp_posts | dump | way | wall | peak RSS | values rewritten |\n|---|---|---|---|---|---|\n",
    );
    for m in &results {
        for (way, s, n) in [
            ("import only (no --url)", &m.import_only, String::from("-")),
            ("import + URL rewrite", &m.with_url, m.rewritten.to_string()),
        ] {
            md += &format!(
                "| {} | {:.0} MiB | {way}{} | {:.1} s | {:.0} MiB | {n} |\n",
                m.rows,
                mib(m.dump_bytes),
                if s.ok { "" } else { " (FAILED)" },
                s.wall,
                mib(s.peak_rss),
            );
        }
    }
    if let (Some(first), Some(last)) = (results.first(), results.last()) {
        md += &format!(
            "\nPeak RSS with the rewrite: {:.0} MiB at {} rows, {:.0} MiB at {} rows ({:.2}x for {:.0}x the rows).\n",
            mib(first.with_url.peak_rss),
            first.rows,
            mib(last.with_url.peak_rss),
            last.rows,
            last.with_url.peak_rss as f64 / first.with_url.peak_rss.max(1) as f64,
            last.rows as f64 / first.rows.max(1) as f64,
        );
    }
    md
}

fn measure_rows(rows: u64) -> Measured {
    eprintln!("== {rows} rows: building the site");
    let db = MariaDb::start();
    let site = WordPress::install(&db, "rewrite");
    fill_posts(&db, &site, rows);
    let work = tempfile::Builder::new()
        .prefix("wpb-bench-rewrite")
        .tempdir()
        .expect("work dir");
    let home = work.path().join("home");
    std::fs::create_dir(&home).expect("home");
    let config = serde_json::json!({
        "server_id": "bench-server",
        "sites": [ { "name": "bench", "path": site.path } ],
        "storage": [ { "name": "disk", "type": "local", "priority": 1, "path": work.path().join("store") } ]
    });
    std::fs::write(home.join("config.json"), config.to_string()).expect("config");
    let bin = Path::new(env!("CARGO_BIN_EXE_wpbackup"));
    let status = Command::new(bin)
        .arg("--home")
        .arg(&home)
        .args(["-q", "backup"])
        .status()
        .expect("backup");
    assert!(status.success(), "backup failed");
    let dump_bytes = dump_size(&db, &site.db_name);
    let restore = |to: &str, db_name: &str, url: &str| {
        let cmd = format!(
            "MYSQL_UNIX_PORT={} {} --home {} restore --site bench --to {} --db-name {db_name} {url} --yes --json > {}/{to}.json",
            db.socket.display(),
            bin.display(),
            home.display(),
            work.path().join(to).display(),
            work.path().display(),
        );
        let tmp = work.path().join(format!("tmp-{to}"));
        std::fs::create_dir(&tmp).expect("tmp");
        eprintln!("   restore {to}");
        measure(&cmd, 0, &tmp)
    };
    let import_only = restore("plain", "bench_plain", "");
    let with_url = restore("moved", "bench_moved", "--url http://moved.example.test");
    let rewritten = replaced_values(&work.path().join("moved.json"));
    Measured {
        rows,
        dump_bytes,
        import_only,
        with_url,
        rewritten,
    }
}

/// N posts, each linking to the site's own address (a few hundred bytes each).
fn fill_posts(db: &MariaDb, site: &WordPress, rows: u64) {
    let url = &site.url;
    db.sql_db(
        &site.db_name,
        &format!(
            "INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, \
             post_excerpt, post_status, post_name, to_ping, pinged, post_modified, post_modified_gmt, \
             post_content_filtered, guid, post_type) \
             SELECT 1, NOW(), NOW(), CONCAT('<p>Post ', seq, ' links to <a href=\"{url}/?p=', seq, \
             '\">itself</a> and to <a href=\"{url}/about/\">about</a>; ', REPEAT('lorem ipsum ', 12), '</p>'), \
             CONCAT('Post ', seq), '', 'publish', CONCAT('post-', seq), '', '', NOW(), NOW(), '', \
             CONCAT('{url}/?p=', seq), 'post' FROM seq_1_to_{rows}"
        ),
    );
}

fn dump_size(db: &MariaDb, name: &str) -> u64 {
    let out = Command::new("mariadb-dump")
        .arg("--no-defaults")
        .arg(format!("--socket={}", db.socket.display()))
        .args(["-uroot", "--single-transaction", "--quick", name])
        .output()
        .expect("dump");
    out.stdout.len() as u64
}

/// `replaced_values` of restore's `--json` summary (0 when it is missing).
fn replaced_values(json: &Path) -> u64 {
    let text = std::fs::read_to_string(json).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v.pointer("/replaced_values")
        .or_else(|| v.pointer("/0/replaced_values"))
        .and_then(|n| n.as_u64())
        .unwrap_or(0)
}
