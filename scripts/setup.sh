#!/usr/bin/env bash
# Installs what the tests, the soak and the benchmarks need on a fresh Debian machine (Debian
# packages, miniflare, the dashboard's test tools, aiosmtpd, moto, s3s-fs); does nothing for
# what is there already. Called by scripts/test.sh, scripts/soak.sh and scripts/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '\n== %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# --- Debian packages -------------------------------------------------------------------------
missing=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v mariadb-dump >/dev/null 2>&1 || missing+=(mariadb-client)
command -v php >/dev/null 2>&1 || missing+=(php-cli)
{ command -v php >/dev/null 2>&1 && php -m 2>/dev/null | grep -i '^mysqli$' >/dev/null; } || missing+=(php-mysql)
[ -f /usr/share/wordpress/wp-settings.php ] || missing+=(wordpress)
# A theme is only "recommended" by Debian's wordpress; without one the front page is empty.
[ -d /usr/share/wordpress/wp-content/themes/twentytwentythree ] || missing+=(wordpress-theme-twentytwentythree)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)        # deploy.sh lint
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)      # unit file checks
command -v systemd-nspawn >/dev/null 2>&1 || missing+=(systemd-container) # tests/real_server.rs boots one
{ command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1; } || missing+=(age)
[ -x /usr/bin/chromium ] || missing+=(chromium)                          # the dashboard's browser tests
command -v minisign >/dev/null 2>&1 || missing+=(minisign)                # archive signatures checked by hand (tests/signing.rs)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Some node packages ship npm separately.
if ! command -v npm >/dev/null 2>&1; then
  log "installing npm"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
fi

# --- miniflare, Cloudflare's D1 simulator (tests/d1, pinned by its package-lock.json) --------
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "node $(node --version) is too old for miniflare (needs 20.18 or later)" >&2
  exit 1
fi
if [ ! -f tests/d1/node_modules/.package-lock.json ] \
   || [ tests/d1/package-lock.json -nt tests/d1/node_modules/.package-lock.json ]; then
  log "installing miniflare into tests/d1/node_modules"
  npm ci --prefix tests/d1 --no-audit --no-fund --loglevel=error
fi

# --- the dashboard's test tools (dashboard/: miniflare, puppeteer-core; pinned by its lock) ---
if [ ! -f dashboard/node_modules/.package-lock.json ] \
   || [ dashboard/package-lock.json -nt dashboard/node_modules/.package-lock.json ]; then
  log "installing miniflare and puppeteer-core into dashboard/node_modules"
  npm ci --prefix dashboard --no-audit --no-fund --loglevel=error
fi

# --- python test servers, each pinned, in a directory of its own ---------------------------
# pip_into DIR NAME VERSION [EXTRA]: NAME==VERSION (NAME[EXTRA]) into DIR, unless there.
pip_into() {
  local dir="$1" name="$2" version="$3" spec="$2"
  [ -n "${4:-}" ] && spec="$2[$4]"
  [ -f "$dir/$name-$version.dist-info/METADATA" ] && return 0
  log "installing $spec $version into $dir"
  rm -rf "$dir"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
    --target "$dir" "$spec==$version"
}
# aiosmtpd: the SMTP test server.
pip_into tests/smtp/.pylib aiosmtpd 1.4.6
# moto's S3 server, the storage suite's second S3 implementation (about a minute, once).
# 5.1.22: moto 5.2's new serializer answers CompleteMultipartUpload with a root element
# the AWS SDKs for Rust reject (docs/storage.md).
pip_into tests/moto/.pylib moto 5.1.22 server

# --- s3s-fs, the S3-compatible test server ---------------------------------------------------
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$CARGO_BIN:$PATH"
if ! command -v s3s-fs >/dev/null 2>&1; then
  log "installing s3s-fs 0.14.1 (the S3 test server; about 4 minutes, once)"
  cargo install s3s-fs@0.14.1 --features binary --locked --quiet
fi

