//! `--nights N` (issue 13): N simulated nights of a site that grows every day, backed up each
//! night three ways side by side against the same s3s-fs server, one bucket each:
//!
//! - wpbackup with differentials (`"differential"` in config.json), bucket `diff`;
//! - restic 0.14: the site's directory and a dump written before each backup to a file beside
//!   it (`restic-dump/database.sql`, the same `mariadb-dump` command every night), bucket
//!   `restic`; restic's wall time includes that dump, as wpbackup's includes its own;
//! - full-only wpbackup (no `"differential"`), bucket `fullonly`: each night's archive is really
//!   uploaded, its size recorded, then the previous night's deleted to save disk; its "stored"
//!   is the sum of the sizes, what the bucket would hold had nothing been deleted.
//!
//! Night 1 is the workload of `--size` as built by `grow_site`; before each later night the
//! site gets ~5 MiB of new incompressible uploads (seeded noise, like JPEGs) and 100 posts with
//! a comment and a meta row each (dates fixed to the night's date), all deterministic. Night `n`
//! happens at 2026-12-01T03:00:00Z + (n-1) days: `WPBACKUP_NOW` for wpbackup, `--time` for
//! restic. Then the restore of the longest chain (wpbackup `restore --at` against its floor:
//! each archive `zstd -d | tar -x` in turn, the deleted paths removed, `mariadb <
//! database.sql`), then an unchanged night (12 hours after the last, nothing changed):
//! wpbackup's differential against restic's second backup of the same site (a fresh
//! repository: first backup untimed, second timed) and against restic's next backup of the
//! N-night repository.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use crate::util::mariadb::MariaDb;
use crate::util::s3::S3Server;
use crate::util::wordpress::{WordPress, noise};
use crate::{KEY, SECRET, Sample, Size, grow_site, measure, mib, tree_size, write_home};

const DIFF: &str = "diff";
const FULL: &str = "fullonly";
const RESTIC: &str = "restic";
const RESTIC2: &str = "restic2";
const UNCHANGED: &str = "unchanged";
const START: &str = "2026-12-01T03:00:00Z";
const GROW_POSTS: u64 = 100;
/// New uploads per night: 2 + 2 + 1 MiB.
const GROW_FILES_MIB: [u64; 3] = [2, 2, 1];
/// The policy measured unless `--policy JSON` says otherwise: config.json's defaults (a full
/// every 30 days, a level 1 every 6, level 2 on the other nights).
const POLICY: &str = r#"{"full_every_days": 30, "level1_every_days": 6, "max_share_percent": 50}"#;

struct Bench {
    db: MariaDb,
    site: WordPress,
    s3: S3Server,
    work: tempfile::TempDir,
    bin: PathBuf,
    diff_home: PathBuf,
    full_home: PathBuf,
    unchanged_home: PathBuf,
    dump: String,
    /// S3 credentials and restic's password, as `VAR=value ...` for sh.
    env: String,
    defaults: PathBuf,
    size: Size,
    /// config.json `differential` of the differential homes.
    policy: serde_json::Value,
    /// (files, bytes of files, bytes of dump) at night 1.
    workload: (u64, u64, u64),
}

#[derive(Debug, Clone, Default)]
struct Step {
    wall: f64,
    uploaded: u64,
    stored: u64,
    ok: bool,
}

struct Night {
    n: u32,
    at: DateTime<Utc>,
    /// `full`, `L1` or `L2` (from the new key and its chain).
    kind: String,
    diff: Step,
    restic: Step,
    full: Step,
}

struct ChainRestore {
    night: u32,
    keys: Vec<String>,
    floor: Vec<Sample>,
    ours: Vec<Sample>,
    /// What differs between the two restored trees and databases (empty: the same).
    differences: Vec<String>,
}

struct Unchanged {
    diff: Step,
    /// Members of the differential archive: (files under files/, bytes of database.sql); `None`
    /// when no archive of that time is in the bucket.
    members: Option<(u64, u64)>,
    /// `mariadb-dump | zstd -T0 -3` of the same database, in bytes.
    dump_zst: u64,
    restic_second: Step,
    /// The night after the last, nothing changed that night, on the N-night bucket/repository.
    diff_next: Step,
    restic_next: Step,
}

