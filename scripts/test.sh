#!/usr/bin/env bash
# The test command: installs what the test suite needs on a fresh Debian machine, then runs it.
#
#   scripts/test.sh            # everything: lint, unit tests, integration tests with real servers
#   scripts/test.sh -- NAME    # only tests whose name contains NAME (arguments after -- go to the test binary)
#
# The integration tests start their own servers (MariaDB, a WordPress site served by php,
# s3s-fs and moto S3 servers, miniflare as a D1 simulator and as the dashboard's Worker, an
# aiosmtpd SMTP server, headless Chromium) on free loopback ports in temporary directories and
# stop them again.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

# Debian packages, node and python test servers, s3s-fs: whatever is missing.
scripts/setup.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# --- lint and tests --------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
log "cargo test"
cargo test --all-targets "$@"
