// Test-only: start miniflare (Cloudflare's local Workers runtime, workerd) serving worker.mjs on
// 127.0.0.1 with a real D1 binding persisted under D1SIM_DIR. Prints "ready <url>" once serving.
// Settings come from the environment (the token never appears on a command line):
//   D1SIM_PORT, D1SIM_DIR, D1SIM_TOKEN, D1SIM_ACCOUNT, D1SIM_DATABASE
// Stop it by killing its whole process group: workerd is a child process.
import { Miniflare } from "miniflare";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const env = process.env;
const mf = new Miniflare({
  modules: true,
  modulesRoot: here,
  scriptPath: path.join(here, "worker.mjs"),
  host: "127.0.0.1",
  port: Number(env.D1SIM_PORT),
  d1Databases: { DB: env.D1SIM_DATABASE },
  d1Persist: env.D1SIM_DIR,
  bindings: {
    API_TOKEN: env.D1SIM_TOKEN,
    ACCOUNT_ID: env.D1SIM_ACCOUNT,
    DATABASE_ID: env.D1SIM_DATABASE,
  },
});
const url = await mf.ready;
console.log(`ready ${url}`);
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, async () => {
    await mf.dispose();
    process.exit(0);
  });
}
