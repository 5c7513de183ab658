#!/usr/bin/env bash
# `scripts/bench.sh --files N` (issue 25): memory and time of wpbackup on a site of N small
# files, against restic and the `tar | zstd` floor. A deterministic site (N files of 200-2,200
# bytes, 1,000 a directory, under wp-content/uploads; a small WordPress database in a
# throwaway MariaDB on a socket) is backed up to a local storage with differentials on:
# night 1 a full, night 2 (one file touched) a level 1, night 3 (nothing changed) a level 2;
# then the chain restored (`restore --only wp-content --to DIR`: the files of all three
# archives, newest first). Also a full with differentials off, restic's first and second
# backup (one file touched) of the same directory, and `tar -c | zstd -3 > /dev/null`.
# Wall time and peak RSS (GNU time's "Maximum resident set size") side by side; the index's
# bytes per path. Appends the table to BENCHMARKS.md. Needs the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:?usage: scripts/bench.sh --files N}
BIN=${WPBACKUP_BIN:-$PWD/target/release/wpbackup}
[ -x "$BIN" ] || cargo build --release --quiet
W=$(mktemp -d /var/tmp/wpb-files.XXXXXX)
DBPID=""
cleanup() {
  if [ -n "$DBPID" ]; then kill "$DBPID" 2>/dev/null || true; wait "$DBPID" 2>/dev/null || true; fi
  rm -rf "$W"
}
trap cleanup EXIT

echo "== MariaDB on $W/db.sock" >&2
mariadb-install-db --no-defaults --datadir="$W/db" --auth-root-authentication-method=normal >/dev/null 2>&1
mariadbd --no-defaults --datadir="$W/db" --socket="$W/db.sock" --skip-networking --user=root \
  --pid-file="$W/db.pid" --log-error="$W/db.err" &
DBPID=$!
for _ in $(seq 100); do [ -S "$W/db.sock" ] && break; sleep 0.2; done
sql() { mariadb --no-defaults -S "$W/db.sock" -uroot "$@"; }
sql -e "CREATE DATABASE wp; CREATE USER wp@localhost IDENTIFIED BY 'benchpw'; GRANT ALL ON wp.* TO wp@localhost;
  CREATE TABLE wp.wp_options (option_id INT AUTO_INCREMENT PRIMARY KEY, option_name VARCHAR(191), option_value LONGTEXT);
  INSERT INTO wp.wp_options (option_name, option_value) VALUES ('siteurl','http://bench.test'),('home','http://bench.test');"

echo "== generating $N files" >&2
python3 - "$W/site" "$N" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(f"{root}/wp-includes")
open(f"{root}/wp-includes/version.php", "w").write("<?php\n$wp_version = '6.7';\n")
open(f"{root}/wp-config.php", "w").write(
    "<?php\ndefine('DB_NAME', 'wp');\ndefine('DB_USER', 'wp');\ndefine('DB_PASSWORD', 'benchpw');\n"
    f"define('DB_HOST', 'localhost:{os.path.dirname(root)}/db.sock');\n$table_prefix = 'wp_';\n")
x = 12345
for i in range(n):
    d = f"{root}/wp-content/uploads/{i // 1000 // 100:03d}/{i // 1000 % 100:02d}"
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    size = 200 + x % 2000
    body = (f"file {i} " * (size // 8 + 1))[:size]
    with open(f"{d}/image-{i:07d}-150x150.txt", "w") as f:
        f.write(body)
PY
touched="$W/site/wp-content/uploads/000/00/image-0000000-150x150.txt"

home() { # home dir, differential json or empty
  mkdir -p "$1"
  local diff=""
  [ -n "$2" ] && diff=", \"differential\": $2"
  printf '{"server_id": "bench", "sites": [{"name": "big", "path": "%s"}], "storage": [{"name": "local", "type": "local", "priority": 1, "path": "%s/archives"}]%s}\n' \
    "$W/site" "$1" "$diff" > "$1/config.json"
  : > "$1/.env"; chmod 600 "$1/.env"
}
rows=()
measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -v -o "$W/time" "$@" >"$W/out" 2>&1 || { cat "$W/out" >&2; echo "FAILED: $label" >&2; exit 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$W/time")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$W/time")
  echo "   $label: $wall, $rss MiB" >&2
  rows+=("| $label | $wall | $rss MiB |")
}
night() { WPBACKUP_NOW="2026-12-0${1}T03:00:00Z"; export WPBACKUP_NOW; }

home "$W/diff" '{}'
night 1; measure "wpbackup full, differential on" "$BIN" --home "$W/diff" -q backup
touch "$touched"
night 2; measure "wpbackup level 1 (one file touched)" "$BIN" --home "$W/diff" -q backup
night 3; measure "wpbackup level 2 (nothing changed)" "$BIN" --home "$W/diff" -q backup
unset WPBACKUP_NOW
ls "$W/diff/archives"/bench/big/ >&2 || true
index_bytes=$(du -cb "$W/diff/index/big.json" "$W/diff/index/big.trees" 2>/dev/null | tail -1 | cut -f1 || true)
measure "wpbackup restore of the chain (full + level 1 + level 2, files)" \
  "$BIN" --home "$W/diff" -q restore --site big --yes --to "$W/restored" --only wp-content
restored=$(find "$W/restored/wp-content" -type f | wc -l)
rm -rf "$W/restored" "$W/diff/archives"
# The restore's floor: the same files unpacked by tar from one zstd stream (made untimed).
tar -C "$W/site" -cf - wp-content | zstd -3 -q -T0 > "$W/floor.tar.zst"
mkdir "$W/floor"
measure "floor: zstd -d, tar -x of the same wp-content" sh -c "zstd -dc '$W/floor.tar.zst' | tar -C '$W/floor' -xf -"
rm -rf "$W/floor" "$W/floor.tar.zst"
home "$W/plain" ''
night 1; measure "wpbackup full, differential off" "$BIN" --home "$W/plain" -q backup; unset WPBACKUP_NOW
rm -rf "$W/plain/archives"
measure "floor: tar -c, zstd -3 to /dev/null (files only)" sh -c "tar -C '$W/site' -cf - . | zstd -3 -q -T0 > /dev/null"
if ! command -v restic >/dev/null 2>&1; then
  echo "restic is not installed: its rows are left out (apt-get install restic)" >&2
else
  export RESTIC_PASSWORD=bench RESTIC_REPOSITORY="$W/restic"
  restic init -q >/dev/null
  measure "restic first backup (files only)" restic backup -q "$W/site"
  touch "$touched"
  measure "restic second backup (one file touched)" restic backup -q "$W/site"
  rm -rf "$W/restic"
fi

{
  printf '### %s files (`scripts/bench.sh --files %s`), %s, %s cores, release build\n\n' "$N" "$N" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)"
  printf '| run | wall | peak RSS |\n|---|---|---|\n'
  printf '%s\n' "${rows[@]}"
  printf '\nIndex: %s bytes for %s paths (%s bytes a path). Restored files: %s.\n\n' \
    "$index_bytes" "$N" "$(awk -v b="$index_bytes" -v n="$N" 'BEGIN {printf "%.1f", b/n}')" "$restored"
} | tee -a BENCHMARKS.md
