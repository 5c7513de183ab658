// What the pages and the JSON API show, built from the rows of queries.mjs: each site's label
// with the same rule as `wpbackup report` (src/report/mod.rs):
//   FAILED  its newest run is an ERROR;
//   STALE   no run stored an archive (SUCCESS or WARNING) in the period (default 24h);
//   WARNING its newest run stored, with something a person should know;
//   OK      otherwise.
// A site "needs attention" when FAILED or STALE; those come first.

/// Sites silent longer than this are taken as retired (as `report --fleet` does).
export const LOOKBACK_DAYS = 30;

/// `30m`, `24h`, `7d`, `2w`, `90s` -> milliseconds, or null when it is not such a period.
export function parsePeriod(text) {
  const m = /^(\d+)(s|m|min|h|d|w)$/.exec(String(text).trim());
  if (!m || Number(m[1]) <= 0) return null;
  const unit = { s: 1, m: 60, min: 60, h: 3600, d: 86400, w: 604800 }[m[2]];
  return Number(m[1]) * unit * 1000;
}

/// `YYYY-MM-DD HH:MM:SS` (UTC), as backups.db writes times.
export function sqlTime(ms) {
  return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
}

/// Milliseconds since the epoch of a `YYYY-MM-DD HH:MM:SS` UTC time (null when absent).
export function parseSqlTime(text) {
  if (!text) return null;
  const ms = Date.parse(String(text).replace(" ", "T") + "Z");
  return Number.isNaN(ms) ? null : ms;
}

/// A storage failed before the one that took the archive (the wording of src/backup/outcome.rs).
export function failedOver(details) {
  return /\bfailed first: /.test(details ?? "");
}

/// The fleet: every site with its label, attention first. `now` and `periodMs` in ms.
export function fleetModel(rows, now, periodMs, periodText) {
  const since = sqlTime(now - periodMs);
  const sites = rows.map((r) => {
    const failed = r.status === "ERROR";
    const stale = !(r.stored_at && r.stored_at >= since);
    const label = failed ? "FAILED" : stale ? "STALE" : r.status === "WARNING" ? "WARNING" : "OK";
    return {
      server_id: r.server_id,
      site: r.site_name,
      label,
      needs_attention: failed || stale,
      last_run: {
        timestamp: r.timestamp,
        status: r.status,
        details: r.details,
        storage: r.storage_name,
        archive_key: r.archive_key,
        duration_secs: r.duration_secs,
      },
      last_success: r.stored_at ?? null,
      // The newest run stored its archive on a lower-priority storage (as the report says it).
      failover: r.status !== "ERROR" && failedOver(r.details),
      last_archive: r.archive
        ? {
            key: r.archive,
            storage: r.archive_storage,
            bytes: r.archive_size,
            created_at: r.archive_at,
          }
        : null,
    };
  });
  sites.sort(
    (a, b) =>
      Number(b.needs_attention) - Number(a.needs_attention) ||
      a.server_id.localeCompare(b.server_id) ||
      a.site.localeCompare(b.site),
  );
  const servers = [...new Set(sites.map((s) => s.server_id))].sort();
  return {
    generated_at: sqlTime(now),
    period: periodText,
    since,
    servers,
    attention: sites.filter((s) => s.needs_attention).length,
    sites,
  };
}

/// One site: its runs and archives, newest first, and its failures and warnings.
export function siteModel(serverId, siteName, runs, archives) {
  return {
    server_id: serverId,
    site: siteName,
    runs: runs.map((r) => ({
      timestamp: r.timestamp,
      status: r.status,
      details: r.details,
      storage: r.storage_name,
      archive_key: r.archive_key,
      duration_secs: r.duration_secs,
      failover: failedOver(r.details),
    })),
    archives: archives.map((a) => ({
      key: a.filename,
      storage: a.storage_name,
      endpoint: a.s3_endpoint,
      bucket: a.s3_bucket,
      bytes: a.file_size,
      sha256: a.sha256,
      created_at: a.created_at,
      duration_secs: a.duration_secs,
    })),
  };
}

/// `1.5 GiB`, as wpbackup prints sizes.
export function humanBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/// `3 h ago`, `2 d 4 h ago`, `never`.
export function ago(then, now) {
  const ms = parseSqlTime(then);
  if (ms === null) return "never";
  const mins = Math.max(0, Math.floor((now - ms) / 60000));
  if (mins < 60) return `${mins} min ago`;
  const hours = Math.floor(mins / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h ago`;
}

/// `4.2s`, `3m 05s`, `2h 07m`: src/output.rs's `human_duration`, the same rounding (to the
/// nearest unit shown, so 119.6 s is `2m 00s`, never `1m 60s`), for `report --html` to match
/// this page (tests/dashboard.rs compares the two).
export function humanDuration(secs) {
  if (secs === null || secs === undefined) return "";
  const s = Math.max(0, Number(secs)) || 0; // NaN too
  const tenths = Math.round(s * 10);
  if (tenths < 600) return `${(tenths / 10).toFixed(1)}s`;
  const whole = Math.round(s);
  if (whole < 3600) return `${Math.floor(whole / 60)}m ${String(whole % 60).padStart(2, "0")}s`;
  const mins = Math.round(s / 60);
  return `${Math.floor(mins / 60)}h ${String(mins % 60).padStart(2, "0")}m`;
}
