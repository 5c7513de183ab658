//! The soak under faults (issue 15 item 3): hundreds of `wpbackup backup` runs of three
//! WordPress sites to two S3 servers (s3s-fs), each run with a fault drawn from a seeded list,
//! and after every run the invariants of `support/soak_checks.rs`. Prints a table and appends
//! it to `--out` (RELIABILITY.md).
//!
//! ```sh
//! scripts/soak.sh --runs 300 --seed 15 --minutes 30
//! scripts/soak.sh --differential     # differential archives on; a site changes every run
//! ```
//!
//! Runs only under `cargo bench` (which passes `--bench`): `cargo test --all-targets` builds it
//! and returns at once; `cargo bench --bench soak -- --help` lists the flags ([`Args`]).
//! Everything is on loopback, every server is the test harness's own (stopped when the soak
//! ends, also when it panics).

// The test harness: MariaDB, WordPress, s3s-fs, the D1 simulator.
#[allow(unused_imports, dead_code)]
#[path = "../tests/util/mod.rs"]
mod util;

#[path = "support/soak_checks.rs"]
mod checks;
#[path = "support/soak_faults.rs"]
mod faults;
#[path = "support/soak_report.rs"]
mod report;
#[path = "support/soak_world.rs"]
mod world;

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::json;

use checks::{Found, Places};
use faults::{Fault, Rng, Servers};
use report::Stats;
use world::{SITES, World, build_world, churn, write_config};

/// The disk-full fault: no file of wpbackup may grow past this (EFBIG, as ENOSPC).
const DISK_LIMIT: u64 = 3 * 1024 * 1024;

/// scripts/soak.sh's flags (it passes its own on, after `--bench --out RELIABILITY.md`).
#[derive(Debug, clap::Parser)]
#[command(
    bin_name = "scripts/soak.sh",
    // scripts/*.sh pass --bench and cargo bench adds its own; the last of a repeated flag wins.
    args_override_self = true,
    about = "wpbackup backup runs under seeded faults, the invariants checked after each"
)]
struct Args {
    /// Passed by `cargo bench`; without it (`cargo test --all-targets`) nothing runs.
    #[arg(long, hide = true)]
    bench: bool,
    /// Append the table to this file (scripts/soak.sh: RELIABILITY.md).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// At most this many runs.
    #[arg(long, value_name = "N", default_value_t = 300, value_parser = at_least_one())]
    runs: usize,
    /// The seed of the faults drawn.
    #[arg(long, value_name = "S", default_value_t = 15)]
    seed: u64,
    /// At most this many minutes.
    #[arg(long, value_name = "M", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    minutes: u64,
    /// Differential archives on (config.json `differential: {}`), a site changed each run.
    #[arg(long)]
    differential: bool,
    /// Break two invariants on purpose before the final check: it must report them.
    #[arg(long)]
    prove_checks: bool,
}

/// A count that 0 would make meaningless.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // built by `cargo test --all-targets`: nothing to do
    }
    let args = <Args as clap::Parser>::parse();
    let (runs, seed, minutes, differential) =
        (args.runs, args.seed, args.minutes, args.differential);
    let out_file = args.out;
    eprintln!(
        "== soak: seed {seed}, at most {runs} runs, at most {minutes} minutes{}",
        if differential {
            ", differential archives on"
        } else {
            ""
        }
    );
    let started = Instant::now();
    let mut world = build_world(differential);
    eprintln!(
        "   servers and sites up in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let mut stats = Stats::default();
    let mut rng = Rng::new(seed);
    let mut allowed = BTreeSet::new();
    let deadline = started + Duration::from_secs(minutes * 60);
    while stats.runs < runs && Instant::now() < deadline {
        let fault = faults::ALL[rng.below(faults::ALL.len() as u64) as usize];
        // A moment within a typical run (the mean of the clean runs so far): most faults
        // strike while the run is still going.
        let typical = stats.mean_clean_run().max(Duration::from_millis(500));
        let delay = typical.mul_f64(rng.below(1000) as f64 / 1000.0);
        stats.runs += 1;
        if differential {
            churn(&world, stats.runs);
        }
        *stats.faults.entry(fault).or_default() += 1;
        let broken_before = stats.broken.len();
        one_round(&mut world, fault, delay, &mut stats, &mut allowed);
        if stats.runs % 10 == 0 {
            drill(&world, &mut stats);
        }
        eprintln!(
            "run {:>4} {}: {:<36} {}",
            stats.runs,
            chrono::Utc::now().format("%H:%M:%S%.3f"),
            fault.name(),
            if stats.broken.len() == broken_before {
                "ok"
            } else {
                "INVARIANT BROKEN"
            }
        );
    }
    if args.prove_checks {
        damage(&world);
    }
    final_check(&world, &mut stats);
    let mut table = report::table(&stats, seed, started.elapsed());
    if differential {
        table = table.replacen(" min\n", " min, differential archives on\n", 1);
    }
    println!("{table}");
    if let Some(path) = out_file {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .expect("open the --out file");
        file.write_all(table.as_bytes()).expect("append the table");
    }
}

