#!/usr/bin/env bash
# The soak under faults (issue 15 item 3): hundreds of `wpbackup backup` runs of three
# WordPress sites to two S3 servers, each with a fault drawn from a seeded list (the primary
# killed, stalled or answering 500; MariaDB killed or stalled; SIGTERM or SIGKILL to wpbackup;
# the local storage full; D1 answering 500), and the invariants checked after every run.
# Prints a table and appends it to RELIABILITY.md.
#
#   scripts/soak.sh [--runs N] [--seed S] [--minutes M]     # defaults: 300 runs, seed 15, 30 min
#   scripts/soak.sh --differential ...   # config.json `differential: {}`, a site changed each run
#
# Everything runs on loopback, on the test harness's servers (MariaDB, php, s3s-fs, miniflare).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
scripts/setup.sh   # the test harness's servers and packages, when missing
# shellcheck disable=SC2016 # the backquotes are markdown, not a command
[ -f RELIABILITY.md ] || printf '# Reliability\n\nMade by `scripts/soak.sh`; see its header.\n\n' > RELIABILITY.md
cargo bench --quiet --bench soak -- --bench --out RELIABILITY.md "$@"
