//! The benchmark of issue 6: `wpbackup backup` and `restore` against the ways people would back
//! up a WordPress site without it, timed side by side in one run on the same workload.
//!
//! ```sh
//! scripts/bench.sh                       # small workload, 3 runs (a few minutes)
//! scripts/bench.sh --size full --runs 3  # 800 MiB media, 200 MiB code, 100,000 posts
//! scripts/bench.sh --size full --nights 30  # differential backups against restic (issue 13)
//! ```
//!
//! The workload is the test harness's real WordPress site (throwaway MariaDB, Debian's
//! WordPress) grown deterministically with media-like incompressible files, plugin-like code
//! files and posts with comments and meta, backed up to a local S3 server (s3s-fs). Each way
//! runs as a process group; its peak memory is the largest sum of the RSS of every process in
//! the group (sampled every 20 ms from /proc), its CPU time the user+system time of the group's
//! processes (getrusage of reaped children), its temporary disk the peak size of its own
//! TMPDIR, its upload the bytes that reached the bucket. Caches are warm (a first untimed read
//! of the site); the database server's own CPU is not counted for any way.
//!
//! Runs only under `cargo bench` (which passes `--bench`): `cargo test --all-targets` builds it
//! and returns at once. `cargo bench --bench pipeline -- --help` lists the flags ([`Args`]).

// The test harness, of which the benchmark uses only the MariaDB and S3 servers.
#[allow(unused_imports, dead_code)]
#[path = "../tests/util/mod.rs"]
mod util;

// `--rewrite-rows N,...`: the URL rewrite's memory at scale (issue 12 item 5).
#[path = "support/rewrite.rs"]
mod rewrite;

// `--nights N`: N nights of a growing site, differential wpbackup against restic (issue 13).
#[path = "support/nights.rs"]
mod nights;

// `--pitr`: restore to a second after a day of orders, and shipping with nothing new (issue 27).
#[path = "support/pitr.rs"]
mod pitr;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use util::mariadb::MariaDb;
use util::s3::S3Server;
use util::wordpress::{WordPress, noise};

// The paired ratios of the wpbackup ways against their floors (issue 25's targets).
#[path = "support/pairs.rs"]
mod pairs;

// The cost of signing and checking an archive (issue 23).
#[path = "support/signcost.rs"]
mod signcost;

/// The directory floor's and the backup to a directory's names in the table.
const FLOOR_DIR: &str = "floor to a directory: dump & tar | zstd -T0 -3 to a file, synced";
const LOCAL: &str = "wpbackup backup to a local directory (no S3 server)";
/// The same with the binary `WPBACKUP_BENCH_BEFORE` names (an older build), paired with the
/// same floor in the same runs: a change measured before and after under the same load.
const BEFORE_LOCAL: &str =
    "wpbackup backup to a local directory, before the change (WPBACKUP_BENCH_BEFORE)";

const BUCKET: &str = "bench";
const KEY: &str = "bench-access";
const SECRET: &str = "bench-secret-9Qx";

/// Workload sizes.
#[derive(Debug, Clone, Copy)]
struct Size {
    name: &'static str,
    media_mib: u64,
    code_files: u64,
    code_file_kib: u64,
    posts: u64,
}

const SIZES: &[Size] = &[
    Size {
        name: "small",
        media_mib: 96,
        code_files: 2_000,
        code_file_kib: 12,
        posts: 8_000,
    },
    Size {
        name: "full",
        media_mib: 800,
        code_files: 10_000,
        code_file_kib: 20,
        posts: 100_000,
    },
    Size {
        name: "3x",
        media_mib: 2_400,
        code_files: 30_000,
        code_file_kib: 20,
        posts: 300_000,
    },
    Size {
        name: "files100k",
        media_mib: 64,
        code_files: 100_000,
        code_file_kib: 2,
        posts: 8_000,
    },
];

/// One measurement of one way.
#[derive(Debug, Clone, Default)]
struct Sample {
    wall: f64,
    cpu: f64,
    peak_rss: u64,
    tmp_disk: u64,
    uploaded: u64,
    /// CPU seconds the S3 server spent meanwhile (not part of `cpu`).
    server_cpu: f64,
    ok: bool,
}