/// Run the nights and return the markdown report.
pub fn run(size: Size, nights: u32, runs: usize, policy: Option<&str>) -> String {
    let policy = serde_json::from_str(policy.unwrap_or(POLICY)).expect("--policy: JSON");
    let b = setup(size, policy);
    let mut rows: Vec<Night> = Vec::new();
    for n in 1..=nights {
        if n > 1 {
            grow(&b, n);
        }
        let night = night(&b, n, rows.last().map(|r| r.full.stored).unwrap_or(0));
        eprintln!(
            "   night {:>2} {:<4}  wpbackup up {:>7.1} MiB stored {:>7.1} MiB {:>6.2} s{} | restic up {:>7.1} stored {:>7.1} {:>6.2} s{} | full-only up {:>7.1} stored {:>8.1} {:>6.2} s{}",
            n,
            night.kind,
            mib(night.diff.uploaded),
            mib(night.diff.stored),
            night.diff.wall,
            failed(&night.diff),
            mib(night.restic.uploaded),
            mib(night.restic.stored),
            night.restic.wall,
            failed(&night.restic),
            mib(night.full.uploaded),
            mib(night.full.stored),
            night.full.wall,
            failed(&night.full),
        );
        rows.push(night);
    }
    let chain = chain_restore(&b, &rows, runs.max(1));
    let unchanged = unchanged(&b, rows.last().map(|r| r.at).unwrap_or_else(|| night_at(1)));
    let mut md = nights_table(&b, &rows);
    md += &summary(&rows, &chain, &unchanged);
    md
}

fn failed(s: &Step) -> &'static str {
    if s.ok { "" } else { " FAILED" }
}

fn night_at(n: u32) -> DateTime<Utc> {
    let start: DateTime<Utc> = START.parse().expect("start time");
    start + TimeDelta::days(i64::from(n) - 1)
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The servers, the workload, wpbackup's two homes, restic's repositories.
fn setup(size: Size, policy: serde_json::Value) -> Bench {
    eprintln!("== building the {} workload", size.name);
    let t = Instant::now();
    let db = MariaDb::start();
    let site = WordPress::install(&db, "bench");
    grow_site(&site, &db, size);
    let s3 = S3Server::start(KEY, SECRET);
    for bucket in [DIFF, FULL, RESTIC, RESTIC2, UNCHANGED] {
        s3.create_bucket(bucket);
    }
    let work = tempfile::Builder::new()
        .prefix("wpb-nights")
        .tempdir()
        .expect("work dir");
    let defaults = work.path().join("root.cnf");
    std::fs::write(
        &defaults,
        format!("[client]\nuser=root\nsocket={}\n", db.socket.display()),
    )
    .expect("defaults");
    let dump = format!(
        "mariadb-dump --defaults-extra-file={} --single-transaction --quick --routines --triggers \
         --hex-blob --default-character-set=utf8mb4 --no-tablespaces {}",
        defaults.display(),
        site.db_name
    );
    std::fs::create_dir(work.path().join("restic-dump")).expect("dump dir");
    let env = format!(
        "AWS_ACCESS_KEY_ID={KEY} AWS_SECRET_ACCESS_KEY={SECRET} AWS_DEFAULT_REGION=us-east-1 \
         AWS_REQUEST_CHECKSUM_CALCULATION=when_required RESTIC_PASSWORD=bench"
    );
    let diff_home = work.path().join("home-diff");
    let full_home = work.path().join("home-full");
    let unchanged_home = work.path().join("home-unchanged");
    let (files_bytes, files) = tree_size(&site.path);
    let dump_bytes = crate::dump_cmd(&db, &site.db_name)
        .output()
        .map(|o| o.stdout.len() as u64)
        .unwrap_or(0);
    let b = Bench {
        db,
        site,
        s3,
        work,
        bin: crate::util::bin(),
        diff_home,
        full_home,
        unchanged_home,
        dump,
        env,
        defaults,
        size,
        policy,
        workload: (files, files_bytes, dump_bytes),
    };
    home(&b, &b.diff_home, DIFF, true);
    home(&b, &b.full_home, FULL, false);
    home(&b, &b.unchanged_home, UNCHANGED, true);
    for repo in [RESTIC, RESTIC2] {
        sh(&format!(
            "{} restic -q -r {} init",
            b.env,
            restic_repo(&b, repo)
        ));
    }
    sh(&format!("tar -cf /dev/null -C {} .", b.site.path.display())); // warm the page cache
    eprintln!(
        "   {} files, {:.0} MiB of files, {:.0} MiB database dump (built in {:.0} s)",
        files,
        mib(files_bytes),
        mib(dump_bytes),
        t.elapsed().as_secs_f64()
    );
    b
}

/// A wpbackup home storing to `bucket`, with the differential policy when `differential`.
fn home(b: &Bench, home: &Path, bucket: &str, differential: bool) {
    std::fs::create_dir(home).expect("home");
    write_home(home, &b.site, &b.s3);
    let path = home.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("config")).expect("config");
    config["storage"][0]["bucket"] = bucket.into();
    if differential {
        config["differential"] = b.policy.clone();
    }
    std::fs::write(&path, config.to_string()).expect("config");
}

