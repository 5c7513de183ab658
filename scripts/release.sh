#!/usr/bin/env bash
# scripts/release.sh: a portable wpbackup binary for servers with no Rust toolchain.
#
#   scripts/release.sh                 # x86_64 Linux, glibc 2.17 or later, into dist/
#   scripts/release.sh --glibc 2.28    # require a newer glibc (smaller risk, fewer old servers)
#   scripts/release.sh --out DIR
#
# The binary is linked against an old glibc with cargo-zigbuild (zig as the linker, from
# PyPI's `ziglang`), so it runs on any x86_64 Linux whose glibc is at least the one asked for
# (2.17: CentOS/RHEL 7, Debian 8, Ubuntu 14.04 and everything newer). Everything else it needs
# (SQLite, zstd, TLS with Mozilla's roots) is inside. The musl target would make a fully static
# binary, but its standard library cannot be downloaded on the build machines here.
#
# Install it on a server with `./deploy.sh --binary dist/wpbackup-...` (locally or over SSH).
# The script prints the binary's size, the newest glibc symbol version it needs (read from the
# binary itself with objdump, so the claim is checked, not assumed), its sha256, and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

GLIBC="2.17"
OUT="dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --glibc) GLIBC="${2:?--glibc needs a version such as 2.17}"; shift 2 ;;
    --out) OUT="${2:?--out needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "release.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$CARGO_BIN:$PATH"
if ! python3 -c 'import ziglang' >/dev/null 2>&1; then
  echo "== installing zig (PyPI: ziglang)" >&2
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check ziglang
fi
if ! command -v cargo-zigbuild >/dev/null 2>&1; then
  echo "== installing cargo-zigbuild" >&2
  cargo install cargo-zigbuild --locked --quiet
fi
command -v objdump >/dev/null 2>&1 || { echo "release.sh: objdump (binutils) is needed to check the glibc requirement" >&2; exit 1; }

TRIPLE="x86_64-unknown-linux-gnu"
echo "== building wpbackup for $TRIPLE, glibc $GLIBC" >&2
cargo zigbuild --release --locked --target "$TRIPLE.$GLIBC"

VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
BUILT="${CARGO_TARGET_DIR:-target}/$TRIPLE/release/wpbackup"
mkdir -p "$OUT"
DEST="$OUT/wpbackup-$VERSION-x86_64-linux-glibc$GLIBC"
cp "$BUILT" "$DEST"
objcopy --strip-all "$DEST"
chmod 0755 "$DEST"

# The newest GLIBC_x.y symbol version the binary references is the glibc it needs.
NEEDS="$(objdump -T "$DEST" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)"
if [ "$(printf '%s\n%s\n' "$NEEDS" "$GLIBC" | sort -V | tail -1)" != "$GLIBC" ]; then
  echo "release.sh: the binary needs glibc $NEEDS, newer than the $GLIBC asked for" >&2
  exit 1
fi
RUNS="$("$DEST" --version)"
SIZE="$(stat -c %s "$DEST")"
printf '%s\n' \
  "binary:        $DEST" \
  "size:          $SIZE bytes ($((SIZE / 1024 / 1024)) MiB, stripped)" \
  "needs:         glibc $NEEDS or later (x86_64 Linux); nothing else but the mariadb client tools" \
  "dynamic libs:  $(objdump -p "$DEST" | awk '/NEEDED/ {print $2}' | tr '\n' ' ')" \
  "sha256:        $(sha256sum "$DEST" | cut -d' ' -f1)" \
  "runs here:     $RUNS (this machine: glibc $(getconf GNU_LIBC_VERSION | cut -d' ' -f2))"