/// scripts/bench.sh's flags (it passes its own on, after `--bench --out BENCHMARKS.md`).
#[derive(Debug, clap::Parser)]
#[command(
    bin_name = "scripts/bench.sh",
    // scripts/*.sh pass --bench and cargo bench adds its own; the last of a repeated flag wins.
    args_override_self = true,
    about = "wpbackup backup and restore against the floor, the original tool's way, restic and borg, on one workload"
)]
struct Args {
    /// Passed by `cargo bench`; without it (`cargo test --all-targets`) nothing runs.
    #[arg(long, hide = true)]
    bench: bool,
    /// Append the table to this file (scripts/bench.sh: BENCHMARKS.md).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The workload: small, full (800 MiB media, 10,000 code files, 100,000 posts), 3x or
    /// files100k.
    #[arg(long, value_name = "SIZE", default_value = "small", value_parser = size_named)]
    size: Size,
    /// Timed runs of each way (medians); with --nights, runs of the restores [default: 3, with
    /// --nights 1].
    #[arg(long, value_name = "N", value_parser = at_least_one())]
    runs: Option<usize>,
    /// N nights of a growing site: differential wpbackup against restic (issue 13).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    nights: Option<u32>,
    /// With --nights: another config.json "differential" to measure, as JSON.
    #[arg(long, value_name = "JSON", value_parser = json_text, requires = "nights")]
    policy: Option<String>,
    /// Only the URL rewrite's memory, at these numbers of rows (issue 12 item 5).
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    rewrite_rows: Option<Vec<u64>>,
    /// Only the backup ways whose name holds TEXT (the floor always runs).
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// The backups only: no restore runs (their table and the restore's share of the signing
    /// cost are left out).
    #[arg(long)]
    no_restore: bool,
    /// Point-in-time recovery (issue 27): `restore --at` after a day of orders against the
    /// nightly point's restore plus `mariadb-binlog | mariadb` by hand, and a shipping run
    /// with nothing new.
    #[arg(long, conflicts_with_all = ["nights", "rewrite_rows"])]
    pitr: bool,
    /// With --pitr: the orders of the generated day.
    #[arg(long, value_name = "N", default_value_t = 10_000, requires = "pitr", value_parser = at_least_one())]
    orders: usize,
    /// Build the workload, start the servers and wait until stdin closes (profiling by hand).
    #[arg(long)]
    hold: bool,
}

/// `--size`: one of [`SIZES`], by name.
fn size_named(name: &str) -> Result<Size, String> {
    SIZES
        .iter()
        .copied()
        .find(|s| s.name == name)
        .ok_or_else(|| {
            let names: Vec<_> = SIZES.iter().map(|s| s.name).collect();
            format!("one of {}", names.join(", "))
        })
}

/// A count that 0 would make meaningless.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

