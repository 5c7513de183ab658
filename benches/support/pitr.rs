//! `--pitr` (issue 27's targets): point-in-time recovery on the benchmark's WordPress site, its
//! MariaDB started with `--log-bin --binlog-format=ROW --server-id=1`, stored on s3s-fs.
//!
//! The nightly `backup`, then a generated day of orders (`shop_order` posts with five meta rows
//! each, one transaction per order, inserted through SQL in batches with `wpbackup binlog` after
//! each batch, as the timer would), a second's pause, the time TIME, and one more order after
//! it (the loss). Then, run by run and in alternating order, from a lost shop (database dropped,
//! directory deleted):
//! - `restore --at TIME` (wpbackup: the nightly point, then the replay from the bucket);
//! - the baseline: `restore` of the nightly point alone, then `mariadb-binlog --database=DB
//!   --start-position=P --stop-datetime=TIME` of the server's own binary log files piped into
//!   `mariadb` by hand (P: the server's position right after the backup, before the day).
//!
//! Both must end with exactly the day's orders. Then `wpbackup binlog` runs with nothing new:
//! wall time, and the requests the S3 server saw (s3s-fs's debug log names each operation).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::mariadb::MariaDb;
use crate::util::s3::S3Server;
use crate::util::wordpress::WordPress;
use crate::{BUCKET, KEY, SECRET, Sample, measure, median, mib, write_home};

/// Orders a batch: the day is shipped every this many orders.
const BATCHES: usize = 24;

