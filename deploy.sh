#!/usr/bin/env bash
# deploy.sh: install wpbackup and its timers on this server or on others over SSH.
#
#   ./deploy.sh                        build the release binary and install it here
#   ./deploy.sh --binary PATH          install a binary built elsewhere
#   ./deploy.sh root@web-01 web-02     install on those servers over SSH (or DEPLOY_HOSTS in .env)
#   ./deploy.sh --dry-run ...          show what would be done, change nothing
#
# What it does on each server, idempotently (a second run changes nothing):
#   - installs the binary as $PREFIX/bin/wpbackup (0755);
#   - creates the home directory (0700) and keeps an existing config.json and .env as they are;
#   - installs systemd/wpbackup{,-report,-drill}.{service,timer} with the paths and the backup
#     time filled in (the backup unit may write to the home directory and to the directories
#     of config.json's local storages: run deploy.sh again after adding one), and enables the
#     timers: the nightly backup, the weekly report (only when the server's .env sets
#     SMTP_HOST: without mail settings it is left disabled, saying how to enable it) and the
#     weekly restore drill; without systemd it writes cron entries instead;
#   - when config.json has `binlog` (point-in-time recovery), also installs and enables
#     systemd/wpbackup-binlog.{service,timer}, shipping the binary log every
#     binlog.every_minutes (default 5), or a cron entry for it; without `binlog` they are not
#     installed (and a timer enabled by an earlier run is disabled).
#
# Options:
#   --binary PATH   install this binary instead of building one with cargo
#   --home DIR      wpbackup's home directory (default /opt/wordpress-backup)
#   --time HH:MM    daily backup time (default BACKUP_TIME from .env, else 03:00)
#   --env-file FILE where DEPLOY_HOSTS and BACKUP_TIME are read (default ./.env)
#   --dry-run       print every change instead of making it
#   -h, --help      this text
#
# Environment (for packaging and tests; every installed path is under $DESTDIR):
#   DESTDIR            root to install into (default: the real root)
#   PREFIX             default /usr/local
#   SYSTEMD_UNIT_DIR   default /etc/systemd/system
#   WPBACKUP_SYSTEMD   auto (default: systemd if /run/systemd/system exists), yes or no
#   WPBACKUP_CRONTAB   cron file used without systemd (default /etc/cron.d/wpbackup)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BINARY=""
HOME_DIR="/opt/wordpress-backup"
TIME=""
ENV_FILE="$SCRIPT_DIR/.env"
DRY_RUN=0
HOSTS=()

DESTDIR="${DESTDIR:-}"
PREFIX="${PREFIX:-/usr/local}"
SYSTEMD_UNIT_DIR="${SYSTEMD_UNIT_DIR:-/etc/systemd/system}"
WPBACKUP_SYSTEMD="${WPBACKUP_SYSTEMD:-auto}"
WPBACKUP_CRONTAB="${WPBACKUP_CRONTAB:-/etc/cron.d/wpbackup}"
UNITS=(wpbackup.service wpbackup.timer wpbackup-report.service wpbackup-report.timer
  wpbackup-drill.service wpbackup-drill.timer)
TIMERS=(wpbackup.timer wpbackup-report.timer wpbackup-drill.timer)
BINLOG_UNITS=(wpbackup-binlog.service wpbackup-binlog.timer)
CHANGES=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
say() { printf '%s\n' "$*"; }
# Report a change made (silent in a dry run, where `change` already said what it would do).
did() { [ "$DRY_RUN" = 1 ] || say "$*"; }
die() { printf 'deploy.sh: error: %s\n' "$*" >&2; exit 1; }

# Run a command that changes something, or only show it with --dry-run.
change() {
  CHANGES=$((CHANGES + 1))
  if [ "$DRY_RUN" = 1 ]; then
    say "would run: $*"
  else
    "$@"
  fi
}

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BINARY="${2:?--binary needs a path}"; shift 2 ;;
    --home) HOME_DIR="${2:?--home needs a directory}"; shift 2 ;;
    --time) TIME="${2:?--time needs HH:MM}"; shift 2 ;;
    --env-file) ENV_FILE="${2:?--env-file needs a file}"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) HOSTS+=("$1"); shift ;;
  esac
