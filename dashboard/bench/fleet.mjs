// Benchmark (run by hand, not a test): the fleet page of 100 servers x 20 sites x 90 nights
// (180,000 backup_log rows, an s3_archives row per stored run) served by the Worker in
// miniflare. Prints, for the fleet page, a site page and their JSON: the median and slowest
// time of an answer (as a client on 127.0.0.1 sees it) and the rows D1 read for it; first
// with the logs only (servers on a wpbackup without `site_latest`), then after each server's
// `sync-d1` refreshed `site_latest`, then with a tenth of the servers not upgraded.
//
//   node dashboard/bench/fleet.mjs [--servers 100] [--sites 20] [--nights 90] [--runs 15]
//
// The D1 tables are created as `wpbackup sync-d1` creates them (the columns of
// src/logdb/schema.rs, but s3_archives' kind and base_key: the dashboard does not read them)
// and filled inside SQLite by generating statements (one per server), so seeding takes
// seconds. The summary table, its indexes and its refresh are `sync-d1`'s own statements,
// read from src/d1/site_latest.rs.
import { Miniflare } from "miniflare";
import { fileURLToPath } from "node:url";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const SERVERS = arg("servers", 100);
const SITES = arg("sites", 20);
const NIGHTS = arg("nights", 90);
const RUNS = arg("runs", 15);
const TOKEN = "bench-token";

const SCHEMA = [
  `CREATE TABLE backup_log (id INTEGER PRIMARY KEY AUTOINCREMENT,
     timestamp DATETIME DEFAULT CURRENT_TIMESTAMP, status TEXT, details TEXT, site_name TEXT,
     server_id TEXT, local_id INTEGER, db_id TEXT, action TEXT, storage_name TEXT,
     archive_key TEXT, duration_secs REAL)`,
  `CREATE TABLE s3_archives (id INTEGER PRIMARY KEY AUTOINCREMENT, filename TEXT,
     storage_name TEXT, s3_endpoint TEXT, s3_bucket TEXT, file_size INTEGER, server_id TEXT,
     local_id INTEGER, db_id TEXT, site_name TEXT, created_at DATETIME, sha256 TEXT,
     duration_secs REAL)`,
  `CREATE UNIQUE INDEX backup_log_server_db_local ON backup_log (server_id, db_id, local_id)`,
  `CREATE UNIQUE INDEX s3_archives_server_db_local ON s3_archives (server_id, db_id, local_id)`,
];

/// One server's nights: every site each night; site 3 of every 10th server has failed for its
/// last 3 nights, every 7th server's site 5 fails over each night.
function serverStatements(s) {
  const server = `web-${String(s).padStart(3, "0")}`;
  const runs = `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${SITES * NIGHTS - 1}),
    r AS (SELECT i, i / ${NIGHTS} AS site, i % ${NIGHTS} AS night,
      datetime('now', 'start of day', '+3 hours', '-' || (i % ${NIGHTS}) || ' days', '+' || (i / ${NIGHTS}) || ' minutes') AS ts FROM n)`;
  const status = `CASE WHEN ${s % 10 === 0} AND site = 3 AND night < 3 THEN 'ERROR'
                      WHEN ${s % 7 === 0} AND site = 5 THEN 'WARNING' ELSE 'SUCCESS' END`;
  const storage = `CASE WHEN ${s % 7 === 0} AND site = 5 THEN 'secondary' ELSE 'primary' END`;
  const key = `'${server}/site-' || printf('%02d', site) || '/site-' || printf('%02d', site) || '_' || strftime('%Y%m%dT%H%M%SZ', ts) || '.tar.zst'`;
  return [
    `${runs} INSERT INTO backup_log (timestamp, status, details, site_name, server_id, local_id, db_id, action, storage_name, archive_key, duration_secs)
     SELECT ts, ${status},
       CASE ${status} WHEN 'ERROR' THEN 'dump failed: Access denied for user' WHEN 'WARNING' THEN 'stored ' || ${key} || ' on secondary; a storage failed first: primary: connection refused' ELSE 'stored ' || ${key} || ' on primary' END,
       'site-' || printf('%02d', site), '${server}', i + 1, 'db${s}', 'backup',
       CASE ${status} WHEN 'ERROR' THEN NULL ELSE ${storage} END,
       CASE ${status} WHEN 'ERROR' THEN NULL ELSE ${key} END,
       20 + site + (night % 7)
     FROM r`,
    `${runs} INSERT INTO s3_archives (filename, storage_name, s3_endpoint, s3_bucket, file_size, server_id, local_id, db_id, site_name, created_at, sha256, duration_secs)
     SELECT ${key}, ${storage}, 'https://s3.example', 'wp-backups', 50000000 + site * 1000000 + (${NIGHTS} - night) * 10000,
       '${server}', i + 1, 'db${s}', 'site-' || printf('%02d', site), ts, printf('%064d', i), 20 + site
     FROM r WHERE NOT (${status} = 'ERROR')`,
  ];
}