/// `--policy`: JSON text, checked here rather than when the nights have begun.
fn json_text(text: &str) -> Result<String, String> {
    serde_json::from_str::<serde_json::Value>(text)
        .map(|_| text.to_string())
        .map_err(|e| format!("not JSON: {e}"))
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // built by `cargo test --all-targets`: nothing to do
    }
    let args = <Args as clap::Parser>::parse();
    let out_file = args.out;
    if let Some(rows) = args.rewrite_rows {
        append(&rewrite::run(&rows), out_file.as_deref());
        return;
    }
    if args.pitr {
        append(
            &pitr::run(args.orders, args.runs.unwrap_or(3)),
            out_file.as_deref(),
        );
        return;
    }
    let size = args.size;
    if let Some(n) = args.nights {
        // One restore run each unless --runs says otherwise: the nights are the long part.
        let runs = args.runs.unwrap_or(1);
        append(
            &nights::run(size, n, runs, args.policy.as_deref()),
            out_file.as_deref(),
        );
        return;
    }
    let runs = args.runs.unwrap_or(3);
    let only = args.only;

    eprintln!("== building the {} workload", size.name);
    let t = Instant::now();
    let db = MariaDb::start();
    let site = WordPress::install(&db, "bench");
    grow_site(&site, &db, size);
    let (site_bytes, site_files) = tree_size(&site.path);
    let dump_bytes = {
        let out = dump_cmd(&db, &site.db_name).output().expect("dump");
        out.stdout.len() as u64
    };
    eprintln!(
        "   {} files, {:.0} MiB of files, {:.0} MiB database dump (built in {:.0} s)",
        site_files,
        mib(site_bytes),
        mib(dump_bytes),
        t.elapsed().as_secs_f64()
    );
    let s3 = S3Server::start(KEY, SECRET);
    s3.create_bucket(BUCKET);
    let s3_pid = pid_listening_on(s3.port);
    let work = tempfile::Builder::new()
        .prefix("wpb-bench")
        .tempdir()
        .expect("work dir");
    let home = work.path().join("home");
    std::fs::create_dir(&home).expect("home");
    write_home(&home, &site, &s3);
    // The same backup to a directory: the pipeline's own cost, without an S3 server's.
    let local_home = work.path().join("home-local");
    std::fs::create_dir(&local_home).expect("home");
    write_home(&local_home, &site, &s3);
    let local_store = work.path().join("localstore");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(local_home.join("config.json")).expect("config"))
            .expect("config");
    config["storage"] = serde_json::json!([
        { "name": "disk", "type": "local", "priority": 1, "path": local_store }
    ]);
    std::fs::write(local_home.join("config.json"), config.to_string()).expect("config");
    let before_bin = std::env::var_os("WPBACKUP_BENCH_BEFORE").map(PathBuf::from);
    let before_home = work.path().join("home-before");
    let before_store = work.path().join("beforestore");
    if before_bin.is_some() {
        std::fs::create_dir(&before_home).expect("home");
        write_home(&before_home, &site, &s3);
        config["storage"][0]["path"] = serde_json::json!(before_store);
        std::fs::write(before_home.join("config.json"), config.to_string()).expect("config");
    }
    let floor_store = work.path().join("floorstore");
    std::fs::create_dir(&floor_store).expect("floor store");
    let s3_log = work.path().join("wpbackup-s3.log");
    let defaults = work.path().join("root.cnf");
    std::fs::write(
        &defaults,
        format!("[client]\nuser=root\nsocket={}\n", db.socket.display()),
    )
    .expect("defaults");
    // Warm the page cache: every way then reads the same warm files.
    let _ = Command::new("tar")
        .arg("-cf")
        .arg("/dev/null")
        .arg("-C")
        .arg(&site.path)
        .arg(".")
        .status();

    if args.hold {
        // For profiling by hand: keep the servers up until stdin closes.
        eprintln!(
            "holding: wpbackup --home {} backup   (MariaDB socket {}); close stdin to stop",
            home.display(),
            db.socket.display()
        );
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        return;
    }
    let have = |tool: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool} >/dev/null"))
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let aws = have("aws")
        && Command::new("aws")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
    let restic = have("restic");
    let borg = have("borg");

    let bin = util::bin();
    let dump = format!(
        "mariadb-dump --defaults-extra-file={} --single-transaction --quick --routines --triggers \
         --hex-blob --default-character-set=utf8mb4 --no-tablespaces {}",
        defaults.display(),
        site.db_name
    );
    let sp = site.path.display().to_string();
    let aws_env = format!(
        "AWS_ACCESS_KEY_ID={KEY} AWS_SECRET_ACCESS_KEY={SECRET} AWS_DEFAULT_REGION=us-east-1 \
         AWS_REQUEST_CHECKSUM_CALCULATION=when_required"
    );
    let ep = &s3.endpoint;

    // name, backup command (run with TMPDIR and $N = run number), setup before each run
    let mut ways: Vec<(&'static str, String, Option<String>)> = vec![
        (
            "floor: dump & tar | zstd -T0 -3, to /dev/null",
            format!("{dump} > /dev/null & tar -cf - -C {sp} . | zstd -T0 -3 -q > /dev/null; wait"),
            None,
        ),
        (
            "wpbackup backup",
            // The debug log of the S3 storage says how long the server took to assemble
            // the parts (CompleteMultipartUpload), reported under the table.
            format!(
                "RUST_LOG=error,wpbackup::storage::s3=debug {} --home {} backup --no-sync 2>>{} >/dev/null",
                bin.display(),
                home.display(),
                s3_log.display()
            ),
            None,
        ),
        // Issue 25's directory floor: what a backup to a directory must do at minimum, as
        // wpbackup does it: the dump runs beside the files' tar, lands in TMPDIR and goes into
        // the same tar stream after the files (tar reads `-T -` lazily, so it waits for the
        // dump only once the files are in), one `zstd -3 -T0` stream written to a file, then
        // the file and its directory synced (wpbackup fsyncs its archive and directory too).
        (
            FLOOR_DIR,
            format!(
                "( {dump} > $TMPDIR/database.sql && echo database.sql ) \
                 | tar -cf - -C {sp} . -C $TMPDIR -T - | zstd -T0 -3 -q > {fs}/$N.tar.zst \
                 && test -s $TMPDIR/database.sql && sync {fs}/$N.tar.zst {fs}",
                fs = floor_store.display()
            ),
            None,
        ),
        (
            LOCAL,
            format!(
                "{} --home {} -q backup --no-sync",
                bin.display(),
                local_home.display()
            ),
            None,
        ),
    ];
    if let Some(before) = &before_bin {
        ways.push((
            BEFORE_LOCAL,
            format!(
                "{} --home {} -q backup --no-sync",
                before.display(),
                before_home.display()
            ),
            None,
        ));
    }
    if aws {
        ways.push((
            "original: dump to file, tar|zstd to file, aws s3 cp",
            format!(
                "{dump} > $TMPDIR/db.sql && tar -cf - -C {sp} . -C $TMPDIR db.sql | zstd -T0 -3 -q > $TMPDIR/a.tar.zst \
                 && {aws_env} aws --endpoint-url {ep} s3 cp --only-show-errors $TMPDIR/a.tar.zst s3://{BUCKET}/orig/$N.tar.zst"
            ),
            None,
        ));
        ways.push((
            "streamed: dump to file, tar | zstd | aws s3 cp -",
            format!(
                "{dump} > $TMPDIR/db.sql && tar -cf - -C {sp} . -C $TMPDIR db.sql | zstd -T0 -3 -q \
                 | {aws_env} aws --endpoint-url {ep} s3 cp --only-show-errors - s3://{BUCKET}/stream/$N.tar.zst"
            ),
            None,
        ));
    }
    if restic {
        ways.push((
            "restic: first backup to the S3 server",
            format!(
                "{dump} > $TMPDIR/db.sql && {aws_env} RESTIC_PASSWORD=bench restic -q -r s3:{ep}/{BUCKET}/restic-$N backup {sp} $TMPDIR/db.sql"
            ),
            Some(format!(
                "{aws_env} RESTIC_PASSWORD=bench restic -q -r s3:{ep}/{BUCKET}/restic-$N init"
            )),
        ));
    }
    if borg {
        ways.push((
            "borg: first backup to a local repository",
            format!(
                "{dump} > $TMPDIR/db.sql && BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes borg create {}/borg-$N::a {sp} $TMPDIR/db.sql",
                work.path().display()
            ),
            Some(format!("borg init -e none {}/borg-$N", work.path().display())),
        ));
    }

    if let Some(only) = &only {
        let mut i = 0;
        ways.retain(|(name, _, _)| {
            i += 1;
            i == 1 || name.starts_with("floor") || name.contains(only.as_str())
        });
    }
    let mut results: BTreeMap<usize, Vec<Sample>> = BTreeMap::new();
    for run in 0..runs {
        // Paired runs: each wpbackup way sits next to its floor (the /dev/null floor and the
        // backup to S3, the directory floor and the backup to a directory), and odd runs go
        // through the ways backwards, so each of a pair runs first in half the runs and a
        // change of load hits both.
        let mut order: Vec<usize> = (0..ways.len()).collect();
        if run % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (name, cmd, setup) = &ways[i];
            if let Some(setup) = setup {
                shell(setup, run, work.path(), true);
            }
            if *name == FLOOR_DIR || *name == LOCAL || *name == BEFORE_LOCAL {
                // Only the last archive of each is kept (disk; and the sign cost reads it);
                // the removal is flushed before the clock starts.
                let store = match *name {
                    FLOOR_DIR => &floor_store,
                    BEFORE_LOCAL => &before_store,
                    _ => &local_store,
                };
                let _ = std::fs::remove_dir_all(store);
                std::fs::create_dir(store).expect("store");
                let _ = Command::new("sync").status();
            }
            let before = bucket_bytes(&s3, work.path());
            let server_before = process_cpu(s3_pid);
            let tmp = work.path().join(format!("tmp-{i}-{run}"));
            std::fs::create_dir(&tmp).expect("tmp");
            let mut s = measure(cmd, run, &tmp);
            s.uploaded = bucket_bytes(&s3, work.path()).saturating_sub(before);
            s.server_cpu = process_cpu(s3_pid) - server_before;
            let _ = std::fs::remove_dir_all(&tmp);
            eprintln!(
                "   run {} {:<52} {:>7.2} s  cpu {:>7.2} s (+ server {:>5.2} s)  rss {:>6.0} MiB  tmp {:>6.0} MiB  up {:>6.0} MiB{}",
                run + 1,
                name,
                s.wall,
                s.cpu,
                s.server_cpu,
                mib(s.peak_rss),
                mib(s.tmp_disk),
                mib(s.uploaded),
                if s.ok { "" } else { "  FAILED" }
            );
            results.entry(i).or_default().push(s);
        }
    }

    // The way back: wpbackup restore against download | zstd -d | tar -x; mariadb < dump.
    let mut restore_rows = Vec::new();
    if !args.no_restore {
        let key = newest_key(&s3);
        let obj = s3.object_path(BUCKET, &key);
        let mut floor = Vec::new();
        let mut ours = Vec::new();
        let mut restored = Vec::new();
        for run in 0..runs {
            let out = work.path().join(format!("floor-restore-{run}"));
            std::fs::create_dir(&out).expect("restore dir");
            let db_name = format!("floor_{run}");
            db.sql(&format!("CREATE DATABASE {db_name}"));
            let fetch = if aws {
                format!(
                    "{aws_env} aws --endpoint-url {ep} s3 cp --only-show-errors s3://{BUCKET}/{key} -"
                )
            } else {
                format!("cat {}", obj.display())
            };
            let cmd = format!(
                "{fetch} | zstd -d -q | tar -x -C {o} && mariadb --defaults-extra-file={d} {db_name} < {o}/database.sql",
                o = out.display(),
                d = defaults.display()
            );
            let tmp = work.path().join(format!("tmp-rf-{run}"));
            std::fs::create_dir(&tmp).expect("tmp");
            let b = process_cpu(s3_pid);
            let mut m = measure(&cmd, run, &tmp);
            m.server_cpu = process_cpu(s3_pid) - b;
            floor.push(m);
            // Restored trees stay until every run is done: ext4 avoids reusing inodes freed in
            // the last minute or more, and a way run right after 100,000 files were deleted
            // spends most of its time in the kernel scanning past them (seen: 6 s -> 38 s).
            restored.push(out);
            let to = work.path().join(format!("our-restore-{run}"));
            let cmd = format!(
                "MYSQL_UNIX_PORT={} {} --home {} -q restore --site bench --to {} --db-name ours_{run} --yes",
                db.socket.display(),
                bin.display(),
                home.display(),
                to.display()
            );
            let tmp = work.path().join(format!("tmp-ro-{run}"));
            std::fs::create_dir(&tmp).expect("tmp");
            let b = process_cpu(s3_pid);
            let mut m = measure(&cmd, run, &tmp);
            m.server_cpu = process_cpu(s3_pid) - b;
            ours.push(m);
            restored.push(to);
            eprintln!(
                "   restore run {}: floor {:.2} s, wpbackup {:.2} s{}",
                run + 1,
                floor.last().map(|s| s.wall).unwrap_or(0.0),
                ours.last().map(|s| s.wall).unwrap_or(0.0),
                if ours.last().map(|s| s.ok).unwrap_or(false) {
                    ""
                } else {
                    "  FAILED"
                }
            );
        }
        for dir in restored {
            let _ = std::fs::remove_dir_all(dir);
        }
        restore_rows.push((
            "floor: download | zstd -d | tar -x; mariadb < database.sql",
            floor,
        ));
        restore_rows.push(("wpbackup restore --to --db-name", ours));
    }

    let mut md = String::new();
    md += &format!(
        "### Workload `{}`: {} files, {:.0} MiB of files, {:.0} MiB database dump; {} run(s), medians; {} cores\n\n",
        size.name,
        site_files,
        mib(site_bytes),
        mib(dump_bytes),
        runs,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    md += "| way (backup) | wall | x floor | CPU | S3 server CPU | peak RSS | temp disk | uploaded |\n|---|---|---|---|---|---|---|---|\n";
    let floor_wall = median(&results[&0], |s| s.wall);
    for (i, (name, _, _)) in ways.iter().enumerate() {
        md += &row(name, &results[&i], floor_wall);
    }
    let completions = completion_secs(&s3_log);
    if !completions.is_empty() {
        let mut v = completions.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        md += &format!(
            "\nOf `wpbackup backup`'s wall time, the S3 server spent a median {:.2} s assembling the uploaded parts (CompleteMultipartUpload, {} run(s)), a serial step at the end that the floor does not have.\n",
            v[v.len() / 2],
            v.len()
        );
    }
    md += &pairs::table(&ways_names(&ways), &results);
    if let [(_, floor), ..] = restore_rows.as_slice() {
        md += "\n| way (restore) | wall | x floor | CPU | S3 server CPU | peak RSS | temp disk | |\n|---|---|---|---|---|---|---|---|\n";
        let rfloor = median(floor, |s| s.wall);
        for (name, samples) in &restore_rows {
            md += &row(name, samples, rfloor);
        }
    }
    if let Some(archive) = newest_file(&local_store, ".tar.zst") {
        let backup_wall = ways
            .iter()
            .position(|(n, _, _)| *n == LOCAL)
            .map(|i| median(&results[&i], |s| s.wall));
        let restore_wall = restore_rows.get(1).map(|(_, r)| median(r, |s| s.wall));
        md += &signcost::table(&archive, backup_wall, restore_wall);
    }
    append(&md, out_file.as_deref());
}

