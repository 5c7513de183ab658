// Small charts drawn on the server as inline SVG (no script, nothing from a CDN): the status
// strip (one cell per night) and line charts of archive size and run duration over time.

import { esc } from "./html.mjs";
import { parseSqlTime } from "./model.mjs";

const COLORS = { SUCCESS: "#1e7e34", WARNING: "#b26a00", ERROR: "#c62828" };
const DAY = 86400000;

/// One cell per UTC night for the last `nights` nights up to `now`: the night's last run's
/// colour (grey: no run). `runs` newest first, as the site query returns them.
export function statusStrip(runs, now, nights) {
  const byNight = new Map();
  for (const r of [...runs].reverse()) {
    const ms = parseSqlTime(r.timestamp);
    if (ms !== null) byNight.set(Math.floor(ms / DAY), r);
  }
  const today = Math.floor(now / DAY);
  const cell = 12;
  const gap = 2;
  const width = nights * (cell + gap);
  let out = `<svg class="strip" role="img" aria-label="status by night, last ${nights} nights" width="${width}" height="${cell + 16}" viewBox="0 0 ${width} ${cell + 16}" xmlns="http://www.w3.org/2000/svg">`;
  for (let i = 0; i < nights; i += 1) {
    const night = today - (nights - 1 - i);
    const r = byNight.get(night);
    const date = new Date(night * DAY).toISOString().slice(0, 10);
    const fill = r ? COLORS[r.status] ?? "#607d8b" : "#d5d8dc";
    const title = r ? `${date}: ${r.status}` : `${date}: no run`;
    out += `<rect x="${i * (cell + gap)}" y="0" width="${cell}" height="${cell}" rx="2" fill="${fill}" data-status="${esc(r ? r.status : "NONE")}"><title>${esc(title)}</title></rect>`;
  }
  const first = new Date((today - nights + 1) * DAY).toISOString().slice(0, 10);
  out += `<text x="0" y="${cell + 13}" font-size="10" fill="#555">${first}</text>`;
  out += `<text x="${width}" y="${cell + 13}" font-size="10" fill="#555" text-anchor="end">today</text>`;
  return out + "</svg>";
}

/// A line chart of `points` ([{t: 'YYYY-MM-DD HH:MM:SS', v: number}], any order), labelled
/// with the first and last time and the smallest and largest value (`fmt` formats values).
export function lineChart(title, points, fmt, cls) {
  const pts = points
    .map((p) => ({ t: parseSqlTime(p.t), v: Number(p.v) }))
    .filter((p) => p.t !== null && Number.isFinite(p.v))
    .sort((a, b) => a.t - b.t);
  const w = 360;
  const h = 120;
  const pad = { l: 70, r: 8, t: 8, b: 20 };
  let svg = `<svg class="chart-svg ${cls}" role="img" aria-label="${esc(title)}" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" xmlns="http://www.w3.org/2000/svg">`;
  svg += `<rect x="${pad.l}" y="${pad.t}" width="${w - pad.l - pad.r}" height="${h - pad.t - pad.b}" fill="#fafbfc" stroke="#e3e5e8"/>`;
  if (pts.length === 0) {
    svg += `<text x="${w / 2}" y="${h / 2}" font-size="12" fill="#777" text-anchor="middle">no data yet</text></svg>`;
    return `<div class="chart"><h3>${esc(title)}</h3>${svg}</div>`;
  }
  const t0 = pts[0].t;
  const t1 = pts[pts.length - 1].t;
  const vmin = Math.min(...pts.map((p) => p.v));
  const vmax = Math.max(...pts.map((p) => p.v));
  const x = (t) => pad.l + (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)) * (w - pad.l - pad.r);
  const y = (v) =>
    pad.t + (vmax === vmin ? 0.5 : 1 - (v - vmin) / (vmax - vmin)) * (h - pad.t - pad.b);
  const line = pts.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
  svg += `<polyline points="${line}" fill="none" stroke="#0b57d0" stroke-width="2"/>`;
  for (const p of pts) {
    svg += `<circle cx="${x(p.t).toFixed(1)}" cy="${y(p.v).toFixed(1)}" r="2.5" fill="#0b57d0"/>`;
  }
  svg += `<text x="${pad.l - 4}" y="${pad.t + 10}" font-size="10" fill="#555" text-anchor="end">${esc(fmt(vmax))}</text>`;
  svg += `<text x="${pad.l - 4}" y="${h - pad.b}" font-size="10" fill="#555" text-anchor="end">${esc(fmt(vmin))}</text>`;
  const day = (ms) => new Date(ms).toISOString().slice(0, 10);
  svg += `<text x="${pad.l}" y="${h - 5}" font-size="10" fill="#555">${day(t0)}</text>`;
  svg += `<text x="${w - pad.r}" y="${h - 5}" font-size="10" fill="#555" text-anchor="end">${day(t1)}</text>`;
  return `<div class="chart"><h3>${esc(title)}</h3>${svg}</svg></div>`;
}