done

# A variable from the .env file, without sourcing it (it holds secrets and is not a script).
env_value() {
  [ -f "$ENV_FILE" ] || return 0
  sed -n "s/^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}$1=//p" "$ENV_FILE" | tail -n 1 | sed "s/^['\"]//; s/['\"]\$//"
}

[ -n "$TIME" ] || TIME="$(env_value BACKUP_TIME)"
[ -n "$TIME" ] || TIME="03:00"
[[ "$TIME" =~ ^([01][0-9]|2[0-3]):[0-5][0-9]$ ]] || die "--time $TIME: use HH:MM, 24-hour (03:00)"
[[ "$HOME_DIR" = /* ]] || die "--home $HOME_DIR: must be an absolute path"
if [ ${#HOSTS[@]} -eq 0 ]; then
  read -r -a HOSTS <<< "$(env_value DEPLOY_HOSTS | tr ',' ' ')"
fi

build_binary() {
  if [ -n "$BINARY" ]; then
    [ -x "$BINARY" ] || die "--binary $BINARY: not an executable file"
    return
  fi
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust, or pass --binary PATH"
  say "building the release binary (cargo build --release --locked)"
  (cd "$SCRIPT_DIR" && cargo build --release --locked --quiet)
  BINARY="$SCRIPT_DIR/target/release/wpbackup"
}

# Install $1 as $2 with mode $3, unless it is already there, identical, with that mode.
install_file() {
  local src="$1" dest="$2" mode="$3"
  if [ -f "$dest" ] && cmp -s "$src" "$dest" && [ "$(stat -c %a "$dest")" = "$mode" ]; then
    say "unchanged: $dest"
    return 1
  fi
  change install -D -m "$mode" "$src" "$dest"
  did "installed: $dest"
}

# The ReadWritePaths= lines of config.json's local storages, written to $1: the installed
# binary itself reads config.json (`wpbackup storage-paths`, hidden), so no JSON reader is
# needed here. Without a readable config.json the unit can write to the home directory only.
storage_paths() {
  local out="$1" home="$DESTDIR$HOME_DIR" p paths
  : > "$out"
  [ -f "$home/config.json" ] || return 0
  if ! paths="$(env -u WPBACKUP_HOME "$BINARY" --quiet --home "$home" storage-paths)"; then
    say "warning: cannot read the local storages from $HOME_DIR/config.json (above);" \
      "the backup unit can write to $HOME_DIR only"
    return 0
  fi
  while IFS= read -r p; do
    [ -n "$p" ] || continue
    if [[ "$p" != /* || "$p" == *[\"\\]* ]]; then
      say "warning: local storage path $p left out of ReadWritePaths (not absolute, or quoted)"
      continue
    fi
    # "-": a directory missing at start is not an error; %% is a literal % in a unit file.
    printf 'ReadWritePaths=-"%s"\n' "${p//%/%%}" >> "$out"
  done <<< "$paths"
}

# config.json's binlog.every_minutes, or nothing when it has no `binlog` (or cannot be read),
# written to $1: read by the installed binary, as storage_paths does.
binlog_every() {
  local out="$1" home="$DESTDIR$HOME_DIR" every
  : > "$out"
  [ -f "$home/config.json" ] || return 0
  if ! every="$(env -u WPBACKUP_HOME "$BINARY" --quiet --home "$home" binlog-every)"; then
    say "warning: cannot read binlog from $HOME_DIR/config.json (above);" \
      "the binary log shipping is not installed"
    return 0
  fi
  if [[ -n "$every" && ! "$every" =~ ^[0-9]+$ ]]; then
    say "warning: binlog.every_minutes $every is not a number; the binary log shipping is not installed"
    return 0
  fi
  printf '%s' "$every" > "$out"
}

# A unit file with this server's paths and time filled in; the backup and binary log units get
# the local storages' ReadWritePaths= after the home directory's, the binary log timer its
# interval.
render_unit() {
  local extra=/dev/null every
  case "$1" in wpbackup.service|wpbackup-binlog.service) extra="$TMP/storage-paths" ;; esac
  every="$(cat "$TMP/binlog-every" 2>/dev/null || true)"
  sed -e "\#^ReadWritePaths=/opt/wordpress-backup\$#r $extra" \
      -e "s#^OnUnitActiveSec=5min\$#OnUnitActiveSec=${every:-5}min#" \
      -e "s#/usr/local/bin/wpbackup#$PREFIX/bin/wpbackup#g" \
      -e "s#/opt/wordpress-backup#$HOME_DIR#g" \
      -e "s#^OnCalendar=\*-\*-\* 03:00:00#OnCalendar=*-*-* $TIME:00#" \
      "$SCRIPT_DIR/systemd/$1"
}

has_systemd() {
  case "$WPBACKUP_SYSTEMD" in
    yes) return 0 ;;
    no) return 1 ;;
    *) [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 ;;
  esac
}

# Whether the server's .env sets SMTP_HOST to something (the weekly report is mailed only then).
smtp_configured() {
  local q="[\"']"
  [ -f "$1" ] && grep -Eq "^[[:space:]]*(export[[:space:]]+)?SMTP_HOST=[[:space:]]*($q?)[^[:space:]\"'#]" "$1"
}

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

deploy_local() {
  local tmp="$TMP" units_changed=0 unit home="$DESTDIR$HOME_DIR"

  install_file "$BINARY" "$DESTDIR$PREFIX/bin/wpbackup" 755 || true

  if [ ! -d "$home" ]; then
    change install -d -m 700 "$home"
    did "created: $home (0700)"
  elif [ "$(stat -c %a "$home")" != 700 ]; then
    change chmod 700 "$home"
    did "fixed: $home is now 0700"
  else
    say "unchanged: $home"
  fi
  for f in config.json .env; do
    if [ -f "$home/$f" ]; then
      say "kept: $home/$f"
    fi
  done
  if [ ! -f "$home/config.json" ]; then
    say "note: no $HOME_DIR/config.json yet: run \`wpbackup configure\` on this server"
  fi

  binlog_every "$tmp/binlog-every"
  local every
  every="$(cat "$tmp/binlog-every")"

  if has_systemd; then
    local ctl=(systemctl) units=("${UNITS[@]}") timers=("${TIMERS[@]}")
    [ -n "$DESTDIR" ] && ctl=(systemctl --root="$DESTDIR")
    if [ -n "$every" ]; then
      units+=("${BINLOG_UNITS[@]}")
      timers+=(wpbackup-binlog.timer)
    elif "${ctl[@]}" is-enabled --quiet wpbackup-binlog.timer 2>/dev/null; then
      if [ -n "$DESTDIR" ]; then
        change "${ctl[@]}" disable --quiet wpbackup-binlog.timer
      else
        change systemctl disable --now --quiet wpbackup-binlog.timer
      fi
      did "disabled: wpbackup-binlog.timer: config.json has no binlog any more"
    fi
    storage_paths "$tmp/storage-paths"
    for unit in "${units[@]}"; do
      render_unit "$unit" > "$tmp/$unit"
      if install_file "$tmp/$unit" "$DESTDIR$SYSTEMD_UNIT_DIR/$unit" 644; then
        units_changed=1
      fi
    done
    if [ "$units_changed" = 1 ] && [ -z "$DESTDIR" ]; then
      change systemctl daemon-reload
    fi
    for unit in "${timers[@]}"; do
      if "${ctl[@]}" is-enabled --quiet "$unit" 2>/dev/null; then
        say "unchanged: $unit enabled"
      elif [ "$unit" = wpbackup-report.timer ] && ! smtp_configured "$home/.env"; then
        say "not enabled: $unit: no SMTP_HOST in $HOME_DIR/.env, so there is no mail to send" \
          "(\`wpbackup report\` prints the report); set the SMTP settings there and run deploy.sh again," \
          "or \`systemctl enable --now $unit\`"
      elif [ -n "$DESTDIR" ]; then
        change "${ctl[@]}" enable --quiet "$unit"
        did "enabled: $unit"
      else
        change systemctl enable --now --quiet "$unit"
        did "enabled and started: $unit"
      fi
    done
  else
    local h="${TIME%%:*}" m="${TIME##*:}"
    {
      say "# wpbackup (installed by deploy.sh): nightly backup, weekly report and restore drill; no systemd here."
      say "SHELL=/bin/sh"
      say "$((10#$m)) $((10#$h)) * * * root WPBACKUP_HOME=$HOME_DIR nice -n 19 $PREFIX/bin/wpbackup backup >>$HOME_DIR/cron.log 2>&1"
      say "0 7 * * 1 root WPBACKUP_HOME=$HOME_DIR $PREFIX/bin/wpbackup report --since 7d >>$HOME_DIR/cron.log 2>&1"
      say "0 5 * * 0 root WPBACKUP_HOME=$HOME_DIR TMPDIR=/var/tmp nice -n 19 $PREFIX/bin/wpbackup drill >>$HOME_DIR/cron.log 2>&1"
      if [ -n "$every" ]; then
        say "$(cron_every "$every") root WPBACKUP_HOME=$HOME_DIR TMPDIR=/var/tmp nice -n 10 $PREFIX/bin/wpbackup --quiet binlog >>$HOME_DIR/cron.log 2>&1"
      fi
    } > "$tmp/cron"
    install_file "$tmp/cron" "$DESTDIR$WPBACKUP_CRONTAB" 644 || true
  fi
}

# The cron schedule closest to every $1 minutes: */N minutes below an hour, else whole hours
# (cron cannot say "every 90 minutes"; rounded down, with a warning).
cron_every() {
  local n="$1"
  if [ "$n" -lt 60 ]; then
    printf '*/%s * * * *' "$n"
  else
    [ $((n % 60)) = 0 ] || say "warning: cron runs the binary log shipping every $((n / 60)) hour(s), not every $n minutes" >&2
    printf '0 */%s * * *' "$((n / 60))"
  fi
}

deploy_remote() {
  local host="$1" dir
  say "== $host"
  # The directory is made by mktemp on the remote side: a name chosen here could be created
  # first by a local user there, who would then own the script that runs under sudo.
  dir="$(ssh -o BatchMode=yes "$host" 'mktemp -d /tmp/wpbackup-deploy.XXXXXXXXXX')" \
    || die "$host: cannot create a temporary directory (mktemp -d) over ssh"
  [[ "$dir" =~ ^/tmp/wpbackup-deploy\.[A-Za-z0-9]{10}$ ]] \
    || die "$host: mktemp -d answered an unexpected path: $dir"
  local args=(--home "$HOME_DIR" --time "$TIME" --binary "$dir/wpbackup")
  [ "$DRY_RUN" = 1 ] && args+=(--dry-run)
  if [ "$DRY_RUN" = 1 ]; then
    say "would copy wpbackup, deploy.sh and systemd/ to $host:$dir and run deploy.sh there"
  fi
  # The files are copied even in a dry run, so that the remote side can say what it would do.
  scp -q -o BatchMode=yes "$BINARY" "$SCRIPT_DIR/deploy.sh" "$host:$dir/"
  scp -q -r -o BatchMode=yes "$SCRIPT_DIR/systemd" "$host:$dir/"
  local quoted
  quoted="$(printf ' %q' "${args[@]}")"
  # shellcheck disable=SC2029 # the arguments are meant to expand here, quoted
  ssh -o BatchMode=yes "$host" \
    "if [ \"\$(id -u)\" = 0 ]; then s=; else s='sudo -n'; fi; \$s bash $dir/deploy.sh$quoted; rc=\$?; rm -rf $dir; exit \$rc"
}

build_binary
if [ ${#HOSTS[@]} -eq 0 ]; then
  deploy_local
  if [ "$DRY_RUN" = 1 ]; then
    say "dry run: $CHANGES change(s) would be made"
  else
    say "done: $CHANGES change(s)"
  fi
else
  for host in "${HOSTS[@]}"; do
    deploy_remote "$host" || die "deploying to $host failed"
  done
fi