/// One faulted run, its checks, then (after a fault) a clean run and its checks.
fn one_round(
    w: &mut World,
    fault: Fault,
    delay: Duration,
    stats: &mut Stats,
    allowed: &mut BTreeSet<String>,
) {
    let found = run_and_check(w, fault, delay, allowed);
    stats.struck += usize::from(found.struck);
    for status in &found.statuses {
        *stats.results.entry(status.clone()).or_default() += 1;
    }
    for storage in &found.landed {
        *stats.landed.entry(storage.clone()).or_default() += 1;
    }
    absorb(
        stats,
        found,
        &format!("run {} ({})", stats.runs, fault.name()),
    );
    recheck(
        w,
        stats,
        &format!("after run {} ({})", stats.runs, fault.name()),
    );
    if fault != Fault::None {
        let found = run_and_check(w, Fault::None, Duration::ZERO, allowed);
        stats.clean_runs += 1;
        stats.clean_time += found.took;
        absorb(stats, found, &format!("clean run after run {}", stats.runs));
    }
}

/// Every archive recorded so far still has its recorded size (an archive must never change
/// once recorded); a change is reported with the backup_log rows of its key.
fn recheck(w: &World, stats: &mut Stats, when: &str) {
    let places = w.places();
    let Ok(rows) = checks::new_archives(&places.home, 0) else {
        return;
    };
    for (key, storage, size, _) in rows {
        let Some((_, root)) = places.bucket_roots.iter().find(|(n, _)| *n == storage) else {
            continue;
        };
        let on_disk = std::fs::metadata(root.join(&key)).map(|m| m.len() as i64);
        let known = format!("{storage}/{key}");
        if on_disk.as_ref().ok() != Some(&size) && stats.changed.insert(known.clone()) {
            let b = format!("{known}: recorded {size} bytes, now {on_disk:?} ({when})");
            eprintln!("   BROKEN {b}\n{}", checks::rows_of(&places.home, &key));
            stats.broken.push(b);
        }
    }
}

fn absorb(stats: &mut Stats, found: Found, what: &str) {
    stats.archives_verified += found.archives_verified;
    stats.killed_leftovers += found.expected_leftovers;
    for b in found.broken {
        eprintln!("   BROKEN {what}: {b}");
        stats.broken.push(format!("{what}: {b}"));
    }
}

/// Run `wpbackup backup` under `fault`, heal the servers, check every invariant.
fn run_and_check(
    w: &mut World,
    fault: Fault,
    delay: Duration,
    allowed: &mut BTreeSet<String>,
) -> Found {
    let places = w.places();
    let (log_mark, archive_mark) = checks::marks(&places.home);
    let uploads_before = checks::open_uploads(&places);
    if fault == Fault::DiskFull {
        write_config(w, true);
    }
    let mut found = Found::default();
    let mut servers = Servers {
        primary: &mut w.primary,
        db: &mut w.db,
        d1: &w.d1,
    };
    let mut active = faults::before_run(fault, &mut servers);
    let started = Instant::now();
    let child = spawn_backup(&places, fault, &w.logs.path().join("run.log"));
    let struck = strike(child, fault, delay, &mut servers, &mut active);
    found.took = started.elapsed();
    faults::heal(&mut servers, active);
    if fault == Fault::DiskFull {
        write_config(w, false);
    }
    match struck {
        Ok(struck) => found.struck = struck || fault.before_start(),
        Err(e) => found.broken.push(e),
    }
    check_run(
        w,
        fault,
        (log_mark, archive_mark),
        &uploads_before,
        allowed,
        &mut found,
    );
    found
}

