// The dashboard's HTML pages: the fleet (every site, those needing attention first and red),
// one site (status strip, size and duration charts, archives, every ERROR and WARNING), the
// token form, and the page said when no server has pushed yet.

import { document, esc } from "./html.mjs";
import { lineChart, statusStrip } from "./charts.mjs";
import { ago, humanBytes, humanDuration, parseSqlTime } from "./model.mjs";

/// Nights the site page's strip shows.
const STRIP_NIGHTS = 30;

function sitePath(serverId, site) {
  return `/site/${encodeURIComponent(serverId)}/${encodeURIComponent(site)}`;
}

function badge(label) {
  return `<span class="badge ${esc(label.replaceAll(" ", ""))}">${esc(label)}</span>`;
}

function failoverMark(storage) {
  return `<span class="failover" title="a higher-priority storage failed; ${esc(storage)} took the archive">failover</span>`;
}

function fleetRow(s, now) {
  const run = s.last_run;
  const storage = s.last_archive?.storage ?? "";
  return `<tr class="${s.needs_attention ? "attention" : "ok"}" data-server="${esc(s.server_id)}" data-site="${esc(s.site)}" data-label="${esc(s.label)}">
<td>${badge(s.label)}</td>
<td class="nw">${esc(s.server_id)}</td>
<td><a href="${sitePath(s.server_id, s.site)}">${esc(s.site)}</a>${
    s.needs_attention && run.status === "ERROR"
      ? `<div class="detail">${esc(run.details)}</div>`
      : ""
  }</td>
<td class="nw ${s.label === "STALE" ? "ago late" : "ago"}" title="${esc(s.last_success ?? "")}">${esc(ago(s.last_success, now))}</td>
<td class="nw" title="${esc(run.timestamp)} UTC">${esc(ago(run.timestamp, now))}</td>
<td>${esc(storage)}${s.failover ? failoverMark(storage) : ""}</td>
<td class="num">${esc(humanBytes(s.last_archive?.bytes))}</td>
<td class="num">${esc(humanDuration(run.duration_secs))}</td>
</tr>`;
}

/// The fleet page for `model` (model.mjs `fleetModel`).
export function fleetPage(model, now) {
  const total = model.sites.length;
  const bad = model.attention;
  const banner =
    bad === 0
      ? `<p class="banner">All ${total} sites backed up in the last ${esc(model.period)}</p>`
      : `<p class="banner bad">${bad} of ${total} sites need attention</p>`;
  const rows = model.sites.map((s) => fleetRow(s, now)).join("\n");
  const body = `<h1>wpbackup fleet</h1>
<p class="sub">${model.servers.length} servers, ${total} sites; stale: no stored backup in the last ${esc(model.period)} (since ${esc(model.since)} UTC). Generated ${esc(model.generated_at)} UTC.</p>
${banner}
<table id="fleet"><thead><tr><th>status</th><th>server</th><th>site</th><th>last success</th><th>last run</th><th>storage</th><th class="num">archive</th><th class="num">duration</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<footer>Same rule as <code>wpbackup report</code>. JSON: <a href="/api/fleet">/api/fleet</a></footer>
${LOGOUT_FORM}`;
  return document(bad ? `wpbackup: ${bad} need attention` : "wpbackup: all well", body);
}

function eventList(runs) {
  const events = runs.filter((r) => r.status === "ERROR" || r.status === "WARNING");
  if (events.length === 0) return "<p>No error or warning in these runs.</p>";
  const items = events
    .map(
      (r) =>
        `<li class="${esc(r.status)}">${badge(r.status)} ${esc(r.timestamp)} UTC${r.failover ? failoverMark(r.storage ?? "") : ""}<div class="detail">${esc(r.details)}</div></li>`,
    )
    .join("\n");
  return `<ul class="events">${items}</ul>`;
}

function archiveTable(archives) {
  if (archives.length === 0) return "<p>No archive recorded.</p>";
  const rows = archives
    .map(
      (a) => `<tr><td>${esc(a.created_at)}</td><td class="mono">${esc(a.key)}</td><td>${esc(a.storage)}</td>
<td class="num">${esc(humanBytes(a.bytes))}</td><td class="mono">${esc(a.sha256 ?? "")}</td></tr>`,
    )
    .join("\n");
  return `<table id="archives"><thead><tr><th>created (UTC)</th><th>key</th><th>storage</th><th class="num">size</th><th>sha256</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/// One site's page for `model` (model.mjs `siteModel`).
export function sitePage(model, now) {
  const last = model.runs[0];
  const head = last
    ? `<p class="sub">Last run ${esc(last.timestamp)} UTC (${esc(ago(last.timestamp, now))}): ${badge(last.status)}</p>`
    : `<p class="sub">No backup run recorded.</p>`;
  const sizes = model.archives.map((a) => ({ t: a.created_at, v: a.bytes }));
  const durations = model.runs
    .filter((r) => r.duration_secs !== null && r.duration_secs !== undefined)
    .map((r) => ({ t: r.timestamp, v: r.duration_secs }));
  const oldest = model.runs.length ? model.runs[model.runs.length - 1].timestamp : null;
  const span = oldest ? Math.ceil((now - parseSqlTime(oldest)) / 86400000) : 0;
  const body = `<p><a href="/">&larr; fleet</a></p>
<h1>${esc(model.site)} <span class="sub">on ${esc(model.server_id)}</span></h1>
${head}
<h2>Status by night</h2>
${statusStrip(model.runs, now, STRIP_NIGHTS)}
<h2>Over time</h2>
<div class="charts">
${lineChart("Archive size", sizes, humanBytes, "size")}
${lineChart("Duration", durations, humanDuration, "duration")}
</div>
<h2>Errors and warnings</h2>
${eventList(model.runs)}
<h2>Archives</h2>
${archiveTable(model.archives)}
<footer>${model.runs.length} newest runs${span ? ` (${span} ${span === 1 ? "day" : "days"})` : ""}. JSON: <a href="/api${sitePath(model.server_id, model.site)}">/api${esc(sitePath(model.server_id, model.site))}</a></footer>
${LOGOUT_FORM}`;
  return document(`wpbackup: ${model.site} on ${model.server_id}`, body);
}

/// The token form; `refused`: a token was given and it was wrong.
export function loginPage(refused) {
  const body = `<h1>wpbackup fleet</h1>
<form class="login" method="post" action="/login">
${refused ? '<p class="refused" id="refused">Token refused: it is not this dashboard\'s DASHBOARD_TOKEN.</p>' : "<p>This dashboard is private. Enter its token (the Worker secret DASHBOARD_TOKEN).</p>"}
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Open</button>
</form>`;
  return document("wpbackup: token needed", body);
}

/// A page that says what to do: `title` and a plain-text sentence. Both are escaped (they may
/// hold a site, server or period from the request or from D1); `code` in backquotes is shown
/// as code. `home`: a link back to the fleet.
export function messagePage(title, sentence, { home = false } = {}) {
  const text = esc(sentence).replace(/`([^`]*)`/g, "<code>$1</code>");
  const link = home ? ' <a href="/">The fleet</a>.' : "";
  return document(`wpbackup: ${title}`, `<h1>${esc(title)}</h1><p>${text}${link}</p>`);
}

/// The logout button (a POST, so that no link or image elsewhere can end a session).
const LOGOUT_FORM = '<form class="logout" method="post" action="/logout"><button type="submit">Log out</button></form>';

/// The page GET /logout shows: the button.
export function logoutPage() {
  return document("wpbackup: log out", `<h1>Log out</h1><p>End this browser's session.</p>${LOGOUT_FORM}`);
}