async function seed(mf) {
  const db = await mf.getD1Database("DB");
  await db.batch(SCHEMA.map((sql) => db.prepare(sql)));
  for (let s = 1; s <= SERVERS; s += 1) {
    await db.batch(serverStatements(s).map((sql) => db.prepare(sql)));
  }
  return db.prepare("SELECT COUNT(*) AS n FROM backup_log").first("n");
}

/// `sync-d1`'s summary statements (src/d1/site_latest.rs): its schema and its refresh.
function summarySql() {
  const rust = readFileSync(path.join(root, "../src/d1/site_latest.rs"), "utf8");
  const schema = rust.slice(rust.indexOf("pub const SCHEMA"), rust.indexOf("];"));
  return {
    schema: [...schema.matchAll(/"(CREATE [^"]+)"/g)].map((m) => m[1]),
    refresh: /const REFRESH: &str = "([^"]+)";/.exec(rust)[1],
  };
}

/// Each server's push refreshes its rows of site_latest; returns one refresh's D1 meta.
async function refreshAll(db) {
  const { schema, refresh } = summarySql();
  await db.batch(schema.map((sql) => db.prepare(sql)));
  let meta = null;
  for (let s = 1; s <= SERVERS; s += 1) {
    const r = await db.prepare(refresh).bind(`web-${String(s).padStart(3, "0")}`).run();
    meta ??= r.meta;
  }
  return meta;
}

async function time(url, headers) {
  const times = [];
  let rows = null;
  let bytes = 0;
  for (let i = 0; i < RUNS + 1; i += 1) {
    const t0 = performance.now();
    const res = await fetch(url, { headers });
    const body = await res.text();
    const ms = performance.now() - t0;
    if (res.status !== 200) throw new Error(`${url}: ${res.status} ${body.slice(0, 300)}`);
    rows = res.headers.get("x-d1-rows-read");
    bytes = body.length;
    if (i > 0) times.push(ms); // the first answer also creates the indexes
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)], max: times[times.length - 1], rows, bytes };
}

const dir = mkdtempSync(path.join(tmpdir(), "wpb-dash-bench-"));
// miniflare keeps a cache directory in the temp dir: this one, removed at the end.
process.env.TMPDIR = dir;
const mf = new Miniflare({
  modules: true,
  modulesRoot: root,
  scriptPath: path.join(root, "src/worker.mjs"),
  modulesRules: [{ type: "Text", include: ["**/*.css"] }],
  compatibilityDate: "2025-09-01",
  host: "127.0.0.1",
  port: 0,
  d1Databases: { DB: "bench-db" },
  d1Persist: path.join(dir, "d1"),
  bindings: { DASHBOARD_TOKEN: TOKEN },
});
try {
  const base = await mf.ready;
  const t0 = performance.now();
  const rows = await seed(mf);
  console.log(`seeded ${rows} backup_log rows (${SERVERS} servers x ${SITES} sites x ${NIGHTS} nights) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const headers = { Authorization: `Bearer ${TOKEN}` };
  const first = performance.now();
  await fetch(new URL("/api/fleet", base), { headers }).then((r) => r.text());
  console.log(`first request (creates the dashboard's indexes): ${(performance.now() - first).toFixed(0)} ms`);
  const pages = ["/", "/api/fleet", "/site/web-010/site-03", "/api/site/web-010/site-03"];
  const table = async (title, list) => {
    console.log(`\n${title}\n| page | median ms | slowest ms | D1 rows read | bytes |`);
    console.log(`|---|---:|---:|---:|---:|`);
    for (const p of list) {
      const r = await time(new URL(p, base), headers);
      console.log(`| \`${p}\` | ${r.median.toFixed(0)} | ${r.max.toFixed(0)} | ${r.rows} | ${r.bytes} |`);
    }
  };
  const sites = async () => {
    const doc = await fetch(new URL("/api/fleet", base), { headers }).then((r) => r.json());
    return JSON.stringify(doc.sites);
  };
  await table("from the logs (no site_latest: servers on an older wpbackup)", pages);
  const fromLogs = await sites();
  const db = await mf.getD1Database("DB");
  const meta = await refreshAll(db);
  if ((await sites()) !== fromLogs) throw new Error("site_latest and the logs show different fleets");
  console.log(`\none server's refresh of site_latest (in each sync-d1 request): ${meta.rows_read} rows read, ${meta.rows_written} written`);
  await table("from site_latest (every server's sync-d1 refreshed it)", pages);
  const old = Math.ceil(SERVERS / 10);
  await db.prepare("DELETE FROM site_latest WHERE server_id <= ?1").bind(`web-${String(old).padStart(3, "0")}`).run();
  await table(`${old} of ${SERVERS} servers not upgraded (their sites from the logs)`, ["/", "/api/fleet"]);
} finally {
  await mf.dispose();
  rmSync(dir, { recursive: true, force: true });
}