/// The checks after one run.
fn check_run(
    w: &World,
    fault: Fault,
    (log_mark, archive_mark): (i64, i64),
    uploads_before: &BTreeSet<String>,
    allowed: &mut BTreeSet<String>,
    found: &mut Found,
) {
    let places = w.places();
    if fault != Fault::SigKill {
        checks::rows(&places, log_mark, fault == Fault::None, found);
    }
    match checks::new_archives(&places.home, archive_mark) {
        Ok(rows) => {
            let verify = |key: &str, storage: &str| {
                let args = ["verify", "--archive", key, "--storage", storage];
                let config = if storage == "disk" { Some(()) } else { None };
                with_disk_config(w, config.is_some(), || {
                    checks::wpbackup_ok(&places.home, &places.tmp, &args, &[])
                })
            };
            checks::archives(&places, &rows, &verify, found);
        }
        Err(e) => found.broken.push(format!("s3_archives unreadable: {e}")),
    }
    let uploads = checks::open_uploads(&places);
    for u in uploads.difference(uploads_before) {
        let on_primary = u.starts_with("primary:");
        if fault == Fault::SigKill || (on_primary && fault.may_leave_upload_on_primary()) {
            allowed.insert(u.clone());
        } else if !allowed.contains(u) {
            found.broken.push(format!("upload left open: {u}"));
        }
    }
    let left = checks::leftovers(&places);
    if fault == Fault::SigKill {
        found.expected_leftovers += left.len();
        for l in &left {
            eprintln!("   left by the SIGKILLed run (removed): {l}");
        }
        checks::clear_tmp(&places);
    } else if !left.is_empty() {
        found.broken.push(format!("left behind: {left:?}"));
        checks::clear_tmp(&places);
    }
    checks::integrity(&places.home, found);
}

/// Run `f` with config.json naming the local storage too (to verify an archive on it).
fn with_disk_config<T>(w: &World, disk: bool, f: impl FnOnce() -> T) -> T {
    if !disk {
        return f();
    }
    write_config(w, true);
    let out = f();
    write_config(w, false);
    out
}

fn spawn_backup(p: &Places, fault: Fault, log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("run log");
    let err = out.try_clone().expect("run log");
    let mut cmd = Command::new(util::bin());
    cmd.arg("--home")
        .arg(&p.home)
        .arg("backup")
        .env("TMPDIR", &p.tmp)
        .env_remove("WPBACKUP_HOME")
        .stdout(out)
        .stderr(err)
        .process_group(0);
    if fault == Fault::DiskFull {
        util::limit_file_size(&mut cmd, DISK_LIMIT);
    }
    cmd.spawn().expect("start wpbackup backup")
}