/// A day of `orders` orders, then `runs` runs of each way; the markdown section.
pub fn run(orders: usize, runs: usize) -> String {
    eprintln!("== point-in-time recovery: a day of {orders} orders, {runs} run(s)");
    let db = MariaDb::with_binlog();
    let site = WordPress::install(&db, "bench");
    // s3s-fs names each request's operation at debug level: the requests are counted from it.
    // SAFETY: set before any thread of the benchmark is started; removed right after.
    unsafe { std::env::set_var("RUST_LOG", "s3s::ops=debug") };
    let s3 = S3Server::start(KEY, SECRET);
    unsafe { std::env::remove_var("RUST_LOG") };
    s3.create_bucket(BUCKET);
    let s3_log = s3.root.parent().expect("s3 dir").join("s3s-fs.log");
    let work = tempfile::Builder::new()
        .prefix("wpb-pitr")
        .tempdir()
        .expect("work dir");
    let home = work.path().join("home");
    std::fs::create_dir(&home).expect("home");
    write_home(&home, &site, &s3);
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join("config.json")).expect("config"))
            .expect("config");
    config["binlog"] = serde_json::json!({});
    std::fs::write(home.join("config.json"), config.to_string()).expect("config");
    let env = home.join(".env");
    let mut text = std::fs::read_to_string(&env).expect(".env");
    text.push_str(&format!("MYSQL_UNIX_PORT={}\n", db.socket.display()));
    std::fs::write(&env, text).expect(".env");
    let defaults = work.path().join("root.cnf");
    std::fs::write(
        &defaults,
        format!("[client]\nuser=root\nsocket={}\n", db.socket.display()),
    )
    .expect("defaults");
    let bin = crate::util::bin();
    let wpb = format!("{} --home {}", bin.display(), home.display());
    let ok = |args: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{wpb} {args}"))
            .output()
            .expect("wpbackup");
        assert!(
            out.status.success(),
            "wpbackup {args}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };

    ok("-q backup");
    let status = db.sql("SHOW MASTER STATUS");
    let mut cols = status.split('\t');
    let (first_file, position) = (
        cols.next().expect("binlog file").to_string(),
        cols.next().expect("binlog position").trim().to_string(),
    );

    // The day: one transaction per order, in batches, shipped after each batch.
    let t = Instant::now();
    let mut ship_walls = Vec::new();
    let per_batch = orders.div_ceil(BATCHES);
    let mut done = 0;
    while done < orders {
        let n = per_batch.min(orders - done);
        let sql = orders_sql(done, n);
        let batch = work.path().join("batch.sql");
        std::fs::write(&batch, sql).expect("batch");
        feed(&defaults, &site.db_name, &batch);
        done += n;
        let s = Instant::now();
        ok("-q binlog");
        ship_walls.push(s.elapsed().as_secs_f64());
    }
    let day_secs = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(1500));
    let at = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
    std::thread::sleep(Duration::from_millis(1500));
    let loss = work.path().join("loss.sql");
    std::fs::write(&loss, orders_sql(orders, 1)).expect("loss");
    feed(&defaults, &site.db_name, &loss);
    ok("-q binlog");
    eprintln!(
        "   {orders} orders in {day_secs:.1} s, shipped {} times; TIME = {at}",
        ship_walls.len()
    );

    // The server's closed binary log files from the backup's on: what the baseline replays.
    let data = db.socket.parent().expect("db dir").join("data");
    let mut files: Vec<String> = db
        .sql("SHOW BINARY LOGS")
        .lines()
        .filter_map(|l| l.split('\t').next().map(str::to_string))
        .filter(|f| *f >= first_file)
        .collect();
    files.pop(); // the one the server writes to now
    let raw_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(data.join(f)).map_or(0, |m| m.len()))
        .sum();
    let shipped: Vec<(String, u64)> = s3
        .objects(BUCKET)
        .into_iter()
        .filter(|(k, _)| k.starts_with("binlog/") && !k.ends_with(".minisig"))
        .collect();
    let shipped_bytes: u64 = shipped.iter().map(|(_, b)| b).sum();
    let paths: Vec<String> = files
        .iter()
        .map(|f| data.join(f).display().to_string())
        .collect();
    let dbn = &site.db_name;
    let sp = site.path.display();
    let lose = format!(
        "mariadb --defaults-extra-file={} -e 'DROP DATABASE IF EXISTS `{dbn}`' && rm -rf {sp}",
        defaults.display()
    );
    let ways: [(&str, String); 3] = [
        (
            "wpbackup restore --at TIME",
            format!("{wpb} -q restore --site bench --at '{at}' --yes >/dev/null"),
        ),
        (
            "wpbackup restore (the nightly point alone)",
            format!("{wpb} -q restore --site bench --yes >/dev/null"),
        ),
        (
            "mariadb-binlog --database --start-position --stop-datetime | mariadb, by hand",
            format!(
                "TZ=UTC mariadb-binlog --no-defaults --database={dbn} --start-position={position} \
                 --stop-datetime='{at}' {} | mariadb --defaults-extra-file={} {dbn}",
                paths.join(" "),
                defaults.display()
            ),
        ),
    ];
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).expect("tmp");
    let count = || {
        db.sql_db(
            dbn,
            "SELECT COUNT(*) FROM wp_posts WHERE post_type = 'shop_order'",
        )
        .trim()
        .parse::<usize>()
        .expect("a count")
    };
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); 3];
    for r in 0..runs {
        // Odd runs take the baseline first.
        let order: [&[usize]; 2] = if r % 2 == 0 {
            [&[0], &[1, 2]]
        } else {
            [&[1, 2], &[0]]
        };
        for group in order {
            crate::shell(&lose, r, work.path(), true);
            for &i in group {
                eprintln!("   run {}: {}", r + 1, ways[i].0);
                let s = measure(&ways[i].1, r, &tmp);
                assert!(s.ok, "{} failed", ways[i].0);
                samples[i].push(s);
            }
            assert_eq!(count(), orders, "the orders after {}", ways[group[0]].0);
        }
    }

    // Shipping with nothing new: the first run after the restores ships what they wrote.
    ok("-q binlog");
    let mut noop = Vec::new();
    let mut requests: Vec<BTreeMap<String, usize>> = Vec::new();
    for _ in 0..runs.max(5) {
        let before = std::fs::metadata(&s3_log).map_or(0, |m| m.len());
        let s = Instant::now();
        let said = ok("--json binlog");
        noop.push(s.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_millis(300)); // the server's log written out
        requests.push(operations(&s3_log, before));
        let said: serde_json::Value = serde_json::from_slice(&said).expect("json");
        let bytes: u64 = said["shipped"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f["bytes"].as_u64()).sum())
            .unwrap_or(0);
        eprintln!(
            "   nothing new: {:.3} s, {:?}, {bytes} bytes shipped",
            noop.last().copied().unwrap_or(0.0),
            requests.last()
        );
    }
    report(Report {
        orders,
        runs,
        at: &at,
        files: files.len(),
        raw_bytes,
        shipped: shipped.len(),
        shipped_bytes,
        ship_walls: &ship_walls,
        ways: &ways.map(|(n, _)| n),
        samples: &samples,
        noop: &noop,
        requests: &requests,
    })
}

/// What the section reports.
struct Report<'a> {
    orders: usize,
    runs: usize,
    at: &'a str,
    files: usize,
    raw_bytes: u64,
    shipped: usize,
    shipped_bytes: u64,
    ship_walls: &'a [f64],
    ways: &'a [&'a str; 3],
    samples: &'a [Vec<Sample>],
    noop: &'a [f64],
    requests: &'a [BTreeMap<String, usize>],
}

