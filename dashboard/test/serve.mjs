// Test and benchmark only: serve the dashboard Worker (src/worker.mjs) with miniflare on
// 127.0.0.1, its D1 binding over the D1 state directory that tests/d1/simulator.mjs (filled by
// real `wpbackup sync-d1` runs) or bench/seed.mjs wrote. Prints "ready <url>" once serving.
// Settings come from the environment (the token never appears on a command line):
//   DASH_PORT, DASH_D1_DIR, DASH_DATABASE (the D1 database id), DASH_TOKEN (may be empty:
//   then the Worker has no DASHBOARD_TOKEN and must refuse everyone).
// Stop it by killing its whole process group: workerd is a child process.
import { Miniflare } from "miniflare";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const env = process.env;
const bindings = env.DASH_TOKEN ? { DASHBOARD_TOKEN: env.DASH_TOKEN } : {};
const mf = new Miniflare({
  modules: true,
  modulesRoot: root,
  scriptPath: path.join(root, "src/worker.mjs"),
  modulesRules: [{ type: "Text", include: ["**/*.css"] }],
  compatibilityDate: "2025-09-01",
  host: "127.0.0.1",
  port: Number(env.DASH_PORT),
  d1Databases: { DB: env.DASH_DATABASE },
  d1Persist: env.DASH_D1_DIR,
  bindings,
  // As wrangler.toml's [[ratelimits]] LOGIN_LIMIT.
  ratelimits: { LOGIN_LIMIT: { simple: { limit: 5, period: 60 } } },
});
const url = await mf.ready;
console.log(`ready ${url}`);
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, async () => {
    await mf.dispose();
    process.exit(0);
  });
}