fn restic_repo(b: &Bench, bucket: &str) -> String {
    format!("s3:{}/{bucket}", b.s3.endpoint)
}

/// Run `cmd` under sh; panic when it fails.
fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(
        out.status.success(),
        "failed: {cmd}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Before night `n`: ~5 MiB of new uploads in the night's month folder and 100 posts, each
/// with a comment and a meta row, dated that night.
fn grow(b: &Bench, n: u32) {
    let at = night_at(n);
    let dir = b
        .site
        .path
        .join(format!("wp-content/uploads/{}", at.format("%Y/%m")));
    std::fs::create_dir_all(&dir).expect("uploads");
    for (k, len) in GROW_FILES_MIB.iter().enumerate() {
        let seed = 2 * (7_000_000 + u64::from(n) * 10 + k as u64) + 1; // odd: see grow_site
        std::fs::write(
            dir.join(format!("night-{n:03}-{k}.jpg")),
            noise(seed, (len * 1024 * 1024) as usize),
        )
        .expect("upload");
    }
    let date = at.format("%Y-%m-%d %H:%M:%S");
    let first = b.size.posts + u64::from(n) * 1000;
    let name = format!("night-{n:03}-post-");
    b.db.sql_db(
        &b.site.db_name,
        &format!(
            "INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, \
             post_excerpt, post_status, comment_status, ping_status, post_name, to_ping, pinged, \
             post_modified, post_modified_gmt, post_content_filtered, post_parent, guid, menu_order, post_type) \
             SELECT 1, '{date}', '{date}', CONCAT('<!-- wp:paragraph --><p>', REPEAT(CONCAT('Post ', s, \
             ' tells a story about ', MD5(s), ' and backups. '), 12), SHA2(s, 512), '</p><!-- /wp:paragraph -->', \
             REPEAT(CONCAT(' ', MD5(s * 7), ' ', SHA1(s)), 20)), \
             CONCAT('Night {n} post ', s), '', 'publish', 'open', 'open', CONCAT('{name}', s), '', '', \
             '{date}', '{date}', '', 0, CONCAT('http://example.com/?p=', s), 0, 'post' \
             FROM (SELECT seq + {first} AS s FROM seq_1_to_{GROW_POSTS}) AS t;
             INSERT INTO wp_comments (comment_post_ID, comment_author, comment_author_email, comment_date, \
             comment_date_gmt, comment_content, comment_approved, comment_type) \
             SELECT ID, 'Reader', 'reader@example.com', '{date}', '{date}', CONCAT('Comment on ', post_title, ': ', MD5(ID)), '1', 'comment' \
             FROM wp_posts WHERE post_name LIKE '{name}%';
             INSERT INTO wp_postmeta (post_id, meta_key, meta_value) \
             SELECT ID, '_bench_meta', CONCAT('a:2:{{s:4:\"hash\";s:32:\"', MD5(ID), '\";s:4:\"seen\";i:', ID, ';}}') \
             FROM wp_posts WHERE post_name LIKE '{name}%';"
        ),
    );
}

fn bucket_bytes(b: &Bench, bucket: &str) -> u64 {
    tree_size(&b.s3.root.join(bucket)).0
}

/// Time `cmd` (measure() in a TMPDIR of its own) and what it added to `bucket`.
fn timed(b: &Bench, cmd: &str, bucket: &str) -> Step {
    let before = bucket_bytes(b, bucket);
    let tmp = b.work.path().join("tmp");
    std::fs::create_dir(&tmp).expect("tmp");
    let s = measure(cmd, 0, &tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    let stored = bucket_bytes(b, bucket);
    Step {
        wall: s.wall,
        uploaded: stored.saturating_sub(before),
        stored,
        ok: s.ok,
    }
}

fn wpbackup_backup(b: &Bench, home: &Path, at: DateTime<Utc>) -> String {
    format!(
        "WPBACKUP_NOW={} {} --home {} -q backup --no-sync",
        rfc3339(at),
        b.bin.display(),
        home.display()
    )
}

fn restic_backup(b: &Bench, repo: &str, at: DateTime<Utc>) -> String {
    let dump_file = b.work.path().join("restic-dump/database.sql");
    format!(
        "{dump} > {f} && {env} restic -q -r {r} backup --host bench --time '{t}' {site} {f}",
        dump = b.dump,
        f = dump_file.display(),
        env = b.env,
        r = restic_repo(b, repo),
        t = at.format("%Y-%m-%d %H:%M:%S"),
        site = b.site.path.display()
    )
}

/// One night: the three ways in turn. `full_stored`: full-only's total before this night.
fn night(b: &Bench, n: u32, full_stored: u64) -> Night {
    let at = night_at(n);
    let diff = timed(b, &wpbackup_backup(b, &b.diff_home, at), DIFF);
    let restic = timed(b, &restic_backup(b, RESTIC, at), RESTIC);
    let previous = b.s3.objects(FULL);
    let mut full = timed(b, &wpbackup_backup(b, &b.full_home, at), FULL);
    full.stored = full_stored + full.uploaded;
    for (key, _) in previous {
        let _ = std::fs::remove_file(b.s3.object_path(FULL, &key));
    }
    let archives = archives(b, DIFF);
    let kind = match chain(&archives, at).len() {
        0 => "?".to_string(),
        1 => "full".to_string(),
        l => format!("L{}", l - 1),
    };
    Night {
        n,
        at,
        kind,
        diff,
        restic,
        full,
    }
}

/// wpbackup's archives in `bucket`: time -> (key, base time).
fn archives(b: &Bench, bucket: &str) -> BTreeMap<DateTime<Utc>, (String, Option<DateTime<Utc>>)> {
    let stamp = |s: &str| {
        chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
            .ok()
            .map(|t| t.and_utc())
    };
    b.s3.objects(bucket)
        .into_iter()
        .filter_map(|(key, _)| {
            let file = key.rsplit('/').next()?.strip_prefix("bench_")?;
            let file = file.strip_suffix(".tar.zst")?;
            let (at, base) = match file.split_once(".diff-") {
                Some((at, base)) => (stamp(at)?, Some(stamp(base)?)),
                None => (stamp(file)?, None),
            };
            Some((at, (key, base)))
        })
        .collect()
}

/// The keys of the restore point at `at`, oldest (the full) first.
fn chain(
    archives: &BTreeMap<DateTime<Utc>, (String, Option<DateTime<Utc>>)>,
    at: DateTime<Utc>,
) -> Vec<String> {
    let mut keys = Vec::new();
    let mut next = Some(at);
    while let Some((key, base)) = next.and_then(|t| archives.get(&t)) {
        keys.insert(0, key.clone());
        next = *base;
        if keys.len() > 10 {
            break; // a loop would be a bug elsewhere; do not hang on it
        }
    }
    keys
}

/// The restore point with the longest chain (the latest of those), restored `runs` times by
/// the floor and by `wpbackup restore --at`, then the two results compared.
fn chain_restore(b: &Bench, rows: &[Night], runs: usize) -> ChainRestore {
    let archives = archives(b, DIFF);
    let (night, at, keys) = rows
        .iter()
        .map(|r| (r.n, r.at, chain(&archives, r.at)))
        .max_by_key(|(n, _, keys)| (keys.len(), *n))
        .expect("a night");
    eprintln!("== restore of night {night}: {} archive(s)", keys.len());
    let mut result = ChainRestore {
        night,
        keys,
        floor: Vec::new(),
        ours: Vec::new(),
        differences: Vec::new(),
    };
    let mut restored = Vec::new();
    for run in 0..runs {
        let out = b.work.path().join(format!("floor-restore-{run}"));
        std::fs::create_dir(&out).expect("restore dir");
        b.db.sql(&format!("CREATE DATABASE floor_chain_{run}"));
        let tmp = b.work.path().join("tmp");
        std::fs::create_dir(&tmp).expect("tmp");
        result.floor.push(measure(
            &floor_cmd(b, &result.keys, &out, &format!("floor_chain_{run}")),
            run,
            &tmp,
        ));
        let to = b.work.path().join(format!("our-restore-{run}"));
        let cmd = format!(
            "MYSQL_UNIX_PORT={} {} --home {} -q restore --site bench --at {} --to {} --db-name ours_chain_{run} --yes",
            b.db.socket.display(),
            b.bin.display(),
            b.diff_home.display(),
            rfc3339(at),
            to.display()
        );
        result.ours.push(measure(&cmd, run, &tmp));
        let _ = std::fs::remove_dir_all(&tmp);
        eprintln!(
            "   restore run {}: floor {:.2} s, wpbackup {:.2} s{}",
            run + 1,
            result.floor[run].wall,
            result.ours[run].wall,
            if result.ours[run].ok && result.floor[run].ok {
                ""
            } else {
                "  FAILED"
            }
        );
        if run == 0 {
            result.differences = compare(b, &out.join("files"), &to, run);
        }
        restored.push(out);
        restored.push(to);
    }
    for dir in restored {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// The floor: each archive downloaded, `zstd -d | tar -x` in turn (oldest first) into an empty
/// directory, the paths the last one lists as deleted removed, then `mariadb < database.sql`
/// into an empty database.
fn floor_cmd(b: &Bench, keys: &[String], out: &Path, db_name: &str) -> String {
    let aws = Path::new("/usr/bin/aws").exists();
    let mut cmd = String::new();
    for key in keys {
        let fetch = if aws {
            format!(
                "{} /usr/bin/aws --endpoint-url {} s3 cp --only-show-errors s3://{DIFF}/{key} -",
                b.env, b.s3.endpoint
            )
        } else {
            format!("cat {}", b.s3.object_path(DIFF, key).display())
        };
        cmd += &format!(
            "{fetch} | zstd -d -q | tar -x --warning=no-timestamp -C {} && ",
            out.display()
        );
    }
    cmd + &format!(
        "{{ [ ! -f {o}/deleted.nul ] || (cd {o} && xargs -0 -r rm -rf -- < deleted.nul); }} \
         && mariadb --defaults-extra-file={d} {db_name} < {o}/database.sql",
        o = out.display(),
        d = b.defaults.display()
    )
}

/// What differs between the floor's restored tree and database and wpbackup's (wp-config.php
/// aside: `restore --to --db-name` points it at the new database).
fn compare(b: &Bench, floor: &Path, ours: &Path, run: usize) -> Vec<String> {
    let mut out = Vec::new();
    let diff = Command::new("diff")
        .args(["-rq", "--no-dereference", "--exclude=wp-config.php"])
        .arg(floor)
        .arg(ours)
        .output()
        .expect("diff");
    if !diff.status.success() {
        let text = String::from_utf8_lossy(&diff.stdout).into_owned()
            + &String::from_utf8_lossy(&diff.stderr);
        let lines: Vec<&str> = text.lines().collect();
        out.push(format!(
            "the restored trees differ ({} lines of `diff -rq`, first: {})",
            lines.len(),
            lines.first().unwrap_or(&"?")
        ));
    }
    let count = |db: &str| {
        b.db.try_sql(&format!(
            "SELECT (SELECT COUNT(*) FROM {db}.wp_posts), (SELECT COUNT(*) FROM {db}.wp_comments)"
        ))
        .unwrap_or_else(|e| e)
    };
    let (f, o) = (
        count(&format!("floor_chain_{run}")),
        count(&format!("ours_chain_{run}")),
    );
    if f != o {
        out.push(format!(
            "posts and comments: floor {}, wpbackup {}",
            f.trim(),
            o.trim()
        ));
    }
    out
}

/// An unchanged site, 12 hours after `last`. Side by side from scratch (a bucket and a
/// repository of their own): wpbackup's full then, timed, its differential with nothing
/// changed; restic's first backup then, timed, its second. Then the night after the last one
/// with nothing changed that night, on the N-night bucket and repository (for wpbackup a
/// level 2 that still carries what changed since its level 1).
fn unchanged(b: &Bench, last: DateTime<Utc>) -> Unchanged {
    eprintln!("== an unchanged site");
    let at = last + TimeDelta::hours(12);
    sh(&wpbackup_backup(b, &b.unchanged_home, last)); // the full, untimed
    let diff = timed(b, &wpbackup_backup(b, &b.unchanged_home, at), UNCHANGED);
    let members = archives(b, UNCHANGED)
        .get(&at)
        .filter(|(_, base)| base.is_some())
        .map(|(key, _)| members(&b.s3.object_path(UNCHANGED, key)));
    let dump_zst = sh(&format!("{} | zstd -T0 -3 -q | wc -c", b.dump))
        .trim()
        .parse()
        .unwrap_or(0);
    sh(&restic_backup(b, RESTIC2, last)); // the first backup of the fresh repository, untimed
    let restic_second = timed(b, &restic_backup(b, RESTIC2, at), RESTIC2);
    let diff_next = timed(b, &wpbackup_backup(b, &b.diff_home, at), DIFF);
    let restic_next = timed(b, &restic_backup(b, RESTIC, at), RESTIC);
    eprintln!(
        "   wpbackup differential {:.2} s, up {:.2} MiB ({} files, dump {:.1} MiB; dump | zstd -3: {:.2} MiB); restic second backup {:.2} s, up {:.2} MiB",
        diff.wall,
        mib(diff.uploaded),
        members
            .map(|m| m.0.to_string())
            .unwrap_or_else(|| "?".into()),
        mib(members.map(|m| m.1).unwrap_or(0)),
        mib(dump_zst),
        restic_second.wall,
        mib(restic_second.uploaded),
    );
    eprintln!(
        "   the night after the last, nothing changed: wpbackup {:.2} s, up {:.1} MiB; restic {:.2} s, up {:.1} MiB",
        diff_next.wall,
        mib(diff_next.uploaded),
        restic_next.wall,
        mib(restic_next.uploaded)
    );
    Unchanged {
        diff,
        members,
        dump_zst,
        restic_second,
        diff_next,
        restic_next,
    }
}

/// (regular files under files/, bytes of database.sql) of a plain `tar.zst` archive.
fn members(archive: &Path) -> (u64, u64) {
    let list = sh(&format!(
        "zstd -d -q -c {} | tar -tv --numeric-owner",
        archive.display()
    ));
    let mut files = 0;
    let mut dump = 0;
    for line in list.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(mode), Some(size), Some(name)) = (f.first(), f.get(2), f.get(5)) else {
            continue;
        };
        if mode.starts_with('-') && name.starts_with("files/") {
            files += 1;
        }
        if *name == "database.sql" {
            dump = size.parse().unwrap_or(0);
        }
    }
    (files, dump)
}

/// The night-by-night table.
fn nights_table(b: &Bench, rows: &[Night]) -> String {
    let (files, bytes, dump) = b.workload;
    let mut md = format!(
        "### Issue 13: {} nights of workload `{}` ({} files, {:.0} MiB of files, {:.0} MiB database dump at night 1; each later night +{} MiB of new uploads, +{} posts)\n\n",
        rows.len(),
        b.size.name,
        files,
        mib(bytes),
        mib(dump),
        GROW_FILES_MIB.iter().sum::<u64>(),
        GROW_POSTS
    );
    md += &format!(
        "wpbackup: `\"differential\": {}`. restic 0.14: the site's directory and the dump written to a file beside it before each backup (the same `mariadb-dump` command; its time counted), `--time` of the night. Full-only wpbackup: no `differential`; each night's archive was uploaded to its own bucket, its size recorded and the previous night's deleted to save disk, so its \"stored\" is the sum of the sizes. Uploaded: what the night added to the bucket (restic: the repository's growth); stored: the bucket's total; MiB.\n\n",
        b.policy
    );
    md += "| night | date | wpbackup archive | wpbackup uploaded | wpbackup stored | wpbackup wall | restic uploaded | restic stored | restic wall | full-only uploaded | full-only stored | full-only wall |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for r in rows {
        let cell = |s: &Step, v: u64| format!("{:.1}{}", mib(v), failed(s));
        md += &format!(
            "| {} | {} | {} | {} | {} | {:.2} s | {} | {} | {:.2} s | {} | {} | {:.2} s |\n",
            r.n,
            r.at.format("%Y-%m-%d"),
            r.kind,
            cell(&r.diff, r.diff.uploaded),
            cell(&r.diff, r.diff.stored),
            r.diff.wall,
            cell(&r.restic, r.restic.uploaded),
            cell(&r.restic, r.restic.stored),
            r.restic.wall,
            cell(&r.full, r.full.uploaded),
            cell(&r.full, r.full.stored),
            r.full.wall,
        );
    }
    md
}

/// The unchanged site's rows of the summary.
fn unchanged_rows(u: &Unchanged, nights: usize) -> String {
    let mut md = String::new();
    md += &format!(
        "| unchanged site (a bucket and a repository of their own; untimed first run): wpbackup's differential / restic's second backup, wall | {:.2} s / {:.2} s = {:.2}x | less than 1x | {} |\n",
        u.diff.wall,
        u.restic_second.wall,
        u.diff.wall / u.restic_second.wall.max(0.001),
        verdict(u.diff.ok && u.restic_second.ok && u.diff.wall < u.restic_second.wall)
    );
    md += &format!(
        "| unchanged site: wpbackup uploaded (restic: {:.2} MiB) | {:.2} MiB: {} files, database.sql {:.1} MiB (`mariadb-dump \\| zstd -T0 -3` alone: {:.2} MiB) | the compressed dump + the manifest | {} |\n",
        mib(u.restic_second.uploaded),
        mib(u.diff.uploaded),
        u.members
            .map(|m| m.0.to_string())
            .unwrap_or_else(|| "no differential archive:".into()),
        mib(u.members.map(|m| m.1).unwrap_or(0)),
        mib(u.dump_zst),
        verdict(
            u.members
                .is_some_and(|(files, dump)| files == 0 && dump > 0)
        )
    );
    md += &format!(
        "| the night after night {n} with nothing changed that night, on the {n}-night bucket and repository: wpbackup / restic | {:.2} s, {:.1} MiB up / {:.2} s, {:.1} MiB up | (a level 2 holds what changed since its level 1) | |\n",
        u.diff_next.wall,
        mib(u.diff_next.uploaded),
        u.restic_next.wall,
        mib(u.restic_next.uploaded),
        n = nights
    );
    md
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

/// The figures against issue 13's targets.
fn summary(rows: &[Night], chain: &ChainRestore, u: &Unchanged) -> String {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return String::new();
    };
    let one_full = first.diff.uploaded.max(1);
    let stored_full = last.diff.stored as f64 / one_full as f64;
    let stored_restic = last.diff.stored as f64 / last.restic.stored.max(1) as f64;
    let floor = crate::median(&chain.floor, |s| s.wall);
    let ours = crate::median(&chain.ours, |s| s.wall);
    let restore_ok = chain.ours.iter().chain(&chain.floor).all(|s| s.ok);
    let mut md = format!(
        "\n| after {} nights | measured | target | |\n|---|---|---|---|\n",
        rows.len()
    );
    md += &format!(
        "| wpbackup stored / one full archive (night 1's, {:.1} MiB) | {:.2}x ({:.1} MiB) | at most 3x | {} |\n",
        mib(one_full),
        stored_full,
        mib(last.diff.stored),
        verdict(stored_full <= 3.0)
    );
    md += &format!(
        "| wpbackup stored / restic's repository ({:.1} MiB) | {:.2}x | at most 2x | {} |\n",
        mib(last.restic.stored),
        stored_restic,
        verdict(stored_restic <= 2.0)
    );
    md += &format!(
        "| full-only wpbackup stored / one full archive | {:.2}x ({:.1} MiB) | (today) | |\n",
        last.full.stored as f64 / one_full as f64,
        mib(last.full.stored)
    );
    md += &unchanged_rows(u, rows.len());
    md += &format!(
        "| restore of the longest chain (night {}: {} archives) / its floor, {} run(s), medians | {:.2} s / {:.2} s = {:.2}x | at most 1.3x | {} |\n",
        chain.night,
        chain.keys.len(),
        chain.floor.len(),
        ours,
        floor,
        ours / floor.max(0.001),
        verdict(restore_ok && chain.differences.is_empty() && ours <= 1.3 * floor)
    );
    if !chain.differences.is_empty() {
        md += &format!(
            "\nThe restore and its floor disagree: {}.\n",
            chain.differences.join("; ")
        );
    }
    md
}
