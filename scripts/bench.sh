#!/usr/bin/env bash
# The benchmark (issue 6): builds a deterministic WordPress workload on throwaway servers and
# times `wpbackup backup` and `restore` side by side with the floor (dump & tar | zstd to
# /dev/null), the original tool's way (files, then aws s3 cp), the same streamed, restic's and
# borg's first backup, in one run on this machine. Prints a table and appends it to
# BENCHMARKS.md.
#
#   scripts/bench.sh                          # small workload, 3 runs
#   scripts/bench.sh --size full --runs 3     # 800 MiB media, 10,000 code files, 100,000 posts
#   scripts/bench.sh --size full --runs 5 --only wpbackup --no-restore
#                     # issue 25's paired ratios: the backup to a directory against the directory
#                     # floor (dump beside tar | zstd -3 -T0 into one file, synced), to S3 against
#                     # the /dev/null floor's CPU; and issue 23's cost of signing and checking.
#                     # WPBACKUP_BENCH_BEFORE=/path/to/an/older/wpbackup adds that binary's
#                     # backup to a directory, paired with the same floor in the same runs
#   scripts/bench.sh --size 3x | files100k
#   scripts/bench.sh --rewrite-rows 100000,1000000   # restore --url's memory (issue 12 item 5)
#   scripts/bench.sh --size full --nights 30  # differential backups (issue 13)
#   scripts/bench.sh --size small --nights 5  # the same, a quick try
#   scripts/bench.sh --files 1000000          # peak RSS at a million files (issue 25)
#   scripts/bench.sh --pitr --runs 3          # point-in-time recovery (issue 27): restore --at
#                     # after a day of 10,000 orders (--orders N) against the nightly point's
#                     # restore plus mariadb-binlog | mariadb by hand; a shipping run with
#                     # nothing new (wall, and the S3 requests s3s-fs logged)
#
# --nights N (issue 13): night 1 backs up the --size workload, each later night first grows the
# site deterministically (~5 MiB of new incompressible uploads, 100 posts with a comment and a
# meta row each) and the nights are simulated (WPBACKUP_NOW, restic --time: night n is
# 2026-12-01T03:00Z + n-1 days). Each night runs, against the same S3 server, one bucket each:
# wpbackup with differentials (config "differential": its defaults, a full every 30 days, a
# level 1 every 6, level 2 on the other nights), restic (the site's directory and the dump written to a file beside it before each
# backup: both tools get the same files and the same dump) and full-only wpbackup (its
# archive really uploaded, its size recorded, the previous night's deleted to save disk).
# The table: bytes uploaded and stored and wall time night by night; then the restore of the
# longest chain (full + level 1 + level 2) against its floor (each archive zstd -d | tar -x in
# turn, then mariadb < database.sql; --runs sets the runs, default 1) and an unchanged night
# (wpbackup's differential against restic's second backup of the same site); the ratios
# against issue 13's targets. --policy JSON: another config.json "differential" to measure.
# --size full --nights 30 --runs 3 took 10 minutes and about 15 GB
# of temporary disk here (2 cores).
#
# Everything runs on loopback. Baselines that are not installed are installed from Debian's
# packages when possible (restic, borgbackup, awscli), else left out of the table.
set -euo pipefail
cd "$(dirname "$0")/.."

# --files N (issue 25): memory on a site of N small files; see scripts/bench-files.sh.
if [ "${1:-}" = "--files" ]; then exec scripts/bench-files.sh "${2:?--files N}"; fi

scripts/setup.sh   # the test harness's servers and packages, when missing
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
command -v restic >/dev/null 2>&1 || missing+=(restic)
command -v borg >/dev/null 2>&1 || missing+=(borgbackup)
[ -x /usr/bin/aws ] || missing+=(awscli)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}" >&2
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } \
    || echo "   (could not install them: those baselines are left out)" >&2
fi
# Debian's awscli, not a pip one that may shadow it.
export PATH="/usr/bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
command -v s3s-fs >/dev/null 2>&1 || cargo install s3s-fs@0.14.1 --features binary --locked --quiet

# shellcheck disable=SC2016 # the backquotes are markdown, not a command
[ -f BENCHMARKS.md ] || printf '# Benchmarks\n\nMade by `scripts/bench.sh`; every table is one run on one machine.\n\n' > BENCHMARKS.md
{ printf '## %s, %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(uname -m), $(nproc) cores"; } >> BENCHMARKS.md
cargo bench --quiet --bench pipeline -- --bench --out BENCHMARKS.md "$@"