fn report(r: Report) -> String {
    let wall = |i: usize| median(&r.samples[i], |s| s.wall);
    let cpu = |i: usize| median(&r.samples[i], |s| s.cpu);
    let rss = |i: usize| mib(median(&r.samples[i], |s| s.peak_rss as f64) as u64);
    let base = wall(1) + wall(2);
    let mut md = format!(
        "### Issue 27: restore to a second after a day of {} orders ({} run(s), medians; release build)\n\n",
        r.orders, r.runs
    );
    let _ = writeln!(
        md,
        "The day: {} binary log files from the backup's position on, {:.1} MiB as the server wrote them, \
         shipped as {} objects of {:.1} MiB (zstd); a shipping run after each {} orders took a median \
         {:.2} s. TIME = {} UTC.\n",
        r.files,
        mib(r.raw_bytes),
        r.shipped,
        mib(r.shipped_bytes),
        r.orders.div_ceil(BATCHES),
        median_of(r.ship_walls),
        r.at
    );
    md += "| way | wall | CPU | peak RSS | x baseline |\n|---|---|---|---|---|\n";
    for i in 0..3 {
        let _ = writeln!(
            md,
            "| {} | {:.2} s | {:.2} s | {:.0} MiB | {} |",
            r.ways[i].replace('|', "\\|"),
            wall(i),
            cpu(i),
            rss(i),
            if i == 0 {
                format!("**{:.2}x**", wall(0) / base)
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(
        md,
        "| baseline: the nightly point, then the replay by hand | {base:.2} s | {:.2} s | | 1.00x |\n",
        cpu(1) + cpu(2)
    );
    let runs: Vec<String> = (0..r.samples[0].len())
        .map(|k| {
            let b = r.samples[1][k].wall + r.samples[2][k].wall;
            format!(
                "{:.2}x ({:.2} / {b:.2})",
                r.samples[0][k].wall / b,
                r.samples[0][k].wall
            )
        })
        .collect();
    let _ = writeln!(
        md,
        "Each run (`restore --at` / baseline, seconds): {}. Target at most 1.5x: **{}**. Both ways \
         ended with exactly the day's {} orders (the one after TIME left out), checked after every run.\n",
        runs.join("; "),
        if wall(0) / base <= 1.5 {
            "met"
        } else {
            "not met"
        },
        r.orders
    );
    let mut ops: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for run in r.requests {
        for (op, n) in run {
            ops.entry(op.clone()).or_default().push(*n);
        }
    }
    let total: Vec<usize> = r.requests.iter().map(|m| m.values().sum()).collect();
    let ops: Vec<String> = ops.iter().map(|(op, ns)| format!("{op} {ns:?}")).collect();
    let _ = writeln!(
        md,
        "A shipping run with nothing new (`wpbackup binlog`, {} runs; one storage): wall {} s, median \
         **{:.3} s** (target under a second: **{}**); requests the S3 server saw per run: {:?} \
         (by operation, run by run: {}).\n",
        r.noop.len(),
        r.noop
            .iter()
            .map(|w| format!("{w:.3}"))
            .collect::<Vec<_>>()
            .join(", "),
        median_of(r.noop),
        if median_of(r.noop) < 1.0 {
            "met"
        } else {
            "not met"
        },
        total,
        ops.join(", ")
    );
    md
}

fn median_of(v: &[f64]) -> f64 {
    let samples: Vec<Sample> = v
        .iter()
        .map(|w| Sample {
            wall: *w,
            ..Sample::default()
        })
        .collect();
    median(&samples, |s| s.wall)
}

/// The operations s3s-fs logged after byte `from` of its log, counted by name.
fn operations(log: &Path, from: u64) -> BTreeMap<String, usize> {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text[(from as usize).min(text.len())..]).into_owned();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        // `... DEBUG s3s::ops: resolved route, op: PutObject, s3_path: ...`
        if let Some((_, rest)) = line.split_once("resolved route, op: ") {
            let op: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            *out.entry(op).or_insert(0) += 1;
        }
    }
    out
}

/// `n` orders from order number `first` on, one transaction each: a `shop_order` post and its
/// meta as WooCommerce stores them.
fn orders_sql(first: usize, n: usize) -> String {
    let mut sql = String::with_capacity(n * 900);
    for i in first..first + n {
        let total = format!("{}.{:02}", 10 + i % 490, i % 100);
        let _ = writeln!(
            sql,
            "BEGIN;\n\
             INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, \
             post_excerpt, post_status, comment_status, ping_status, post_password, post_name, to_ping, \
             pinged, post_modified, post_modified_gmt, post_content_filtered, post_parent, guid, \
             menu_order, post_type, post_mime_type, comment_count) VALUES (1, NOW(), UTC_TIMESTAMP(), \
             '', 'Order {i}', '', 'wc-processing', 'closed', 'closed', 'wc_order_{i:08}', 'order-{i}', \
             '', '', NOW(), UTC_TIMESTAMP(), '', 0, '', 0, 'shop_order', '', 1);\n\
             SET @o = LAST_INSERT_ID();\n\
             INSERT INTO wp_postmeta (post_id, meta_key, meta_value) VALUES \
             (@o, '_order_total', '{total}'), (@o, '_billing_email', 'customer{i}@example.com'), \
             (@o, '_order_key', 'wc_order_{i:08}'), (@o, '_customer_user', '{}'), \
             (@o, '_payment_method', 'stripe');\n\
             COMMIT;",
            i % 1000
        );
    }
    sql
}

/// Run the SQL file into `db` as root.
fn feed(defaults: &Path, db: &str, file: &Path) {
    let input = std::fs::File::open(file).expect("sql file");
    let status = Command::new("mariadb")
        .arg(format!("--defaults-extra-file={}", defaults.display()))
        .arg(db)
        .stdin(input)
        .status()
        .expect("mariadb");
    assert!(status.success(), "feeding {}", file.display());
}