/// Wait `delay` (or for the run's end), strike the fault, wait for the run's end (killing it
/// if it hangs far beyond every configured timeout: an invariant broken).
fn strike(
    mut child: Child,
    fault: Fault,
    delay: Duration,
    servers: &mut Servers,
    active: &mut faults::Active,
) -> Result<bool, String> {
    let start = Instant::now();
    while start.elapsed() < delay && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let struck = matches!(child.try_wait(), Ok(None));
    if struck {
        let pid = child.id() as i32;
        match fault {
            // A person's or systemd's stop: SIGTERM to wpbackup, which stops its children.
            Fault::SigTerm => unsafe {
                libc::kill(pid, libc::SIGTERM);
            },
            // The OOM killer or a `systemctl kill -s KILL`: nothing of the run goes on.
            Fault::SigKill => unsafe {
                libc::kill(-pid, libc::SIGKILL);
            },
            _ => faults::during_run(fault, servers, active),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return Ok(struck && fault != Fault::None),
            Ok(None) if Instant::now() > deadline => {
                unsafe {
                    libc::kill(-(child.id() as i32), libc::SIGKILL);
                }
                let _ = child.wait();
                return Err("wpbackup backup hung for 300 s".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("wait for wpbackup: {e}")),
        }
    }
}

/// `wpbackup drill`: each site's newest archive restored into a scratch directory and
/// database, checked, WordPress booted from it, everything removed.
fn drill(w: &World, stats: &mut Stats) {
    let places = w.places();
    let env = [("MYSQL_UNIX_PORT", w.db.socket.as_path())];
    match checks::wpbackup_ok(&places.home, &places.tmp, &["drill"], &env) {
        Ok(()) => stats.restores_checked += SITES.len(),
        Err(e) => stats
            .broken
            .push(format!("drill after run {}: {e}", stats.runs)),
    }
    let dbs = w.db.sql("SHOW DATABASES LIKE 'wpbdrill%'");
    if !dbs.trim().is_empty() {
        stats.broken.push(format!("drill left databases: {dbs}"));
    }
    let left = checks::leftovers(&places);
    if !left.is_empty() {
        stats.broken.push(format!("drill left: {left:?}"));
        checks::clear_tmp(&places);
    }
}

/// `--prove-checks`: break two invariants on purpose (one archive's bytes changed, a defaults
/// file left in TMPDIR), so that the final check must report them.
fn damage(w: &World) {
    let places = w.places();
    let rows = checks::new_archives(&places.home, 0).unwrap_or_default();
    let last = rows.last().and_then(|(key, storage, _, _)| {
        let (_, root) = places.bucket_roots.iter().find(|(n, _)| n == storage)?;
        Some(root.join(key))
    });
    if let Some(path) = last {
        let mut bytes = std::fs::read(&path).unwrap_or_default();
        if let Some(b) = bytes.last_mut() {
            *b ^= 1;
        }
        let _ = std::fs::write(&path, bytes);
    }
    let _ = std::fs::write(places.tmp.join("wpbackup-my-soak.cnf"), "[client]\n");
}

/// At the end: every archive ever recorded is still whole (size and sha256) on its storage.
fn final_check(w: &World, stats: &mut Stats) {
    let places = w.places();
    let mut found = Found::default();
    match checks::new_archives(&places.home, 0) {
        Ok(mut rows) => {
            let count = rows.len();
            // Those already reported changed are not reported twice.
            rows.retain(|(key, storage, _, _)| {
                !stats.changed.contains(&format!("{storage}/{key}"))
            });
            checks::archives(&places, &rows, &|_, _| Ok(()), &mut found);
            eprintln!("   final: {count} archives recorded, all checked on their storage");
        }
        Err(e) => found.broken.push(format!("s3_archives unreadable: {e}")),
    }
    let left = checks::leftovers(&places);
    if !left.is_empty() {
        found.broken.push(format!("left behind: {left:?}"));
        checks::clear_tmp(&places);
    }
    stats.uploads_left_by_faults = checks::open_uploads(&places).len();
    // D1 holds every row of backups.db once pushed (the rows of the D1 faults' runs too;
    // `verify` and `drill` record rows that only the next push sends: `sync-d1` sends them).
    if let Err(e) = checks::wpbackup_ok(&places.home, &places.tmp, &["sync-d1"], &[]) {
        found.broken.push(format!("sync-d1 after the soak: {e}"));
    }
    let local = checks::marks(&places.home);
    let d1_rows =
        w.d1.count("SELECT COUNT(*) AS n FROM backup_log", json!([]));
    let local_rows = rusqlite::Connection::open(places.home.join("backups.db"))
        .and_then(|c| {
            c.query_row("SELECT COUNT(*) FROM backup_log", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .unwrap_or(-1);
    eprintln!(
        "   final: backup_log {local_rows} rows here, {d1_rows} in D1 (last id {})",
        local.0
    );
    if d1_rows != local_rows {
        found.broken.push(format!(
            "D1 has {d1_rows} backup_log rows, backups.db {local_rows}"
        ));
    }
    stats.d1_rows = d1_rows;
    absorb(
        stats,
        Found {
            archives_verified: 0,
            ..found
        },
        "final check",
    );
}