/// The names of the ways, in their order.
fn ways_names(ways: &[(&'static str, String, Option<String>)]) -> Vec<&'static str> {
    ways.iter().map(|(n, _, _)| *n).collect()
}

/// The newest file under `dir` (any depth) whose name ends with `suffix`.
fn newest_file(dir: &Path, suffix: &str) -> Option<PathBuf> {
    let mut found: Option<(std::time::SystemTime, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let Ok(md) = e.path().symlink_metadata() else {
                continue;
            };
            if md.is_dir() {
                stack.push(e.path());
            } else if e.file_name().to_string_lossy().ends_with(suffix)
                && let Ok(t) = md.modified()
                && found.as_ref().is_none_or(|(f, _)| t > *f)
            {
                found = Some((t, e.path()));
            }
        }
    }
    found.map(|(_, p)| p)
}

/// Print `md` and append it to `out` when given.
fn append(md: &str, out: Option<&Path>) {
    println!("\n{md}");
    if let Some(path) = out {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("output file");
        writeln!(f, "{md}").expect("write output");
        eprintln!("appended to {}", path.display());
    }
}

fn row(name: &str, samples: &[Sample], floor: f64) -> String {
    let name = name.replace('|', "\\|");
    let wall = median(samples, |s| s.wall);
    let failed = samples.iter().filter(|s| !s.ok).count();
    format!(
        "| {name}{} | {wall:.2} s | {:.2}x | {:.2} s | {:.2} s | {:.0} MiB | {:.0} MiB | {:.0} MiB |\n",
        if failed > 0 {
            format!(" ({failed} FAILED)")
        } else {
            String::new()
        },
        wall / floor,
        median(samples, |s| s.cpu),
        median(samples, |s| s.server_cpu),
        mib(median(samples, |s| s.peak_rss as f64) as u64),
        mib(median(samples, |s| s.tmp_disk as f64) as u64),
        mib(median(samples, |s| s.uploaded as f64) as u64),
    )
}

fn median(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    let mut v: Vec<f64> = samples.iter().map(f).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 0 => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        n => v[n / 2],
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / 1024.0 / 1024.0
}

fn dump_cmd(db: &MariaDb, name: &str) -> Command {
    let mut cmd = Command::new("mariadb-dump");
    cmd.arg("--no-defaults")
        .arg(format!("--socket={}", db.socket.display()))
        .args(["-uroot", "--single-transaction", "--quick", name]);
    cmd
}

/// Run `cmd` under sh in its own process group and measure it.
fn measure(cmd: &str, run: usize, tmp: &Path) -> Sample {
    let cpu_before = children_cpu();
    let start = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("TMPDIR", tmp)
        .env("N", run.to_string())
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn");
    let pgid = child.id() as i32;
    let done = Arc::new(AtomicBool::new(false));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let peak_tmp = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak_rss, peak_tmp, tmp) = (
            done.clone(),
            peak_rss.clone(),
            peak_tmp.clone(),
            tmp.to_path_buf(),
        );
        std::thread::spawn(move || {
            let mut tick = 0u64;
            while !done.load(Ordering::Relaxed) {
                peak_rss.fetch_max(group_rss(pgid), Ordering::Relaxed);
                if tick.is_multiple_of(5) {
                    peak_tmp.fetch_max(tree_size(&tmp).0, Ordering::Relaxed);
                }
                tick += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let status = child.wait().expect("wait");
    let wall = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    Sample {
        wall,
        cpu: children_cpu() - cpu_before,
        peak_rss: peak_rss.load(Ordering::Relaxed),
        tmp_disk: peak_tmp.load(Ordering::Relaxed),
        uploaded: 0,
        server_cpu: 0.0,
        ok: status.success(),
    }
}

fn shell(cmd: &str, run: usize, dir: &Path, quiet: bool) {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .env("N", run.to_string())
        .current_dir(dir);
    if quiet {
        c.stdout(Stdio::null());
    }
    let status = c.status().expect("sh");
    assert!(status.success(), "setup failed: {cmd}");
}

/// The pid of the process whose command line holds `--port {port}` (the S3 server).
fn pid_listening_on(port: u16) -> Option<i32> {
    let needle = format!("--port\0{port}\0");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmd)
            .contains(&needle)
            .then_some(pid)
    })
}

/// User + system seconds of process `pid` so far (0 when unknown).
fn process_cpu(pid: Option<i32>) -> f64 {
    let Some(stat) = pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
    else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / ticks
}

/// User + system seconds of every reaped child so far.
fn children_cpu() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// Sum of the resident memory of every process in process group `pgid`.
fn group_rss(pgid: i32) -> u64 {
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let mut total = 0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // after "comm)": state ppid pgrp session ... rss is field 24 overall (index 21 here)
        if fields.get(2).and_then(|p| p.parse::<i32>().ok()) == Some(pgid) {
            total += fields
                .get(21)
                .and_then(|r| r.parse::<u64>().ok())
                .unwrap_or(0)
                * page;
        }
    }
    total
}

