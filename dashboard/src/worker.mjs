// The wpbackup fleet dashboard: a Cloudflare Worker over the D1 database that `wpbackup
// sync-d1` fills (binding DB, see wrangler.toml). Routes:
//   GET  /                          the fleet page (?since=24h: the stale period, as `report`)
//   GET  /site/SERVER/SITE          one site's page
//   GET  /api/fleet                 the fleet as JSON (same ?since)
//   GET  /api/site/SERVER/SITE      one site as JSON
//   GET  /login, POST /login        the token form (sets a 12-hour session cookie; rate limited)
//   POST /logout                    ends the session in this browser (GET shows the button)
// Everything but /login and /logout answers 401 without the token (auth.mjs). Every text that
// comes from D1 or from the request is escaped (pages.mjs, html.mjs). Each answer says how many
// rows D1 read for it (header x-d1-rows-read): D1 bills rows read.

import { allowed, loginAllowed, logoutCookie, sessionCookie, tokenMatches } from "./auth.mjs";
import { fleet, NoDataYet, site } from "./queries.mjs";
import { LOOKBACK_DAYS, fleetModel, parsePeriod, siteModel, sqlTime } from "./model.mjs";
import { fleetPage, loginPage, logoutPage, messagePage, sitePage } from "./pages.mjs";

const SECURITY_HEADERS = {
  "Content-Security-Policy":
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-store",
};

function html(body, status = 200, extra = {}) {
  return new Response(body, {
    status,
    headers: { "Content-Type": "text/html; charset=utf-8", ...SECURITY_HEADERS, ...extra },
  });
}

function json(value, status = 200, extra = {}) {
  return new Response(JSON.stringify(value, null, 2), {
    status,
    headers: { "Content-Type": "application/json; charset=utf-8", ...SECURITY_HEADERS, ...extra },
  });
}

/// The route of a path: { api, page, server, site } or null.
export function route(pathname) {
  const api = pathname.startsWith("/api/");
  const rest = api ? pathname.slice(4) : pathname;
  if (rest === "/" || rest === "/fleet") return { api, page: "fleet" };
  const m = /^\/site\/([^/]+)\/([^/]+)\/?$/.exec(rest);
  if (m) {
    try {
      return { api, page: "site", server: decodeURIComponent(m[1]), site: decodeURIComponent(m[2]) };
    } catch {
      return null;
    }
  }
  return null;
}

async function login(request, env) {
  if (request.method !== "POST") return html(loginPage(false), 401);
  if (!(await loginAllowed(request, env))) {
    return html(
      messagePage("Too many tries", "Too many token tries from this address: wait a minute, then try again."),
      429,
      { "Retry-After": "60" },
    );
  }
  const form = await request.formData().catch(() => null);
  const token = form?.get("token");
  if (!(await tokenMatches(env, typeof token === "string" ? token.trim() : ""))) {
    return html(loginPage(true), 401);
  }
  return new Response(null, {
    status: 303,
    headers: { Location: "/", "Set-Cookie": await sessionCookie(request, env), ...SECURITY_HEADERS },
  });
}

function logout(request) {
  if (request.method !== "POST") return html(logoutPage(), 200);
  return new Response(null, {
    status: 303,
    headers: { Location: "/login", "Set-Cookie": logoutCookie(request), ...SECURITY_HEADERS },
  });
}

function refused(r, env) {
  if (!env.DASHBOARD_TOKEN) {
    const what =
      "DASHBOARD_TOKEN is not set, so nobody is let in: run `npx wrangler secret put DASHBOARD_TOKEN` in dashboard/.";
    return r?.api ? json({ error: what }, 401) : html(messagePage("Dashboard locked", what), 401);
  }
  if (r?.api) {
    return json({ error: "token refused: send Authorization: Bearer DASHBOARD_TOKEN" }, 401);
  }
  return html(loginPage(false), 401);
}

async function serve(r, url, env) {
  const now = Date.now();
  if (r.page === "fleet") {
    const periodText = url.searchParams.get("since") ?? "24h";
    const periodMs = parsePeriod(periodText);
    if (periodMs === null) {
      const what = `since=${periodText} is not a period: use a number and a unit, as 24h or 7d`;
      return r.api ? json({ error: what }, 400) : html(messagePage("Bad period", what), 400);
    }
    const from = sqlTime(now - Math.max(periodMs, LOOKBACK_DAYS * 86400000));
    const { rows, rowsRead } = await fleet(env.DB, from);
    const model = fleetModel(rows, now, periodMs, periodText);
    const extra = { "x-d1-rows-read": String(rowsRead) };
    return r.api ? json(model, 200, extra) : html(fleetPage(model, now), 200, extra);
  }
  const { runs, archives, rowsRead } = await site(env.DB, r.server, r.site);
  const extra = { "x-d1-rows-read": String(rowsRead) };
  if (runs.length === 0 && archives.length === 0) {
    const what = `No run of site ${r.site} on server ${r.server} is in D1.`;
    return r.api ? json({ error: what }, 404) : html(messagePage("No such site", what), 404);
  }
  const model = siteModel(r.server, r.site, runs, archives);
  return r.api ? json(model, 200, extra) : html(sitePage(model, now), 200, extra);
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/login") return login(request, env);
    if (url.pathname === "/logout") return logout(request);
    const r = route(url.pathname);
    if (!(await allowed(request, env))) return refused(r, env);
    if (!r) return html(messagePage("Not found", "No such page: start from the fleet.", { home: true }), 404);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return html(messagePage("Not allowed", "The dashboard only reads."), 405);
    }
    try {
      return await serve(r, url, env);
    } catch (e) {
      if (e instanceof NoDataYet) {
        const what =
          "D1 has no backup_log or s3_archives table yet: run `wpbackup sync-d1` on a server (with the same D1 database id as wrangler.toml).";
        return r.api ? json({ error: "no data yet: run wpbackup sync-d1 on a server" }, 503) : html(messagePage("No data yet", what), 503);
      }
      throw e;
    }
  },
};
