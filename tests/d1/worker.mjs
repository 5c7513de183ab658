// Test-only: a Worker that answers Cloudflare D1's REST API over a real D1 binding, so that
// wpbackup's tests talk to D1's protocol (routes, Bearer token, envelope, error codes) backed by
// the same SQLite engine D1 runs. Served by miniflare (see simulator.mjs).
//
//   POST /client/v4/accounts/{account}/d1/database/{database}/query
//        {"sql": "...", "params": [...]}  or  {"batch": [{"sql", "params"}, ...]}
//   -> {"result":[{"results":[...],"success":true,"meta":{...}}],"success":true,"errors":[],"messages":[]}
//
// Faults for the tests, set with POST /__sim/faults (no token: loopback test control only):
//   {"fail_after": N}   execute N more statements, then answer 500 to everything (a push cut
//                       off mid-batch: the statements before the cut stay applied, as when the
//                       connection drops after D1 ran them); with "once": true only that one
//                       call fails (the answer is lost, the retry gets through)
//   {"mode": "429"}     every call is rate limited (Cloudflare's 1,200 requests / 5 minutes)
//   {"mode": "garbage"} every call gets an HTML page instead of JSON
//   {"mode": "hang"}    every call waits two minutes before it is answered
//   {}                  back to normal
// GET /__sim/stats -> {"requests": n, "statements": n}

let faults = {};
let stats = { requests: 0, statements: 0 };

function envelope(status, result, errors, headers = {}) {
  return new Response(
    JSON.stringify({ result, success: errors.length === 0, errors, messages: [] }),
    { status, headers: { "content-type": "application/json", ...headers } },
  );
}

function json(value) {
  return new Response(JSON.stringify(value), { headers: { "content-type": "application/json" } });
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/__sim/faults" && request.method === "POST") {
      faults = await request.json();
      return json({ ok: true });
    }
    if (url.pathname === "/__sim/stats") {
      return json(stats);
    }
    const m = url.pathname.match(/^\/client\/v4\/accounts\/([^/]+)\/d1\/database\/([^/]+)\/query$/);
    if (!m || request.method !== "POST") {
      return envelope(404, null, [{ code: 7000, message: "No route for that URI" }]);
    }
    stats.requests++;
    // Cloudflare checks the token before anything else and answers 403 with code 10000.
    if (request.headers.get("authorization") !== `Bearer ${env.API_TOKEN}`) {
      return envelope(403, null, [{ code: 10000, message: "Authentication error" }]);
    }
    if (m[1] !== env.ACCOUNT_ID) {
      return envelope(403, null, [{ code: 10000, message: "Authentication error" }]);
    }
    if (m[2] !== env.DATABASE_ID) {
      return envelope(404, null, [{ code: 7404, message: `Couldn't find a D1 DB with the name or binding '${m[2]}'` }]);
    }
    if (faults.mode === "429") {
      return envelope(429, null, [{ code: 971, message: "Please wait and consider throttling your request speed" }], { "retry-after": "300" });
    }
    if (faults.mode === "hang") {
      // Slow as a D1 in trouble: no answer for two minutes.
      await new Promise((resolve) => setTimeout(resolve, 120000));
    }
    if (faults.mode === "garbage") {
      return new Response("<html><body><h1>502 Bad Gateway</h1></body></html>", {
        status: 200,
        headers: { "content-type": "text/html" },
      });
    }
    let body;
    try {
      body = await request.json();
    } catch (e) {
      return envelope(400, null, [{ code: 7400, message: "The request is malformed: invalid JSON" }]);
    }
    const statements = Array.isArray(body.batch) ? body.batch : [body];
    const result = [];
    for (const s of statements) {
      if (typeof s.sql !== "string") {
        return envelope(400, null, [{ code: 7400, message: "The request is malformed: sql is required" }]);
      }
      const params = Array.isArray(s.params) ? s.params : [];
      if (params.length > 100) {
        return envelope(400, null, [{ code: 7500, message: "too many SQL variables: SQLITE_ERROR" }]);
      }
      if (new TextEncoder().encode(s.sql).length > 100000) {
        return envelope(400, null, [{ code: 7500, message: "statement too long: SQLITE_TOOBIG" }]);
      }
      if (typeof faults.fail_after === "number") {
        if (faults.fail_after <= 0) {
          if (faults.once) faults = {};
          return envelope(500, null, [{ code: 7500, message: "Internal error (simulated: connection cut mid-batch)" }]);
        }
        faults.fail_after--;
      }
      try {
        const r = await env.DB.prepare(s.sql).bind(...params).all();
        stats.statements++;
        result.push({ results: r.results ?? [], success: true, meta: r.meta ?? {} });
      } catch (e) {
        return envelope(400, null, [{ code: 7500, message: `${e.message}` }]);
      }
    }
    return envelope(200, result, []);
  },
};