/// (bytes, files) under `dir`, symlinks not followed.
fn tree_size(dir: &Path) -> (u64, u64) {
    let mut bytes = 0;
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(md) = e.path().symlink_metadata() else {
                continue;
            };
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                bytes += md.len();
                files += 1;
            }
        }
    }
    (bytes, files)
}

/// The `secs=` of every "multipart upload completed" line wpbackup logged.
fn completion_secs(log: &Path) -> Vec<f64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("multipart upload completed"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("secs="))
                .and_then(|v| v.parse().ok())
        })
        .collect()
}

/// Bytes stored so far: the bucket, borg's repositories and wpbackup's local storage.
fn bucket_bytes(s3: &S3Server, work: &Path) -> u64 {
    let borg: u64 = std::fs::read_dir(work)
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.starts_with("borg-") || n == "localstore"
                })
                .map(|e| tree_size(&e.path()).0)
                .sum()
        })
        .unwrap_or(0);
    tree_size(&s3.root.join(BUCKET)).0 + borg
}

/// The newest wpbackup archive in the bucket.
fn newest_key(s3: &S3Server) -> String {
    s3.objects(BUCKET)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("bench-server/") && k.ends_with(".tar.zst"))
        .max()
        .expect("a wpbackup archive in the bucket")
}

fn write_home(home: &Path, site: &WordPress, s3: &S3Server) {
    let config = serde_json::json!({
        "server_id": "bench-server",
        "sites": [ { "name": "bench", "path": site.path } ],
        "storage": [ {
            "name": "s3", "type": "s3", "priority": 1, "endpoint": s3.endpoint,
            "region": "us-east-1", "bucket": BUCKET, "path_style": true,
            "access_key_env": "BENCH_ACCESS_KEY", "secret_key_env": "BENCH_SECRET_KEY"
        } ]
    });
    std::fs::write(home.join("config.json"), config.to_string()).expect("config");
    let env = home.join(".env");
    std::fs::write(
        &env,
        format!("BENCH_ACCESS_KEY={KEY}\nBENCH_SECRET_KEY={SECRET}\n"),
    )
    .expect("env");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    // A server that has run before: the first run of a home (no `last-run`) waits for the next
    // whole second (backup/clock.rs), a one-off cost that is not the pipeline's.
    std::fs::write(home.join("last-run"), "2026-01-01T00:00:00Z\n").expect("last-run");
}

/// Media (incompressible, 1-4 MiB files in dated upload folders), plugin-like code (text that
/// compresses about as PHP does) and posts with comments and meta, all deterministic.
fn grow_site(site: &WordPress, db: &MariaDb, size: Size) {
    let mut left = size.media_mib * 1024 * 1024;
    let mut i = 0u64;
    while left > 0 {
        let dir = site.path.join(format!(
            "wp-content/uploads/20{:02}/{:02}",
            20 + i % 6,
            1 + i % 12
        ));
        std::fs::create_dir_all(&dir).expect("uploads");
        let len = ((1 + i % 4) * 1024 * 1024).min(left);
        let ext = ["jpg", "png", "webp", "mp4"][(i % 4) as usize];
        std::fs::write(
            dir.join(format!("media-{i:05}.{ext}")),
            noise(2 * (i + 1000) + 1, len as usize), // odd: i + 1000 gave pairs one stream
        )
        .expect("media");
        left -= len;
        i += 1;
    }
    let words = [
        "function",
        "return",
        "array",
        "$this->",
        "apply_filters",
        "esc_html",
        "if",
        "foreach",
        "wp_enqueue_script",
        "get_option",
        "$args",
        "null",
        "true",
        "isset",
        "sanitize_text_field",
        "echo",
        "public",
        "static",
        "class",
        "__(",
        "'text-domain'",
        "=>",
        "add_action",
        "$post",
    ];
    let mut x = 0x9e3779b97f4a7c15u64;
    for f in 0..size.code_files {
        let dir = site.path.join(format!(
            "wp-content/plugins/bench-plugin-{:03}/includes/part-{}",
            f / 100,
            f % 7
        ));
        std::fs::create_dir_all(&dir).expect("plugin dir");
        let mut text = String::with_capacity((size.code_file_kib * 1024) as usize);
        text.push_str("<?php\n");
        while (text.len() as u64) < size.code_file_kib * 1024 {
            for _ in 0..10 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                text.push_str(words[(x % words.len() as u64) as usize]);
                text.push(if x.is_multiple_of(11) { '\n' } else { ' ' });
            }
            text.push_str(&format!("$v{} = {};\n", x % 997, x % 100_000));
        }
        std::fs::write(dir.join(format!("class-{f:06}.php")), text).expect("code");
    }
    let n = size.posts;
    let t = &site.db_name;
    db.sql_db(
        t,
        &format!(
            "INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, \
             post_excerpt, post_status, comment_status, ping_status, post_name, to_ping, pinged, \
             post_modified, post_modified_gmt, post_content_filtered, post_parent, guid, menu_order, post_type) \
             SELECT 1, NOW(), NOW(), CONCAT('<!-- wp:paragraph --><p>', REPEAT(CONCAT('Post ', seq, \
             ' tells a story about ', MD5(seq), ' and backups. '), 12), SHA2(seq, 512), '</p><!-- /wp:paragraph -->', \
             REPEAT(CONCAT(' ', MD5(seq * 7), ' ', SHA1(seq)), 20)), \
             CONCAT('Bench post ', seq), '', 'publish', 'open', 'open', CONCAT('bench-post-', seq), '', '', \
             NOW(), NOW(), '', 0, CONCAT('http://example.com/?p=', seq), 0, 'post' FROM seq_1_to_{n};
             INSERT INTO wp_comments (comment_post_ID, comment_author, comment_author_email, comment_date, \
             comment_date_gmt, comment_content, comment_approved, comment_type) \
             SELECT ID, 'Reader', 'reader@example.com', NOW(), NOW(), CONCAT('Comment on ', post_title, ': ', MD5(ID)), '1', 'comment' \
             FROM wp_posts WHERE post_name LIKE 'bench-post-%';
             INSERT INTO wp_postmeta (post_id, meta_key, meta_value) \
             SELECT ID, '_bench_meta', CONCAT('a:2:{{s:4:\"hash\";s:32:\"', MD5(ID), '\";s:4:\"seen\";i:', ID, ';}}') \
             FROM wp_posts WHERE post_name LIKE 'bench-post-%';"
        ),
    );
}
